"""Double Ratchet session records, one per peer (sealed; the peer column is a keyed MAC)."""

from __future__ import annotations

from client.session import SessionRecord
from client.store.database import Database

__all__ = ["SessionRepository"]


class SessionRepository:
    """The current session record with each peer."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def save(self, record: SessionRecord) -> None:
        """Store the session record with a peer (replacing the previous one)."""
        with self._db.transaction():
            self._db.execute("INSERT OR REPLACE INTO sessions (peer, v) VALUES (?, ?)",
                             (self._db.mac("peer", record.account_id),
                              self._db.seal("session", record.to_bytes())))

    def load(self, account_id: str) -> SessionRecord | None:
        """The session record with ``account_id``, or None."""
        row = self._db.one("SELECT v FROM sessions WHERE peer = ?", (self._db.mac("peer", account_id),))
        return None if row is None else SessionRecord.from_bytes(self._db.unseal("session", row[0]))

    def delete(self, account_id: str) -> None:
        """Forget the sessions with ``account_id`` (a new one starts from their bundle)."""
        with self._db.transaction():
            self._db.execute("DELETE FROM sessions WHERE peer = ?", (self._db.mac("peer", account_id),))
