"""The client's encrypted local store (SQLite): identity, prekeys, sessions, contacts, history,
outbox, inbound dedupe and settings.

Encryption at rest: a random 32-byte data key seals every sensitive value with
XChaCha20-Poly1305 (pynacl), the column's label as associated data (so sealed values cannot be
swapped between columns). Lookup columns hold HMAC-SHA256 under a key derived from the data key,
so account ids, names and message ids never appear in clear. The data key is wrapped by a key
derived from the passphrase with Argon2id (``nacl.pwhash.argon2id``; salt and cost in ``meta``);
a wrong passphrase fails to unwrap it: :class:`~client.errors.WrongPassphrase`.

``passphrase=None`` (the CLI's ``--no-passphrase``) stores the data key unwrapped in the file:
for tests and the demo only; such a store protects nothing.

Durability: WAL journal, ``synchronous=FULL`` and one transaction per operation (or per
:meth:`Store.transaction` block), so whatever a method returned from is on disk; a crash
mid-write rolls back to the previous state. ``secure_delete`` overwrites deleted rows (old
ratchet keys do not linger in free pages). The file is created atomically (temporary file then
rename) with mode 0600; SQLite gives its -wal/-shm files the same mode.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import importlib.resources
import os
import sqlite3
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

import cbor2
import nacl.bindings
import nacl.exceptions
import nacl.pwhash
import nacl.utils

from client.crypto.attachments import AttachmentPointer
from client.crypto.identity import IdentityKeyPair, account_id_from_public_key
from client.crypto.x3dh import PreKeyState
from client.errors import (
    IdentityKeyChanged,
    StoreCorrupt,
    StoreError,
    StoreLocked,
    UnknownContact,
    WrongPassphrase,
)
from client.session import SessionRecord

__all__ = [
    "DEFAULT_MEMLIMIT",
    "DEFAULT_OPSLIMIT",
    "SCHEMA_VERSION",
    "Contact",
    "DeliveryState",
    "MessageRecord",
    "OutboxItem",
    "Store",
]

SCHEMA_VERSION = 1
"""Schema version this code reads and writes."""
DEFAULT_OPSLIMIT = 3
"""Argon2id passes for the passphrase (pynacl's OPSLIMIT_MODERATE)."""
DEFAULT_MEMLIMIT = 64 * 1024 * 1024
"""Argon2id memory for the passphrase (64 MiB; above OWASP's 19 MiB minimum)."""
SEEN_KEEP = 50_000
"""Inbound envelope ids remembered for dedupe (oldest pruned beyond this)."""

DeliveryState = Literal["sending", "sent", "delivered", "failed", "received", "waiting"]
_STATES = ("sending", "sent", "delivered", "failed", "received", "waiting")
_WRAP_AD = b"pocketscan store data key v1"


def _seal(key: bytes, label: str, data: bytes) -> bytes:
    nonce = nacl.utils.random(24)
    sealed = nacl.bindings.crypto_aead_xchacha20poly1305_ietf_encrypt(data, label.encode(), nonce, key)
    return nonce + bytes(sealed)


def _open(key: bytes, label: str, blob: bytes) -> bytes:
    try:
        return bytes(nacl.bindings.crypto_aead_xchacha20poly1305_ietf_decrypt(
            blob[24:], label.encode(), blob[:24], key))
    except (nacl.exceptions.CryptoError, ValueError, TypeError):
        raise StoreCorrupt(f"a stored value ({label}) failed authentication: the store was tampered with") \
            from None


def _kek(passphrase: str | bytes, salt: bytes, opslimit: int, memlimit: int) -> bytes:
    secret = passphrase.encode() if isinstance(passphrase, str) else passphrase
    return bytes(nacl.pwhash.argon2id.kdf(32, secret, salt, opslimit=opslimit, memlimit=memlimit))


@dataclass(frozen=True)
class Contact:
    """Someone we talk to. ``identity_key`` is None until their bundle or first message is seen."""

    account_id: str
    name: str | None = None
    identity_key: bytes | None = None
    verified: bool = False
    added_at: float = 0.0
    unread: int = 0

    @property
    def label(self) -> str:
        """Name if set, else the account id."""
        return self.name or self.account_id


@dataclass(frozen=True)
class MessageRecord:
    """One message in the history."""

    msg_id: str
    peer: str
    direction: Literal["in", "out"]
    kind: Literal["text", "image"]
    sent_at: float
    state: DeliveryState
    body: str | None = None
    attachment: AttachmentPointer | None = None
    local_path: str | None = None
    verdict: dict[str, Any] | None = None
    """Scan verdict summary (outcome, votes, snapshot), never the image hash."""

    def __repr__(self) -> str:  # never print message bodies
        return (f"MessageRecord(msg_id={self.msg_id!r}, peer={self.peer!r}, direction={self.direction!r}, "
                f"kind={self.kind!r}, state={self.state!r})")

    def _to_bytes(self) -> bytes:
        return bytes(cbor2.dumps({
            "id": self.msg_id, "peer": self.peer, "dir": self.direction, "kind": self.kind,
            "t": self.sent_at, "state": self.state, "body": self.body,
            "att": None if self.attachment is None else self.attachment.to_dict(),
            "path": self.local_path, "verdict": self.verdict,
        }))

    @classmethod
    def _from_bytes(cls, data: bytes) -> MessageRecord:
        d = cbor2.loads(data)
        att = None if d["att"] is None else AttachmentPointer.from_dict(d["att"])
        return cls(d["id"], d["peer"], d["dir"], d["kind"], d["t"], d["state"], d["body"], att, d["path"],
                   d["verdict"])


@dataclass(frozen=True)
class OutboxItem:
    """An envelope handed to the relay but not yet acknowledged (resent on reconnect)."""

    envelope_id: str
    peer: str
    payload: bytes
    created_at: float
    attempts: int = 0
    meta: dict[str, Any] = field(default_factory=dict)


class Store:
    """An open, unlocked store. Build with :meth:`create` or :meth:`open`; close with :meth:`close`."""

    def __init__(self, conn: sqlite3.Connection, data_key: bytes, path: Path | None) -> None:
        self._conn: sqlite3.Connection | None = conn
        self._data_key = data_key
        self._key = hashlib.blake2b(data_key, key=b"seal", digest_size=32).digest()
        self._idx = hashlib.blake2b(data_key, key=b"index", digest_size=32).digest()
        self._depth = 0
        self._lock = threading.RLock()
        self.path = path
        """The store file (None for ``:memory:``)."""

    def derived_key(self, purpose: str) -> bytes:
        """A 32-byte key for ``purpose`` (sealed media, the settings MAC), derived from the data key."""
        label = b"derive:" + purpose.encode()[:56]
        return hashlib.blake2b(self._data_key, key=label, digest_size=32).digest()

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
        meta: dict[str, bytes] = {}
        if passphrase is None:
            meta["protection"] = b"none"
            meta["data_key"] = data_key
        else:
            if not passphrase:
                raise StoreError("the passphrase must not be empty "
                                 "(use --no-passphrase for an unprotected store)")
            salt = nacl.utils.random(nacl.pwhash.argon2id.SALTBYTES)
            kek = _kek(passphrase, salt, opslimit, memlimit)
            meta.update(protection=b"argon2id", salt=salt, opslimit=str(opslimit).encode(),
                        memlimit=str(memlimit).encode(), wrapped=_seal(kek, _WRAP_AD.decode(), data_key))
        if str(path) == ":memory:":
            conn = cls._connect(":memory:")
            cls._init_schema(conn, meta)
            return cls(conn, data_key, None)
        target = Path(path)
        if target.exists():
            raise StoreError(f"a store already exists at {target}")
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(target.name + ".creating")
        tmp.unlink(missing_ok=True)
        fd = os.open(tmp, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
        os.close(fd)
        conn = cls._connect(str(tmp))
        cls._init_schema(conn, meta)
        conn.execute("PRAGMA journal_mode=DELETE")
        conn.close()
        os.replace(tmp, target)
        dir_fd = os.open(target.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
        conn = cls._connect(str(target))
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
            conn = cls._connect(str(target))
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
            data_key = _open(kek, _WRAP_AD.decode(), meta["wrapped"])
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
        meta: dict[str, bytes]
        if passphrase is None:
            meta = {"protection": b"none", "data_key": self._data_key}
        else:
            if not passphrase:
                raise StoreError("the passphrase must not be empty")
            salt = nacl.utils.random(nacl.pwhash.argon2id.SALTBYTES)
            kek = _kek(passphrase, salt, opslimit, memlimit)
            wrapped = _seal(kek, _WRAP_AD.decode(), self._data_key)
            meta = {"protection": b"argon2id", "salt": salt, "opslimit": str(opslimit).encode(),
                    "memlimit": str(memlimit).encode(), "wrapped": wrapped}
        with self.transaction():
            self._db.execute("DELETE FROM meta WHERE k IN ('protection', 'data_key', 'salt', 'opslimit', "
                             "'memlimit', 'wrapped')")
            self._db.executemany("INSERT INTO meta (k, v) VALUES (?, ?)", list(meta.items()))
        with self._lock:
            self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # no old key material left in the WAL

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

    @staticmethod
    def _connect(path: str) -> sqlite3.Connection:
        conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=10.0)
        conn.execute("PRAGMA synchronous=FULL")
        conn.execute("PRAGMA secure_delete=ON")
        return conn

    @staticmethod
    def _init_schema(conn: sqlite3.Connection, meta: dict[str, bytes]) -> None:
        sql = importlib.resources.files("client.store").joinpath(f"schema-v{SCHEMA_VERSION}.sql").read_text()
        conn.execute("BEGIN")
        for statement in sql.split(";"):
            if statement.strip():
                conn.execute(statement)
        conn.execute("INSERT INTO version (version) VALUES (?)", (SCHEMA_VERSION,))
        conn.executemany("INSERT INTO meta (k, v) VALUES (?, ?)", list(meta.items()))
        conn.execute("COMMIT")

    def close(self) -> None:
        """Close the database; the store cannot be used afterwards."""
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def _db(self) -> sqlite3.Connection:
        if self._conn is None:
            raise StoreLocked("the store is closed")
        return self._conn

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

    # ----- query and sealing helpers ---------------------------------------------------------
    def _one(self, sql: str, params: tuple[Any, ...] = ()) -> Any:
        with self._lock:
            return self._db.execute(sql, params).fetchone()

    def _all(self, sql: str, params: tuple[Any, ...] = ()) -> list[Any]:
        with self._lock:
            return self._db.execute(sql, params).fetchall()

    def _mac(self, label: str, value: str) -> bytes:
        return hmac.new(self._idx, f"{label}\x00{value}".encode(), hashlib.sha256).digest()

    def _seal(self, label: str, data: bytes) -> bytes:
        return _seal(self._key, label, data)

    def _open(self, label: str, blob: bytes) -> bytes:
        return _open(self._key, label, bytes(blob))

    def _put_secret(self, kind: str, name: str, value: bytes) -> None:
        with self.transaction():
            self._db.execute("INSERT OR REPLACE INTO secrets (k, kind, v) VALUES (?, ?, ?)",
                             (self._mac(kind, name), kind, self._seal(f"secret:{kind}", value)))

    def _get_secret(self, kind: str, name: str) -> bytes | None:
        row = self._one("SELECT v FROM secrets WHERE k = ?", (self._mac(kind, name),))
        return None if row is None else self._open(f"secret:{kind}", row[0])

    # ----- identity and prekeys --------------------------------------------------------------
    def save_identity(self, identity: IdentityKeyPair) -> None:
        """Store our identity key pair (there is one per profile)."""
        self._put_secret("identity", "self", identity.seed)

    def load_identity(self) -> IdentityKeyPair | None:
        """Our identity key pair, or None before account creation."""
        seed = self._get_secret("identity", "self")
        return None if seed is None else IdentityKeyPair(seed)

    def save_prekeys(self, prekeys: PreKeyState) -> None:
        """Store our prekeys (private parts included, sealed)."""
        self._put_secret("prekeys", "self", prekeys.to_bytes())

    def load_prekeys(self) -> PreKeyState | None:
        """Our prekeys, or None before account creation."""
        data = self._get_secret("prekeys", "self")
        return None if data is None else PreKeyState.from_bytes(data)

    # ----- settings --------------------------------------------------------------------------
    def set_setting(self, name: str, value: Any) -> None:
        """Store a setting (any CBOR-serialisable value: policy, relay url, authority key, ...)."""
        self._put_secret("setting", name, bytes(cbor2.dumps([name, value])))

    def get_setting(self, name: str, default: Any = None) -> Any:
        """A setting's value, or ``default``."""
        data = self._get_secret("setting", name)
        return default if data is None else cbor2.loads(data)[1]

    def settings(self) -> dict[str, Any]:
        """All settings."""
        rows = self._all("SELECT v FROM secrets WHERE kind = 'setting'")
        return dict(cbor2.loads(self._open("secret:setting", r[0])) for r in rows)

    # ----- sessions --------------------------------------------------------------------------
    def save_session(self, record: SessionRecord) -> None:
        """Store the session record with a peer (replacing the previous one)."""
        with self.transaction():
            self._db.execute("INSERT OR REPLACE INTO sessions (peer, v) VALUES (?, ?)",
                             (self._mac("peer", record.account_id), self._seal("session", record.to_bytes())))

    def load_session(self, account_id: str) -> SessionRecord | None:
        """The session record with ``account_id``, or None."""
        peer = self._mac("peer", account_id)
        row = self._one("SELECT v FROM sessions WHERE peer = ?", (peer,))
        return None if row is None else SessionRecord.from_bytes(self._open("session", row[0]))

    def delete_session(self, account_id: str) -> None:
        """Forget the sessions with ``account_id`` (a new one starts from their bundle)."""
        with self.transaction():
            self._db.execute("DELETE FROM sessions WHERE peer = ?", (self._mac("peer", account_id),))

    # ----- contacts --------------------------------------------------------------------------
    def _write_contact(self, c: Contact, seq: int | None = None) -> None:
        data = cbor2.dumps([c.account_id, c.name, c.identity_key, c.verified, c.added_at, c.unread])
        name_mac = None if c.name is None else self._mac("name", c.name.casefold())
        peer = self._mac("peer", c.account_id)
        if seq is None:
            row = self._one("SELECT seq FROM contacts WHERE peer = ?", (peer,))
            if row is None:
                row = self._one("SELECT COALESCE(MAX(seq), 0) + 1 FROM contacts")
            seq = int(row[0])
        self._db.execute("INSERT OR REPLACE INTO contacts (peer, name, seq, v) VALUES (?, ?, ?, ?)",
                         (peer, name_mac, seq, self._seal("contact", bytes(data))))

    def _read_contact(self, blob: bytes) -> Contact:
        a, n, k, v, t, u = cbor2.loads(self._open("contact", blob))
        return Contact(a, n, k, v, t, u)

    def add_contact(self, account_id: str, *, name: str | None = None, identity_key: bytes | None = None,
                    now: float = 0.0, replace_name: bool = False) -> Contact:
        """Add (or rename) a contact.

        Raises:
            IdentityKeyChanged: ``identity_key`` is not this account's, or ``name`` already belongs
                to a different account (a known contact re-appearing with another key); pass
                ``replace_name=True`` once the user confirmed the change.
        """
        with self.transaction():
            if identity_key is not None and account_id_from_public_key(identity_key) != account_id:
                raise IdentityKeyChanged(f"the identity key offered for {account_id} does not belong to it",
                                         account_id=account_id, old_key=None, new_key=identity_key)
            if name is not None:
                other = self.contact_by_name(name)
                if other is not None and other.account_id != account_id:
                    if not replace_name:
                        raise IdentityKeyChanged(
                            f"contact {name!r} was {other.account_id} and is now {account_id}: "
                            "their identity key changed, verify the safety number",
                            account_id=account_id, old_key=other.identity_key, new_key=identity_key or b"")
                    self._write_contact(replace(other, name=None))
            existing = self.get_contact(account_id)
            if existing is None:
                contact = Contact(account_id, name, identity_key, False, now, 0)
            else:
                contact = replace(existing, name=name if name is not None else existing.name)
                if identity_key is not None:
                    contact = self._checked_key(contact, identity_key)
            self._write_contact(contact)
            return contact

    def _checked_key(self, contact: Contact, key: bytes) -> Contact:
        if contact.identity_key is not None and not hmac.compare_digest(contact.identity_key, key):
            raise IdentityKeyChanged(f"the identity key of {contact.label} changed: verify the safety number",
                                     account_id=contact.account_id, old_key=contact.identity_key, new_key=key)
        return replace(contact, identity_key=key)

    def set_identity_key(self, account_id: str, key: bytes, *, accept_change: bool = False) -> Contact:
        """Record a contact's identity key (trust on first use).

        Raises:
            IdentityKeyChanged: a different key is already recorded (unless ``accept_change``, which
                also clears the verified mark), or the key is not this account's.
            UnknownContact: no such contact.
        """
        with self.transaction():
            contact = self.require_contact(account_id)
            if account_id_from_public_key(key) != account_id:
                raise IdentityKeyChanged(f"the identity key offered for {account_id} does not belong to it",
                                         account_id=account_id, old_key=contact.identity_key, new_key=key)
            if accept_change:
                changed = contact.identity_key is not None and contact.identity_key != key
                contact = replace(contact, identity_key=key, verified=contact.verified and not changed)
            else:
                contact = self._checked_key(contact, key)
            self._write_contact(contact)
            return contact

    def set_verified(self, account_id: str, verified: bool = True) -> Contact:
        """Mark a contact's safety number as verified (or not)."""
        with self.transaction():
            contact = replace(self.require_contact(account_id), verified=verified)
            self._write_contact(contact)
            return contact

    def get_contact(self, account_id: str) -> Contact | None:
        """The contact with ``account_id``, or None."""
        peer = self._mac("peer", account_id)
        row = self._one("SELECT v FROM contacts WHERE peer = ?", (peer,))
        return None if row is None else self._read_contact(row[0])

    def require_contact(self, account_id: str) -> Contact:
        """The contact with ``account_id``; raise UnknownContact otherwise."""
        contact = self.get_contact(account_id)
        if contact is None:
            raise UnknownContact(f"no contact with account id {account_id}")
        return contact

    def contact_by_name(self, name: str) -> Contact | None:
        """The contact named ``name`` (case-insensitive), or None."""
        row = self._one("SELECT v FROM contacts WHERE name = ?", (self._mac("name", name.casefold()),))
        return None if row is None else self._read_contact(row[0])

    def find_contact(self, name_or_id: str) -> Contact:
        """Resolve a name or an account id (any display form); raise UnknownContact."""
        from client.crypto.identity import parse_account_id

        contact = self.contact_by_name(name_or_id)
        if contact is not None:
            return contact
        try:
            return self.require_contact(parse_account_id(name_or_id))
        except ValueError:
            raise UnknownContact(f"no contact named {name_or_id!r}") from None

    def list_contacts(self) -> list[Contact]:
        """All contacts in the order they were added."""
        return [self._read_contact(r[0]) for r in self._all("SELECT v FROM contacts ORDER BY seq")]

    def remove_contact(self, account_id: str) -> None:
        """Delete a contact and its sessions (history stays)."""
        with self.transaction():
            self._db.execute("DELETE FROM contacts WHERE peer = ?", (self._mac("peer", account_id),))
            self.delete_session(account_id)

    # ----- messages --------------------------------------------------------------------------
    def add_message(self, message: MessageRecord) -> bool:
        """Append a message to the history; False if its id is already there (nothing changes).

        An inbound message also bumps the contact's unread count.
        """
        if message.state not in _STATES:
            raise ValueError(f"unknown delivery state {message.state!r}")
        with self.transaction():
            cur = self._db.execute(
                "INSERT OR IGNORE INTO messages (mid, peer, v) VALUES (?, ?, ?)",
                (self._mac("msg", message.msg_id), self._mac("peer", message.peer),
                 self._seal("message", message._to_bytes())))
            if cur.rowcount == 0:
                return False
            if message.direction == "in":
                contact = self.get_contact(message.peer)
                if contact is not None:
                    self._write_contact(replace(contact, unread=contact.unread + 1))
            return True

    def get_message(self, msg_id: str) -> MessageRecord | None:
        """A message by id, or None."""
        row = self._one("SELECT v FROM messages WHERE mid = ?", (self._mac("msg", msg_id),))
        return None if row is None else MessageRecord._from_bytes(self._open("message", row[0]))

    def update_message(self, msg_id: str, *, state: DeliveryState | None = None,
                       local_path: str | None = None,
                       verdict: dict[str, Any] | None = None,
                       attachment: AttachmentPointer | None = None) -> MessageRecord:
        """Change a message's delivery state, local file path, verdict summary or attachment pointer."""
        if state is not None and state not in _STATES:
            raise ValueError(f"unknown delivery state {state!r}")
        with self.transaction():
            message = self.get_message(msg_id)
            if message is None:
                raise StoreError(f"no message {msg_id}")
            message = replace(
                message,
                state=state or message.state,
                local_path=local_path if local_path is not None else message.local_path,
                verdict=verdict if verdict is not None else message.verdict,
                attachment=attachment if attachment is not None else message.attachment,
            )
            self._db.execute("UPDATE messages SET v = ? WHERE mid = ?",
                             (self._seal("message", message._to_bytes()), self._mac("msg", msg_id)))
            return message

    def list_messages(self, peer: str, *, limit: int | None = None) -> list[MessageRecord]:
        """The conversation with ``peer``, oldest first (the last ``limit`` messages if given)."""
        sql = "SELECT v FROM messages WHERE peer = ? ORDER BY seq DESC"
        params: tuple[Any, ...] = (self._mac("peer", peer),)
        if limit is not None:
            sql += " LIMIT ?"
            params += (limit,)
        rows = self._all(sql, params)
        return [MessageRecord._from_bytes(self._open("message", r[0])) for r in reversed(rows)]

    def mark_read(self, peer: str) -> None:
        """Reset a contact's unread count."""
        with self.transaction():
            contact = self.get_contact(peer)
            if contact is not None and contact.unread:
                self._write_contact(replace(contact, unread=0))

    # ----- outbox ----------------------------------------------------------------------------
    def _outbox_bytes(self, item: OutboxItem) -> bytes:
        return bytes(cbor2.dumps([item.envelope_id, item.peer, item.payload, item.created_at, item.attempts,
                                  item.meta]))

    def outbox_put(self, item: OutboxItem) -> None:
        """Persist an envelope before it is sent; it stays until :meth:`outbox_ack`."""
        with self.transaction():
            self._db.execute("INSERT OR REPLACE INTO outbox (eid, v) VALUES (?, ?)",
                             (self._mac("env", item.envelope_id),
                              self._seal("outbox", self._outbox_bytes(item))))

    def outbox_pending(self) -> list[OutboxItem]:
        """Unacknowledged envelopes, oldest first (resend them on reconnect)."""
        items = []
        for (blob,) in self._all("SELECT v FROM outbox ORDER BY seq"):
            e, p, pl, t, a, m = cbor2.loads(self._open("outbox", blob))
            items.append(OutboxItem(e, p, pl, t, a, m))
        return items

    def outbox_attempted(self, envelope_id: str) -> None:
        """Count one more send attempt of an envelope."""
        with self.transaction():
            eid = self._mac("env", envelope_id)
            row = self._one("SELECT v FROM outbox WHERE eid = ?", (eid,))
            if row is None:
                return
            e, p, pl, t, a, m = cbor2.loads(self._open("outbox", row[0]))
            item = OutboxItem(e, p, pl, t, a + 1, m)
            self._db.execute("UPDATE outbox SET v = ? WHERE eid = ?",
                             (self._seal("outbox", self._outbox_bytes(item)), self._mac("env", envelope_id)))

    def outbox_ack(self, envelope_id: str) -> bool:
        """The relay acknowledged an envelope: drop it. False if it was not pending."""
        with self.transaction():
            cur = self._db.execute("DELETE FROM outbox WHERE eid = ?", (self._mac("env", envelope_id),))
            return cur.rowcount > 0

    # ----- inbound dedupe --------------------------------------------------------------------
    def seen(self, envelope_id: str) -> bool:
        """True if an inbound envelope with this id was already processed."""
        row = self._one("SELECT 1 FROM seen WHERE iid = ?", (self._mac("in", envelope_id),))
        return row is not None

    def mark_seen(self, envelope_id: str) -> bool:
        """Remember an inbound envelope id; False if it was already seen. Old ids are pruned."""
        with self.transaction():
            iid = self._mac("in", envelope_id)
            cur = self._db.execute("INSERT OR IGNORE INTO seen (iid) VALUES (?)", (iid,))
            if cur.rowcount and cur.lastrowid is not None and cur.lastrowid % 1000 == 0:
                self._db.execute("DELETE FROM seen WHERE seq <= ?", (cur.lastrowid - SEEN_KEEP,))
            return cur.rowcount > 0
