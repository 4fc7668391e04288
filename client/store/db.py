"""The client's encrypted local store (SQLite): opening, unlocking, creating and closing it; its
repositories hold identity and prekeys, sessions, contacts, history, outbox, inbound dedupe and settings.

Encryption at rest: a random 32-byte data key seals every sensitive value with
XChaCha20-Poly1305 (pynacl), the column's label as associated data (so sealed values cannot be
swapped between columns). Lookup columns hold HMAC-SHA256 under a key derived from the data key,
so account ids, names and message ids never appear in clear. The data key is wrapped by a key
derived from the passphrase with Argon2id (``nacl.pwhash.argon2id``; salt and cost in ``meta``);
a wrong passphrase fails to unwrap it: :class:`~client.errors.WrongPassphrase`.

``passphrase=None`` (the CLI's ``--no-passphrase``) stores the data key unwrapped in the file:
for tests and the demo only; such a store protects nothing.

Durability: WAL journal, ``synchronous=FULL`` and one transaction per operation (or per
:meth:`Store.transaction` block, which spans every repository), so whatever a method returned from
is on disk; a crash mid-write rolls back to the previous state. ``secure_delete`` overwrites deleted
rows (old ratchet keys do not linger in free pages). The file is created atomically (temporary file
then rename) with mode 0600; SQLite gives its -wal/-shm files the same mode.
"""

from __future__ import annotations

import os
import sqlite3
from contextlib import AbstractContextManager
from pathlib import Path

import nacl.pwhash
import nacl.utils

from client.errors import StoreCorrupt, StoreError, StoreLocked, WrongPassphrase
from client.store.contacts import ContactRepository
from client.store.database import SCHEMA_VERSION, Database, connect, init_schema, open_sealed, seal
from client.store.dedupe import DedupeRepository
from client.store.keys import KeyRepository
from client.store.messages import MessageRepository
from client.store.outbox import OutboxRepository
from client.store.secrets import SecretTable
from client.store.sessions import SessionRepository
from client.store.settings import SettingsRepository

__all__ = ["DEFAULT_MEMLIMIT", "DEFAULT_OPSLIMIT", "SCHEMA_VERSION", "Store"]

DEFAULT_OPSLIMIT = 3
"""Argon2id passes for the passphrase (pynacl's OPSLIMIT_MODERATE)."""
DEFAULT_MEMLIMIT = 64 * 1024 * 1024
"""Argon2id memory for the passphrase (64 MiB; above OWASP's 19 MiB minimum)."""

_WRAP_AD = b"pocketscan store data key v1"


def _kek(passphrase: str | bytes, salt: bytes, opslimit: int, memlimit: int) -> bytes:
    secret = passphrase.encode() if isinstance(passphrase, str) else passphrase
    return bytes(nacl.pwhash.argon2id.kdf(32, secret, salt, opslimit=opslimit, memlimit=memlimit))


def _protection(data_key: bytes, passphrase: str | bytes | None, opslimit: int, memlimit: int,
                empty_hint: str) -> dict[str, bytes]:
    """The ``meta`` rows that keep ``data_key``: in clear (no passphrase) or wrapped under Argon2id."""
    if passphrase is None:
        return {"protection": b"none", "data_key": data_key}
    if not passphrase:
        raise StoreError(f"the passphrase must not be empty{empty_hint}")
    salt = nacl.utils.random(nacl.pwhash.argon2id.SALTBYTES)
    kek = _kek(passphrase, salt, opslimit, memlimit)
    return {"protection": b"argon2id", "salt": salt, "opslimit": str(opslimit).encode(),
            "memlimit": str(memlimit).encode(), "wrapped": seal(kek, _WRAP_AD.decode(), data_key)}


