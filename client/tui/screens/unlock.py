"""Unlock an existing profile with its passphrase."""

from __future__ import annotations

from typing import ClassVar

from textual import on
from textual.app import ComposeResult
from textual.binding import BindingType
from textual.containers import Vertical
from textual.screen import Screen
from textual.widgets import Footer, Input, Label, Static

__all__ = ["UnlockScreen"]


class UnlockScreen(Screen[str]):
    """Ask for the passphrase; dismisses with it (the app tries it and comes back on failure)."""

    BINDINGS: ClassVar[list[BindingType]] = [("escape", "app.quit", "Quit")]

    def __init__(self, error: str = "", *, ask_passphrase: bool = True) -> None:
        super().__init__()
        self.error = error
        self.ask_passphrase = ask_passphrase
        """False for a profile without a passphrase that could not be opened: show why, ask nothing."""

    def compose(self) -> ComposeResult:
        from rich.markup import escape

        with Vertical(id="onboarding"):
            if self.ask_passphrase:
                yield Static("[b]Unlock pocketscan[/b]", id="welcome")
                yield Label("Passphrase")
                yield Input(password=True, id="passphrase")
            else:
                yield Static("[b]Cannot open this profile[/b]", id="welcome")
            yield Static(escape(self.error), id="onboarding-error")
            if not self.ask_passphrase:
                yield Static("It has no passphrase, so there is nothing to unlock. Press Esc to quit.",
                             id="unlock-hint")
        yield Footer()

    def on_mount(self) -> None:
        if self.ask_passphrase:
            self.query_one(Input).focus()

    @on(Input.Submitted)
    def _submit(self, event: Input.Submitted) -> None:
        self.dismiss(event.value)
