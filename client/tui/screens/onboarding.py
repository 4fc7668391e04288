"""First run: choose a profile name and a passphrase for the encrypted store."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from textual import on
from textual.app import ComposeResult
from textual.binding import BindingType
from textual.containers import VerticalScroll
from textual.screen import Screen
from textual.widgets import Button, Footer, Input, Label, Static

__all__ = ["OnboardingResult", "OnboardingScreen"]


@dataclass(frozen=True)
class OnboardingResult:
    name: str
    passphrase: str
    relay: str = ""
    authority_pubkey: str = ""


class OnboardingScreen(Screen[OnboardingResult]):
    """Welcome, name and passphrase (twice). Dismisses with an :class:`OnboardingResult`."""

    BINDINGS: ClassVar[list[BindingType]] = [("escape", "app.quit", "Quit")]

    def __init__(self, *, ask_server: bool = False, relay: str = "", authority_pubkey: str = "") -> None:
        super().__init__()
        self.ask_server = ask_server
        self.relay = relay
        """What the command line gave (``--relay``, ``--authority-pubkey``): shown as values, not hints."""
        self.authority_pubkey = authority_pubkey

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="onboarding"):
            yield Static("[b]Welcome to pocketscan[/b]", id="welcome")
            yield Static(
                "An end-to-end encrypted messenger that scans outgoing images on this device "
                "before they are encrypted. Your keys and history stay in an encrypted store.",
                id="welcome-text",
            )
            yield Label("Profile name")
            yield Input(placeholder="e.g. alice", id="name")
            yield Label("Passphrase for the local store (empty: none)")
            yield Input(password=True, id="passphrase")
            yield Input(password=True, placeholder="repeat passphrase", id="passphrase2")
            if self.ask_server:
                yield Label("Relay URL and the bank authority's public key")
                yield Input(self.relay, placeholder="relay URL, e.g. ws://127.0.0.1:8765", id="relay")
                yield Input(self.authority_pubkey, placeholder="authority public key (64 hex)",
                            id="authority")
            yield Static("", id="onboarding-error")
            yield Button("Create account", variant="primary", id="create")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#name", Input).focus()

    @on(Input.Submitted)
    def _next(self, event: Input.Submitted) -> None:
        order = ["name", "passphrase", "passphrase2"] + (["relay", "authority"] if self.ask_server else [])
        if event.input.id in order[:-1]:
            self.query_one(f"#{order[order.index(event.input.id) + 1]}", Input).focus()
        else:
            self._create()

    @on(Button.Pressed, "#create")
    def _create(self) -> None:
        name = self.query_one("#name", Input).value.strip()
        p1 = self.query_one("#passphrase", Input).value
        p2 = self.query_one("#passphrase2", Input).value
        error = self.query_one("#onboarding-error", Static)
        if not name:
            error.update("Choose a profile name.")
            return
        if p1 != p2:
            error.update("The two passphrases differ.")
            return
        relay = authority = ""
        if self.ask_server:
            relay = self.query_one("#relay", Input).value.strip()
            authority = self.query_one("#authority", Input).value.strip()
            if not relay.startswith(("ws://", "wss://")) or len(authority) != 64:
                error.update("Give the relay (ws://HOST:PORT) and the authority key (64 hex characters).")
                return
        self.dismiss(OnboardingResult(name=name, passphrase=p1, relay=relay, authority_pubkey=authority))
