"""Distance arithmetic shared by the evaluations (pure numpy)."""

from __future__ import annotations

import hashlib
import platform
import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from scanner.hashers.spec import PDQ

__all__ = [
    "PDQ_THRESHOLDS",
    "environment",
    "file_digest",
    "near_duplicate_clusters",
    "nearest",
    "pair_histogram",
    "percentiles",
    "thresholds_for",
]

PDQ_THRESHOLDS: tuple[int, ...] = (0, 8, 16, 24, PDQ.match_distance, 40, 48, 64)
"""Distance thresholds (of 256 bits) at which rates are reported; scaled for other widths."""


def thresholds_for(bits: int, default: int) -> list[int]:
    """The report's thresholds for a ``bits``-wide hash, always including the algorithm's own ``default``."""
    ts = {round(t * bits / PDQ.bits) for t in PDQ_THRESHOLDS} | {default}
    return sorted(ts)


def _popcount_xor(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(N, nb) x (M, nb) -> (N, M) Hamming distances."""
    x = np.bitwise_xor(a[:, None, :], b[None, :, :])
    return np.bitwise_count(x).sum(axis=2, dtype=np.int32)


def nearest(
    queries: np.ndarray, bank: np.ndarray, *, query_dihedral: np.ndarray | None = None, block: int = 512
) -> tuple[np.ndarray, np.ndarray]:
    """Nearest bank row per query: (distances (N,), indices (N,)); -1 / bits+1 when the bank is empty.

    With ``query_dihedral`` ((N, 8, nb)) the distance is the minimum over the 8 variants of the query, as a
    matcher that tries every rotation and flip would see it.
    """
    n = queries.shape[0]
    nb = queries.shape[1] if queries.ndim == 2 else 0
    if bank.shape[0] == 0 or n == 0:
        return np.full(n, nb * 8 + 1, dtype=np.int32), np.full(n, -1, dtype=np.int64)
    dist = np.empty(n, dtype=np.int32)
    idx = np.empty(n, dtype=np.int64)
    for s in range(0, n, block):
        if query_dihedral is not None:
            q = query_dihedral[s : s + block]
            d = np.stack([_popcount_xor(q[:, v, :], bank) for v in range(q.shape[1])]).min(axis=0)
        else:
            d = _popcount_xor(queries[s : s + block], bank)
        idx[s : s + block] = d.argmin(axis=1)
        dist[s : s + block] = d.min(axis=1)
    return dist, idx


def pair_histogram(
    a: np.ndarray, b: np.ndarray, bits: int, *, exclude_diagonal: bool = False, block: int = 512
) -> np.ndarray:
    """Histogram (length bits+1) of all pairwise distances between rows of ``a`` and ``b``."""
    hist = np.zeros(bits + 1, dtype=np.int64)
    for s in range(0, a.shape[0], block):
        d = _popcount_xor(a[s : s + block], b)
        if exclude_diagonal:
            rows = np.arange(d.shape[0])
            cols = rows + s
            keep = cols < d.shape[1]
            d = d.astype(np.int64)
            d[rows[keep], cols[keep]] = -1
            d = d[d >= 0]
        hist += np.bincount(d.ravel(), minlength=bits + 1)[: bits + 1]
    return hist


def percentiles(
    values: Sequence[float] | np.ndarray, qs: Sequence[float] = (5, 25, 50, 75, 95)
) -> dict[str, float]:
    arr = np.asarray(values, dtype=np.float64)
    if arr.size == 0:
        return {f"p{int(q)}": float("nan") for q in qs}
    return {f"p{int(q)}": float(np.percentile(arr, q)) for q in qs}


def near_duplicate_clusters(hashes: np.ndarray, thr: int, *, block: int = 256) -> np.ndarray:
    """Cluster label per row: connected components of Hamming distance ``<= thr`` (union-find).

    A label is the index of its cluster's root. Pairs ``a < b`` are joined in row-major order with
    ``parent[find(a)] = find(b)``, so the labels (which ``research calibrate`` uses to halve its splits) are a
    fixed function of the input; rows are compared ``block`` at a time, so memory stays ``block x N``.
    """
    n = len(hashes)
    parent = list(range(n))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for s in range(0, n, block):
        rows, cols = np.nonzero(_popcount_xor(hashes[s : s + block], hashes) <= thr)
        upper = cols > rows + s
        for a, b in zip((rows[upper] + s).tolist(), cols[upper].tolist(), strict=True):
            parent[find(a)] = find(b)
    return np.array([find(i) for i in range(n)], dtype=np.int64)


def file_digest(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def environment() -> dict[str, Any]:
    """Versions that a reader needs to interpret the figures."""
    import numpy
    import PIL

    return {
        "python": platform.python_version(),
        "numpy": numpy.__version__,
        "pillow": PIL.__version__,
        "machine": platform.machine(),
        "pdq_implementation": "scanner.hashers.pdq (numpy, bit-exact with "
        "ThreatExchange C++ via the pdqhash bindings)",
        "decoder": f"Pillow {PIL.__version__}",
    }


def run_meta(seed: int, started: float, **fields: Any) -> dict[str, Any]:
    """An evaluation's ``meta``: its seed, its own ``fields``, the seconds since ``started``
    (``time.perf_counter()``) and the :func:`environment`, in that order."""
    return {"seed": seed, **fields, "timings": {"total_s": time.perf_counter() - started}, **environment()}
