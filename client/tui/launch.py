"""Start the TUI on a profile: onboarding for a new one, unlock for a protected one."""

from __future__ import annotations

import os
from pathlib import Path

from client.interfaces import ChatCore
from client.locations import Profile

__all__ = ["ProfileLauncher", "run_app"]


class ProfileLauncher:
    """``CoreLauncher`` over a profile directory (``pocketscan chat``)."""

    def __init__(self, profile: Profile, *, relay: str | None = None, authority_pubkey: str = "") -> None:
        self.profile = profile
        self.relay = relay or os.environ.get("POCKETSCAN_RELAY", "")
        self.authority_pubkey = authority_pubkey

    def needs_onboarding(self) -> bool:
        return not self.profile.store_file.exists()

    def needs_passphrase(self) -> bool:
        from client.store import Store

        return Store.is_protected(self.profile.store_file)

    def missing_server(self) -> bool:
        return not (self.relay and self.authority_pubkey)

    async def create(self, name: str, passphrase: str, relay: str = "",
                     authority_pubkey: str = "") -> ChatCore:
        import asyncio

        from client.core import Core

        return await asyncio.to_thread(
            Core.create, self.profile, relay=relay or self.relay,
            authority_pubkey=(authority_pubkey or self.authority_pubkey).strip().lower(),
            passphrase=passphrase or None, name=name)

    async def unlock(self, passphrase: str) -> ChatCore:
        import asyncio

        from client.core import Core

        return await asyncio.to_thread(Core.open, self.profile, passphrase=passphrase or None,
                                       relay=self.relay or None)


def run_app(*, launcher: ProfileLauncher | None = None, core: ChatCore | None = None,
            image_dir: Path | None = None) -> int:
    """Run the Textual app until the user quits; returns the exit status."""
    from client.tui.app import PocketscanApp

    app = PocketscanApp(core=core, launcher=launcher, image_dir=image_dir)
    app.run()
    return 0
