"""HAZMAT: use client.session. The X3DH key agreement (Signal, "The X3DH Key Agreement Protocol", rev. 1).

Implements spec §2 (parameters: curve X25519, hash SHA-256, info ``pocketscan X3DH v1``),
§3.2 (prekey bundles: identity key, signed prekey + signature, one-time prekeys), §3.3 (the
initiator verifies the signature, then ``SK = KDF(DH1 || DH2 || DH3 [|| DH4])``) and §3.4 (the
responder recomputes SK and deletes the one-time prekey). ``KDF`` is HKDF-SHA256 over
``F || KM`` with ``F`` = 32 bytes of 0xFF, a zero-filled 32-byte salt and our info string.
``AD = Encode(IK_A) || Encode(IK_B)``.

pocketscan differences, all documented in docs/decisions.md: identity keys are Ed25519 (their
X25519 form does the DH, via the birational map) so they sign with plain Ed25519 rather than
XEdDSA; ``Encode(PK)`` is the raw 32-byte key (no 0x05 type byte); the signed prekey signature
covers ``SPK_SIG_CONTEXT || SPK`` for domain separation.

Signed prekeys rotate (:meth:`PreKeyState.rotate`, every :data:`SIGNED_PREKEY_ROTATION` seconds);
the old private key is kept :data:`SIGNED_PREKEY_GRACE` seconds for late initial messages and
then deleted by :meth:`PreKeyState.prune`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from typing import Any

import cbor2

from client.crypto.curve import KeyPair, generate_keypair, public_from_private, x25519
from client.crypto.identity import IdentityKeyPair, Rng, ed25519_public_to_x25519, verify_signature
from client.crypto.kdf import hkdf
from client.errors import DecryptionFailed, InvalidBundle

__all__ = [
    "DEFAULT_ONE_TIME_PREKEYS",
    "SIGNED_PREKEY_GRACE",
    "SIGNED_PREKEY_ROTATION",
    "SPK_SIG_CONTEXT",
    "X3DH_INFO",
    "InitialHeader",
    "OneTimePreKey",
    "PreKeyBundle",
    "PreKeyState",
    "SignedPreKey",
    "X3DHResult",
    "initiate",
    "respond",
]

X3DH_INFO = b"pocketscan X3DH v1"
"""HKDF info string of our X3DH (spec §2.1 "info")."""
SPK_SIG_CONTEXT = b"pocketscan signed prekey v1\x00"
"""Prefix of the message the identity key signs for a signed prekey."""
SIGNED_PREKEY_ROTATION = 7 * 24 * 3600.0
"""Seconds after which a signed prekey should be replaced."""
SIGNED_PREKEY_GRACE = 30 * 24 * 3600.0
"""Seconds a replaced signed prekey's private key is kept for late session setups."""
DEFAULT_ONE_TIME_PREKEYS = 100
"""One-time prekeys generated at account creation (and the refill target)."""

_F = b"\xff" * 32
_ZERO_SALT = b"\x00" * 32


def _need_bytes(value: object, size: int, what: str) -> bytes:
    if not isinstance(value, bytes) or len(value) != size:
        raise InvalidBundle(f"{what} must be {size} bytes")
    return value


