"""Verify a snapshot held in a buffer (bytes or a read-only mmap), without copying the Bloom body.

Checks, in order: size bounds, header fields, authority key id, Ed25519 signature over the header, SHA-256 of
the body against the header. Expiry and rollback are the matcher's policy (they need ``now`` and history).
"""

from __future__ import annotations

import hashlib
import mmap
from dataclasses import dataclass

from scanner.authority import key_id, verify_signature
from scanner.errors import SnapshotInvalid
from scanner.snapshot.format import HEADER_SIZE, SIGNATURE_SIZE, SIGNING_CONTEXT, Header

__all__ = ["Buffer", "VerifiedSnapshot", "fingerprint_of", "verify_snapshot"]

Buffer = bytes | bytearray | memoryview | mmap.mmap

_HASH_STEP = 1 << 22


@dataclass(frozen=True)
class VerifiedSnapshot:
    """A snapshot whose signature and body digest checked out.

    Attributes:
        header: the parsed header.
        fingerprint: hex SHA-256 of the whole file (the snapshot's public fingerprint).
        body: a read-only view of the Bloom body inside the caller's buffer.
    """

    header: Header
    fingerprint: str
    body: memoryview


def _sha256(view: memoryview) -> bytes:
    h = hashlib.sha256()
    for start in range(0, len(view), _HASH_STEP):
        h.update(view[start : start + _HASH_STEP])
    return h.digest()


def fingerprint_of(data: Buffer) -> str:
    """Hex SHA-256 of a snapshot file's bytes."""
    return _sha256(memoryview(data).cast("B")).hex()


def verify_snapshot(data: Buffer, public_key: bytes) -> VerifiedSnapshot:
    """Verify ``data`` against a pinned authority public key.

    Raises:
        SnapshotInvalid: truncated, corrupt, signed by another key, wrongly signed or tampered.
    """
    view = memoryview(data).cast("B").toreadonly()
    if len(view) < HEADER_SIZE + SIGNATURE_SIZE:
        raise SnapshotInvalid(f"truncated snapshot: {len(view)} bytes is shorter than any valid snapshot")
    header = Header.unpack(bytes(view[:HEADER_SIZE]))
    if len(view) < header.file_size:
        raise SnapshotInvalid(
            f"truncated snapshot: {len(view)} bytes, the header announces {header.file_size}"
        )
    if len(view) > header.file_size:
        raise SnapshotInvalid(f"corrupt snapshot: {len(view) - header.file_size} unexpected trailing bytes")
    if header.key_id != key_id(public_key):
        raise SnapshotInvalid("snapshot signed by a different authority key than the pinned one")
    header_bytes = bytes(view[:HEADER_SIZE])
    signature = bytes(view[HEADER_SIZE + header.body_length :])
    if not verify_signature(public_key, SIGNING_CONTEXT + header_bytes, signature):
        raise SnapshotInvalid("bad snapshot signature: the header was altered or not signed by the authority")
    body = view[HEADER_SIZE : HEADER_SIZE + header.body_length]
    if _sha256(body) != header.body_sha256:
        raise SnapshotInvalid("tampered snapshot: the Bloom body does not match the signed digest")
    return VerifiedSnapshot(header=header, fingerprint=_sha256(view).hex(), body=body)
