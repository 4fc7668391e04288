"""The pocketscan Textual app: onboarding or unlock, then the chat screen."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Protocol

from textual import work
from textual.app import App

from client.interfaces import ChatCore
from client.tui.screens.chat import ChatScreen
from client.tui.screens.onboarding import OnboardingResult, OnboardingScreen
from client.tui.screens.unlock import UnlockScreen

__all__ = ["CoreLauncher", "PocketscanApp"]


class CoreLauncher(Protocol):
    """How the app gets a core when it was not handed one (``pocketscan chat``)."""

    def needs_onboarding(self) -> bool: ...

    def needs_passphrase(self) -> bool: ...

    async def create(self, name: str, passphrase: str, relay: str = "",
                     authority_pubkey: str = "") -> ChatCore: ...

    async def unlock(self, passphrase: str) -> ChatCore: ...


class PocketscanApp(App[None]):
    """The messenger. Give it a started-or-not ``core``, or a ``launcher`` for first run/unlock."""

    CSS_PATH = "app.tcss"
    TITLE = "pocketscan"
    ENABLE_COMMAND_PALETTE = False

    def __init__(self, *, core: ChatCore | None = None, launcher: CoreLauncher | None = None,
                 image_dir: Path | None = None) -> None:
        super().__init__()
        if core is None and launcher is None:
            raise ValueError("PocketscanApp needs a core or a launcher")
        self.core = core
        self.launcher = launcher
        self.image_dir = image_dir

    def on_mount(self) -> None:
        if self.core is not None:
            self.start_core(self.core)
        elif self.launcher is not None and self.launcher.needs_onboarding():
            self.push_screen(self._onboarding(), self._onboarded)
        elif self.launcher is not None and self.launcher.needs_passphrase():
            self.push_screen(UnlockScreen(), self._unlocked)
        else:
            self._unlock_worker("")

    def _onboarding(self) -> OnboardingScreen:
        missing = getattr(self.launcher, "missing_server", None)
        return OnboardingScreen(ask_server=bool(missing and missing()),
                                relay=str(getattr(self.launcher, "relay", "") or ""),
                                authority_pubkey=str(getattr(self.launcher, "authority_pubkey", "") or ""))

    def _onboarded(self, result: OnboardingResult | None) -> None:
        if result is not None:
            self._create_worker(result)

    def _unlocked(self, passphrase: str | None) -> None:
        if passphrase is not None:
            self._unlock_worker(passphrase)

    @work(exclusive=True, group="launch")
    async def _create_worker(self, result: OnboardingResult) -> None:
        assert self.launcher is not None
        try:
            core = await self.launcher.create(result.name, result.passphrase, result.relay,
                                              result.authority_pubkey)
        except Exception as exc:  # shown, then the user retries
            self.notify(f"Could not create the account: {exc}", severity="error")
            self.push_screen(self._onboarding(), self._onboarded)
            return
        self.start_core(core)

    @work(exclusive=True, group="launch")
    async def _unlock_worker(self, passphrase: str) -> None:
        assert self.launcher is not None
        try:
            core = await self.launcher.unlock(passphrase)
        except Exception as exc:
            if not passphrase and not self.launcher.needs_passphrase():  # no passphrase to ask for
                self.push_screen(UnlockScreen(f"Could not open the profile: {exc}", ask_passphrase=False))
                return
            self.push_screen(UnlockScreen(f"Could not unlock: {exc}"), self._unlocked)
            return
        self.start_core(core)

    def start_core(self, core: ChatCore) -> None:
        self.core = core
        self.push_screen(ChatScreen(core, image_dir=self.image_dir))
        self._run_core(core)

    @work(exclusive=True, group="core")
    async def _run_core(self, core: ChatCore) -> None:
        await core.start()

    async def action_quit(self) -> None:
        if self.core is not None:
            with contextlib.suppress(Exception):  # quitting must always work
                await self.core.stop()
        self.exit()
