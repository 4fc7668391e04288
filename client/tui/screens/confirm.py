"""The verdict modal of the ``warn`` policy: the sender sees why and may still send or cancel."""

from __future__ import annotations

from typing import ClassVar

from textual import on
from textual.app import ComposeResult
from textual.binding import BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Static

from client.interfaces import SendOutcome

__all__ = ["ConfirmSendScreen"]


class ConfirmSendScreen(ModalScreen[bool]):
    BINDINGS: ClassVar[list[BindingType]] = [("escape", "cancel", "Cancel"), ("y", "send", "Send anyway")]

    def __init__(self, outcome: SendOutcome, name: str) -> None:
        super().__init__()
        self.outcome = outcome
        self.name_ = name

    def compose(self) -> ComposeResult:
        explanation = self.outcome.decision.explanation if self.outcome.decision else ""
        with Vertical(id="dialog", classes="warn"):
            yield Static(f"[b]⚠ Scanner warning: {self.name_}[/b]", id="confirm-title")
            yield Static(explanation, id="confirm-text")
            with Horizontal(classes="buttons"):
                yield Button("Cancel", variant="primary", id="cancel")
                yield Button("Send anyway", variant="warning", id="send")

    def on_mount(self) -> None:
        self.query_one("#cancel", Button).focus()

    @on(Button.Pressed, "#send")
    def action_send(self) -> None:
        self.dismiss(True)

    @on(Button.Pressed, "#cancel")
    def action_cancel(self) -> None:
        self.dismiss(False)
