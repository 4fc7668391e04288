"""Hostile clients against a real relay on loopback: one test per relay-side finding of issue 11.

Each attacker speaks the real wire protocol (``hostile.RawClient``: CBOR frames over WebSockets, ids
of its choosing) with one free account, as in the issue's findings; victims and friends are the
real client library or real client cores.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
import time
from pathlib import Path
from typing import Any

import pytest
from hostile import ChallengeRelay, RawClient
from relayfix import new_key, relay, run
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from relay import protocol as p
from relay.client import RelayConnection
from relay.errors import AuthError
from relay.limits import Limits

# The relay's documented defaults (docs/protocol.md, "Limits and quotas"), written out so that a
# relay without them fails these tests on behaviour.
SENDER_SHARE = 0.25
PREKEY_FETCH_BURST = 30
PREKEY_TARGET_BURST = 20
BLOB_QUOTA_COUNT = 1000
CONNECTIONS_PER_ADDRESS = 256
DELIVERED_ID_TTL = 86400.0
BAD_REQUESTS = 16


async def _pipeline(
    client: RawClient, frames: list[dict[str, Any]], *, batch: int = 500, pause: float = 0.0
) -> list[dict[str, Any]]:
    """Send ``frames`` in pipelined batches (``pause`` seconds apart: stay under the account's
    request rate, as a patient attacker does); return the replies in request order."""
    replies: list[dict[str, Any]] = []
    for start in range(0, len(frames), batch):
        if start and pause:
            await asyncio.sleep(pause)
        chunk = frames[start : start + batch]
        for frame in chunk:
            await client.send_raw(p.encode(frame))
        by_id = {}
        while len(by_id) < len(chunk):
            frame = await client.next_frame(timeout=30)
            if frame["t"] in ("ok", "error"):
                by_id[frame["id"]] = frame
            else:
                client.pushes.append(frame)
        replies.extend(by_id[f["id"]] for f in chunk)
    return replies


def _sends(to: str, count: int, first_id: int = 1, size: int = 64) -> list[dict[str, Any]]:
    return [
        {"t": "send", "id": first_id + i, "to": to, "env": os.urandom(size), "cid": os.urandom(16)}
        for i in range(count)
    ]


async def _received_from(conn: RelayConnection, sender: str, timeout: float = 10.0) -> list[bytes]:
    """Read pushes until none arrives for a moment; acknowledge them; return ``sender``'s envelopes."""
    found = []
    while True:
        delivery = await conn.next_message(timeout)
        if delivery is None:
            return found
        await conn.ack([delivery.mid])
        if delivery.sender == sender:
            found.append(delivery.env)
        timeout = 1.0


# --- finding: a malformed blob id closed the connection -------------------------------------------


def test_malformed_requests_get_an_error_with_their_id_and_the_connection_stays(tmp_path: Path) -> None:
    async def body() -> None:
        async with relay(tmp_path / "r.sqlite") as server:
            c = await RawClient.connect(server.url)
            reply = await c.request({"t": "blob.get", "id": 7, "blob": "z" * 65, "chunk": 0})
            assert (reply["t"], reply["id"], reply["code"]) == ("error", 7, p.ErrorCode.BAD_REQUEST)
            assert await c.is_open()
            # An oversized envelope or chunk: too_large (the error table), connection kept.
            reply = await c.request(
                {"t": "send", "id": 8, "to": c.account, "env": b"x" * (p.MAX_ENVELOPE + 1), "cid": b"c" * 16}
            )
            assert (reply["id"], reply["code"]) == (8, p.ErrorCode.TOO_LARGE)
            reply = await c.request({"t": "blob.put", "id": 9, "data": b"x" * (p.BLOB_CHUNK + 1)})
            assert (reply["id"], reply["code"]) == (9, p.ErrorCode.TOO_LARGE)
            # Mistyped fields with a readable id: bad_request carrying it.
            reply = await c.request({"t": "ack", "id": 10, "mids": "not a list"})
            assert (reply["id"], reply["code"]) == (10, p.ErrorCode.BAD_REQUEST)
            reply = await c.request({"t": "blob.get", "id": 11, "blob": "../../etc/passwd"})
            assert (reply["id"], reply["code"]) == (11, p.ErrorCode.BAD_REQUEST)
            reply = await c.request({"t": "blob.get", "id": 12, "blob": "A" * 32})
            assert (reply["id"], reply["code"]) == (12, p.ErrorCode.NOT_FOUND)
            assert await c.is_open()
            # Frame-level garbage (not CBOR) closes the connection, with an error without id.
            await c.send_raw(b"\xff\xfe\xfd not cbor")
            frame = await c.next_frame()
            assert (frame["t"], frame["id"]) == ("error", None)
            with pytest.raises(ConnectionClosed):
                await c.next_frame()

    run(body())


