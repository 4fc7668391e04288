"""The records a client store holds: contacts, history messages and outbox items."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import cbor2

from client.crypto.attachments import AttachmentPointer

__all__ = ["DELIVERY_STATES", "Contact", "DeliveryState", "MessageRecord", "OutboxItem"]

DeliveryState = Literal["sending", "sent", "delivered", "failed", "received", "waiting"]
DELIVERY_STATES = ("sending", "sent", "delivered", "failed", "received", "waiting")
"""Every :data:`DeliveryState` (what :class:`~client.store.messages.MessageRepository` accepts)."""


@dataclass(frozen=True)
class Contact:
    """Someone we talk to. ``identity_key`` is None until their bundle or first message is seen."""

    account_id: str
    name: str | None = None
    identity_key: bytes | None = None
    verified: bool = False
    added_at: float = 0.0
    unread: int = 0

    @property
    def label(self) -> str:
        """Name if set, else the account id."""
        return self.name or self.account_id


@dataclass(frozen=True)
class MessageRecord:
    """One message in the history."""

    msg_id: str
    peer: str
    direction: Literal["in", "out"]
    kind: Literal["text", "image"]
    sent_at: float
    state: DeliveryState
    body: str | None = None
    attachment: AttachmentPointer | None = None
    local_path: str | None = None
    verdict: dict[str, Any] | None = None
    """Scan verdict summary (outcome, votes, snapshot), never the image hash."""

    def __repr__(self) -> str:  # never print message bodies
        return (f"MessageRecord(msg_id={self.msg_id!r}, peer={self.peer!r}, direction={self.direction!r}, "
                f"kind={self.kind!r}, state={self.state!r})")

    def to_bytes(self) -> bytes:
        """The record as CBOR (sealed before it is stored)."""
        return bytes(cbor2.dumps({
            "id": self.msg_id, "peer": self.peer, "dir": self.direction, "kind": self.kind,
            "t": self.sent_at, "state": self.state, "body": self.body,
            "att": None if self.attachment is None else self.attachment.to_dict(),
            "path": self.local_path, "verdict": self.verdict,
        }))

    @classmethod
    def from_bytes(cls, data: bytes) -> MessageRecord:
        """The record of :meth:`to_bytes` output."""
        d = cbor2.loads(data)
        att = None if d["att"] is None else AttachmentPointer.from_dict(d["att"])
        return cls(d["id"], d["peer"], d["dir"], d["kind"], d["t"], d["state"], d["body"], att, d["path"],
                   d["verdict"])


@dataclass(frozen=True)
class OutboxItem:
    """An envelope handed to the relay but not yet acknowledged (resent on reconnect)."""

    envelope_id: str
    peer: str
    payload: bytes
    created_at: float
    attempts: int = 0
    meta: dict[str, Any] = field(default_factory=dict)
