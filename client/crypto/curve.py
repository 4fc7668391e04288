"""HAZMAT: use client.session. X25519 key pairs and Diffie-Hellman (RFC 7748) on ``cryptography``."""

from __future__ import annotations

import os
from dataclasses import dataclass

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey

from client.crypto.identity import Rng
from client.errors import DecryptionFailed

__all__ = ["KeyPair", "generate_keypair", "public_from_private", "x25519"]


@dataclass(frozen=True)
class KeyPair:
    """A raw X25519 key pair (32-byte private scalar, 32-byte public key)."""

    private: bytes
    public: bytes

    def __repr__(self) -> str:
        return f"KeyPair(public={self.public.hex()[:16]}...)"


def public_from_private(private: bytes) -> bytes:
    """The X25519 public key of a private scalar."""
    return X25519PrivateKey.from_private_bytes(private).public_key().public_bytes_raw()


def generate_keypair(rng: Rng = os.urandom) -> KeyPair:
    """A fresh X25519 key pair from 32 bytes of ``rng``."""
    private = rng(32)
    return KeyPair(private=private, public=public_from_private(private))


def x25519(private: bytes, public: bytes) -> bytes:
    """DH(private, public); raise DecryptionFailed for malformed or low-order public keys."""
    try:
        peer = X25519PublicKey.from_public_bytes(public)
        return X25519PrivateKey.from_private_bytes(private).exchange(peer)
    except ValueError:
        raise DecryptionFailed("key agreement failed (invalid public key)") from None
