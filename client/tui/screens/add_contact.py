"""Add a contact by account id or invite code."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from textual import on
from textual.app import ComposeResult
from textual.binding import BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Static

__all__ = ["AddContactRequest", "AddContactScreen"]


@dataclass(frozen=True)
class AddContactRequest:
    account_or_invite: str
    name: str


class AddContactScreen(ModalScreen[AddContactRequest | None]):
    BINDINGS: ClassVar[list[BindingType]] = [("escape", "cancel", "Cancel")]

    def __init__(self, own_invite: str = "") -> None:
        super().__init__()
        self.own_invite = own_invite

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield Static("[b]Add a contact[/b]")
            yield Label("Account id or invite code")
            yield Input(id="account", placeholder="account id (32 characters a-z, 2-7) or psinv:… invite")
            yield Label("Name (optional)")
            yield Input(id="contact-name")
            if self.own_invite:
                yield Static(f"Your invite code: [b]{self.own_invite}[/b]", id="own-invite")
            with Horizontal(classes="buttons"):
                yield Button("Add", variant="primary", id="add")
                yield Button("Cancel", id="cancel")

    def on_mount(self) -> None:
        self.query_one("#account", Input).focus()

    @on(Input.Submitted, "#account")
    def _to_name(self) -> None:
        self.query_one("#contact-name", Input).focus()

    @on(Input.Submitted, "#contact-name")
    @on(Button.Pressed, "#add")
    def _add(self) -> None:
        account = self.query_one("#account", Input).value.strip()
        if not account:
            self.query_one("#account", Input).focus()
            return
        self.dismiss(AddContactRequest(account, self.query_one("#contact-name", Input).value.strip()))

    @on(Button.Pressed, "#cancel")
    def action_cancel(self) -> None:
        self.dismiss(None)
