"""Inbound dedupe: the ids of envelopes already processed (keyed MACs only), oldest pruned."""

from __future__ import annotations

from client.store.database import Database

__all__ = ["SEEN_KEEP", "DedupeRepository"]

SEEN_KEEP = 50_000
"""Inbound envelope ids remembered for dedupe (oldest pruned beyond this)."""


class DedupeRepository:
    """Which inbound envelopes were processed (a redelivered one is dropped, never shown twice)."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def seen(self, envelope_id: str) -> bool:
        """True if an inbound envelope with this id was already processed."""
        row = self._db.one("SELECT 1 FROM seen WHERE iid = ?", (self._db.mac("in", envelope_id),))
        return row is not None

    def mark_seen(self, envelope_id: str) -> bool:
        """Remember an inbound envelope id; False if it was already seen. Old ids are pruned."""
        with self._db.transaction():
            cur = self._db.execute("INSERT OR IGNORE INTO seen (iid) VALUES (?)",
                                   (self._db.mac("in", envelope_id),))
            if cur.rowcount and cur.lastrowid is not None and cur.lastrowid % 1000 == 0:
                self._db.execute("DELETE FROM seen WHERE seq <= ?", (cur.lastrowid - SEEN_KEEP,))
            return cur.rowcount > 0