def test_a_flood_of_malformed_requests_is_closed_after_the_strike_limit(tmp_path: Path) -> None:
    async def body() -> None:
        async with relay(tmp_path / "r.sqlite") as server:
            c = await RawClient.connect(server.url)
            limit = BAD_REQUESTS
            for i in range(limit):
                reply = await c.request({"t": "blob.get", "id": i, "blob": "!"})
                assert reply["id"] == i
            await c.send_raw(p.encode({"t": "blob.get", "id": 99, "blob": "!"}))
            assert (await c.next_frame())["id"] == 99
            with pytest.raises(ConnectionClosed):
                await c.next_frame()
            other = await RawClient.connect(server.url)  # the offender alone is closed
            assert await other.is_open()

    run(body())


# --- finding: one account drained all one-time prekeys; no refill while connected -------------------


def test_prekey_drain_is_bounded_per_target_and_per_requester(tmp_path: Path) -> None:
    async def body() -> None:
        async with relay(tmp_path / "r.sqlite") as server:
            owner = await RelayConnection.connect(server.url, new_key())
            await owner.put_prekeys(b"signed bundle", [b"otk-%03d" % i for i in range(100)])
            # Five accounts fetch 100 bundles in a burst (20 each: within the per-requester burst).
            attackers = [await RawClient.connect(server.url) for _ in range(5)]
            replies = []
            for i in range(100):
                replies.append(await attackers[i % 5].request({"t": "prekeys.get", "account": owner.account}))
            assert all(r["t"] == "ok" and r["bundle"] == b"signed bundle" for r in replies)
            handed = sum(r["otk"] is not None for r in replies)
            assert handed <= PREKEY_TARGET_BURST + 1
            assert await owner.count_prekeys() >= 100 - handed
            # One account alone is stopped by its own bucket: rate_limited with its id, connection kept.
            solo = await RawClient.connect(server.url)
            frames = [{"t": "prekeys.get", "id": i, "account": owner.account} for i in range(60)]
            codes = [r.get("code") for r in await _pipeline(solo, frames)]
            assert codes.count(p.ErrorCode.RATE_LIMITED) >= 60 - PREKEY_FETCH_BURST - 1
            assert await solo.is_open()

    run(body())


def test_drained_prekeys_are_refilled_while_connected(tmp_path: Path) -> None:
    from client.core import LOW_PREKEYS
    from client.demo.world import AuthorityIdentity, make_profile

    limits = Limits(prekey_target_rate=0, prekey_fetch_rate=0)  # let the drain through: the refill is tested

    async def body() -> None:
        async with relay(tmp_path / "r.sqlite", limits=limits) as server:
            authority = AuthorityIdentity.generate()
            victim = make_profile(tmp_path, "victim", relay=server.url, authority=authority)
            try:
                assert await victim.publish_now()
                store = server.core.store
                start = await store.count_prekeys(victim.account_id)
                attacker = await RawClient.connect(server.url)
                frames = [{"t": "prekeys.get", "id": i, "account": victim.account_id} for i in range(start)]
                replies = await _pipeline(attacker, frames)
                assert all(r["t"] == "ok" for r in replies)
                for _ in range(500):  # the victim tops up on the relay's push, on the same connection
                    left = await store.count_prekeys(victim.account_id)
                    if left >= LOW_PREKEYS and victim.net.prekey_refills >= 1:
                        break
                    await asyncio.sleep(0.02)
                assert await store.count_prekeys(victim.account_id) >= LOW_PREKEYS
                assert victim.net.connects == 1 and victim.net.prekey_refills >= 1
            finally:
                await victim.stop()

    run(body())


