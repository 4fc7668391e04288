"""Encrypted sessions with peers: the recipe layer over X3DH and the Double Ratchet.

Use this module, not :mod:`client.crypto.x3dh` / :mod:`client.crypto.ratchet` directly. It is
pure: no I/O, no clock (pass ``now``), randomness from an optional ``rng``.

* :func:`initiate_session` starts a session from a peer's prekey bundle (the bundle's identity
  key must hash to the peer's account id and match the key we already know, else
  :class:`~client.errors.IdentityKeyChanged`).
* :meth:`SessionRecord.encrypt` returns a message payload (the bytes the relay carries).
* :func:`decrypt_message` opens a payload from a peer, creating the session on a first
  (prekey) message. It is transactional: on any error neither the record nor the prekeys change.
  On success persist the returned record and the prekeys in one store transaction.

Payload format (CBOR map, version 1)::

    {"v": 1, "b": base_key(32), "h": header(40), "c": ciphertext||tag,
     "x": [identity_key, ephemeral_key, signed_prekey_id, one_time_prekey_id]   # prekey messages only}

``b`` (the X3DH ephemeral key) names the session, so both sides converge after simultaneous
setups (a record keeps the current session and up to :data:`MAX_PREVIOUS_SESSIONS` older ones,
as libsignal does). The initiator repeats ``x`` on every message until the first reply.

The plaintext inside is a :class:`Content` (CBOR, padded to 160-byte blocks like Signal).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any, Literal

import cbor2

from client.crypto.attachments import AttachmentPointer
from client.crypto.identity import IdentityKeyPair, Rng, account_id_from_public_key
from client.crypto.ratchet import Header, RatchetState
from client.crypto.x3dh import InitialHeader, PreKeyBundle, PreKeyState, initiate, respond
from client.errors import CryptoError, DecryptionFailed, IdentityKeyChanged, InvalidBundle, NoSession

__all__ = [
    "MAX_PAYLOAD",
    "MAX_PREVIOUS_SESSIONS",
    "PAYLOAD_VERSION",
    "Content",
    "Decrypted",
    "Session",
    "SessionRecord",
    "check_identity",
    "decrypt_message",
    "initiate_session",
]

PAYLOAD_VERSION = 1
"""Version of the message payload format."""
MAX_PAYLOAD = 256 * 1024
"""Largest payload accepted (text and attachment pointers only; images travel as blobs)."""
MAX_PREVIOUS_SESSIONS = 4
"""Older sessions kept per peer for messages still in flight after a re-setup."""
_PAD_BLOCK = 160
_PAYLOAD_KEYS = frozenset({"v", "b", "h", "c", "x"})

ContentType = Literal["text", "image", "receipt"]


def check_identity(account_id: str, presented_key: bytes, known_key: bytes | None) -> None:
    """Raise IdentityKeyChanged unless ``presented_key`` is this account's key and matches what we know."""
    if account_id_from_public_key(presented_key) != account_id:
        raise IdentityKeyChanged(
            f"the identity key offered for {account_id} does not belong to that account",
            account_id=account_id, old_key=known_key, new_key=presented_key)
    if known_key is not None and known_key != presented_key:
        raise IdentityKeyChanged(
            f"the identity key of {account_id} changed: verify the safety number",
            account_id=account_id, old_key=known_key, new_key=presented_key)


@dataclass
class Session:
    """One ratchet with a peer, named by its X3DH base key."""

    base_key: bytes
    ratchet: RatchetState
    pending: InitialHeader | None = None
    """The X3DH header to repeat until the peer's first reply (initiator only)."""
    setup: InitialHeader | None = None
    """The X3DH header the session was created from (responder only); repeats must equal it."""

    def _to_obj(self) -> list[Any]:
        pending = None if self.pending is None else self.pending.to_list()
        setup = None if self.setup is None else self.setup.to_list()
        return [self.base_key, self.ratchet.to_bytes(), pending, setup]

    @classmethod
    def _from_obj(cls, obj: list[Any]) -> Session:
        base, ratchet, pending, setup = obj
        return cls(base, RatchetState.from_bytes(ratchet),
                   None if pending is None else InitialHeader.from_list(pending),
                   None if setup is None else InitialHeader.from_list(setup))


