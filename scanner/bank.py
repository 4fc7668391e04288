"""The hash bank (authority side): an SQLite store of hashes with provenance.

Each entry holds the algorithm, the hash (lowercase hex), its quality, a label/category, the source it came
from, when it was added and an optional expiry. A hash appears once per algorithm (imports dedupe). Imports
run
in one transaction: a refused import adds nothing. The database runs in WAL mode so a snapshot build can read
while an import waits.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from scanner.errors import BankError
from scanner.hashers.spec import quality_gate

__all__ = ["BankEntry", "HashBank", "ImportReport", "NewEntry"]

SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS entries (
    id INTEGER PRIMARY KEY,
    algorithm TEXT NOT NULL,
    hash TEXT NOT NULL,
    quality INTEGER NOT NULL CHECK (quality BETWEEN 0 AND 100),
    label TEXT NOT NULL DEFAULT '',
    source TEXT NOT NULL DEFAULT '',
    added INTEGER NOT NULL,
    expires INTEGER,
    UNIQUE (algorithm, hash)
);
CREATE INDEX IF NOT EXISTS entries_label ON entries (label);
"""


@dataclass(frozen=True)
class NewEntry:
    """An entry to import.

    Attributes:
        algorithm: hash algorithm (``pdq``).
        hash: lowercase hex.
        quality: 0..100.
        label: label or category (free text).
        source: where it came from (file and line, image path).
        expires: Unix time after which the entry no longer enters snapshots, or None.
    """

    algorithm: str
    hash: str
    quality: int
    label: str = ""
    source: str = ""
    expires: int | None = None


@dataclass(frozen=True)
class BankEntry(NewEntry):
    """A stored entry (adds its row id and the time it was added)."""

    id: int = 0
    added: int = 0

    def to_json(self) -> dict[str, object]:
        """A JSON-ready dict."""
        return {
            "id": self.id,
            "algorithm": self.algorithm,
            "hash": self.hash,
            "quality": self.quality,
            "label": self.label,
            "source": self.source,
            "added": self.added,
            "expires": self.expires,
        }


@dataclass(frozen=True)
class ImportReport:
    """Outcome of an import.

    Attributes:
        added: new entries stored.
        duplicates: entries skipped because the bank (or the same import) already held the hash.
    """

    added: int
    duplicates: int


