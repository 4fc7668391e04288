"""The authority's SQLite store: received items, refusals, decisions, the append-only audit log, the
outbox of decision notices, encrypted attached images and the snapshots it published.

Several processes share one store: ``authority serve`` (writes items, applies decisions, publishes) and
``authority review`` / ``authority queue`` / the console (read, record decisions). SQLite in WAL mode with a
busy timeout serialises them; every write is one transaction. ``authority serve`` also holds an exclusive
``fcntl`` lock on ``STORE.lock`` so two authorities never apply the same decisions.

The audit log (table ``audit``) is append-only: triggers abort any UPDATE or DELETE. Each row says what
(``action``), who (``actor``: a reviewer, ``serve``, or the relay-authenticated sender), when (``at``), about
which item, and why (``why``: the reviewer's note, the refusal reason). Nothing in it is a full image hash.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import secrets
import sqlite3
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from client.errors import ClientError

__all__ = [
    "AuditEntry",
    "AuthorityStore",
    "Decision",
    "Item",
    "ItemAlreadyDecided",
    "StoreError",
    "StoreLocked",
    "UnknownItem",
]

SCHEMA_VERSION = 1
KINDS = ("report", "submission", "appeal")
"""Item kinds this store knows; :func:`register_kind` (the inbox) may add more, e.g. ``voucher``."""

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS items (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    received_at REAL NOT NULL,
    sender TEXT NOT NULL,
    sender_key BLOB,
    relay_mid TEXT NOT NULL UNIQUE,
    ref TEXT NOT NULL,
    body TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'waiting' CHECK (status IN ('waiting', 'accepted', 'rejected', 'held')),
    decided_at REAL,
    UNIQUE (sender, kind, ref)
);
CREATE INDEX IF NOT EXISTS items_status ON items (status, received_at);
CREATE TABLE IF NOT EXISTS refused (
    seq INTEGER PRIMARY KEY,
    received_at REAL NOT NULL,
    relay_mid TEXT NOT NULL UNIQUE,
    sender TEXT NOT NULL,
    size INTEGER NOT NULL,
    reason TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS decisions (
    seq INTEGER PRIMARY KEY,
    item_id TEXT NOT NULL UNIQUE REFERENCES items (id),
    decision TEXT NOT NULL CHECK (decision IN ('accepted', 'rejected')),
    note TEXT NOT NULL DEFAULT '',
    reviewer TEXT NOT NULL,
    decided_at REAL NOT NULL,
    applied_at REAL,
    outcome TEXT NOT NULL DEFAULT '{}',
    notice TEXT NOT NULL DEFAULT 'none' CHECK (notice IN ('none', 'after_publish', 'queued')),
    generation INTEGER
);
CREATE TABLE IF NOT EXISTS audit (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    at REAL NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    item_id TEXT,
    why TEXT NOT NULL DEFAULT '',
    detail TEXT NOT NULL DEFAULT '{}'
);
CREATE TRIGGER IF NOT EXISTS audit_no_update BEFORE UPDATE ON audit
    BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
CREATE TRIGGER IF NOT EXISTS audit_no_delete BEFORE DELETE ON audit
    BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
CREATE TABLE IF NOT EXISTS outbox (
    seq INTEGER PRIMARY KEY,
    eid TEXT NOT NULL UNIQUE,
    recipient TEXT NOT NULL,
    payload BLOB NOT NULL,
    created REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS attachments (
    item_id TEXT PRIMARY KEY REFERENCES items (id),
    sealed BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS snapshots (
    version INTEGER PRIMARY KEY,
    generation INTEGER NOT NULL,
    built_at REAL NOT NULL,
    entries INTEGER NOT NULL,
    size INTEGER NOT NULL,
    build_seconds REAL NOT NULL,
    published_at REAL,
    publish_seconds REAL
);
"""


class StoreError(ClientError):
    """The authority store is missing, damaged, locked, or refused a change."""


class StoreLocked(StoreError):
    """Another process holds the store (another ``authority serve``, or a long write)."""


class UnknownItem(StoreError):
    """No item has this id."""


class ItemAlreadyDecided(StoreError):
    """The item already has a decision (decisions are final; appeals undo accepted submissions)."""


@dataclass(frozen=True)
class Item:
    """One received item as the queue and the console show it."""

    id: str
    kind: str
    received_at: float
    sender: str
    ref: str
    body: dict[str, Any]
    status: str
    decided_at: float | None = None
    has_attachment: bool = False

    def to_json(self) -> dict[str, Any]:
        """The ``authority queue`` line: id, kind, received_at, then the item's fields."""
        out: dict[str, Any] = {"id": self.id, "kind": self.kind, "received_at": self.received_at,
                               "status": self.status, "sender": self.sender, "ref": self.ref}
        out.update(self.body)
        out["has_attachment"] = self.has_attachment
        return out