class Store:
    """An open, unlocked store. Build with :meth:`create` or :meth:`open`; close with :meth:`close`.

    Its repositories share one connection and one transaction: :attr:`keys`, :attr:`settings`,
    :attr:`sessions`, :attr:`contacts`, :attr:`messages`, :attr:`outbox` and :attr:`dedupe`.
    """

    def __init__(self, conn: sqlite3.Connection, data_key: bytes, path: Path | None) -> None:
        self._database = Database(conn, data_key)
        self.path = path
        """The store file (None for ``:memory:``)."""
        secrets = SecretTable(self._database)
        self.keys = KeyRepository(secrets)
        """Our identity key pair and prekeys."""
        self.settings = SettingsRepository(self._database, secrets)
        """Named settings (policy state, snapshot floor, inbox queue, ...)."""
        self.sessions = SessionRepository(self._database)
        """Double Ratchet session records, one per peer."""
        self.contacts = ContactRepository(self._database, self.sessions)
        """Contacts, their identity keys, verified marks and unread counts."""
        self.messages = MessageRepository(self._database, self.contacts)
        """The message history."""
        self.outbox = OutboxRepository(self._database)
        """Envelopes handed to the relay and not yet acknowledged."""
        self.dedupe = DedupeRepository(self._database)
        """Ids of inbound envelopes already processed."""

    def derived_key(self, purpose: str) -> bytes:
        """A 32-byte key for ``purpose`` (sealed media, the settings MAC), derived from the data key."""
        return self._database.derived_key(purpose)

    # ----- lifecycle -------------------------------------------------------------------------
    @staticmethod
    def exists(path: str | os.PathLike[str]) -> bool:
        """True if a store file exists at ``path``."""
        return Path(path).is_file()

    @classmethod
    def create(cls, path: str | os.PathLike[str], *, passphrase: str | bytes | None,
               opslimit: int = DEFAULT_OPSLIMIT, memlimit: int = DEFAULT_MEMLIMIT) -> Store:
        """Create a new store (atomically, mode 0600). ``passphrase=None`` means unprotected (tests/demo).

        ``opslimit``/``memlimit`` set the Argon2id cost; lower them only in tests.
        """
        data_key = nacl.utils.random(32)
        meta = _protection(data_key, passphrase, opslimit, memlimit,
                           " (use --no-passphrase for an unprotected store)")
        if str(path) == ":memory:":
            conn = connect(":memory:")
            init_schema(conn, meta)
            return cls(conn, data_key, None)
        target = Path(path)
        if target.exists():
            raise StoreError(f"a store already exists at {target}")
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(target.name + ".creating")
        tmp.unlink(missing_ok=True)
        fd = os.open(tmp, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
        os.close(fd)
        conn = connect(str(tmp))
        init_schema(conn, meta)
        conn.execute("PRAGMA journal_mode=DELETE")
        conn.close()
        os.replace(tmp, target)
        dir_fd = os.open(target.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
        conn = connect(str(target))
        conn.execute("PRAGMA journal_mode=WAL")
        return cls(conn, data_key, target)

    @classmethod
    def open(cls, path: str | os.PathLike[str], *, passphrase: str | bytes | None) -> Store:
        """Open and unlock an existing store.

        Raises:
            StoreLocked: the store is protected and no passphrase was given.
            WrongPassphrase: the passphrase is wrong.
            StoreCorrupt: not a pocketscan store, or a newer schema.
        """
        target = Path(path)
        if not target.is_file():
            raise StoreError(f"no store at {target}")
        try:
            conn = connect(str(target))
            conn.execute("PRAGMA journal_mode=WAL")
            row = conn.execute("SELECT version FROM version").fetchone()
            meta = {k: bytes(v) for k, v in conn.execute("SELECT k, v FROM meta")}
        except sqlite3.DatabaseError:
            raise StoreCorrupt(f"{target} is not a pocketscan store (or is damaged)") from None
        if row is None or row[0] > SCHEMA_VERSION:
            conn.close()
            raise StoreCorrupt(f"{target} has schema version {row and row[0]}; "
                               f"this pocketscan reads {SCHEMA_VERSION}")
        protection = meta.get("protection")
        if protection == b"none":
            return cls(conn, meta["data_key"], target)
        if protection != b"argon2id":
            conn.close()
            raise StoreCorrupt(f"{target} has an unknown protection scheme")
        if not passphrase:
            conn.close()
            raise StoreLocked("this profile's store is protected by a passphrase")
        kek = _kek(passphrase, meta["salt"], int(meta["opslimit"]), int(meta["memlimit"]))
        try:
            data_key = open_sealed(kek, _WRAP_AD.decode(), meta["wrapped"])
        except StoreCorrupt:
            conn.close()
            raise WrongPassphrase("wrong passphrase for this profile's store") from None
        return cls(conn, data_key, target)

    def change_passphrase(self, passphrase: str | bytes | None, *, opslimit: int = DEFAULT_OPSLIMIT,
                          memlimit: int = DEFAULT_MEMLIMIT) -> None:
        """Re-wrap the data key under a new passphrase (``None``: remove protection). Atomic.

        The data key itself is kept, so copies of the file taken before the change open with the
        old passphrase (or none): re-create the profile if an old copy may have leaked.
        """
        meta = _protection(self._database.data_key, passphrase, opslimit, memlimit, "")
        db = self._database
        with db.transaction():
            db.execute("DELETE FROM meta WHERE k IN ('protection', 'data_key', 'salt', 'opslimit', "
                       "'memlimit', 'wrapped')")
            db.executemany("INSERT INTO meta (k, v) VALUES (?, ?)", list(meta.items()))
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # no old key material left in the WAL

    @staticmethod
    def is_protected(path: str | os.PathLike[str]) -> bool:
        """True if the store at ``path`` needs a passphrase."""
        conn = sqlite3.connect(f"file:{Path(path)}?mode=ro", uri=True)
        try:
            row = conn.execute("SELECT v FROM meta WHERE k = 'protection'").fetchone()
        except sqlite3.DatabaseError:
            raise StoreCorrupt(f"{path} is not a pocketscan store (or is damaged)") from None
        finally:
            conn.close()
        return row is not None and bytes(row[0]) != b"none"

    def close(self) -> None:
        """Close the database; the store cannot be used afterwards."""
        self._database.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def transaction(self) -> AbstractContextManager[None]:
        """Group operations over any repositories into one atomic, durable transaction (nestable)."""
        return self._database.transaction()
