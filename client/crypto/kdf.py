"""HAZMAT: use client.session. Key derivation for X3DH and the Double Ratchet.

Implements the KDFs of the Double Ratchet specification (Signal, rev. 1, 2016-11-20, §5.2
"Recommended cryptographic algorithms") exactly as libsignal does:

* ``KDF_RK(rk, dh_out)``: HKDF-SHA256 with ``rk`` as salt, ``dh_out`` as input key material and
  an application info string, 64 bytes split into a new root key and a chain key.
* ``KDF_CK(ck)``: HMAC-SHA256 keyed by the chain key, message-key seed = HMAC(ck, 0x01),
  next chain key = HMAC(ck, 0x02).
* Message keys: HKDF-SHA256 (zero salt) of the seed into 80 bytes: AES-256 key, HMAC key, CBC IV.

The info strings are parameters so the known-answer tests can use libsignal's
(``WhisperMessageKeys``) while pocketscan uses its own (:data:`MESSAGE_KEYS_INFO`).
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass

__all__ = [
    "CHAIN_KEY_SEED",
    "MESSAGE_KEYS_INFO",
    "MESSAGE_KEY_SEED",
    "ROOT_INFO",
    "MessageKeys",
    "hkdf",
    "kdf_ck",
    "kdf_rk",
    "message_keys",
]

MESSAGE_KEY_SEED = b"\x01"
"""HMAC input that turns a chain key into a message-key seed (spec §5.2)."""
CHAIN_KEY_SEED = b"\x02"
"""HMAC input that advances a chain key (spec §5.2)."""
ROOT_INFO = b"pocketscan ratchet v1"
"""HKDF info for the root chain (libsignal: ``WhisperRatchet``)."""
MESSAGE_KEYS_INFO = b"pocketscan message keys v1"
"""HKDF info expanding a message-key seed (libsignal: ``WhisperMessageKeys``)."""


def hkdf(ikm: bytes, *, salt: bytes | None, info: bytes, length: int) -> bytes:
    """HKDF-SHA256 (RFC 5869); ``salt=None`` means 32 zero bytes.

    Written on ``hmac.digest`` (one C call per block) because the ratchet calls it for every
    message; checked against RFC 5869's test vector and ``cryptography``'s HKDF in the tests.
    """
    if not 0 < length <= 255 * 32:
        raise ValueError("HKDF-SHA256 output length must be 1..8160 bytes")
    prk = hmac.digest(salt if salt else bytes(32), ikm, "sha256")
    okm, block = b"", b""
    for counter in range(1, -(-length // 32) + 1):
        block = hmac.digest(prk, block + info + bytes([counter]), "sha256")
        okm += block
    return okm[:length]


def kdf_rk(rk: bytes, dh_out: bytes, *, info: bytes = ROOT_INFO) -> tuple[bytes, bytes]:
    """KDF_RK: return ``(new_root_key, chain_key)``."""
    out = hkdf(dh_out, salt=rk, info=info, length=64)
    return out[:32], out[32:]


def kdf_ck(ck: bytes) -> tuple[bytes, bytes]:
    """KDF_CK: return ``(next_chain_key, message_key_seed)``."""
    return hmac.digest(ck, CHAIN_KEY_SEED, "sha256"), hmac.digest(ck, MESSAGE_KEY_SEED, "sha256")


@dataclass(frozen=True)
class MessageKeys:
    """The three keys of one message (AES-256-CBC + HMAC-SHA256)."""

    cipher_key: bytes
    mac_key: bytes
    iv: bytes

    def __repr__(self) -> str:
        return "MessageKeys(<secret>)"


def message_keys(seed: bytes, *, info: bytes = MESSAGE_KEYS_INFO) -> MessageKeys:
    """Expand a message-key seed into cipher key, MAC key and IV (80 bytes of HKDF)."""
    okm = hkdf(seed, salt=None, info=info, length=80)
    return MessageKeys(cipher_key=okm[:32], mac_key=okm[32:64], iv=okm[64:80])
