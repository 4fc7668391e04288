"""HAZMAT: use client.session. Identity keys and account ids.

An identity is an Ed25519 key pair (pynacl). Its X25519 form (the birational map of RFC 7748
§4.1, libsodium's ``crypto_sign_ed25519_{pk,sk}_to_curve25519``) is used for X3DH key agreement.

Account id, the canonical formula (the relay reimplements it without importing this module)::

    account_id = base32(sha256(ed25519_public_key_32_bytes)[:20]).rstrip("=").lower()

i.e. RFC 4648 base32 of the first 20 bytes (160 bits) of SHA-256 of the raw 32-byte Ed25519 public
key, lowercase, no padding: always 32 characters from ``a-z2-7``. For display it may be split in
groups of four with ``-`` (:func:`format_account_id`); :func:`parse_account_id` accepts either form.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import os
import re
from collections.abc import Callable
from dataclasses import dataclass

import nacl.bindings
import nacl.exceptions
import nacl.signing

from client.errors import InvalidBundle, InvalidSignature

__all__ = [
    "ACCOUNT_ID_LENGTH",
    "IdentityKeyPair",
    "Rng",
    "account_id_from_public_key",
    "ed25519_public_to_x25519",
    "format_account_id",
    "parse_account_id",
    "verify_signature",
]

Rng = Callable[[int], bytes]
"""A source of random bytes (``os.urandom`` by default; tests pass a seeded one)."""

ACCOUNT_ID_LENGTH = 32
"""Characters in a canonical account id."""

_ACCOUNT_RE = re.compile(r"^[a-z2-7]{32}$")


@functools.lru_cache(maxsize=4096)
def account_id_from_public_key(pub: bytes) -> str:
    """Canonical account id of a 32-byte Ed25519 identity public key (formula in the module docstring)."""
    if len(pub) != 32:
        raise ValueError("an identity public key is 32 bytes")
    return base64.b32encode(hashlib.sha256(pub).digest()[:20]).decode("ascii").rstrip("=").lower()


def format_account_id(account_id: str) -> str:
    """Split a canonical account id into dash-separated groups of four for display."""
    return "-".join(account_id[i : i + 4] for i in range(0, len(account_id), 4))


def parse_account_id(text: str) -> str:
    """Normalise user input (any case, spaces or dashes) to a canonical account id, or raise ValueError."""
    cleaned = re.sub(r"[\s\-]", "", text).lower()
    if not _ACCOUNT_RE.match(cleaned):
        raise ValueError(f"not an account id: expected 32 characters a-z/2-7, got {text!r}")
    return cleaned


def ed25519_public_to_x25519(pub: bytes) -> bytes:
    """X25519 form of an Ed25519 public key; raise InvalidBundle if it is not a valid point."""
    try:
        return bytes(nacl.bindings.crypto_sign_ed25519_pk_to_curve25519(pub))
    except (nacl.exceptions.RuntimeError, nacl.exceptions.ValueError, TypeError):
        raise InvalidBundle("identity key is not a valid Ed25519 public key") from None


def verify_signature(pub: bytes, message: bytes, signature: bytes) -> None:
    """Verify an Ed25519 signature; raise InvalidSignature if it does not verify."""
    try:
        nacl.signing.VerifyKey(pub).verify(message, signature)
    except (nacl.exceptions.BadSignatureError, nacl.exceptions.ValueError, TypeError):
        raise InvalidSignature("signature does not verify under the identity key") from None


@dataclass(frozen=True)
class IdentityKeyPair:
    """An Ed25519 identity key pair; ``seed`` is the 32-byte private seed."""

    seed: bytes

    @classmethod
    def generate(cls, rng: Rng = os.urandom) -> IdentityKeyPair:
        """A fresh identity from ``rng``."""
        return cls(seed=rng(32))

    def __post_init__(self) -> None:
        if len(self.seed) != 32:
            raise ValueError("an identity seed is 32 bytes")

    def __repr__(self) -> str:
        return f"IdentityKeyPair(account_id={self.account_id!r})"

    @functools.cached_property
    def _signing(self) -> nacl.signing.SigningKey:
        return nacl.signing.SigningKey(self.seed)

    @functools.cached_property
    def public(self) -> bytes:
        """The 32-byte Ed25519 public key."""
        return bytes(self._signing.verify_key)

    @property
    def account_id(self) -> str:
        """The canonical account id of this identity."""
        return account_id_from_public_key(self.public)

    def sign(self, message: bytes) -> bytes:
        """A 64-byte Ed25519 signature of ``message``."""
        return bytes(self._signing.sign(message).signature)

    @functools.cached_property
    def _x25519_private(self) -> bytes:
        return bytes(nacl.bindings.crypto_sign_ed25519_sk_to_curve25519(self.seed + self.public))

    def x25519_private(self) -> bytes:
        """The X25519 private scalar (for X3DH)."""
        return self._x25519_private

    def x25519_public(self) -> bytes:
        """The X25519 public key (for X3DH)."""
        return ed25519_public_to_x25519(self.public)
