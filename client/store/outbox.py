"""The outbox: envelopes handed to the relay and not yet acknowledged (resent on reconnect)."""

from __future__ import annotations

from dataclasses import replace

import cbor2

from client.store.database import Database
from client.store.records import OutboxItem

__all__ = ["OutboxRepository"]


class OutboxRepository:
    """Pending envelopes, oldest first; an item stays until :meth:`ack` (sealed; ids as keyed MACs)."""

    def __init__(self, db: Database) -> None:
        self._db = db

    @staticmethod
    def _to_bytes(item: OutboxItem) -> bytes:
        return bytes(cbor2.dumps([item.envelope_id, item.peer, item.payload, item.created_at, item.attempts,
                                  item.meta]))

    def _from_blob(self, blob: bytes) -> OutboxItem:
        e, p, pl, t, a, m = cbor2.loads(self._db.unseal("outbox", blob))
        return OutboxItem(e, p, pl, t, a, m)

    def put(self, item: OutboxItem) -> None:
        """Persist an envelope before it is sent; it stays until :meth:`ack`."""
        with self._db.transaction():
            self._db.execute("INSERT OR REPLACE INTO outbox (eid, v) VALUES (?, ?)",
                             (self._db.mac("env", item.envelope_id),
                              self._db.seal("outbox", self._to_bytes(item))))

    def pending(self) -> list[OutboxItem]:
        """Unacknowledged envelopes, oldest first (resend them on reconnect)."""
        return [self._from_blob(blob) for (blob,) in self._db.all("SELECT v FROM outbox ORDER BY seq")]

    def attempted(self, envelope_id: str) -> None:
        """Count one more send attempt of an envelope."""
        with self._db.transaction():
            eid = self._db.mac("env", envelope_id)
            row = self._db.one("SELECT v FROM outbox WHERE eid = ?", (eid,))
            if row is None:
                return
            old = self._from_blob(row[0])
            item = replace(old, attempts=old.attempts + 1)
            self._db.execute("UPDATE outbox SET v = ? WHERE eid = ?",
                             (self._db.seal("outbox", self._to_bytes(item)), eid))

    def ack(self, envelope_id: str) -> bool:
        """The relay acknowledged an envelope: drop it. False if it was not pending."""
        with self._db.transaction():
            cur = self._db.execute("DELETE FROM outbox WHERE eid = ?", (self._db.mac("env", envelope_id),))
            return cur.rowcount > 0
