"""Vectorised Hamming distances between packed hashes (one row of bytes per hash)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["distance_matrix", "distances_to_many", "hamming", "pack_hashes", "popcount"]

_POPCOUNT8 = np.array([bin(i).count("1") for i in range(256)], dtype=np.uint8)


def popcount(a: np.ndarray) -> np.ndarray:
    """Number of set bits of each uint8 element."""
    if hasattr(np, "bitwise_count"):
        return np.bitwise_count(a)
    return _POPCOUNT8[a]  # pragma: no cover - numpy < 2


def hamming(a: bytes, b: bytes) -> int:
    """Number of differing bits between two hashes of the same length."""
    if len(a) != len(b):
        raise ValueError(f"hashes differ in length ({len(a)} and {len(b)} bytes)")
    return (int.from_bytes(a, "big") ^ int.from_bytes(b, "big")).bit_count()


def pack_hashes(hashes: Sequence[bytes]) -> np.ndarray:
    """Stack equal-length hashes into an ``(N, nbytes)`` uint8 array."""
    if not hashes:
        return np.zeros((0, 0), dtype=np.uint8)
    width = len(hashes[0])
    if any(len(h) != width for h in hashes):
        raise ValueError("all hashes must have the same length")
    return np.frombuffer(b"".join(hashes), dtype=np.uint8).reshape(len(hashes), width).copy()


def _as_bank(bank: np.ndarray) -> np.ndarray:
    arr = np.asarray(bank)
    if arr.dtype != np.uint8 or arr.ndim != 2:
        raise ValueError(f"expected an (N, nbytes) uint8 array, got {arr.shape} {arr.dtype}")
    return arr


def distances_to_many(query: bytes, bank: np.ndarray) -> np.ndarray:
    """Distances from one hash to each row of ``bank`` (``(N, nbytes)`` uint8) as an ``(N,)`` int array."""
    rows = _as_bank(bank)
    q = np.frombuffer(query, dtype=np.uint8)
    if rows.shape[0] and q.shape[0] != rows.shape[1]:
        raise ValueError(f"query has {q.shape[0]} bytes, bank rows have {rows.shape[1]}")
    if rows.shape[0] == 0:
        return np.zeros(0, dtype=np.int64)
    return popcount(np.bitwise_xor(rows, q)).sum(axis=1, dtype=np.int64)


def distance_matrix(a: np.ndarray, b: np.ndarray, *, block: int = 4096) -> np.ndarray:
    """All pairwise distances between rows of ``a`` (N, nbytes) and ``b`` (M, nbytes): an (N, M) array.

    Works in blocks of ``block`` rows of ``a`` so memory stays bounded for large N x M.
    """
    left = _as_bank(a)
    right = _as_bank(b)
    if left.shape[0] and right.shape[0] and left.shape[1] != right.shape[1]:
        raise ValueError(f"hash widths differ ({left.shape[1]} and {right.shape[1]} bytes)")
    out = np.zeros((left.shape[0], right.shape[0]), dtype=np.int64)
    if not left.shape[0] or not right.shape[0]:
        return out
    step = max(1, block * 64 // max(1, right.shape[0]))
    for start in range(0, left.shape[0], step):
        chunk = left[start : start + step]
        xor = np.bitwise_xor(chunk[:, None, :], right[None, :, :])
        out[start : start + step] = popcount(xor).sum(axis=2, dtype=np.int64)
    return out