class HashBank:
    """An SQLite hash bank (see the module docstring). Use as a context manager or call :meth:`close`."""

    def __init__(self, path: str | os.PathLike[str], *, create: bool = True) -> None:
        self.path = Path(path)
        if not create and not self.path.exists():
            raise BankError(f"{self.path}: no such bank")
        try:
            self._db = sqlite3.connect(self.path, timeout=30.0, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.executescript(_SCHEMA)
            row = self._db.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
            if row is None:
                self._db.execute("INSERT INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
            elif row[0] != str(SCHEMA_VERSION):
                raise BankError(f"{self.path}: bank schema version {row[0]} is not supported")
        except sqlite3.DatabaseError as exc:
            raise BankError(f"{self.path}: not a usable hash bank ({exc})") from None

    def __enter__(self) -> HashBank:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the database."""
        self._db.close()

    def add(self, entries: Iterable[NewEntry], *, now: int) -> ImportReport:
        """Store ``entries`` in one transaction, skipping hashes already present.

        Raises:
            BankError: the database refused the write (nothing is stored).
        """
        added = duplicates = 0
        try:
            self._db.execute("BEGIN IMMEDIATE")
            for e in entries:
                cur = self._db.execute(
                    "INSERT OR IGNORE INTO entries (algorithm, hash, quality, label, source, added, expires)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (e.algorithm, e.hash, e.quality, e.label, e.source, now, e.expires),
                )
                if cur.rowcount:
                    added += 1
                else:
                    duplicates += 1
            self._db.execute("COMMIT")
        except sqlite3.Error as exc:
            if self._db.in_transaction:
                self._db.execute("ROLLBACK")
            raise BankError(f"{self.path}: import failed, nothing was added ({exc})") from None
        return ImportReport(added=added, duplicates=duplicates)

    def remove(self, hashes: Iterable[str], *, algorithm: str = "pdq") -> tuple[int, list[str]]:
        """Remove entries by hash (appeals, reversals) in one transaction.

        Returns:
            (removed count, hashes that were not in the bank).
        """
        missing: list[str] = []
        removed = 0
        try:
            self._db.execute("BEGIN IMMEDIATE")
            for h in hashes:
                cur = self._db.execute("DELETE FROM entries WHERE algorithm=? AND hash=?", (algorithm, h))
                if cur.rowcount:
                    removed += cur.rowcount
                else:
                    missing.append(h)
            self._db.execute("COMMIT")
        except sqlite3.Error as exc:
            if self._db.in_transaction:
                self._db.execute("ROLLBACK")
            raise BankError(f"{self.path}: removal failed, nothing was removed ({exc})") from None
        return removed, missing

    def remove_label(self, label: str) -> int:
        """Remove every entry carrying ``label``; returns the count."""
        with self._db:
            cur = self._db.execute("DELETE FROM entries WHERE label=?", (label,))
        return cur.rowcount

    def entries(
        self, *, algorithm: str | None = None, limit: int | None = None, offset: int = 0
    ) -> list[BankEntry]:
        """Stored entries in insertion order."""
        sql = "SELECT id, algorithm, hash, quality, label, source, added, expires FROM entries"
        args: list[object] = []
        if algorithm is not None:
            sql += " WHERE algorithm=?"
            args.append(algorithm)
        sql += " ORDER BY id LIMIT ? OFFSET ?"
        args += [-1 if limit is None else limit, offset]
        return [
            BankEntry(
                id=r[0],
                algorithm=r[1],
                hash=r[2],
                quality=r[3],
                label=r[4],
                source=r[5],
                added=r[6],
                expires=r[7],
            )
            for r in self._db.execute(sql, args)
        ]

    def snapshot_hashes(self, *, algorithm: str, now: int, min_quality: int | None = None) -> Iterator[bytes]:
        """Raw hashes that enter a snapshot: this algorithm, quality >= ``min_quality`` (default: the
        algorithm's gate, ``scanner.hashers.spec``), not expired."""
        gate = quality_gate(algorithm) if min_quality is None else min_quality
        cur = self._db.execute(
            "SELECT hash FROM entries WHERE algorithm=? AND quality>=? AND (expires IS NULL OR expires>?)",
            (algorithm, gate, now),
        )
        for (h,) in cur:
            yield bytes.fromhex(h)

    def stats(self, *, now: int) -> dict[str, object]:
        """Counts per algorithm, quality gate, expiry and label."""
        db = self._db
        total = db.execute("SELECT COUNT(*) FROM entries").fetchone()[0]
        per_algo = dict(db.execute("SELECT algorithm, COUNT(*) FROM entries GROUP BY algorithm").fetchall())
        low = eligible = 0
        for algorithm in per_algo:  # each algorithm's own quality gate
            gate = quality_gate(algorithm)
            low += db.execute(
                "SELECT COUNT(*) FROM entries WHERE algorithm=? AND quality<?", (algorithm, gate)
            ).fetchone()[0]
            eligible += db.execute(
                "SELECT COUNT(*) FROM entries "
                "WHERE algorithm=? AND quality>=? AND (expires IS NULL OR expires>?)",
                (algorithm, gate, now),
            ).fetchone()[0]
        expired = db.execute(
            "SELECT COUNT(*) FROM entries WHERE expires IS NOT NULL AND expires <= ?", (now,)
        ).fetchone()[0]
        labels = dict(
            db.execute("SELECT label, COUNT(*) FROM entries GROUP BY label ORDER BY 2 DESC LIMIT 50")
        )
        span = db.execute("SELECT MIN(added), MAX(added) FROM entries").fetchone()
        return {
            "path": str(self.path),
            "entries": total,
            "by_algorithm": per_algo,
            "low_quality": low,
            "expired": expired,
            "snapshot_eligible": eligible,
            "labels": labels,
            "first_added": span[0],
            "last_added": span[1],
        }
