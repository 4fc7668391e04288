"""The one SQLite connection of an open store, with its keys: transactions, sealing, keyed lookups.

Every repository of :class:`~client.store.Store` shares one :class:`Database`, so a
:meth:`Database.transaction` block spans all of them (one lock, one nesting depth, one COMMIT).
Sealed values are XChaCha20-Poly1305 under a key derived from the data key, the column's label as
associated data; lookup columns hold HMAC-SHA256 under another derived key.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import importlib.resources
import sqlite3
import threading
from collections.abc import Iterator
from typing import Any

import nacl.bindings
import nacl.exceptions
import nacl.utils

from client.errors import StoreCorrupt, StoreLocked

__all__ = ["SCHEMA_VERSION", "Database", "connect", "init_schema", "open_sealed", "seal"]

SCHEMA_VERSION = 1
"""Schema version this code reads and writes."""


def seal(key: bytes, label: str, data: bytes) -> bytes:
    """``data`` sealed under ``key`` with ``label`` as associated data (random 24-byte nonce first)."""
    nonce = nacl.utils.random(24)
    sealed = nacl.bindings.crypto_aead_xchacha20poly1305_ietf_encrypt(data, label.encode(), nonce, key)
    return nonce + bytes(sealed)


def open_sealed(key: bytes, label: str, blob: bytes) -> bytes:
    """The plaintext of a :func:`seal` blob; raise StoreCorrupt if it fails authentication."""
    try:
        return bytes(nacl.bindings.crypto_aead_xchacha20poly1305_ietf_decrypt(
            blob[24:], label.encode(), blob[:24], key))
    except (nacl.exceptions.CryptoError, ValueError, TypeError):
        raise StoreCorrupt(f"a stored value ({label}) failed authentication: the store was tampered with") \
            from None


def connect(path: str) -> sqlite3.Connection:
    """A connection in autocommit mode (transactions are explicit), synchronous=FULL, secure_delete."""
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=10.0)
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute("PRAGMA secure_delete=ON")
    return conn


def init_schema(conn: sqlite3.Connection, meta: dict[str, bytes]) -> None:
    """Create the tables of a new store and write its version and ``meta`` rows (one transaction)."""
    sql = importlib.resources.files("client.store").joinpath(f"schema-v{SCHEMA_VERSION}.sql").read_text()
    conn.execute("BEGIN")
    for statement in sql.split(";"):
        if statement.strip():
            conn.execute(statement)
    conn.execute("INSERT INTO version (version) VALUES (?)", (SCHEMA_VERSION,))
    conn.executemany("INSERT INTO meta (k, v) VALUES (?, ?)", list(meta.items()))
    conn.execute("COMMIT")


class Database:
    """One open connection and the keys derived from the store's data key."""

    def __init__(self, conn: sqlite3.Connection, data_key: bytes) -> None:
        self._conn: sqlite3.Connection | None = conn
        self._data_key = data_key
        self._seal_key = hashlib.blake2b(data_key, key=b"seal", digest_size=32).digest()
        self._index_key = hashlib.blake2b(data_key, key=b"index", digest_size=32).digest()
        self._depth = 0
        self._lock = threading.RLock()

    @property
    def data_key(self) -> bytes:
        """The store's data key (re-wrapped when the passphrase changes)."""
        return self._data_key

    def derived_key(self, purpose: str) -> bytes:
        """A 32-byte key for ``purpose`` (sealed media, the settings MAC), derived from the data key."""
        label = b"derive:" + purpose.encode()[:56]
        return hashlib.blake2b(self._data_key, key=label, digest_size=32).digest()

    @property
    def _db(self) -> sqlite3.Connection:
        if self._conn is None:
            raise StoreLocked("the store is closed")
        return self._conn

    def close(self) -> None:
        """Close the connection; every later call raises StoreLocked."""
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        """Group several operations into one atomic, durable transaction (nestable)."""
        with self._lock:
            db = self._db
            if self._depth == 0:
                db.execute("BEGIN IMMEDIATE")
            self._depth += 1
            try:
                yield
            except BaseException:
                self._depth -= 1
                if self._depth == 0:
                    db.execute("ROLLBACK")
                raise
            self._depth -= 1
            if self._depth == 0:
                db.execute("COMMIT")

    def execute(self, sql: str, params: tuple[Any, ...] = ()) -> sqlite3.Cursor:
        """Run one statement (call inside :meth:`transaction` when it writes)."""
        with self._lock:
            return self._db.execute(sql, params)

    def executemany(self, sql: str, rows: list[tuple[Any, ...]]) -> None:
        """Run one statement for each of ``rows``."""
        with self._lock:
            self._db.executemany(sql, rows)

    def one(self, sql: str, params: tuple[Any, ...] = ()) -> Any:
        """The first row of a query, or None."""
        with self._lock:
            return self._db.execute(sql, params).fetchone()

    def all(self, sql: str, params: tuple[Any, ...] = ()) -> list[Any]:
        """Every row of a query."""
        with self._lock:
            return self._db.execute(sql, params).fetchall()

    def mac(self, label: str, value: str) -> bytes:
        """The keyed lookup value of ``value`` in the column family ``label`` (never the value itself)."""
        return hmac.new(self._index_key, f"{label}\x00{value}".encode(), hashlib.sha256).digest()

    def seal(self, label: str, data: bytes) -> bytes:
        """``data`` sealed for the column ``label``."""
        return seal(self._seal_key, label, data)

    def unseal(self, label: str, blob: bytes) -> bytes:
        """The plaintext of a value sealed for ``label``; raise StoreCorrupt if it was tampered with."""
        return open_sealed(self._seal_key, label, bytes(blob))
