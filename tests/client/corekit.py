"""Two cores on a real loopback relay with real SQLite stores, shared by the client's end-to-end tests."""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import sqlite3
import threading
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

from client.cli.main import main as cli
from client.core import Core, format_invite
from client.demo.world import AuthorityIdentity, RelayHandle, make_profile, start_relay
from client.interfaces import CoreEvent

REPO = Path(__file__).resolve().parents[2]


class Pair:
    def __init__(self, relay: RelayHandle, alice: Core, bob: Core, trace: list[str],
                 authority: AuthorityIdentity) -> None:
        self.relay, self.alice, self.bob, self.trace = relay, alice, bob, trace
        self.authority = authority
        self.events: dict[str, list[CoreEvent]] = {"alice": [], "bob": []}
        alice.subscribe(self.events["alice"].append)
        bob.subscribe(self.events["bob"].append)

    async def close(self) -> None:
        await self.alice.stop()
        await self.bob.stop()
        await self.relay.stop()


async def pair(tmp: Path, policy: Any = "block") -> Pair:
    authority = AuthorityIdentity.generate()
    relay = await start_relay(tmp / "relay.sqlite", authorities=[authority.public_key])
    trace: list[str] = []
    alice = make_profile(tmp, "alice", relay=relay.url, authority=authority, policy=policy)
    alice.trace = trace.append
    bob = make_profile(tmp, "bob", relay=relay.url, authority=authority, policy=policy)
    await alice.contacts.add(bob.account_id, "bob")
    await bob.contacts.add(format_invite(alice.account_id, "alice"))
    assert await alice.publish_now() and await bob.publish_now()
    return Pair(relay, alice, bob, trace, authority)


async def until(cond: Callable[[], bool], timeout: float = 10.0) -> None:
    for _ in range(int(timeout / 0.02)):
        if cond():
            return
        await asyncio.sleep(0.02)
    raise AssertionError("condition not reached in time")


def relay_rows(db: Path, sender: str) -> tuple[int, int]:
    """Envelopes ever accepted from ``sender`` and blobs it uploaded, straight from the relay's SQLite."""
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        sent = conn.execute("SELECT COUNT(*) FROM sent_ids WHERE sender = ?", (sender,)).fetchone()[0]
        blobs = conn.execute("SELECT COUNT(*) FROM blobs WHERE owner = ?", (sender,)).fetchone()[0]
    return int(sent), int(blobs)


def run(tmp: Path, body: Callable[[Pair], Awaitable[None]], policy: Any = "block") -> None:
    async def main() -> None:
        p = await pair(tmp, policy)
        try:
            await body(p)
        finally:
            await p.close()

    asyncio.run(main())


@contextlib.contextmanager
def background_relay(tmp: Path, authority: AuthorityIdentity) -> Iterator[RelayHandle]:
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    relay = RelayHandle(tmp / "relay.sqlite", authorities=[authority.public_key])
    asyncio.run_coroutine_threadsafe(relay.start(), loop).result(20)
    try:
        yield relay
    finally:
        asyncio.run_coroutine_threadsafe(relay.stop(), loop).result(20)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)


def run_cli(*args: str) -> tuple[int, list[dict[str, Any]]]:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        status = cli(list(args))
    return status, [json.loads(line) for line in out.getvalue().splitlines() if line.strip()]
