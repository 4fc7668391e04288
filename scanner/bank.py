"""The hash bank (authority side): an SQLite store of hashes with provenance.

Each entry holds the algorithm, the hash (lowercase hex), its quality, a label/category, the reference it came
from (file and line, submission id), when it was added and an optional expiry. A hash appears once per
algorithm (imports dedupe). Imports run in one transaction: a refused import adds nothing. The database runs
in WAL mode so a snapshot build can read while an import waits.

Provenance (schema 2): every entry has one row per (source, reference) in ``provenance``: the named source
(an organisation, ``bank import --source NAME``; an accepted submission's reviewing authority) that vouched
for the hash, what it pointed at and when. Importing a hash the bank already holds from another source adds a
provenance row, so ``snapshot build --min-sources N`` (Apple's 2021 rule: only hashes that at least two
organisations submitted) can count distinct sources. Removals (appeals, reversals) are recorded in
``removals`` with their reason and the sources the entry had. A schema-1 bank is migrated on open: its entries
get the source ``local``.
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

SCHEMA_VERSION = 2
DEFAULT_SOURCE = "local"
"""Source name of entries imported without ``--source`` (and of entries migrated from schema 1)."""
MAX_SOURCE_NAME = 64

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
CREATE TABLE IF NOT EXISTS provenance (
    entry_id INTEGER NOT NULL REFERENCES entries (id) ON DELETE CASCADE,
    source TEXT NOT NULL,
    reference TEXT NOT NULL DEFAULT '',
    added INTEGER NOT NULL,
    UNIQUE (entry_id, source, reference)
);
CREATE INDEX IF NOT EXISTS provenance_entry ON provenance (entry_id);
CREATE TABLE IF NOT EXISTS removals (
    id INTEGER PRIMARY KEY,
    algorithm TEXT NOT NULL,
    hash TEXT NOT NULL,
    removed INTEGER NOT NULL,
    reason TEXT NOT NULL DEFAULT '',
    sources TEXT NOT NULL DEFAULT ''
);
"""


def check_source_name(name: str) -> str:
    """Validate a provenance source name (1..64 printable characters, no commas); return it stripped.

    Raises:
        BankError: empty, too long, or with control characters or commas.
    """
    cleaned = name.strip()
    if not cleaned or len(cleaned) > MAX_SOURCE_NAME:
        raise BankError(f"a source name has 1..{MAX_SOURCE_NAME} characters")
    if any(not ch.isprintable() or ch == "," for ch in cleaned):
        raise BankError("a source name has printable characters only and no commas")
    return cleaned


@dataclass(frozen=True)
class NewEntry:
    """An entry to import.

    Attributes:
        algorithm: hash algorithm (``pdq``).
        hash: lowercase hex.
        quality: 0..100.
        label: label or category (free text).
        source: where it came from (file and line, image path, submission id): the provenance reference.
        expires: Unix time after which the entry no longer enters snapshots, or None.
        origin: the named source that vouches for it (``bank import --source NAME``), counted by the
            two-source rule.
    """

    algorithm: str
    hash: str
    quality: int
    label: str = ""
    source: str = ""
    expires: int | None = None
    origin: str = DEFAULT_SOURCE


@dataclass(frozen=True)
class BankEntry(NewEntry):
    """A stored entry (adds its row id and the time it was added)."""

    id: int = 0
    added: int = 0
    sources: tuple[str, ...] = ()
    """Distinct source names of its provenance rows, sorted."""

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
            "sources": list(self.sources),
        }


