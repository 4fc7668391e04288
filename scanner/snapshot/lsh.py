"""Bit-sampling LSH keys and their keyed digests (``docs/snapshot-format.md`` sections 3 and 4).

Bit ``i`` of a hash is bit ``7 - i % 8`` of byte ``i // 8`` (bit 0 is the most significant bit of the first
byte, as in the hex string). Table ``t`` samples ``k`` distinct positions drawn from
``BLAKE2b-512(key=seed, data="positions" || u32be(t) || u32be(counter))``, one byte per candidate
(``byte % hash_bits``), skipping repeats. Its key packs the sampled bits in that order, most significant bit
first, into ``ceil(k / 8)`` bytes. The key's digest is ``BLAKE2b-128(key=salt, person="pocketscan-t" ||
u32be(t), data=key)``.
"""

from __future__ import annotations

import hashlib
import struct

import numpy as np

__all__ = [
    "KeyDigester",
    "hash_bits_matrix",
    "key_bytes",
    "key_values",
    "keys_for_bits",
    "neighbour_keys",
    "pack_key_values",
    "table_positions",
]


def table_positions(seed: bytes, tables: int, bits: int, hash_bits: int = 256) -> np.ndarray:
    """The ``(tables, bits)`` sampled bit positions derived from ``seed``."""
    if 256 % hash_bits or bits > hash_bits:
        raise ValueError("hash width must divide 256 and exceed the bits per table")
    out = np.zeros((tables, bits), dtype=np.int64)
    for t in range(tables):
        chosen: list[int] = []
        seen: set[int] = set()
        counter = 0
        while len(chosen) < bits:
            block = hashlib.blake2b(b"positions" + struct.pack(">II", t, counter), key=seed).digest()
            for byte in block:
                pos = byte % hash_bits
                if pos not in seen:
                    seen.add(pos)
                    chosen.append(pos)
                    if len(chosen) == bits:
                        break
            counter += 1
        out[t] = chosen
    return out


def hash_bits_matrix(hashes: np.ndarray) -> np.ndarray:
    """Unpack ``(N, nbytes)`` uint8 hashes into ``(N, nbytes * 8)`` bits (uint8 0/1, bit 0 first)."""
    return np.unpackbits(hashes, axis=1, bitorder="big")


def keys_for_bits(bits: np.ndarray, positions: np.ndarray) -> np.ndarray:
    """Keys of every table: ``(N, hash_bits)`` bits, ``(L, k)`` positions -> ``(N, L, ceil(k/8))`` uint8."""
    sampled = bits[:, positions]  # (N, L, k)
    return np.packbits(sampled, axis=2, bitorder="big")


def key_bytes(bits_row: np.ndarray, positions_row: np.ndarray) -> bytes:
    """The key of one table for one hash (reference form of :func:`keys_for_bits`)."""
    return np.packbits(bits_row[positions_row], bitorder="big").tobytes()


def neighbour_keys(key: bytes, bits: int) -> list[bytes]:
    """The ``bits`` keys at Hamming distance 1 from ``key`` (bit ``j`` of the key flipped, in order)."""
    out = []
    for j in range(bits):
        flipped = bytearray(key)
        flipped[j // 8] ^= 0x80 >> (j % 8)
        out.append(bytes(flipped))
    return out


class KeyDigester:
    """Keyed, table-separated BLAKE2b-128 digests of LSH keys."""

    def __init__(self, salt: bytes, tables: int) -> None:
        self._bases = [
            hashlib.blake2b(key=salt, digest_size=16, person=b"pocketscan-t" + struct.pack(">I", t))
            for t in range(tables)
        ]

    def digest(self, table: int, key: bytes) -> bytes:
        """The 16-byte digest of ``key`` in ``table``."""
        h = self._bases[table].copy()
        h.update(key)
        return h.digest()

    def digest_many(self, table: int, keys: np.ndarray) -> bytes:
        """Digests of the rows of an ``(n, width)`` uint8 key array, concatenated (16 bytes each)."""
        copy = self._bases[table].copy

        def one(key: bytes) -> bytes:
            h = copy()
            h.update(key)
            return h.digest()

        rows = np.ascontiguousarray(keys).view(f"V{keys.shape[1]}").ravel().tolist()
        return b"".join(map(one, rows))


def pack_key_values(values: np.ndarray, bits: int) -> np.ndarray:
    """Keys given as integers ``0 .. 2^bits - 1`` (first key bit most significant) -> ``(n, ceil(bits/8))``
    uint8 keys, packed MSB first with the unused low bits of the last byte zero."""
    width = (bits + 7) // 8
    shifted = np.asarray(values, dtype=np.uint64) << np.uint64(8 * width - bits)
    be = shifted.astype(">u8").view(np.uint8).reshape(-1, 8)
    return np.ascontiguousarray(be[:, 8 - width :])


def key_values(keys: np.ndarray, bits: int) -> np.ndarray:
    """Inverse of :func:`pack_key_values`: ``(n, width)`` uint8 keys -> their integer values (uint64)."""
    width = keys.shape[1]
    padded = np.zeros((keys.shape[0], 8), dtype=np.uint8)
    padded[:, 8 - width :] = keys
    return padded.view(">u8").ravel().astype(np.uint64) >> np.uint64(8 * width - bits)