def test_prekey_limits_and_low_push_hold_across_a_fleet(
    tmp_path: Path, redis_server: str, redis_prefix: str
) -> None:
    """Two relay processes' worth of relays on one Redis: the per-target bucket is shared, and the
    owner connected to one relay hears ``prekeys.low`` when the drain happens through the other."""

    async def body() -> None:
        async with (
            relay(tmp_path / "a.sqlite", redis=redis_server, prefix=redis_prefix) as one,
            relay(tmp_path / "b.sqlite", redis=redis_server, prefix=redis_prefix) as two,
        ):
            told: list[int] = []
            owner = await RelayConnection.connect(one.url, new_key(), on_prekeys_low=told.append)
            await owner.put_prekeys(b"signed bundle", [b"otk-%03d" % i for i in range(30)])
            attackers = [await RawClient.connect(two.url) for _ in range(3)]
            handed = 0
            for i in range(60):
                reply = await attackers[i % 3].request({"t": "prekeys.get", "account": owner.account})
                handed += reply["otk"] is not None
            assert handed <= PREKEY_TARGET_BURST + 1
            for _ in range(250):  # pushes cross from relay two to relay one over Redis pub/sub
                if told and told[-1] == 30 - handed:
                    break
                await asyncio.sleep(0.02)
            assert told and told[-1] == 30 - handed
            await owner.close()

    run(body())


# --- finding: 10,000 envelopes into an offline victim's mailbox; a friend's message dropped ---------


def test_one_sender_cannot_fill_a_mailbox(tmp_path: Path) -> None:
    limits = Limits(mailbox_max_messages=200)

    async def body() -> None:
        async with relay(tmp_path / "r.sqlite", limits=limits) as server:
            victim_key = new_key()
            victim = p.account_id_from_public_key(bytes(victim_key.verify_key))
            attacker = await RawClient.connect(server.url)
            replies = await _pipeline(attacker, _sends(victim, 200))
            stored = sum(r["t"] == "ok" for r in replies)
            assert stored <= 200 * SENDER_SHARE
            assert {r["code"] for r in replies if r["t"] == "error"} == {p.ErrorCode.QUOTA}
            assert await attacker.is_open()
            friend = await RelayConnection.connect(server.url, new_key())
            await friend.send(victim, b"genuine")
            conn = await RelayConnection.connect(server.url, victim_key)
            assert await _received_from(conn, friend.account) == [b"genuine"]
            for c in (friend, conn):
                await c.close()

    run(body())


@pytest.mark.slow
def test_a_mailbox_flood_with_default_limits_does_not_stop_a_friend(tmp_path: Path) -> None:
    """Done-when: 10,000 envelopes from one account into an offline mailbox; a friend's gets through."""

    async def body() -> None:
        async with relay(tmp_path / "r.sqlite") as server:
            victim_key = new_key()
            victim = p.account_id_from_public_key(bytes(victim_key.verify_key))
            attacker = await RawClient.connect(server.url)
            replies = await _pipeline(attacker, _sends(victim, 10_000), batch=1000, pause=0.6)
            assert sum(r["t"] == "ok" for r in replies) == int(Limits().mailbox_max_messages * SENDER_SHARE)
            friend = await RelayConnection.connect(server.url, new_key())
            await friend.send(victim, b"genuine")
            conn = await RelayConnection.connect(server.url, victim_key)
            assert await _received_from(conn, friend.account) == [b"genuine"]
            for c in (friend, conn):
                await c.close()

    run(body(), timeout=240)


