"""A real world for the TUI's pilot tests: a relay on loopback, two profiles, the app, and waiting helpers."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from client.core import Core
from client.demo import world as demo_world
from client.net import publish_snapshot
from client.tui.screens.chat import ChatScreen

SAMPLES = Path(__file__).resolve().parents[2] / "samples"


@dataclass
class World:
    root: Path
    relay: demo_world.RelayHandle
    authority: demo_world.AuthorityIdentity
    alice: Core
    bob: Core


@contextlib.asynccontextmanager
async def world(tmp: Path, policy: Any = "block", *, contact: bool = True) -> AsyncIterator[World]:
    authority = demo_world.AuthorityIdentity.generate()
    relay = await demo_world.start_relay(tmp / "relay.sqlite", authorities=[authority.public_key])
    banked = [p for p in demo_world.sample_images() if p.name in demo_world.DEMO_BANKED]
    snapshot = await asyncio.to_thread(demo_world.build_snapshot, banked, authority, version=1, work_dir=tmp)
    await publish_snapshot(relay.url, authority.seed, snapshot, 1)
    alice = demo_world.make_profile(tmp, "alice", relay=relay.url, authority=authority, policy=policy)
    bob = demo_world.make_profile(tmp, "bob", relay=relay.url, authority=authority, policy="block")
    if contact:
        await alice.contacts.add(bob.account_id, "bob")
    await bob.contacts.add(alice.account_id, "alice")
    assert await bob.publish_now()
    w = World(tmp, relay, authority, alice, bob)
    try:
        yield w
    finally:
        await alice.stop()
        await bob.stop()
        await relay.stop()


async def until(cond: Callable[[], bool], pilot: Any = None, timeout: float = 15.0) -> None:
    for _ in range(int(timeout / 0.05)):
        if cond():
            return
        if pilot is not None:
            await pilot.pause(0.05)
        else:
            await asyncio.sleep(0.05)
    raise AssertionError("condition not reached in time")


def relay_counts(w: World) -> dict[str, int]:
    """What the relay holds from alice: envelopes by recipient and blobs (straight from its SQLite)."""
    with sqlite3.connect(f"file:{w.relay.db}?mode=ro", uri=True) as conn:
        rows = conn.execute("SELECT recipient, COUNT(*) FROM sent_ids WHERE sender = ? GROUP BY recipient",
                            (w.alice.account_id,)).fetchall()
        blobs = conn.execute("SELECT COUNT(*) FROM blobs WHERE owner = ?",
                             (w.alice.account_id,)).fetchone()[0]
    out = {str(r): int(n) for r, n in rows}
    out["blobs"] = int(blobs)
    return out


async def type_line(pilot: Any, text: str) -> None:
    composer = pilot.app.screen.query_one("#composer")
    composer.value = text
    composer.focus()
    await pilot.press("enter")


def banner(pilot: Any) -> str:
    return str(pilot.app.screen.query_one("#banner").render())


async def ready(pilot: Any, w: World) -> None:
    await until(lambda: isinstance(pilot.app.screen, ChatScreen), pilot)
    await until(lambda: w.alice.net.connected and w.alice.snapshot.slot.current is not None, pilot)
