"""The sensitive-content send warning (setting ``warn``/``both``): the sender sees why and may still send.

Worded like the deployed designs it models (Apple's Communication Safety, Google's Sensitive Content
Warnings): the rating was made on this device, nothing was sent and nothing is reported.
"""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Static

from client.interfaces import SendOutcome
from client.tui.screens.confirm import ConfirmSendScreen

__all__ = ["SensitiveSendScreen", "confirm_screen_for"]


class SensitiveSendScreen(ConfirmSendScreen):
    """Asks before a possibly sensitive image leaves; Cancel is focused, ``y`` sends, ``escape`` cancels
    (keys and buttons as the scanner's warning, :class:`ConfirmSendScreen`)."""

    def compose(self) -> ComposeResult:
        rating = self.outcome.sensitive
        model = rating.model if rating is not None and rating.model else "the classifier"
        score = f", score {rating.score:.2f}" if rating is not None and rating.score is not None else ""
        with Vertical(id="dialog", classes="warn sensitive"):
            yield Static(Text(f"⚠ This image may be sensitive: {self.name_}", style="bold"),
                         id="sensitive-title")
            yield Static(Text(
                f"The on-device classifier ({model}{score}) flagged it as possibly showing nudity. "
                "Nothing has been sent, and nothing is reported: the rating stays on this device. "
                "If you send it, the person receiving it will see it."), id="sensitive-text")
            decision, scan = self.outcome.decision, self.outcome.scan
            if decision is not None and scan is not None and scan.outcome == "match":
                yield Static(Text(decision.explanation, style="italic"), id="sensitive-hash")
            with Horizontal(classes="buttons"):
                yield Button("Cancel", variant="primary", id="cancel")
                yield Button("Send anyway", variant="warning", id="send")


def confirm_screen_for(outcome: SendOutcome, name: str) -> ModalScreen[bool]:
    """The sensitive-content warning when the classifier flagged the image, else the scanner's warning."""
    if outcome.sensitive is not None and outcome.sensitive.flagged:
        return SensitiveSendScreen(outcome, name)
    return ConfirmSendScreen(outcome, name)
