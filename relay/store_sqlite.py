"""SQLite backend of ``MailStore``: WAL, one writer thread, group commit.

Every operation is queued; all operations queued while the previous transaction was committing
run together in the next one (each inside its own SAVEPOINT so a refused operation does not undo
the others). One fsync then covers the whole batch, and no reply leaves before its commit: the
ack-after-durable rule without a per-message fsync storm.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sqlite3
import tempfile
import threading
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from importlib import resources
from pathlib import Path
from typing import Any, TypeVar

from relay.errors import LimitExceeded, NotFound, RelayError, RequestFailed
from relay.limits import DAY, Limits, take_token
from relay.protocol import ErrorCode
from relay.store import MailWake, PrekeysWake, SnapshotInfo, SnapshotWake, Stored

__all__ = ["SCHEMA_VERSION", "SqliteStore"]

SCHEMA_VERSION = 1
T = TypeVar("T")
_Op = Callable[[sqlite3.Connection], Any]
UPLOAD_TTL = 1 * DAY
"""Unfinished uploads are dropped after a day."""


def _schema_sql() -> str:
    return (resources.files("relay") / "schema" / f"relay-v{SCHEMA_VERSION}.sql").read_text("utf-8")


class SqliteStore:
    """A ``MailStore`` in one SQLite file (or ``":memory:"`` for tests)."""

    shared = False

    def __init__(self, path: str | os.PathLike[str], *, synchronous: str = "FULL") -> None:
        if synchronous.upper() not in ("FULL", "NORMAL", "EXTRA"):
            raise ValueError("synchronous must be FULL, NORMAL or EXTRA")
        self.path = str(path)
        self.synchronous = synchronous.upper()
        self._conn: sqlite3.Connection | None = None
        self._executor: ThreadPoolExecutor | None = None
        self._pending: list[tuple[tuple[_Op, bool], asyncio.Future[Any]]] = []
        """Operations queued for the next transaction (guarded by ``_lock``: the writer thread takes them)."""
        self._lock = threading.Lock()
        self._writing = False
        """True while the writer thread is running batches (guarded by ``_lock``)."""
        self._usage: dict[str, list[int]] = {}
        """Per-mailbox [count, bytes], owned by the writer thread (loaded lazily from the table)."""
        self._sender_usage: dict[tuple[str, str], list[int]] = {}
        """Per (mailbox, sender) [count, bytes], owned by the writer thread (loaded lazily)."""
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()
        """Token buckets of :meth:`take_token` (one process per database file: memory is shared enough)."""
        self._flusher: asyncio.Future[None] | None = None
        self.batches = 0
        """Transactions committed (for profiling: operations per batch = ops / batches)."""
        self.ops = 0

    # --- lifecycle -----------------------------------------------------------------------------

    async def open(self) -> None:
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="relay-sqlite")
        loop = asyncio.get_running_loop()
        try:
            self._conn = await loop.run_in_executor(self._executor, self._connect)
        except BaseException:
            self._executor.shutdown(wait=False)
            self._executor = None
            raise

    def _connect(self) -> sqlite3.Connection:
        try:
            if self.path != ":memory:" and not Path(self.path).exists():
                self._create_atomically(Path(self.path))
            conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        except (sqlite3.Error, OSError) as exc:
            raise RelayError(f"cannot open the relay database {self.path}: {exc}") from None
        try:
            if self.path == ":memory:":
                conn.executescript(_schema_sql())
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute(f"PRAGMA synchronous={self.synchronous}")
            (version,) = conn.execute("SELECT version FROM version").fetchone()
            if version == SCHEMA_VERSION:  # added within version 1: prunes idempotency keys at delivery
                conn.execute("CREATE INDEX IF NOT EXISTS sent_ids_by_mid ON sent_ids (mid)")
        except sqlite3.Error as exc:
            conn.close()
            raise RelayError(f"{self.path} is not a pocketscan relay database ({exc})") from None
        if version != SCHEMA_VERSION:
            conn.close()
            raise RelayError(f"{self.path} has schema version {version}; this relay needs {SCHEMA_VERSION}")
        return conn

    @staticmethod
    def _create_atomically(path: Path) -> None:
        """Create a new database in a temporary file, then rename it into place."""
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".new", dir=path.parent)
        os.close(fd)
        try:
            conn = sqlite3.connect(tmp, isolation_level=None)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.executescript("BEGIN;" + _schema_sql() + "COMMIT;")
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            conn.close()
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp + "-wal")
                os.unlink(tmp + "-shm")
            os.replace(tmp, path)
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)

    async def close(self) -> None:
        if self._flusher is not None:
            await asyncio.shield(self._flusher)
        if self._executor is not None and self._conn is not None:
            conn = self._conn
            await asyncio.get_running_loop().run_in_executor(self._executor, conn.close)
            self._executor.shutdown(wait=True)
        self._conn = None
        self._executor = None

    # --- group commit --------------------------------------------------------------------------

    def _call(self, op: _Op, *, savepoint: bool = True) -> asyncio.Future[Any]:
        """Queue ``op`` for the next transaction.

        ``savepoint=False`` is for operations that raise only ``RelayError`` and only before they
        write (a quota check, a lookup): they skip the SAVEPOINT; any other exception from them
        aborts the whole batch, so a half-done write is never committed.
        """
        if self._conn is None or self._executor is None:
            raise RelayError("the store is not open")
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[Any] = loop.create_future()
        with self._lock:
            self._pending.append(((op, savepoint), fut))
            if self._writing:
                return fut  # the writer thread takes it after its current commit
            self._writing = True
        self._flusher = asyncio.wrap_future(self._executor.submit(self._write_loop, loop))
        return fut

    def _write_loop(self, loop: asyncio.AbstractEventLoop) -> None:
        """Writer thread: commit batch after batch until nothing is queued.

        The next transaction starts as soon as the previous one is committed, without a round trip
        through the (busy) event loop; results go back to the loop with one callback per batch.
        """
        while True:
            with self._lock:
                batch, self._pending = self._pending, []
                if not batch:
                    self._writing = False
                    return
            try:
                results: list[tuple[bool, Any]] | BaseException = self._run_batch([op for op, _ in batch])
            except BaseException as exc:  # the commit itself failed: nobody's operation is durable
                self._usage.clear()
                results = exc
            with contextlib.suppress(RuntimeError):  # a closed loop: nobody is waiting any more
                loop.call_soon_threadsafe(self._deliver, batch, results)

    @staticmethod
    def _deliver(
        batch: list[tuple[tuple[_Op, bool], asyncio.Future[Any]]],
        results: list[tuple[bool, Any]] | BaseException,
    ) -> None:
        if isinstance(results, BaseException):
            for _, fut in batch:
                if not fut.done():
                    fut.set_exception(RelayError(f"storage failure: {results}"))
            return
        for (_, fut), (ok, value) in zip(batch, results, strict=True):
            if fut.done():
                continue
            if ok:
                fut.set_result(value)
            else:
                fut.set_exception(value)

    def _run_batch(self, ops: list[tuple[_Op, bool]]) -> list[tuple[bool, Any]]:
        conn = self._conn
        assert conn is not None
        results: list[tuple[bool, Any]] = []
        conn.execute("BEGIN IMMEDIATE")
        try:
            for op, savepoint in ops:
                if not savepoint:
                    try:
                        results.append((True, op(conn)))
                    except RelayError as exc:
                        results.append((False, exc))
                    continue
                conn.execute("SAVEPOINT op")
                try:
                    value = op(conn)
                except Exception as exc:
                    conn.execute("ROLLBACK TO op")
                    conn.execute("RELEASE op")
                    results.append((False, exc))
                else:
                    conn.execute("RELEASE op")
                    results.append((True, value))
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        self.batches += 1
        self.ops += len(ops)
        return results

    # --- mailboxes -----------------------------------------------------------------------------

    def order_key(self, mid: str) -> tuple[int, int]:
        try:
            return (int(mid), 0)
        except ValueError:
            return (-1, 0)

    def put_envelope(
        self, *, sender: str, recipient: str, cid: bytes, env: bytes, now: float, limits: Limits
    ) -> Awaitable[tuple[Stored, bool]]:
        def prior(conn: sqlite3.Connection) -> tuple[Stored, bool] | None:
            row = conn.execute(
                "SELECT mid, recipient, ts FROM sent_ids WHERE sender = ? AND cid = ?", (sender, cid)
            ).fetchone()
            return None if row is None else (Stored(str(row[0]), sender, row[1], row[2], b""), False)

        def op(conn: sqlite3.Connection) -> tuple[Stored, bool]:
            usage = self._usage_of(conn, recipient)
            mine = self._sender_usage_of(conn, recipient, sender)
            full = (
                usage[0] + 1 > limits.mailbox_max_messages or usage[1] + len(env) > limits.mailbox_max_bytes
            )
            share = mine[0] + 1 > limits.sender_max_messages or mine[1] + len(env) > limits.sender_max_bytes
            if full or share:
                earlier = prior(conn)  # a retry of a stored envelope is still answered with its id
                if earlier is not None:
                    return earlier
                if full:
                    raise LimitExceeded(ErrorCode.QUOTA, "the recipient's mailbox is full; try again later")
                raise LimitExceeded(
                    ErrorCode.QUOTA,
                    "your undelivered envelopes fill your share of the recipient's mailbox; try again later",
                )
            # Common case first: insert, then claim the idempotency key; a retry (rare) finds the
            # key taken, removes its copy and answers with the first id. Two statements, not three.
            mid = conn.execute(
                "INSERT INTO messages (recipient, sender, ts, expires, envelope) VALUES (?, ?, ?, ?, ?)",
                (recipient, sender, now, now + limits.ttl, env),
            ).lastrowid
            claimed = conn.execute(
                "INSERT INTO sent_ids (sender, cid, mid, recipient, ts, expires) VALUES (?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (sender, cid) DO NOTHING",
                (sender, cid, mid, recipient, now, now + limits.ttl),
            ).rowcount
            if claimed != 1:
                conn.execute("DELETE FROM messages WHERE mid = ?", (mid,))
                earlier = prior(conn)
                assert earlier is not None
                return earlier
            usage[0] += 1
            usage[1] += len(env)
            mine[0] += 1
            mine[1] += len(env)
            return Stored(str(mid), sender, recipient, now, env), True

        return self._call(op, savepoint=False)

    def _usage_of(self, conn: sqlite3.Connection, recipient: str) -> list[int]:
        """[count, bytes] of a mailbox: cached by the writer thread, counted from the table once."""
        usage = self._usage.get(recipient)
        if usage is None:
            count, size = conn.execute(
                "SELECT count(*), coalesce(sum(length(envelope)), 0) FROM messages WHERE recipient = ?",
                (recipient,),
            ).fetchone()
            usage = self._usage[recipient] = [int(count), int(size)]
            if len(self._usage) > 100_000:  # bound the cache; evicted entries are recounted
                self._usage.pop(next(iter(self._usage)))
        return usage

    def _sender_usage_of(self, conn: sqlite3.Connection, recipient: str, sender: str) -> list[int]:
        """[count, bytes] of one sender's envelopes in a mailbox: cached, counted from the table once."""
        key = (recipient, sender)
        usage = self._sender_usage.get(key)
        if usage is None:
            count, size = conn.execute(
                "SELECT count(*), coalesce(sum(length(envelope)), 0) FROM messages "
                "WHERE recipient = ? AND sender = ?",
                (recipient, sender),
            ).fetchone()
            usage = self._sender_usage[key] = [int(count), int(size)]
            if len(self._sender_usage) > 100_000:
                self._sender_usage.pop(next(iter(self._sender_usage)))
        return usage

    def fetch(self, recipient: str, after: str | None, limit: int, now: float) -> Awaitable[list[Stored]]:
        start = self.order_key(after)[0] if after is not None else 0

        def op(conn: sqlite3.Connection) -> list[Stored]:
            rows = conn.execute(
                "SELECT mid, sender, ts, envelope FROM messages WHERE recipient = ? AND mid > ? "
                "AND expires > ? ORDER BY mid LIMIT ?",
                (recipient, start, now, limit),
            ).fetchall()
            return [Stored(str(mid), sender, recipient, ts, env) for mid, sender, ts, env in rows]

        return self._call(op, savepoint=False)

    def ack(self, recipient: str, mids: list[str], now: float, limits: Limits) -> Awaitable[list[str]]:
        keep_until = now + limits.delivered_id_ttl

        def op(conn: sqlite3.Connection) -> list[str]:
            done: list[str] = []
            freed = 0
            for mid in mids:
                try:
                    key = int(mid)
                except ValueError:
                    continue
                row = conn.execute(
                    "DELETE FROM messages WHERE mid = ? AND recipient = ? RETURNING length(envelope), sender",
                    (key, recipient),
                ).fetchone()
                if row is not None:
                    done.append(mid)
                    freed += row[0]
                    mine = self._sender_usage.get((recipient, row[1]))
                    if mine is not None:
                        mine[0] -= 1
                        mine[1] -= row[0]
                    # Delivered: the idempotency key forgets the recipient and lives only a grace period.
                    conn.execute(
                        "UPDATE sent_ids SET recipient = '', expires = min(expires, ?) WHERE mid = ?",
                        (keep_until, key),
                    )
            usage = self._usage.get(recipient)
            if usage is not None:
                usage[0] -= len(done)
                usage[1] -= freed
            return done

        return self._call(op, savepoint=False)

    # --- prekeys -------------------------------------------------------------------------------

    async def put_prekeys(
        self, account: str, bundle: bytes | None, otks: list[bytes], replace: bool, now: float, limits: Limits
    ) -> int:
        def op(conn: sqlite3.Connection) -> int:
            if bundle is not None:
                conn.execute(
                    "INSERT INTO bundles (account, bundle, updated) VALUES (?, ?, ?) ON CONFLICT (account) "
                    "DO UPDATE SET bundle = excluded.bundle, updated = excluded.updated",
                    (account, bundle, now),
                )
            elif conn.execute("SELECT 1 FROM bundles WHERE account = ?", (account,)).fetchone() is None:
                raise RequestFailed(ErrorCode.BAD_REQUEST, "upload a signed bundle before one-time prekeys")
            if replace:
                conn.execute("DELETE FROM one_time_prekeys WHERE account = ?", (account,))
            (count,) = conn.execute(
                "SELECT count(*) FROM one_time_prekeys WHERE account = ?", (account,)
            ).fetchone()
            if count + len(otks) > limits.max_otks:
                raise LimitExceeded(ErrorCode.QUOTA, f"at most {limits.max_otks} one-time prekeys are kept")
            conn.executemany(
                "INSERT INTO one_time_prekeys (account, key) VALUES (?, ?)", [(account, k) for k in otks]
            )
            return int(count) + len(otks)

        result: int = await self._call(op)
        return result

    async def get_prekeys(self, account: str, *, take_otk: bool = True) -> tuple[bytes, bytes | None] | None:
        def op(conn: sqlite3.Connection) -> tuple[bytes, bytes | None] | None:
            row = conn.execute("SELECT bundle FROM bundles WHERE account = ?", (account,)).fetchone()
            if row is None:
                return None
            if not take_otk:
                return bytes(row[0]), None
            otk = conn.execute(
                "DELETE FROM one_time_prekeys WHERE seq = (SELECT seq FROM one_time_prekeys "
                "WHERE account = ? ORDER BY seq LIMIT 1) RETURNING key",
                (account,),
            ).fetchone()
            return bytes(row[0]), (bytes(otk[0]) if otk is not None else None)

        result: tuple[bytes, bytes | None] | None = await self._call(op)
        return result

    async def count_prekeys(self, account: str) -> int:
        def op(conn: sqlite3.Connection) -> int:
            return int(
                conn.execute(
                    "SELECT count(*) FROM one_time_prekeys WHERE account = ?", (account,)
                ).fetchone()[0]
            )

        result: int = await self._call(op)
        return result

    # --- blobs ---------------------------------------------------------------------------------

    @staticmethod
    def _blob_usage(conn: sqlite3.Connection, owner: str, now: float) -> tuple[int, int, int]:
        """(live blobs, their bytes, unfinished uploads) of ``owner``; expired ones do not count."""
        count, size, unfinished = conn.execute(
            "SELECT count(*), coalesce(sum(size), 0), coalesce(sum(complete = 0), 0) FROM blobs "
            "WHERE owner = ? AND expires > ?",
            (owner, now),
        ).fetchone()
        return int(count), int(size), int(unfinished)

    async def blob_create(
        self, owner: str, blob_id: str, now: float, limits: Limits, *, quota: bool = True
    ) -> None:
        def op(conn: sqlite3.Connection) -> None:
            count, size, open_uploads = self._blob_usage(conn, owner, now)
            if open_uploads >= limits.uploads_per_account:
                raise LimitExceeded(
                    ErrorCode.QUOTA, f"at most {limits.uploads_per_account} unfinished uploads"
                )
            if quota and count >= limits.blob_quota_count:
                raise LimitExceeded(
                    ErrorCode.QUOTA,
                    f"at most {limits.blob_quota_count} stored blobs per account; older ones expire",
                )
            if quota and size >= limits.blob_quota_bytes:
                raise LimitExceeded(
                    ErrorCode.QUOTA,
                    f"your stored blobs use the {limits.blob_quota_bytes}-byte quota; older ones expire",
                )
            conn.execute(
                "INSERT INTO blobs (blob_id, owner, size, chunks, complete, created, expires) "
                "VALUES (?, ?, 0, 0, 0, ?, ?)",
                (blob_id, owner, now, now + UPLOAD_TTL),
            )

        await self._call(op)

    async def blob_append(
        self,
        owner: str,
        blob_id: str,
        data: bytes,
        final: bool,
        max_size: int,
        now: float,
        limits: Limits,
        *,
        quota: bool = True,
    ) -> int:
        def op(conn: sqlite3.Connection) -> int:
            row = conn.execute(
                "SELECT size, chunks FROM blobs "
                "WHERE blob_id = ? AND owner = ? AND complete = 0 AND expires > ?",
                (blob_id, owner, now),
            ).fetchone()
            if row is None:
                raise NotFound("no unfinished upload with this id")
            size, chunks = row
            if size + len(data) > max_size:
                raise LimitExceeded(ErrorCode.TOO_LARGE, f"blob exceeds the {max_size}-byte limit")
            if quota and data and self._blob_usage(conn, owner, now)[1] + len(data) > limits.blob_quota_bytes:
                raise LimitExceeded(
                    ErrorCode.QUOTA,
                    f"your stored blobs would exceed the {limits.blob_quota_bytes}-byte quota; "
                    "older ones expire",
                )
            if data:
                conn.execute(
                    "INSERT INTO blob_chunks (blob_id, idx, data) VALUES (?, ?, ?)", (blob_id, chunks, data)
                )
                chunks += 1
            expires = now + limits.finished_blob_ttl if final else now + UPLOAD_TTL
            conn.execute(
                "UPDATE blobs SET size = ?, chunks = ?, complete = ?, expires = ? WHERE blob_id = ?",
                (size + len(data), chunks, 1 if final else 0, expires, blob_id),
            )
            return int(size + len(data))

        try:
            result: int = await self._call(op)
        except LimitExceeded:
            await self._call(lambda conn: self._drop_blob(conn, blob_id))
            raise
        return result

    @staticmethod
    def _drop_blob(conn: sqlite3.Connection, blob_id: str) -> None:
        conn.execute("DELETE FROM blob_chunks WHERE blob_id = ?", (blob_id,))
        conn.execute("DELETE FROM blobs WHERE blob_id = ?", (blob_id,))

    async def blob_get(self, blob_id: str, chunk: int, now: float) -> tuple[bytes, int, int] | None:
        def op(conn: sqlite3.Connection) -> tuple[bytes, int, int] | None:
            row = conn.execute(
                "SELECT size, chunks FROM blobs WHERE blob_id = ? AND complete = 1 "
                "AND (expires IS NULL OR expires > ?)",
                (blob_id, now),
            ).fetchone()
            if row is None:
                return None
            size, chunks = row
            if chunks == 0 and chunk == 0:
                return b"", 0, 0
            data = conn.execute(
                "SELECT data FROM blob_chunks WHERE blob_id = ? AND idx = ?", (blob_id, chunk)
            ).fetchone()
            if data is None:
                return None
            return bytes(data[0]), int(chunks), int(size)

        result: tuple[bytes, int, int] | None = await self._call(op)
        return result

    # --- snapshots -----------------------------------------------------------------------------

    async def snapshot_publish(self, info: SnapshotInfo, publisher: str, now: float, limits: Limits) -> None:
        def op(conn: sqlite3.Connection) -> None:
            (newest,) = conn.execute("SELECT max(version) FROM snapshots").fetchone()
            if newest is not None and info.version <= newest:
                raise RequestFailed(ErrorCode.STALE, f"version {info.version} is not newer than {newest}")
            row = conn.execute(
                "SELECT size FROM blobs WHERE blob_id = ? AND owner = ? AND complete = 1",
                (info.blob, publisher),
            ).fetchone()
            if row is None or row[0] != info.size:
                raise NotFound("no sealed upload of yours with this id")
            # Older snapshots expire with the TTL; the newest never does.
            conn.execute(
                "UPDATE blobs SET expires = ? WHERE blob_id IN (SELECT blob_id FROM snapshots)",
                (now + limits.ttl,),
            )
            conn.execute("UPDATE blobs SET expires = NULL WHERE blob_id = ?", (info.blob,))
            conn.execute(
                "INSERT INTO snapshots (version, blob_id, size, sha256, publisher, published) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (info.version, info.blob, info.size, info.sha256, publisher, now),
            )

        await self._call(op)

    async def snapshot_latest(self) -> SnapshotInfo | None:
        def op(conn: sqlite3.Connection) -> SnapshotInfo | None:
            row = conn.execute(
                "SELECT version, blob_id, size, sha256, published FROM snapshots "
                "ORDER BY version DESC LIMIT 1"
            ).fetchone()
            return None if row is None else SnapshotInfo(row[0], row[1], row[2], bytes(row[3]), row[4])

        result: SnapshotInfo | None = await self._call(op)
        return result

    # --- maintenance ---------------------------------------------------------------------------

    async def prune(self, now: float) -> dict[str, int]:
        def op(conn: sqlite3.Connection) -> dict[str, int]:
            messages = conn.execute("DELETE FROM messages WHERE expires <= ?", (now,)).rowcount
            if messages:
                self._usage.clear()
                self._sender_usage.clear()
            ids = conn.execute("DELETE FROM sent_ids WHERE expires <= ?", (now,)).rowcount
            dead = [
                r[0]
                for r in conn.execute(
                    "SELECT blob_id FROM blobs WHERE expires IS NOT NULL AND expires <= ?", (now,)
                )
            ]
            for blob_id in dead:
                self._drop_blob(conn, blob_id)
            conn.execute("DELETE FROM snapshots WHERE blob_id NOT IN (SELECT blob_id FROM blobs)")
            return {"messages": messages, "idempotency_keys": ids, "blobs": len(dead)}

        result: dict[str, int] = await self._call(op)
        return result

    async def take_token(self, key: str, *, rate: float, burst: float, now: float) -> bool:
        if rate <= 0:
            return True
        tokens, stamp = self._buckets.pop(key, (burst, now))
        allowed, tokens, stamp = take_token(tokens, stamp, rate=rate, burst=burst, now=now)
        self._buckets[key] = (tokens, stamp)
        if len(self._buckets) > 100_000:  # bound memory: the oldest bucket is forgotten (it refills)
            self._buckets.popitem(last=False)
        return allowed

    async def notify_snapshot(self, info: SnapshotInfo) -> None:
        return None

    async def notify_prekeys_low(self, account: str, count: int) -> None:
        return None

    async def listen(
        self, on_mail: MailWake, on_snapshot: SnapshotWake, on_prekeys_low: PrekeysWake | None = None
    ) -> None:
        return None