def _need_id(value: object, what: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value < 2**32:
        raise InvalidBundle(f"{what} must be an integer id")
    return value


@dataclass(frozen=True)
class SignedPreKey:
    """A signed prekey with its private part (local only)."""

    key_id: int
    keypair: KeyPair
    signature: bytes
    created_at: float
    retired_at: float | None = None


@dataclass(frozen=True)
class OneTimePreKey:
    """A one-time prekey with its private part (local only)."""

    key_id: int
    keypair: KeyPair


@dataclass(frozen=True)
class PreKeyBundle:
    """What the relay hands to someone who wants to start a session with us (spec §3.2)."""

    identity_key: bytes
    signed_prekey_id: int
    signed_prekey: bytes
    signed_prekey_signature: bytes
    one_time_prekey_id: int | None = None
    one_time_prekey: bytes | None = None

    def to_dict(self) -> dict[str, Any]:
        """CBOR/msgpack-friendly dict (bytes stay bytes)."""
        d: dict[str, Any] = {
            "identity_key": self.identity_key,
            "signed_prekey_id": self.signed_prekey_id,
            "signed_prekey": self.signed_prekey,
            "signed_prekey_signature": self.signed_prekey_signature,
        }
        if self.one_time_prekey is not None:
            d["one_time_prekey_id"] = self.one_time_prekey_id
            d["one_time_prekey"] = self.one_time_prekey
        return d

    @classmethod
    def from_dict(cls, d: object) -> PreKeyBundle:
        """Validate and build a bundle; raise InvalidBundle on any malformed field."""
        if not isinstance(d, dict):
            raise InvalidBundle("a prekey bundle must be a mapping")
        otpk = d.get("one_time_prekey")
        return cls(
            identity_key=_need_bytes(d.get("identity_key"), 32, "identity_key"),
            signed_prekey_id=_need_id(d.get("signed_prekey_id"), "signed_prekey_id"),
            signed_prekey=_need_bytes(d.get("signed_prekey"), 32, "signed_prekey"),
            signed_prekey_signature=_need_bytes(d.get("signed_prekey_signature"), 64, "signature"),
            one_time_prekey_id=None if otpk is None else _need_id(d.get("one_time_prekey_id"), "one-time id"),
            one_time_prekey=None if otpk is None else _need_bytes(otpk, 32, "one_time_prekey"),
        )

    def verify(self) -> None:
        """Check the signed prekey signature; raise InvalidSignature if forged."""
        message = SPK_SIG_CONTEXT + self.signed_prekey
        verify_signature(self.identity_key, message, self.signed_prekey_signature)


@dataclass
class PreKeyState:
    """Our prekeys with their private parts: signed prekeys (newest last) and the one-time pool."""

    signed: list[SignedPreKey] = field(default_factory=list)
    one_time: dict[int, OneTimePreKey] = field(default_factory=dict)
    next_signed_id: int = 1
    next_one_time_id: int = 1

    @classmethod
    def create(cls, identity: IdentityKeyPair, now: float, *,
               one_time_count: int = DEFAULT_ONE_TIME_PREKEYS, rng: Rng = os.urandom) -> PreKeyState:
        """Fresh prekeys for a new account."""
        state = cls()
        state.rotate(identity, now, rng=rng)
        state.replenish(one_time_count, rng=rng)
        return state

    @property
    def current(self) -> SignedPreKey:
        """The signed prekey currently published."""
        if not self.signed:
            raise InvalidBundle("no signed prekey yet")
        return self.signed[-1]

    def needs_rotation(self, now: float) -> bool:
        """True when the current signed prekey is older than the rotation period."""
        return not self.signed or now - self.current.created_at >= SIGNED_PREKEY_ROTATION

    def rotate(self, identity: IdentityKeyPair, now: float, *, rng: Rng = os.urandom) -> SignedPreKey:
        """Make a new signed prekey current; the previous one is retired (kept until pruned)."""
        if self.signed:
            self.signed[-1] = replace(self.signed[-1], retired_at=now)
        kp = generate_keypair(rng)
        spk = SignedPreKey(self.next_signed_id, kp, identity.sign(SPK_SIG_CONTEXT + kp.public), now)
        self.next_signed_id += 1
        self.signed.append(spk)
        return spk

    def prune(self, now: float, *, grace: float = SIGNED_PREKEY_GRACE) -> list[int]:
        """Delete retired signed prekeys older than ``grace``; return their ids."""
        dropped = [s.key_id for s in self.signed[:-1]
                   if s.retired_at is not None and now - s.retired_at >= grace]
        self.signed = [s for s in self.signed if s.key_id not in dropped]
        return dropped

    def replenish(self, target: int = DEFAULT_ONE_TIME_PREKEYS, *,
                  rng: Rng = os.urandom) -> list[OneTimePreKey]:
        """Top the one-time pool up to ``target``; return the new keys (to upload)."""
        fresh = []
        while len(self.one_time) < target:
            otpk = OneTimePreKey(self.next_one_time_id, generate_keypair(rng))
            self.next_one_time_id += 1
            self.one_time[otpk.key_id] = otpk
            fresh.append(otpk)
        return fresh

    def signed_by_id(self, key_id: int) -> SignedPreKey | None:
        """A signed prekey we still hold, by id."""
        return next((s for s in self.signed if s.key_id == key_id), None)

    def remove_one_time(self, key_id: int) -> None:
        """Delete a one-time prekey after a session setup used it (spec §3.4)."""
        self.one_time.pop(key_id, None)

    def bundle(self, identity_key: bytes, one_time_id: int | None = None) -> PreKeyBundle:
        """A public bundle with the current signed prekey and (optionally) one one-time prekey."""
        spk = self.current
        otpk = self.one_time.get(one_time_id) if one_time_id is not None else None
        return PreKeyBundle(
            identity_key=identity_key,
            signed_prekey_id=spk.key_id,
            signed_prekey=spk.keypair.public,
            signed_prekey_signature=spk.signature,
            one_time_prekey_id=otpk.key_id if otpk else None,
            one_time_prekey=otpk.keypair.public if otpk else None,
        )

    def upload(self, identity_key: bytes) -> dict[str, Any]:
        """The public material to publish: identity key, current signed prekey, all one-time prekeys."""
        spk = self.current
        return {
            "identity_key": identity_key,
            "signed_prekey": {"id": spk.key_id, "key": spk.keypair.public, "signature": spk.signature},
            "one_time_prekeys": [{"id": k.key_id, "key": k.keypair.public} for k in self.one_time.values()],
        }

    def to_bytes(self) -> bytes:
        """Serialise (private keys included: store encrypted)."""
        return cbor2.dumps({
            "v": 1,
            "signed": [[s.key_id, s.keypair.private, s.signature, s.created_at, s.retired_at]
                       for s in self.signed],
            "one_time": [[k.key_id, k.keypair.private] for k in self.one_time.values()],
            "next_signed_id": self.next_signed_id,
            "next_one_time_id": self.next_one_time_id,
        })

    @classmethod
    def from_bytes(cls, data: bytes) -> PreKeyState:
        """Inverse of :meth:`to_bytes`."""
        d = cbor2.loads(data)
        return cls(
            signed=[SignedPreKey(i, KeyPair(p, public_from_private(p)), sig, c, r)
                    for i, p, sig, c, r in d["signed"]],
            one_time={i: OneTimePreKey(i, KeyPair(p, public_from_private(p))) for i, p in d["one_time"]},
            next_signed_id=d["next_signed_id"],
            next_one_time_id=d["next_one_time_id"],
        )


@dataclass(frozen=True)
class InitialHeader:
    """The X3DH part of an initial message (spec §3.3): who we are and which prekeys we used."""

    identity_key: bytes
    ephemeral_key: bytes
    signed_prekey_id: int
    one_time_prekey_id: int | None

    def to_list(self) -> list[Any]:
        """Compact serialisable form."""
        return [self.identity_key, self.ephemeral_key, self.signed_prekey_id, self.one_time_prekey_id]

    @classmethod
    def from_list(cls, value: object) -> InitialHeader:
        """Validate and build; raise InvalidBundle when malformed."""
        if not isinstance(value, list) or len(value) != 4:
            raise InvalidBundle("malformed session-setup header")
        ik, ek, spk_id, otpk_id = value
        return cls(
            identity_key=_need_bytes(ik, 32, "identity key"),
            ephemeral_key=_need_bytes(ek, 32, "ephemeral key"),
            signed_prekey_id=_need_id(spk_id, "signed prekey id"),
            one_time_prekey_id=None if otpk_id is None else _need_id(otpk_id, "one-time prekey id"),
        )


@dataclass(frozen=True)
class X3DHResult:
    """Output of a key agreement: the shared secret SK and the associated data AD."""

    shared_secret: bytes
    associated_data: bytes
    header: InitialHeader
    remote_signed_prekey: bytes

    def __repr__(self) -> str:
        return "X3DHResult(<secret>)"


def _kdf(km: bytes) -> bytes:
    return hkdf(_F + km, salt=_ZERO_SALT, info=X3DH_INFO, length=32)


def initiate(identity: IdentityKeyPair, bundle: PreKeyBundle, *, rng: Rng = os.urandom) -> X3DHResult:
    """Initiator side (spec §3.3): verify the bundle and derive SK; raise InvalidSignature if forged."""
    bundle.verify()
    ik_b = ed25519_public_to_x25519(bundle.identity_key)
    ek = generate_keypair(rng)
    km = (
        x25519(identity.x25519_private(), bundle.signed_prekey)
        + x25519(ek.private, ik_b)
        + x25519(ek.private, bundle.signed_prekey)
    )
    if bundle.one_time_prekey is not None:
        km += x25519(ek.private, bundle.one_time_prekey)
    header = InitialHeader(identity.public, ek.public, bundle.signed_prekey_id, bundle.one_time_prekey_id)
    return X3DHResult(_kdf(km), identity.public + bundle.identity_key, header, bundle.signed_prekey)


def respond(identity: IdentityKeyPair, prekeys: PreKeyState, header: InitialHeader) -> tuple[bytes, bytes]:
    """Responder side (spec §3.4): return ``(SK, AD)``. Does not delete the one-time prekey:
    the caller removes it once the initial ciphertext has decrypted (so a forgery cannot burn it).
    """
    spk = prekeys.signed_by_id(header.signed_prekey_id)
    if spk is None:
        raise DecryptionFailed("session setup refers to a signed prekey that no longer exists")
    ik_a = ed25519_public_to_x25519(header.identity_key)
    km = (
        x25519(spk.keypair.private, ik_a)
        + x25519(identity.x25519_private(), header.ephemeral_key)
        + x25519(spk.keypair.private, header.ephemeral_key)
    )
    if header.one_time_prekey_id is not None:
        otpk = prekeys.one_time.get(header.one_time_prekey_id)
        if otpk is None:
            raise DecryptionFailed("session setup refers to a one-time prekey already used or unknown")
        km += x25519(otpk.keypair.private, header.ephemeral_key)
    return _kdf(km), header.identity_key + identity.public
