"""Safety numbers: Signal's numeric fingerprint (libsignal ``NumericFingerprintGenerator``, version 0 hash).

Per party: ``h = u16_be(0) || key || stable_id``, then ``iterations`` times
``h = SHA-512(h || key)``; the first 30 bytes of ``h`` are cut into six 5-byte chunks, each read
as a big-endian 40-bit integer ``mod 100000`` and printed as 5 digits: 30 digits per party.
The two halves are sorted and concatenated into the 60-digit safety number, so both sides see
the same number.

pocketscan's adaptation (:func:`safety_number`): ``key`` is our raw 32-byte Ed25519 identity
public key (Signal: the 33-byte ``0x05 || X25519`` key) and ``stable_id`` is the UTF-8 account
id (Signal: the phone number or ACI). :func:`signal_safety_number` is the unadapted
construction, checked against libsignal's published vector in the tests.
"""

from __future__ import annotations

import hashlib
import hmac

from client.crypto.identity import account_id_from_public_key

__all__ = ["ITERATIONS", "fingerprint_half", "format_safety_number", "safety_number",
           "safety_numbers_match", "signal_safety_number"]

ITERATIONS = 5200
"""SHA-512 iterations (libsignal's value)."""
_VERSION = b"\x00\x00"


def fingerprint_half(key: bytes, stable_id: bytes, *, iterations: int = ITERATIONS) -> str:
    """The 30 digits one party contributes."""
    h = _VERSION + key + stable_id
    for _ in range(iterations):
        h = hashlib.sha512(h + key).digest()
    return "".join(f"{int.from_bytes(h[i:i + 5], 'big') % 100000:05d}" for i in range(0, 30, 5))


def signal_safety_number(local_id: bytes, local_key: bytes, remote_id: bytes, remote_key: bytes, *,
                         iterations: int = ITERATIONS) -> str:
    """Signal's 60-digit displayable fingerprint for arbitrary key encodings and ids."""
    a = fingerprint_half(local_key, local_id, iterations=iterations)
    b = fingerprint_half(remote_key, remote_id, iterations=iterations)
    return a + b if a <= b else b + a


def safety_number(local_key: bytes, remote_key: bytes, *, iterations: int = ITERATIONS) -> str:
    """pocketscan's safety number of two Ed25519 identity public keys (60 digits, symmetric)."""
    return signal_safety_number(
        account_id_from_public_key(local_key).encode(), local_key,
        account_id_from_public_key(remote_key).encode(), remote_key,
        iterations=iterations,
    )


def format_safety_number(number: str) -> str:
    """Twelve groups of five digits, four per line (as Signal shows them)."""
    groups = [number[i:i + 5] for i in range(0, len(number), 5)]
    return "\n".join(" ".join(groups[i:i + 4]) for i in range(0, len(groups), 4))


def safety_numbers_match(a: str, b: str) -> bool:
    """Compare two safety numbers (ignoring spaces), in constant time."""
    return hmac.compare_digest("".join(a.split()).encode(), "".join(b.split()).encode())