def test_a_send_refused_for_a_full_mailbox_waits_and_is_delivered(tmp_path: Path) -> None:
    """Done-when: accounts flooding a mailbox cannot stop a third account's genuine message. Four
    attackers fill it completely (each up to its share); the friend's message is refused for the
    quota, shown as waiting (not failed), retried with backoff and delivered once there is room."""
    from client.demo.world import AuthorityIdentity, make_profile
    from client.interfaces import DeliveryChanged, MessageReceived

    limits = Limits(mailbox_max_messages=8)

    async def body() -> None:
        async with relay(tmp_path / "r.sqlite", limits=limits) as server:
            authority = AuthorityIdentity.generate()
            alice = make_profile(tmp_path, "alice", relay=server.url, authority=authority)
            bob = make_profile(tmp_path, "bob", relay=server.url, authority=authority)
            events: list[Any] = []
            alice.subscribe(events.append)
            got: list[Any] = []
            bob.subscribe(got.append)
            try:
                await alice.add_contact(bob.account_id, "bob")
                await bob.add_contact(alice.account_id, "alice")
                assert await alice.publish_now() and await bob.publish_now()
                await bob.net.stop()  # bob goes offline
                alice.net.quota_backoff_initial = 0.2
                for _ in range(4):
                    attacker = await RawClient.connect(server.url)
                    await _pipeline(attacker, _sends(bob.account_id, int(8 * SENDER_SHARE)))
                out = await alice.send_text(bob.account_id, "genuine")
                assert out.message is not None
                msg_id = out.message.id
                for _ in range(500):
                    if any(isinstance(e, DeliveryChanged) and e.state == "waiting" for e in events):
                        break
                    await asyncio.sleep(0.02)
                state = alice.store.messages.get(msg_id)
                assert state is not None and state.state == "waiting"
                assert len(alice.store.outbox.pending()) == 1 and alice.net.waiting
                await bob.net.start()  # bob reads (and acknowledges) the flood: room again
                for _ in range(1000):
                    if any(isinstance(e, MessageReceived) and e.message.text == "genuine" for e in got):
                        break
                    await asyncio.sleep(0.02)
                assert any(isinstance(e, MessageReceived) and e.message.text == "genuine" for e in got)
                final = alice.store.messages.get(msg_id)
                assert final is not None and final.state in ("sent", "delivered")
                assert not any(isinstance(e, DeliveryChanged) and e.state == "failed" for e in events)
            finally:
                await alice.stop()
                await bob.stop()

    run(body(), timeout=90)


# --- finding: 40 finished 1 MiB blobs with no quota ------------------------------------------------


def test_blob_quota_per_account(tmp_path: Path) -> None:
    async def body() -> None:
        async with relay(tmp_path / "r.sqlite") as server:
            c = await RawClient.connect(server.url)
            count = BLOB_QUOTA_COUNT + 1
            frames = [{"t": "blob.put", "id": i, "data": b"", "final": True} for i in range(count)]
            replies = await _pipeline(c, frames, batch=Limits().uploads_per_account)
            assert all(r["t"] == "ok" for r in replies[:-1])
            assert (replies[-1]["t"], replies[-1]["code"]) == ("error", p.ErrorCode.QUOTA)
            assert await c.is_open()
            other = await RelayConnection.connect(server.url, new_key())  # the quota is per account
            assert await other.put_blob(b"fine")

    run(body(), timeout=120)


