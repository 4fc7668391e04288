"""The shapes the client's parts agree on: view objects, events and collaborator Protocols.

``ChatCore`` (with its component ports ``ContactsPort``, ``MessagesPort``, ``SenderPort`` and
``SnapshotPort``) is what front ends (the Textual TUI, the headless CLI, tests) use; ``core.Core`` is
the real one and ``tests/tui`` drives the TUI with a fake. The collaborator Protocols
(``ImageScanner``, ``ImageSealer``, ``Courier``; the net's ``OutboxPort``) exist so that a test can wire
one real part to recorders and check the exact order of calls (scan, match, policy, encrypt, send).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal, Protocol

from client.policy import Decision, PolicyName, ScanOutcome

if TYPE_CHECKING:
    from client.crypto.attachments import EncryptedAttachment
    from client.sensitive import SensitiveResult
    from scanner.hashers.base import HashResult
    from scanner.verdict import ScanVerdict

__all__ = [
    "ChatCore",
    "ConnectionChanged",
    "ContactView",
    "ContactsPort",
    "CoreEvent",
    "Courier",
    "DeliveryChanged",
    "Direction",
    "ImageScanner",
    "ImageSealer",
    "KeyChanged",
    "MessageReceived",
    "MessageView",
    "MessagesPort",
    "ScannerStatus",
    "SendOutcome",
    "SendStatus",
    "SenderPort",
    "SnapshotChanged",
    "SnapshotPort",
]

Direction = Literal["in", "out"]
DeliveryState = Literal["sending", "sent", "delivered", "failed", "blocked", "received", "waiting"]
SendStatus = Literal["sent", "blocked", "reported", "error", "confirm", "queued"]


@dataclass(frozen=True)
class ContactView:
    """A contact as the UI shows it."""

    account_id: str
    name: str
    unread: int = 0
    verified: bool = False
    key_changed: bool = False

    @property
    def label(self) -> str:
        return self.name or self.account_id


@dataclass(frozen=True)
class MessageView:
    """One message of a conversation."""

    id: str
    peer: str
    direction: Direction
    kind: Literal["text", "image"]
    text: str = ""
    path: str | None = None
    state: DeliveryState = "sent"
    sent_at: float = 0.0
    verdict: str | None = None
    """For images: the scan outcome (match, no_match, ...), as recorded at send time."""
    votes: int | None = None
    label: str = ""
    """For images: the file name it was sent from (outgoing) or a description (incoming)."""
    sensitive: bool = False
    """For received images: the on-device classifier rated it sensitive (setting ``blur``/``both``)."""


@dataclass(frozen=True)
class ScannerStatus:
    """What the scanner panel shows."""

    policy: PolicyName
    dihedral: bool
    version: int | None = None
    fingerprint: str | None = None
    created_at: float | None = None
    expires_at: float | None = None
    min_votes: int | None = None
    authority_key_id: str = ""
    note: str = ""

    def age_seconds(self, now: float) -> float | None:
        return None if self.created_at is None else max(0.0, now - self.created_at)


@dataclass(frozen=True)
class SendOutcome:
    """The result of sending one message (text or image).

    ``status`` is one of the CLI contract's values (``sent``, ``blocked``, ``reported``, ``error``)
    or ``confirm`` (policy ``warn``: the sender must confirm before anything leaves), or ``queued`` (a
    text written while the relay is unreachable: stored, encrypted and sent once a connection is up).
    """

    status: SendStatus
    message: MessageView | None = None
    scan: ScanOutcome | None = None
    decision: Decision | None = None
    error: str = ""
    sensitive: SensitiveResult | None = None
    """The on-device classifier's rating (setting ``warn``/``both``), else None."""


@dataclass(frozen=True)
class MessageReceived:
    message: MessageView


@dataclass(frozen=True)
class DeliveryChanged:
    message_id: str
    peer: str
    state: DeliveryState


@dataclass(frozen=True)
class KeyChanged:
    """A known contact's identity key changed: the UI must warn loudly."""

    peer: str
    old_fingerprint: str
    new_fingerprint: str


