"""Build a signed snapshot from bank hashes (authority side).

Hashes are deduplicated, unpacked to bits in chunks, keyed per table, digested with the salt and written into
the Bloom body by :class:`~scanner.snapshot.bloom.BloomWriter`. Only digests of sampled-bit keys reach the file:
no raw bank hash is stored.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Sequence

import numpy as np

from scanner.authority import AuthorityKey
from scanner.calibration import Params, rounded_entry_count
from scanner.snapshot.bloom import BloomWriter
from scanner.snapshot.format import SIGNING_CONTEXT, Header
from scanner.snapshot.lsh import KeyDigester, hash_bits_matrix, table_positions

__all__ = ["build_snapshot", "pack_bank_hashes"]

_CHUNK = 32768


def pack_bank_hashes(hashes: Sequence[bytes] | np.ndarray, hash_bits: int = 256) -> np.ndarray:
    """Pack and deduplicate hashes into an ``(N, hash_bits / 8)`` uint8 array."""
    width = hash_bits // 8
    if isinstance(hashes, np.ndarray):
        arr = np.ascontiguousarray(hashes, dtype=np.uint8)
    else:
        if any(len(h) != width for h in hashes):
            raise ValueError(f"every hash must be {width} bytes")
        arr = np.frombuffer(b"".join(hashes), dtype=np.uint8)
    arr = arr.reshape(-1, width)
    if arr.shape[0] == 0:
        return arr
    return np.unique(arr, axis=0)


def build_snapshot(
    hashes: Sequence[bytes] | np.ndarray,
    *,
    params: Params,
    key: AuthorityKey,
    version: int,
    created: int,
    expires: int,
    algorithm: str = "pdq",
    seed: bytes | None = None,
    salt: bytes | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> bytes:
    """The bytes of a signed snapshot of ``hashes`` (already filtered: quality >= 50, not expired).

    Args:
        hashes: bank hashes, ``hash_bits / 8`` bytes each (a sequence or an ``(N, nbytes)`` uint8 array).
        params: matching parameters (usually from :func:`scanner.calibration.calibrate`).
        key: the authority signing key.
        version: snapshot version (devices refuse lower versions than they accepted).
        created: creation time, Unix seconds.
        expires: expiry time, Unix seconds.
        algorithm: hash algorithm name.
        seed: 32-byte position seed (random when omitted).
        salt: 32-byte digest key (random when omitted).
        progress: called with (keys done, keys total).
    """
    seed = os.urandom(32) if seed is None else seed
    salt = os.urandom(32) if salt is None else salt
    packed = pack_bank_hashes(hashes, params.hash_bits)
    positions = table_positions(seed, params.tables, params.bits, params.hash_bits)
    digester = KeyDigester(salt, params.tables)
    writer = BloomWriter(params.bloom_bits, params.bloom_hashes)
    width = (params.bits + 7) // 8
    total = packed.shape[0] * params.tables
    done = 0
    for start in range(0, packed.shape[0], _CHUNK):
        bits = hash_bits_matrix(packed[start:start + _CHUNK])
        for t in range(params.tables):
            keys = np.packbits(bits[:, positions[t]], axis=1, bitorder="big")
            writer.add_digests(digester.digest_many(t, keys.tobytes(), width))
            done += keys.shape[0]
            if progress is not None:
                progress(done, total)
    body = writer.body()
    header = Header(
        snapshot_version=version,
        created=created,
        expires=expires,
        algorithm=algorithm,
        hash_bits=params.hash_bits,
        tables=params.tables,
        bits=params.bits,
        min_votes=params.min_votes,
        probe_radius=params.probe_radius,
        bloom_bits=params.bloom_bits,
        bloom_hashes=params.bloom_hashes,
        entry_count=rounded_entry_count(packed.shape[0]),
        key_id=key.key_id,
        seed=seed,
        salt=salt,
        body_length=len(body),
        body_sha256=hashlib.sha256(body).digest(),
    ).pack()
    signature = key.sign(SIGNING_CONTEXT + header)
    return header + body + signature
