"""Textual messages: how worker results and core events reach the widgets."""

from __future__ import annotations

from textual.message import Message

from client.interfaces import ContactView, CoreEvent, SendOutcome

__all__ = ["ContactAdded", "CoreEventArrived", "OperationFailed", "SendFinished"]


class CoreEventArrived(Message):
    """Something happened in the core (message received, delivery, key change, snapshot, link)."""

    def __init__(self, event: CoreEvent) -> None:
        super().__init__()
        self.event = event


class SendFinished(Message):
    """A send (text or image) came back from the core's pipeline."""

    def __init__(self, peer: str, outcome: SendOutcome, *, path: str | None = None) -> None:
        super().__init__()
        self.peer = peer
        self.outcome = outcome
        self.path = path


class ContactAdded(Message):
    def __init__(self, contact: ContactView) -> None:
        super().__init__()
        self.contact = contact


class OperationFailed(Message):
    """A core call failed; ``text`` is one sentence for the user."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.text = text
