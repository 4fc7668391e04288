"""Textual messages: how worker results and core events reach the widgets."""

from __future__ import annotations

from textual.message import Message

from client.interfaces import ContactView, CoreEvent, MessageView, SendOutcome

__all__ = [
    "ContactAdded",
    "ContactsLoaded",
    "ConversationLoaded",
    "CoreEventArrived",
    "OperationFailed",
    "SafetyLoaded",
    "SendFinished",
]


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


class ContactsLoaded(Message):
    """The contact list, read from the store in a worker."""

    def __init__(self, contacts: list[ContactView]) -> None:
        super().__init__()
        self.contacts = contacts


class ConversationLoaded(Message):
    """A conversation's history (and the contact list), read in a worker."""

    def __init__(
        self, peer: str, contacts: list[ContactView], messages: list[MessageView], generation: int = 0
    ) -> None:
        super().__init__()
        self.peer = peer
        self.contacts = contacts
        self.messages = messages
        self.generation = generation
        """Which :meth:`ChatScreen.open_conversation` call this answers (older loads are dropped)."""


class SafetyLoaded(Message):
    """A contact and their safety number (computed in a worker: 2 x 5200 SHA-512)."""

    def __init__(self, contact: ContactView, number: str) -> None:
        super().__init__()
        self.contact = contact
        self.number = number