@dataclass
class SessionRecord:
    """All sessions with one peer: ``sessions[0]`` is current."""

    peer_identity: bytes
    sessions: list[Session] = field(default_factory=list)

    @property
    def account_id(self) -> str:
        """The peer's account id."""
        return account_id_from_public_key(self.peer_identity)

    def encrypt(self, plaintext: bytes) -> bytes:
        """Encrypt ``plaintext`` (e.g. ``Content.to_bytes()``) into a payload for the peer."""
        if not self.sessions:
            raise NoSession(f"no session with {self.account_id}: fetch their prekey bundle first")
        s = self.sessions[0]
        header, ct = s.ratchet.encrypt(plaintext)
        msg: dict[str, Any] = {"v": PAYLOAD_VERSION, "b": s.base_key, "h": header.to_bytes(), "c": ct}
        if s.pending is not None:
            msg["x"] = s.pending.to_list()
        return bytes(cbor2.dumps(msg))

    def to_bytes(self) -> bytes:
        """Serialise (secret: store it encrypted)."""
        sessions = [s._to_obj() for s in self.sessions]
        return bytes(cbor2.dumps({"v": 1, "peer": self.peer_identity, "s": sessions}))

    @classmethod
    def from_bytes(cls, data: bytes) -> SessionRecord:
        """Inverse of :meth:`to_bytes`."""
        d = cbor2.loads(data)
        if not isinstance(d, dict) or d.get("v") != 1:
            raise CryptoError("unknown session record version")
        return cls(d["peer"], [Session._from_obj(o) for o in d["s"]])

    def _promote(self, session: Session) -> None:
        rest = [s for s in self.sessions if s is not session]
        self.sessions = [session, *rest][: 1 + MAX_PREVIOUS_SESSIONS]


def initiate_session(identity: IdentityKeyPair, bundle: PreKeyBundle, *, account_id: str,
                     record: SessionRecord | None = None, known_identity_key: bytes | None = None,
                     rng: Rng = os.urandom) -> SessionRecord:
    """Start a session from ``bundle`` (X3DH as initiator); returns the record with it as current.

    Raises:
        IdentityKeyChanged: the bundle's key is not ``account_id``'s or differs from the known one.
        InvalidSignature: the signed prekey is not signed by the identity key.
    """
    check_identity(account_id, bundle.identity_key, known_identity_key)
    result = initiate(identity, bundle, rng=rng)
    ratchet = RatchetState.init_initiator(result.shared_secret, result.associated_data,
                                          result.remote_signed_prekey, rng=rng)
    session = Session(result.header.ephemeral_key, ratchet, pending=result.header)
    same_peer = record is not None and record.peer_identity == bundle.identity_key
    rec = record if record is not None and same_peer else SessionRecord(bundle.identity_key)
    rec._promote(session)
    return rec


@dataclass(frozen=True)
class Decrypted:
    """Result of :func:`decrypt_message`."""

    record: SessionRecord
    plaintext: bytes
    used_one_time_prekey: int | None
    new_session: bool

    def __repr__(self) -> str:
        return f"Decrypted(peer={self.record.account_id!r}, new_session={self.new_session})"


def _parse(payload: bytes) -> tuple[bytes, Header, bytes, InitialHeader | None]:
    if not isinstance(payload, bytes | bytearray) or len(payload) > MAX_PAYLOAD:
        raise DecryptionFailed("message could not be decrypted (missing or too large)")
    try:
        d = cbor2.loads(bytes(payload))
    except Exception:  # cbor2 raises several types on garbage; all mean "malformed"
        raise DecryptionFailed("message could not be decrypted (malformed payload)") from None
    if not isinstance(d, dict) or d.get("v") != PAYLOAD_VERSION:
        raise DecryptionFailed("message could not be decrypted (unknown payload version)")
    if not set(d) <= _PAYLOAD_KEYS:
        raise DecryptionFailed("message could not be decrypted (malformed payload)")
    base, hdr, ct = d.get("b"), d.get("h"), d.get("c")
    if not (isinstance(base, bytes) and len(base) == 32 and isinstance(hdr, bytes) and isinstance(ct, bytes)):
        raise DecryptionFailed("message could not be decrypted (malformed payload)")
    x3dh = None
    if "x" in d:
        try:
            x3dh = InitialHeader.from_list(d["x"])
        except InvalidBundle:
            raise DecryptionFailed("message could not be decrypted (malformed session setup)") from None
        if x3dh.ephemeral_key != base:
            raise DecryptionFailed("message could not be decrypted (inconsistent session setup)")
    return base, Header.from_bytes(hdr), ct, x3dh