@dataclass(frozen=True)
class ImportReport:
    """Outcome of an import.

    Attributes:
        added: new entries stored.
        duplicates: entries skipped because the bank (or the same import) already held the hash.
        sources_added: provenance rows added (a duplicate from a new source adds one).
    """

    added: int
    duplicates: int
    sources_added: int = 0


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
            self._db.execute("PRAGMA foreign_keys=ON")
            self._db.executescript(_SCHEMA)
            row = self._db.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
            if row is None:
                self._db.execute("INSERT INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
            elif row[0] == "1":
                self._migrate_v1()
            elif row[0] != str(SCHEMA_VERSION):
                raise BankError(f"{self.path}: bank schema version {row[0]} is not supported")
        except sqlite3.DatabaseError as exc:
            raise BankError(f"{self.path}: not a usable hash bank ({exc})") from None

    def _migrate_v1(self) -> None:
        """Schema 1 -> 2: every existing entry gets one provenance row from the default source."""
        self._db.execute("BEGIN IMMEDIATE")
        try:
            self._db.execute(
                "INSERT OR IGNORE INTO provenance (entry_id, source, reference, added)"
                " SELECT id, ?, source, added FROM entries",
                (DEFAULT_SOURCE,),
            )
            self._db.execute("UPDATE meta SET value=? WHERE key='schema_version'", (str(SCHEMA_VERSION),))
            self._db.execute("COMMIT")
        except sqlite3.Error:
            self._db.execute("ROLLBACK")
            raise

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
        added = duplicates = sources_added = 0
        try:
            self._db.execute("BEGIN IMMEDIATE")
            for e in entries:
                origin = check_source_name(e.origin)
                cur = self._db.execute(
                    "INSERT OR IGNORE INTO entries (algorithm, hash, quality, label, source, added, expires)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (e.algorithm, e.hash, e.quality, e.label, e.source, now, e.expires),
                )
                if cur.rowcount:
                    added += 1
                    entry_id = cur.lastrowid
                else:
                    duplicates += 1
                    entry_id = self._db.execute(
                        "SELECT id FROM entries WHERE algorithm=? AND hash=?", (e.algorithm, e.hash)
                    ).fetchone()[0]
                cur = self._db.execute(
                    "INSERT OR IGNORE INTO provenance (entry_id, source, reference, added)"
                    " VALUES (?, ?, ?, ?)",
                    (entry_id, origin, e.source, now),
                )
                sources_added += cur.rowcount
            self._db.execute("COMMIT")
        except BankError:
            if self._db.in_transaction:
                self._db.execute("ROLLBACK")
            raise
        except sqlite3.Error as exc:
            if self._db.in_transaction:
                self._db.execute("ROLLBACK")
            raise BankError(f"{self.path}: import failed, nothing was added ({exc})") from None
        return ImportReport(added=added, duplicates=duplicates, sources_added=sources_added)

    def remove(self, hashes: Iterable[str], *, algorithm: str = "pdq", reason: str = "",
               now: int | None = None) -> tuple[int, list[str]]:
        """Remove entries by hash (appeals, reversals) in one transaction, recording why in ``removals``.

        Returns:
            (removed count, hashes that were not in the bank).
        """
        import time

        when = int(time.time()) if now is None else now
        missing: list[str] = []
        removed = 0
        try:
            self._db.execute("BEGIN IMMEDIATE")
            for h in hashes:
                row = self._db.execute("SELECT id FROM entries WHERE algorithm=? AND hash=?",
                                       (algorithm, h)).fetchone()
                if row is None:
                    missing.append(h)
                    continue
                sources = ",".join(r[0] for r in self._db.execute(
                    "SELECT DISTINCT source FROM provenance WHERE entry_id=? ORDER BY source", (row[0],)))
                self._db.execute("INSERT INTO removals (algorithm, hash, removed, reason, sources)"
                                 " VALUES (?, ?, ?, ?, ?)", (algorithm, h, when, reason, sources))
                self._db.execute("DELETE FROM provenance WHERE entry_id=?", (row[0],))
                cur = self._db.execute("DELETE FROM entries WHERE id=?", (row[0],))
                removed += cur.rowcount
            self._db.execute("COMMIT")
        except sqlite3.Error as exc:
            if self._db.in_transaction:
                self._db.execute("ROLLBACK")
            raise BankError(f"{self.path}: removal failed, nothing was removed ({exc})") from None
        return removed, missing

    def remove_label(self, label: str) -> int:
        """Remove every entry carrying ``label``; returns the count."""
        with self._db:
            self._db.execute(
                "DELETE FROM provenance WHERE entry_id IN (SELECT id FROM entries WHERE label=?)", (label,))
            cur = self._db.execute("DELETE FROM entries WHERE label=?", (label,))
        return cur.rowcount

    def entries(
        self, *, algorithm: str | None = None, limit: int | None = None, offset: int = 0
    ) -> list[BankEntry]:
        """Stored entries in insertion order."""
        sql = ("SELECT id, algorithm, hash, quality, label, e.source, e.added, expires,"
               " (SELECT GROUP_CONCAT(s, ',') FROM (SELECT DISTINCT p.source AS s FROM provenance p"
               "  WHERE p.entry_id = e.id ORDER BY s)) FROM entries e")
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
                sources=tuple(r[8].split(",")) if r[8] else (),
            )
            for r in self._db.execute(sql, args)
        ]

    def snapshot_hashes(self, *, algorithm: str, now: int, min_quality: int | None = None,
                        min_sources: int = 1) -> Iterator[bytes]:
        """Raw hashes that enter a snapshot: this algorithm, quality >= ``min_quality`` (default: the
        algorithm's gate, ``scanner.hashers.spec``), not expired, and vouched for by at least ``min_sources``
        distinct sources (the two-source rule when 2)."""
        gate = quality_gate(algorithm) if min_quality is None else min_quality
        sql = "SELECT hash FROM entries WHERE algorithm=? AND quality>=? AND (expires IS NULL OR expires>?)"
        args: list[object] = [algorithm, gate, now]
        if min_sources > 1:
            sql += " AND (SELECT COUNT(DISTINCT source) FROM provenance WHERE entry_id=entries.id) >= ?"
            args.append(min_sources)
        cur = self._db.execute(sql, args)
        for (h,) in cur:
            yield bytes.fromhex(h)

    def within(self, queries: Iterable[bytes], *, algorithm: str, distance: int) -> list[tuple[str, int]]:
        """Bank hashes of ``algorithm`` within Hamming ``distance`` of any query, with their nearest distance.

        What an appeal removes: every entry that could have matched the appealed image (all its dihedral
        variants are queries). A linear scan with numpy: about a second per million entries.
        """
        import numpy as np

        wanted = [bytes(q) for q in queries]
        if not wanted:
            return []
        width = len(wanted[0])
        if any(len(q) != width for q in wanted):
            raise BankError("the query hashes differ in width")
        query = np.frombuffer(b"".join(wanted), dtype=np.uint8).reshape(-1, width)
        popcount = np.array([bin(i).count("1") for i in range(256)], dtype=np.uint16)
        found: dict[str, int] = {}
        cur = self._db.execute("SELECT hash FROM entries WHERE algorithm=?", (algorithm,))
        while True:
            rows = cur.fetchmany(16384)
            if not rows:
                break
            hexes = [r[0] for r in rows if len(r[0]) == 2 * width]
            if not hexes:
                continue
            arr = np.frombuffer(bytes.fromhex("".join(hexes)), dtype=np.uint8).reshape(-1, width)
            dist = popcount[arr[:, None, :] ^ query[None, :, :]].sum(axis=2).min(axis=1)
            for index in np.flatnonzero(dist <= distance):
                found[hexes[index]] = int(dist[index])
        return sorted(found.items(), key=lambda item: item[1])

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
        sources = dict(db.execute(
            "SELECT source, COUNT(DISTINCT entry_id) FROM provenance GROUP BY source"
            " ORDER BY 2 DESC LIMIT 50"))
        removed = db.execute("SELECT COUNT(*) FROM removals").fetchone()[0]
        return {
            "path": str(self.path),
            "entries": total,
            "by_algorithm": per_algo,
            "low_quality": low,
            "expired": expired,
            "snapshot_eligible": eligible,
            "labels": labels,
            "sources": sources,
            "removed": removed,
            "first_added": span[0],
            "last_added": span[1],
        }