def test_blob_byte_quota_stops_one_mib_blobs(tmp_path: Path) -> None:
    limits = Limits(blob_quota_bytes=16 * 1024 * 1024)

    async def body() -> None:
        async with relay(tmp_path / "r.sqlite", limits=limits) as server:
            conn = await RelayConnection.connect(server.url, new_key())
            stored = 0
            refused = None
            for _ in range(40):
                try:
                    await conn.put_blob(os.urandom(1024 * 1024))
                except Exception as exc:
                    refused = exc
                    break
                stored += 1
            assert stored == 16
            assert getattr(refused, "code", None) == p.ErrorCode.QUOTA
            assert await conn.count_prekeys() == 0  # the connection goes on

    run(body())


# --- finding: no per-address connection cap ---------------------------------------------------------


def test_per_address_connection_cap(tmp_path: Path) -> None:
    cap = CONNECTIONS_PER_ADDRESS

    async def body() -> None:
        async with relay(tmp_path / "r.sqlite") as server:
            held = []
            try:
                for _ in range(cap):
                    ws = await connect(server.url, compression=None, close_timeout=0.5)
                    assert p.decode(await ws.recv())["t"] == "hello"
                    held.append(ws)
                extra = await connect(server.url, compression=None, close_timeout=0.5)
                with pytest.raises(ConnectionClosed) as refused:
                    await asyncio.wait_for(extra.recv(), 5)
                assert refused.value.rcvd is not None and refused.value.rcvd.code == 1013
                await held.pop().close()
                for _ in range(100):  # a slot frees when a connection closes
                    if server.core.connections < cap:
                        break
                    await asyncio.sleep(0.02)
                again = await connect(server.url, compression=None, close_timeout=0.5)
                assert p.decode(await again.recv())["t"] == "hello"
                held.append(again)
            finally:
                await asyncio.gather(*(ws.close() for ws in held))

    run(body(), timeout=120)


# --- finding: a relay could pass its challenge on to another relay --------------------------------


def test_a_relayed_challenge_is_refused(tmp_path: Path) -> None:
    async def body() -> None:
        async with relay(tmp_path / "honest.sqlite") as honest:
            evil = await ChallengeRelay(honest.url).start()
            key = new_key()
            account = p.account_id_from_public_key(bytes(key.verify_key))
            try:
                with pytest.raises(AuthError):
                    conn = await RelayConnection.connect(evil.url, key)
                    await conn.close()
                assert [r["code"] for r in evil.target_replies] == [p.ErrorCode.AUTH_FAILED]
                assert account not in honest.core.sessions
            finally:
                await evil.stop()
            direct = await RelayConnection.connect(honest.url, key)  # the honest path still works
            assert direct.account == account
            await direct.close()

    run(body())


# --- finding: sent_ids kept sender-to-recipient pairs for 30 days after delivery --------------------


def _delivered(url: str) -> Any:
    async def go() -> tuple[str, str, bytes, float]:
        a, b = new_key(), new_key()
        ca = await RelayConnection.connect(url, a)
        cb = await RelayConnection.connect(url, b)
        cid = os.urandom(16)
        sent_at = time.time()
        mid, _, _ = await ca.send(cb.account, b"envelope", cid=cid)
        delivery = await cb.next_message(10)
        assert delivery is not None and delivery.mid == mid
        assert await cb.ack([mid]) == [mid]
        again, _, dup = await ca.send(cb.account, b"envelope", cid=cid)  # a late retry: still one copy
        assert dup and again == mid
        assert await cb.next_message(0.5) is None
        await ca.close()
        await cb.close()
        return ca.account, cb.account, cid, sent_at

    return go()


def test_delivery_prunes_the_sender_recipient_pair_sqlite(tmp_path: Path) -> None:
    grace = DELIVERED_ID_TTL

    async def body() -> None:
        async with relay(tmp_path / "r.sqlite") as server:
            sender, recipient, cid, sent_at = await _delivered(server.url)
        with sqlite3.connect(tmp_path / "r.sqlite") as db:
            rows = db.execute(
                "SELECT sender, recipient, expires FROM sent_ids WHERE cid = ?", (cid,)
            ).fetchall()
            assert len(rows) == 1
            assert rows[0][0] == sender and rows[0][1] == ""
            assert rows[0][2] <= sent_at + grace + 60
            pairs = db.execute("SELECT count(*) FROM sent_ids WHERE recipient = ?", (recipient,)).fetchone()
            assert pairs == (0,)

    run(body())


