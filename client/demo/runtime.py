"""Run the demo's background world (relay + bot) in its own thread and event loop.

The TUI owns the main thread's loop; the relay server and the bot's client live in a second
loop so neither blocks the other, exactly as if they were separate machines on loopback.
"""

from __future__ import annotations

import asyncio
import shutil
import threading
from collections.abc import Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from client.core import Core
from client.demo.bot import DemoBot
from client.demo.world import (
    DEMO_BANKED,
    AuthorityIdentity,
    RelayHandle,
    make_demo_snapshot,
    make_profile,
    sample_images,
    start_relay,
)
from client.locations import Profile
from client.net import RelayPublisher
from client.policy import PolicyName
from scanner.snapshot.workflow import publish, write_snapshot

__all__ = ["DemoInfo", "DemoRuntime"]

T = TypeVar("T")


@dataclass(frozen=True)
class DemoInfo:
    relay_url: str
    authority_pubkey: str
    bot_account: str
    user_profile: Path
    banked: list[Path]
    clean: list[Path]


class DemoRuntime:
    """Relay, authority, snapshot and bot; :meth:`start` returns once everything is ready."""

    def __init__(self, root: Path, *, policy: PolicyName = "block") -> None:
        self.root = root
        self.policy = policy
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="pocketscan-demo", daemon=True)
        self.relay: RelayHandle | None = None
        self.bot: DemoBot | None = None
        self.authority = AuthorityIdentity.generate()

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 120.0) -> T:
        """Run a coroutine in the demo loop and wait for its result."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def start(self) -> DemoInfo:
        self.root.mkdir(parents=True, exist_ok=True)
        self.thread.start()
        return self.run(self._setup())

    async def _setup(self) -> DemoInfo:
        samples = sample_images()
        banked = [p for p in samples if p.name in DEMO_BANKED]
        clean = [p for p in samples if p.name not in DEMO_BANKED]
        self.relay = await start_relay(self.root / "relay.sqlite", authorities=[self.authority.public_key])
        snapshot = await asyncio.to_thread(make_demo_snapshot, banked, self.authority, version=1,
                                           work_dir=self.root)
        write_snapshot(self.root / "snapshot.bin", snapshot)
        await publish(snapshot, RelayPublisher(self.relay.url, self.authority.seed))
        bot_core = make_profile(self.root, "bot", relay=self.relay.url, authority=self.authority,
                                policy="block")
        await bot_core.publish_now()
        self.bot = DemoBot(bot_core, images=clean[1:] or clean)
        user = make_profile(self.root, "you", relay=self.relay.url, authority=self.authority,
                            policy=self.policy)
        await user.add_contact(bot_core.account_id, "bot")
        await user.publish_now()
        await user.wait_idle(quiet=0.2, timeout=10)
        await user.stop()
        await bot_core.add_contact(user.account_id, "you")
        await self.bot.welcome(user.account_id, [p.name for p in banked], [p.name for p in clean])
        return DemoInfo(self.relay.url, self.authority.public_hex, bot_core.account_id, self.root / "you",
                        banked, clean)

    def open_user(self) -> Core:
        """The user's core, to be started in the caller's (TUI) loop."""
        return Core.open(Profile(self.root / "you"))

    def stop(self, *, remove: bool = False) -> None:
        async def teardown() -> None:
            if self.bot is not None:
                await self.bot.drain()
                await self.bot.core.stop()
            if self.relay is not None:
                await self.relay.stop()

        if self.thread.is_alive():
            try:
                self.run(teardown(), timeout=20)
            finally:
                self.loop.call_soon_threadsafe(self.loop.stop)
                self.thread.join(timeout=10)
        if remove:
            shutil.rmtree(self.root, ignore_errors=True)
