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

    def __init__(self, error: str = "") -> None:
        super().__init__()
        self.error = error

    def compose(self) -> ComposeResult:
        with Vertical(id="onboarding"):
            yield Static("[b]Unlock pocketscan[/b]", id="welcome")
            yield Label("Passphrase")
            yield Input(password=True, id="passphrase")
            yield Static(self.error, id="onboarding-error")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one(Input).focus()

    @on(Input.Submitted)
    def _submit(self, event: Input.Submitted) -> None:
        self.dismiss(event.value)