def decrypt_message(identity: IdentityKeyPair, prekeys: PreKeyState, record: SessionRecord | None,
                    payload: bytes, *, sender_account_id: str, known_identity_key: bytes | None = None,
                    rng: Rng = os.urandom) -> Decrypted:
    """Decrypt a payload from ``sender_account_id`` (the relay-authenticated sender).

    On success the returned record (``record`` updated in place, or a new one) and ``prekeys``
    (one-time prekey removed) must be persisted together. On error nothing changed.

    Raises:
        DecryptionFailed: tampered, truncated, replayed (DuplicateMessage), too far ahead
            (TooFarAhead), or no matching session.
        IdentityKeyChanged: a session setup carries a key that is not the sender's known key.
    """
    base, header, ct, x3dh = _parse(payload)
    if record is not None:
        if record.account_id != sender_account_id:
            raise CryptoError("session record does not belong to the sender")
        for session in record.sessions:
            if session.base_key == base:
                if x3dh is not None and x3dh != session.setup:
                    raise DecryptionFailed("message could not be decrypted (session setup does not match)")
                plaintext = session.ratchet.decrypt(header, ct, rng=rng)
                session.pending = None
                record._promote(session)
                return Decrypted(record, plaintext, None, False)
    if x3dh is None:
        raise DecryptionFailed("message could not be decrypted (no session for it: ask the sender to resend)")
    known = known_identity_key
    if known is None and record is not None:
        known = record.peer_identity
    check_identity(sender_account_id, x3dh.identity_key, known)
    sk, ad = respond(identity, prekeys, x3dh)
    spk = prekeys.signed_by_id(x3dh.signed_prekey_id)
    if spk is None:  # respond() already checked; kept explicit for -O runs
        raise DecryptionFailed("message could not be decrypted (its signed prekey has expired)")
    ratchet = RatchetState.init_responder(sk, ad, spk.keypair)
    plaintext = ratchet.decrypt(header, ct, rng=rng)
    if x3dh.one_time_prekey_id is not None:
        prekeys.remove_one_time(x3dh.one_time_prekey_id)
    rec = record if record is not None else SessionRecord(x3dh.identity_key)
    rec._promote(Session(base, ratchet, setup=x3dh))
    return Decrypted(rec, plaintext, x3dh.one_time_prekey_id, True)


@dataclass(frozen=True)
class Content:
    """What a message says, inside the encryption: text, an image pointer, or delivery receipts."""

    kind: ContentType
    msg_id: str
    sent_at: float
    text: str | None = None
    attachment: AttachmentPointer | None = None
    receipts: tuple[str, ...] = ()

    def __repr__(self) -> str:
        return f"Content(kind={self.kind!r}, msg_id={self.msg_id!r})"

    def to_bytes(self) -> bytes:
        """CBOR, padded to a multiple of 160 bytes (0x80 then zeros) to blur lengths."""
        d: dict[str, Any] = {"v": 1, "k": self.kind, "id": self.msg_id, "t": self.sent_at}
        if self.text is not None:
            d["text"] = self.text
        if self.attachment is not None:
            d["att"] = self.attachment.to_dict()
        if self.receipts:
            d["rcpt"] = list(self.receipts)
        raw = bytes(cbor2.dumps(d)) + b"\x80"
        return raw + bytes(-len(raw) % _PAD_BLOCK)

    @classmethod
    def from_bytes(cls, data: bytes) -> Content:
        """Strip padding and parse; raise DecryptionFailed on malformed content."""
        from client.content import decode_content_map

        end = data.rstrip(b"\x00")
        if not end.endswith(b"\x80"):
            raise DecryptionFailed("message content is malformed (padding)")
        d = decode_content_map(end[:-1])  # the one strict schema: raises ContentInvalid
        att = AttachmentPointer.from_dict(d["att"]) if "att" in d else None
        return cls(d["k"], d["id"], float(d["t"]), d.get("text"), att, tuple(d.get("rcpt", ())))