def test_delivery_prunes_the_sender_recipient_pair_redis(
    tmp_path: Path, redis_server: str, redis_prefix: str
) -> None:
    import redis.asyncio as aioredis

    grace = DELIVERED_ID_TTL

    async def body() -> None:
        async with relay(tmp_path / "r.sqlite", redis=redis_server, prefix=redis_prefix) as server:
            sender, recipient, cid, _ = await _delivered(server.url)
        r: Any = aioredis.from_url(redis_server)
        try:
            key = f"{redis_prefix}cid:{sender}:{cid.hex()}"
            value = (await r.get(key)).decode()
            assert value.split("|")[1] == "" and recipient not in value
            assert 0 < await r.ttl(key) <= grace
        finally:
            await r.aclose()

    run(body())


@pytest.mark.slow
def test_a_waiting_send_is_reported_by_the_cli_and_delivered_later(tmp_path: Path) -> None:
    """Through `pocketscan` against a `pocketscan relay` process started with quota flags: a send
    refused for a full mailbox is reported as waiting (exit 2, ``"delivery": "waiting"``), stays in
    the outbox, and is delivered once the recipient has read its mailbox."""
    import contextlib
    import io
    import json

    from relayfix import RelayProcess

    from client.cli.main import main as cli
    from client.demo.world import AuthorityIdentity

    def pocketscan(*args: str) -> tuple[int, list[dict[str, Any]], str]:
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            status = cli(list(args))
        return (
            status,
            [json.loads(line) for line in out.getvalue().splitlines() if line.strip()],
            err.getvalue(),
        )

    server = RelayProcess(
        "--db", str(tmp_path / "relay.sqlite"), "--mailbox-max", "4", "--sender-share", "0.5"
    )
    try:
        authority = AuthorityIdentity.generate()
        ids = {}
        for who in ("a", "b"):
            status, out, _ = pocketscan(
                "account", "create", "--profile", str(tmp_path / who), "--relay", server.url,
                "--authority-pubkey", authority.public_hex, "--no-passphrase",
            )  # fmt: skip
            assert status == 0, out
            ids[who] = out[0]["account_id"]
        assert pocketscan("contact", "add", "--profile", str(tmp_path / "a"), ids["b"], "--name", "b")[0] == 0
        assert pocketscan("contact", "add", "--profile", str(tmp_path / "b"), ids["a"], "--name", "a")[0] == 0

        async def flood() -> None:  # two accounts fill b's mailbox (each up to its half)
            for _ in range(2):
                attacker = await RawClient.connect(server.url)
                replies = await _pipeline(attacker, _sends(ids["b"], 2))
                assert all(r["t"] == "ok" for r in replies)
                await attacker.close()

        run(flood())
        status, out, _ = pocketscan("send", "--profile", str(tmp_path / "a"), "--to", "b", "--text", "hello",
                                    "--timeout", "3")  # fmt: skip
        assert status == 2 and out[0]["delivery"] == "waiting" and "quota" in out[0]["error"], out
        status, out, _ = pocketscan("inbox", "--profile", str(tmp_path / "b"))  # b reads the flood
        # garbage is never shown as a message: each envelope is recorded as one that could not be shown
        assert status == 0 and len(out) == 4 and all("could not be shown" in m["error"] for m in out), out
        status, _, err = pocketscan("inbox", "--profile", str(tmp_path / "a"))  # a's outbox flushes
        assert status == 0 and "waiting" not in err
        status, out, _ = pocketscan("inbox", "--profile", str(tmp_path / "b"), "--wait", "10")
        assert status == 0 and [m.get("text") for m in out] == ["hello"], out
    finally:
        server.stop()
