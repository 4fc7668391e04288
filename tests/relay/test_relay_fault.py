"""Fault test: kill -9 a real `pocketscan relay` while 1,000 messages are in flight."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest
from relayfix import RelayProcess, new_key, run

from relay import protocol as p
from relay.client import RelayConnection
from relay.errors import RelayError

N = 1000


@pytest.mark.slow
def test_kill9_with_1000_in_flight(tmp_path: Path) -> None:
    db = str(tmp_path / "relay.sqlite")
    a, b = new_key(), new_key()
    b_id = p.account_id_from_public_key(bytes(b.verify_key))
    # The sender's outbox: each message keeps its idempotency key until the relay acknowledged it.
    outbox = {i: (os.urandom(16), b"payload %04d" % i) for i in range(N)}
    acked: set[int] = set()
    app: list[bytes] = []  # what the receiving application saw, after dedupe by relay id
    seen_mids: set[str] = set()

    async def receive(conn: RelayConnection, until: int | None) -> None:
        while until is None or len(app) < until:
            msg = await conn.next_message(None if until is None else 15)
            if msg is None:
                return
            if msg.mid not in seen_mids:
                seen_mids.add(msg.mid)
                app.append(msg.env)
            try:
                await conn.ack([msg.mid])
            except RelayError:
                return

    kill_after: list[RelayProcess] = []  # set during the first phase: kill -9 once 100 sends were acked

    async def send_one(conn: RelayConnection, i: int) -> None:
        cid, payload = outbox[i]
        try:
            await conn.send(b_id, payload, cid=cid)
        except RelayError:
            return
        acked.add(i)
        if kill_after and len(acked) >= 100:
            kill_after.pop().kill9()  # synchronously, in the middle of the stream of replies

    relay1 = RelayProcess("--db", db)
    try:

        async def before_crash() -> None:
            ca = await RelayConnection.connect(relay1.url, a)
            cb = await RelayConnection.connect(relay1.url, b)
            receiver = asyncio.ensure_future(receive(cb, None))
            kill_after.append(relay1)
            senders = [asyncio.ensure_future(send_one(ca, i)) for i in range(N)]
            await asyncio.gather(*senders, return_exceptions=True)
            assert not kill_after, "the relay was not killed"
            await asyncio.wait_for(receiver, 10)

        run(before_crash())
    finally:
        relay1.stop()
    acked_before = set(acked)
    seen_before = len(app)
    print(f"kill -9 with {N - len(acked_before)} of {N} sends unacknowledged; {seen_before} delivered before")
    assert 0 < len(acked_before) < N, "the crash must happen with messages in flight"

    relay2 = RelayProcess("--db", db)
    try:

        async def after_restart() -> None:
            ca = await RelayConnection.connect(relay2.url, a)
            # The outbox resends everything not acknowledged, with the same idempotency keys.
            await asyncio.gather(*(send_one(ca, i) for i in range(N) if i not in acked))
            assert len(acked) == N
            cb = await RelayConnection.connect(relay2.url, b)
            await receive(cb, N)
            extra = await cb.next_message(1.0)
            assert extra is None, "more envelopes than messages"
            await ca.close()
            await cb.close()

        run(after_restart(), timeout=90)
    finally:
        relay2.stop()

    delivered = [int(env.split()[1]) for env in app]
    assert len(delivered) == len(set(delivered)), "a message reached the application twice"
    assert acked_before <= set(delivered), "a message acknowledged to its sender was lost"
    assert set(delivered) == set(range(N))
