"""The ``secrets`` table: small sealed values by kind and name (our keys, the settings)."""

from __future__ import annotations

from client.store.database import Database

__all__ = ["SecretTable"]


class SecretTable:
    """Sealed values keyed by ``(kind, name)``; the key column is a keyed MAC, the label ``secret:<kind>``."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def put(self, kind: str, name: str, value: bytes) -> None:
        """Store (or replace) one value."""
        with self._db.transaction():
            self._db.execute("INSERT OR REPLACE INTO secrets (k, kind, v) VALUES (?, ?, ?)",
                             (self._db.mac(kind, name), kind, self._db.seal(f"secret:{kind}", value)))

    def get(self, kind: str, name: str) -> bytes | None:
        """One value, or None."""
        row = self._db.one("SELECT v FROM secrets WHERE k = ?", (self._db.mac(kind, name),))
        return None if row is None else self._db.unseal(f"secret:{kind}", row[0])

    def values(self, kind: str) -> list[bytes]:
        """Every value of ``kind`` (in no particular order)."""
        rows = self._db.all("SELECT v FROM secrets WHERE kind = ?", (kind,))
        return [self._db.unseal(f"secret:{kind}", r[0]) for r in rows]
