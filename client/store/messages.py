"""The message history: one sealed row per message, in arrival order per conversation."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from client.crypto.attachments import AttachmentPointer
from client.errors import StoreError
from client.store.contacts import ContactRepository
from client.store.database import Database
from client.store.records import DELIVERY_STATES, DeliveryState, MessageRecord

__all__ = ["MessageRepository"]


class MessageRepository:
    """Messages by id and by conversation; ids and peers are stored as keyed MACs only."""

    def __init__(self, db: Database, contacts: ContactRepository) -> None:
        self._db = db
        self._contacts = contacts

    def add(self, message: MessageRecord) -> bool:
        """Append a message to the history; False if its id is already there (nothing changes).

        An inbound message also bumps the contact's unread count.
        """
        if message.state not in DELIVERY_STATES:
            raise ValueError(f"unknown delivery state {message.state!r}")
        with self._db.transaction():
            cur = self._db.execute(
                "INSERT OR IGNORE INTO messages (mid, peer, v) VALUES (?, ?, ?)",
                (self._db.mac("msg", message.msg_id), self._db.mac("peer", message.peer),
                 self._db.seal("message", message.to_bytes())))
            if cur.rowcount == 0:
                return False
            if message.direction == "in":
                self._contacts.count_unread(message.peer)
            return True

    def get(self, msg_id: str) -> MessageRecord | None:
        """A message by id, or None."""
        row = self._db.one("SELECT v FROM messages WHERE mid = ?", (self._db.mac("msg", msg_id),))
        return None if row is None else MessageRecord.from_bytes(self._db.unseal("message", row[0]))

    def update(self, msg_id: str, *, state: DeliveryState | None = None,
               local_path: str | None = None,
               verdict: dict[str, Any] | None = None,
               attachment: AttachmentPointer | None = None) -> MessageRecord:
        """Change a message's delivery state, local file path, verdict summary or attachment pointer."""
        if state is not None and state not in DELIVERY_STATES:
            raise ValueError(f"unknown delivery state {state!r}")
        with self._db.transaction():
            message = self.get(msg_id)
            if message is None:
                raise StoreError(f"no message {msg_id}")
            message = replace(
                message,
                state=state or message.state,
                local_path=local_path if local_path is not None else message.local_path,
                verdict=verdict if verdict is not None else message.verdict,
                attachment=attachment if attachment is not None else message.attachment,
            )
            self._db.execute("UPDATE messages SET v = ? WHERE mid = ?",
                             (self._db.seal("message", message.to_bytes()), self._db.mac("msg", msg_id)))
            return message

    def conversation(self, peer: str, *, limit: int | None = None) -> list[MessageRecord]:
        """The conversation with ``peer``, oldest first (the last ``limit`` messages if given)."""
        sql = "SELECT v FROM messages WHERE peer = ? ORDER BY seq DESC"
        params: tuple[Any, ...] = (self._db.mac("peer", peer),)
        if limit is not None:
            sql += " LIMIT ?"
            params += (limit,)
        rows = self._db.all(sql, params)
        return [MessageRecord.from_bytes(self._db.unseal("message", r[0])) for r in reversed(rows)]