@dataclass(frozen=True)
class SnapshotChanged:
    status: ScannerStatus


@dataclass(frozen=True)
class ConnectionChanged:
    connected: bool
    detail: str = ""


CoreEvent = MessageReceived | DeliveryChanged | KeyChanged | SnapshotChanged | ConnectionChanged


class ContactsPort(Protocol):
    """The address book (``client.core.contacts.Contacts``)."""

    def all(self) -> list[ContactView]: ...

    async def add(self, account_or_invite: str, name: str = "") -> ContactView: ...

    def resolve(self, name_or_id: str) -> str: ...

    def mark_read(self, peer: str) -> None: ...

    def safety_number(self, peer: str) -> str: ...

    def set_verified(self, peer: str, verified: bool) -> None: ...


class MessagesPort(Protocol):
    """Stored conversations (``client.core.messages.Messages``)."""

    def conversation(self, peer: str, *, limit: int = 500) -> list[MessageView]: ...

    def image_bytes(self, msg_id: str) -> bytes | None:
        """A stored image decrypted in memory (sealed at rest), or None."""
        ...


class SenderPort(Protocol):
    """Outgoing messages (``client.core.sender.Sender``)."""

    async def send_text(self, peer: str, text: str) -> SendOutcome: ...

    async def send_image(self, peer: str, path: Path, *, confirmed: bool = False) -> SendOutcome: ...

    async def forward_image(self, msg_id: str, peer: str, *, confirmed: bool = False) -> SendOutcome: ...


class SnapshotPort(Protocol):
    """The scanner's snapshot (``client.core.snapshot.SnapshotService``)."""

    def status(self) -> ScannerStatus: ...


class ChatCore(Protocol):
    """What a front end may ask of the client (all network and crypto behind it): the core's lifecycle
    and identity, and its components (``client.core.Core`` implements it)."""

    @property
    def account_id(self) -> str: ...

    @property
    def display_name(self) -> str: ...

    def invite_code(self) -> str: ...

    @property
    def connected(self) -> bool: ...

    def subscribe(self, listener: Callable[[CoreEvent], None]) -> None: ...

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    @property
    def contacts(self) -> ContactsPort:
        """The address book."""

    @property
    def messages(self) -> MessagesPort:
        """Stored conversations and their images."""

    @property
    def sender(self) -> SenderPort:
        """Outgoing texts, images and forwards."""

    @property
    def snapshot(self) -> SnapshotPort:
        """The scanner's snapshot and status."""

    async def set_policy(self, policy: PolicyName) -> None: ...


class ImageScanner(Protocol):
    """On-device scanning (``client.scanning.LocalScanner``): hash, match, seal a verdict."""

    def hash(self, data: bytes, *, name: str, dihedral: bool) -> HashResult: ...

    def match(self, hashed: HashResult) -> ScanOutcome: ...

    def error(self, exc: Exception) -> ScanOutcome: ...

    def verdict(self, data: bytes, scan: ScanOutcome) -> ScanVerdict: ...


class ImageSealer(Protocol):
    """The crypto seam: encrypt an image only with its verdict (``client.crypto.attachments``)."""

    def __call__(self, data: bytes, verdict: ScanVerdict, *, content_type: str, width: int | None,
                 height: int | None) -> EncryptedAttachment: ...


class Courier(Protocol):
    """What the image pipeline needs from the core once an image may leave (``client.core.Core``)."""

    async def upload_blob(self, blob: bytes) -> str: ...

    async def deliver_image(self, peer: str, encrypted: EncryptedAttachment, blob_id: str, *,
                            data: bytes, name: str, scan: ScanOutcome) -> MessageView: ...

    async def send_report(self, peer: str, data: bytes, scan: ScanOutcome,
                          hashed: HashResult | None) -> None: ...


Listener = Callable[[CoreEvent], None]


@dataclass
class EventHub:
    """Fan-out of core events to front-end listeners."""

    listeners: list[Listener] = field(default_factory=list)

    def subscribe(self, listener: Listener) -> None:
        self.listeners.append(listener)

    def emit(self, event: CoreEvent) -> None:
        for listener in list(self.listeners):
            listener(event)