@dataclass(frozen=True)
class Decision:
    """A reviewer's decision and what applying it did."""

    seq: int
    item_id: str
    decision: str
    note: str
    reviewer: str
    decided_at: float
    applied_at: float | None
    outcome: dict[str, Any]
    notice: str
    generation: int | None


@dataclass(frozen=True)
class AuditEntry:
    seq: int
    at: float
    actor: str
    action: str
    item_id: str | None
    why: str
    detail: dict[str, Any]

    def to_json(self) -> dict[str, Any]:
        return {"seq": self.seq, "at": self.at, "actor": self.actor, "action": self.action,
                "item_id": self.item_id, "why": self.why, "detail": self.detail}


def new_item_id(kind: str) -> str:
    """A fresh queue id: the kind's initial and 12 random hex characters (e.g. ``s-3fa9c2e1d0b4``)."""
    return f"{kind[0]}-{secrets.token_hex(6)}"


class AuthorityStore:
    """The authority's store (see the module docstring). ``create=False`` refuses a missing file."""

    def __init__(self, path: str | os.PathLike[str], *, create: bool = False, busy_timeout: float = 10.0,
                 clock: Any = time.time) -> None:
        self.path = Path(path)
        self.clock = clock
        self._lock_file: IO[str] | None = None
        if not create and not self.path.is_file():
            raise StoreError(f"{self.path}: no such authority store (authority serve --store creates one)")
        try:
            self._db = sqlite3.connect(self.path, timeout=busy_timeout, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.execute("PRAGMA foreign_keys=ON")
            row = self._db.execute(
                "SELECT name FROM sqlite_master WHERE type='table' AND name='meta'").fetchone()
            if row is None:
                self._db.executescript(_SCHEMA)
                with self.transaction():
                    self._db.execute("INSERT INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
                    self._db.execute("INSERT INTO meta VALUES ('bank_generation', '1')")
                    self._db.execute("INSERT INTO meta VALUES ('published_generation', '0')")
            version = self._meta("schema_version")
            if version != str(SCHEMA_VERSION):
                raise StoreError(f"{self.path}: not a pocketscan authority store (schema {version!r})")
        except sqlite3.OperationalError as exc:
            if "locked" in str(exc) or "busy" in str(exc):
                raise StoreLocked(f"{self.path}: the store is locked by another process ({exc})") from None
            raise StoreError(f"{self.path}: not a usable authority store ({exc})") from None
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"{self.path}: not a usable authority store ({exc})") from None

    # ----- lifecycle ---------------------------------------------------------------------------
    def lock_exclusive(self) -> None:
        """Take the serve lock (``STORE.lock``); raise :class:`StoreLocked` if another serve holds it."""
        lock_path = self.path.with_name(self.path.name + ".lock")
        fh = open(lock_path, "a")  # noqa: SIM115 - held for the store's lifetime
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fh.close()
            raise StoreLocked(f"{self.path}: the store is locked by another `authority serve`") from None
        self._lock_file = fh

    def close(self) -> None:
        self._db.close()
        if self._lock_file is not None:
            self._lock_file.close()
            self._lock_file = None

    def __enter__(self) -> AuthorityStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextlib.contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One write transaction (BEGIN IMMEDIATE ... COMMIT, or ROLLBACK on any error)."""
        try:
            self._db.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:
            raise StoreLocked(f"{self.path}: the store is locked by another process ({exc})") from None
        try:
            yield self._db
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        else:
            try:
                self._db.execute("COMMIT")
            except sqlite3.Error as exc:
                self._db.execute("ROLLBACK")
                raise StoreError(f"{self.path}: the change was not stored ({exc})") from None

    def _meta(self, key: str) -> str | None:
        row = self._db.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def _set_meta(self, key: str, value: str) -> None:
        self._db.execute("INSERT INTO meta VALUES (?, ?)"
                         " ON CONFLICT (key) DO UPDATE SET value=excluded.value",
                         (key, value))

    def bind_key(self, public_hex: str) -> None:
        """Tie the store to one authority key on first use; refuse another key later (a wrong ``--key``)."""
        bound = self._meta("authority_key")
        if bound is None:
            with self.transaction():
                self._set_meta("authority_key", public_hex)
                self.audit("serve", "store.bound", detail={"authority_key": public_hex[:16]})
        elif bound != public_hex:
            raise StoreError(f"{self.path} belongs to authority key {bound[:16]}..., "
                             f"not {public_hex[:16]}... (wrong --key?)")

    # ----- audit -------------------------------------------------------------------------------
    def audit(self, actor: str, action: str, *, item_id: str | None = None, why: str = "",
              detail: dict[str, Any] | None = None) -> None:
        """Append one audit row (inside the caller's transaction when there is one)."""
        self._db.execute("INSERT INTO audit (at, actor, action, item_id, why, detail)"
                         " VALUES (?, ?, ?, ?, ?, ?)",
                         (self.clock(), actor, action, item_id, why[:2000], json.dumps(detail or {})))

    def audit_log(self, *, item_id: str | None = None, limit: int | None = None) -> list[AuditEntry]:
        sql = "SELECT seq, at, actor, action, item_id, why, detail FROM audit"
        args: list[Any] = []
        if item_id is not None:
            sql += " WHERE item_id=?"
            args.append(item_id)
        sql += " ORDER BY seq DESC LIMIT ?"
        args.append(-1 if limit is None else limit)
        rows = self._db.execute(sql, args).fetchall()
        return [AuditEntry(r[0], r[1], r[2], r[3], r[4], r[5], json.loads(r[6])) for r in reversed(rows)]

    # ----- items -------------------------------------------------------------------------------
    def seen_mid(self, relay_mid: str) -> bool:
        """True if this relay message id was already stored or refused (redelivery)."""
        return self._db.execute(
            "SELECT 1 FROM items WHERE relay_mid=? UNION ALL SELECT 1 FROM refused WHERE relay_mid=?",
            (relay_mid, relay_mid)).fetchone() is not None

    def add_item(self, *, kind: str, sender: str, sender_key: bytes | None, relay_mid: str, ref: str,
                 body: dict[str, Any], received_at: float, status: str = "waiting",
                 attachment: bytes | None = None, item_id: str | None = None) -> str | None:
        """Store a verified item; its queue id, or None for a duplicate (same sender, kind and ref)."""
        item_id = item_id or new_item_id(kind)
        with self.transaction():
            cur = self._db.execute(
                "INSERT OR IGNORE INTO items (id, kind, received_at, sender, sender_key, relay_mid, ref,"
                " body, status) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (item_id, kind, received_at, sender, sender_key, relay_mid, ref, json.dumps(body), status))
            if not cur.rowcount:
                self.audit(sender, "item.duplicate", why=f"{kind} {ref[:8]} already received")
                return None
            if attachment is not None:
                self._db.execute("INSERT INTO attachments VALUES (?, ?)", (item_id, attachment))
            self.audit(sender, "item.received", item_id=item_id, detail={"kind": kind, "ref": ref[:8]})
        return item_id

    def refuse(self, *, relay_mid: str, sender: str, size: int, reason: str, received_at: float) -> None:
        """Record a refused envelope (forged, unopenable, malformed) in ``refused`` and the audit log."""
        with self.transaction():
            cur = self._db.execute(
                "INSERT OR IGNORE INTO refused (received_at, relay_mid, sender, size, reason)"
                " VALUES (?, ?, ?, ?, ?)",
                (received_at, relay_mid, sender, size, reason[:500]))
            if cur.rowcount:
                self.audit(sender, "item.refused", why=reason[:500], detail={"size": size})

    def refused(self) -> list[dict[str, Any]]:
        rows = self._db.execute(
            "SELECT received_at, relay_mid, sender, size, reason FROM refused ORDER BY seq")
        return [{"received_at": r[0], "relay_mid": r[1], "sender": r[2], "size": r[3], "reason": r[4]}
                for r in rows]

    def _item(self, row: tuple[Any, ...]) -> Item:
        return Item(row[0], row[1], row[2], row[3], row[4], json.loads(row[5]), row[6], row[7], bool(row[8]))

    _ITEM_SQL = ("SELECT i.id, i.kind, i.received_at, i.sender, i.ref, i.body, i.status, i.decided_at,"
                 " (SELECT COUNT(*) FROM attachments a WHERE a.item_id = i.id) FROM items i")

    def get_item(self, item_id: str) -> Item:
        row = self._db.execute(self._ITEM_SQL + " WHERE i.id=?", (item_id,)).fetchone()
        if row is None:
            raise UnknownItem(f"no item with id {item_id!r} in {self.path}")
        return self._item(row)

    def items(self, *, status: str | None = "waiting", kind: str | None = None,
              limit: int | None = None) -> list[Item]:
        sql = self._ITEM_SQL + " WHERE 1=1"
        args: list[Any] = []
        if status is not None:
            sql += " AND i.status=?"
            args.append(status)
        if kind is not None:
            sql += " AND i.kind=?"
            args.append(kind)
        sql += " ORDER BY i.received_at, i.id LIMIT ?"
        args.append(-1 if limit is None else limit)
        return [self._item(r) for r in self._db.execute(sql, args)]

    def sender_key(self, item_id: str) -> bytes | None:
        row = self._db.execute("SELECT sender_key FROM items WHERE id=?", (item_id,)).fetchone()
        return None if row is None or row[0] is None else bytes(row[0])

    def attachment(self, item_id: str) -> bytes | None:
        row = self._db.execute("SELECT sealed FROM attachments WHERE item_id=?", (item_id,)).fetchone()
        return None if row is None else bytes(row[0])

    # ----- decisions ---------------------------------------------------------------------------
    def decide(self, item_id: str, *, accept: bool, note: str = "", reviewer: str) -> Decision:
        """Record a reviewer's decision (final). ``authority serve`` applies it to the bank and publishes.

        Raises:
            UnknownItem, ItemAlreadyDecided.
        """
        decision = "accepted" if accept else "rejected"
        now = self.clock()
        with self.transaction():
            item = self.get_item(item_id)
            if item.status not in ("waiting", "held"):
                raise ItemAlreadyDecided(f"item {item_id} was already {item.status}")
            self._db.execute("UPDATE items SET status=?, decided_at=? WHERE id=?", (decision, now, item_id))
            cur = self._db.execute(
                "INSERT INTO decisions (item_id, decision, note, reviewer, decided_at)"
                " VALUES (?, ?, ?, ?, ?)",
                (item_id, decision, note[:2000], reviewer[:64], now))
            self.audit(reviewer[:64], f"decision.{decision}", item_id=item_id, why=note[:2000],
                       detail={"kind": item.kind})
            seq = int(cur.lastrowid or 0)
        return self.decision(seq)

    def _decision(self, r: tuple[Any, ...]) -> Decision:
        return Decision(r[0], r[1], r[2], r[3], r[4], r[5], r[6], json.loads(r[7]), r[8], r[9])

    _DECISION_SQL = ("SELECT seq, item_id, decision, note, reviewer, decided_at, applied_at, outcome, notice,"
                     " generation FROM decisions")

    def decision(self, seq: int) -> Decision:
        row = self._db.execute(self._DECISION_SQL + " WHERE seq=?", (seq,)).fetchone()
        if row is None:
            raise StoreError(f"no decision {seq}")
        return self._decision(row)

    def decision_of(self, item_id: str) -> Decision | None:
        row = self._db.execute(self._DECISION_SQL + " WHERE item_id=?", (item_id,)).fetchone()
        return None if row is None else self._decision(row)

    def unapplied(self) -> list[Decision]:
        """Decisions ``authority serve`` has not applied yet, oldest first."""
        rows = self._db.execute(self._DECISION_SQL + " WHERE applied_at IS NULL ORDER BY seq").fetchall()
        return [self._decision(r) for r in rows]

    def mark_applied(self, seq: int, *, outcome: dict[str, Any], bank_changed: bool, notice: str,
                     why: str = "", notices: Sequence[tuple[str, str, bytes]] = ()) -> int:
        """Record that a decision was applied (one transaction); bump the bank generation if it changed it.

        Returns the bank generation the decision is part of.
        """
        with self.transaction():
            generation = self.bank_generation() + (1 if bank_changed else 0)
            if bank_changed:
                self._set_meta("bank_generation", str(generation))
            self._db.execute("UPDATE decisions SET applied_at=?, outcome=?, notice=?, generation=?"
                             " WHERE seq=?",
                             (self.clock(), json.dumps(outcome), notice, generation, seq))
            for eid, recipient, payload in notices:
                self._db.execute("INSERT OR IGNORE INTO outbox (eid, recipient, payload, created)"
                                 " VALUES (?, ?, ?, ?)", (eid, recipient, payload, self.clock()))
            decision = self.decision(seq)
            self.audit("serve", "bank.changed" if bank_changed else "decision.applied",
                       item_id=decision.item_id, why=why, detail=outcome)
        return generation

    # ----- generations and snapshots -----------------------------------------------------------
    def bank_generation(self) -> int:
        return int(self._meta("bank_generation") or 0)

    def published_generation(self) -> int:
        return int(self._meta("published_generation") or 0)

    def mark_bank_changed(self, why: str) -> int:
        """The bank changed outside a decision (e.g. an import): the next loop publishes it."""
        with self.transaction():
            generation = self.bank_generation() + 1
            self._set_meta("bank_generation", str(generation))
            self.audit("serve", "bank.changed", why=why)
        return generation

    def last_snapshot_version(self) -> int:
        row = self._db.execute("SELECT MAX(version) FROM snapshots").fetchone()
        return int(row[0] or 0)

    def record_build(self, *, version: int, generation: int, entries: int, size: int, seconds: float) -> None:
        with self.transaction():
            self._db.execute("INSERT OR REPLACE INTO snapshots (version, generation, built_at, entries, size,"
                             " build_seconds) VALUES (?, ?, ?, ?, ?, ?)",
                             (version, generation, self.clock(), entries, size, seconds))
            self.audit("serve", "snapshot.built", detail={"version": version, "entries": entries,
                                                          "size": size, "seconds": round(seconds, 3)})

    def record_published(self, *, version: int, generation: int, seconds: float,
                         notices: list[tuple[str, str, bytes]]) -> None:
        """Mark ``version`` published, advance the published generation and queue the held notices
        (``(eid, recipient, payload)``) in one transaction."""
        with self.transaction():
            self._db.execute("UPDATE snapshots SET published_at=?, publish_seconds=? WHERE version=?",
                             (self.clock(), seconds, version))
            if generation > self.published_generation():
                self._set_meta("published_generation", str(generation))
            for eid, recipient, payload in notices:
                self._db.execute("INSERT OR IGNORE INTO outbox (eid, recipient, payload, created)"
                                 " VALUES (?, ?, ?, ?)", (eid, recipient, payload, self.clock()))
            self._db.execute("UPDATE decisions SET notice='queued'"
                             " WHERE notice='after_publish' AND generation<=?",
                             (generation,))
            self.audit("serve", "snapshot.published", detail={"version": version, "generation": generation,
                                                              "seconds": round(seconds, 3),
                                                              "notices": len(notices)})

    def held_notices(self, generation: int) -> list[Decision]:
        rows = self._db.execute(self._DECISION_SQL + " WHERE notice='after_publish' AND generation<=?"
                                " ORDER BY seq", (generation,)).fetchall()
        return [self._decision(r) for r in rows]

    def snapshots(self) -> list[dict[str, Any]]:
        rows = self._db.execute("SELECT version, generation, built_at, entries, size, build_seconds,"
                                " published_at, publish_seconds FROM snapshots ORDER BY version")
        keys = ("version", "generation", "built_at", "entries", "size", "build_seconds", "published_at",
                "publish_seconds")
        return [dict(zip(keys, r, strict=True)) for r in rows]

    # ----- outbox (decision notices) -----------------------------------------------------------
    def queue_notice(self, eid: str, recipient: str, payload: bytes) -> None:
        with self.transaction():
            self._db.execute("INSERT OR IGNORE INTO outbox (eid, recipient, payload, created)"
                             " VALUES (?, ?, ?, ?)", (eid, recipient, payload, self.clock()))

    def outbox_pending(self) -> list[tuple[str, str, bytes]]:
        return [(r[0], r[1], bytes(r[2])) for r in
                self._db.execute("SELECT eid, recipient, payload FROM outbox ORDER BY seq")]

    def outbox_done(self, eid: str, *, delivered: bool, why: str = "") -> None:
        with self.transaction():
            row = self._db.execute("SELECT recipient FROM outbox WHERE eid=?", (eid,)).fetchone()
            self._db.execute("DELETE FROM outbox WHERE eid=?", (eid,))
            if row is not None:
                self.audit("serve", "notice.sent" if delivered else "notice.refused", why=why,
                           detail={"recipient": row[0]})

    def counts(self) -> dict[str, int]:
        """Items per status, refusals and pending notices (``authority queue --stats``)."""
        rows = self._db.execute("SELECT status, COUNT(*) FROM items GROUP BY status")
        out = {f"items_{s}": int(n) for s, n in rows}
        out["refused"] = int(self._db.execute("SELECT COUNT(*) FROM refused").fetchone()[0])
        out["outbox"] = int(self._db.execute("SELECT COUNT(*) FROM outbox").fetchone()[0])
        out["unapplied"] = int(self._db.execute(
            "SELECT COUNT(*) FROM decisions WHERE applied_at IS NULL").fetchone()[0])
        return out
