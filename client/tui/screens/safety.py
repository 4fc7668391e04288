"""Safety number of a contact, with a verified mark and a loud warning when the key changed."""

from __future__ import annotations

from typing import ClassVar

from textual import on
from textual.app import ComposeResult
from textual.binding import BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Static

from client.interfaces import ContactView

__all__ = ["SafetyNumberScreen", "format_safety_number"]


def format_safety_number(digits: str) -> str:
    """60 digits as 3 lines of 4 groups of 5."""
    groups = [digits[i:i + 5] for i in range(0, len(digits), 5)]
    return "\n".join(" ".join(groups[i:i + 4]) for i in range(0, len(groups), 4))


class SafetyNumberScreen(ModalScreen[bool | None]):
    """Dismisses with True (mark verified), False (clear mark) or None (close)."""

    BINDINGS: ClassVar[list[BindingType]] = [("escape", "close", "Close")]

    def __init__(self, contact: ContactView, number: str) -> None:
        super().__init__()
        self.contact = contact
        self.number = number

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            if self.contact.key_changed:
                yield Static(
                    f"⚠ SAFETY NUMBER CHANGED for {self.contact.label}. Their identity key is not the "
                    "one you had. This happens when they reinstall, or when someone is intercepting. "
                    "Compare the new number in person before trusting it.",
                    id="key-warning",
                )
            mark = "✓ verified" if self.contact.verified else "not verified"
            yield Static(f"[b]Safety number with {self.contact.label}[/b] — {mark}", id="safety-title")
            yield Static(format_safety_number(self.number), id="safety-number")
            yield Static("Compare these digits with your contact's screen; if they match, mark verified.")
            with Horizontal(classes="buttons"):
                if self.contact.verified and not self.contact.key_changed:
                    yield Button("Clear verified", id="unverify")
                else:
                    yield Button("Mark verified", variant="success", id="verify")
                yield Button("Close", id="close")

    @on(Button.Pressed, "#verify")
    def _verify(self) -> None:
        self.dismiss(True)

    @on(Button.Pressed, "#unverify")
    def _unverify(self) -> None:
        self.dismiss(False)

    @on(Button.Pressed, "#close")
    def action_close(self) -> None:
        self.dismiss(None)
