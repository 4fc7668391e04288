"""PDQ, Meta's 256-bit perceptual hash, in numpy, bit-exact with the reference C++.

Algorithm (ThreatExchange ``pdq/cpp/hashing/pdqhashing.cpp`` and ``downscaling/downscaling.cpp``):

1. Luminance ``Y = 0.299 R + 0.587 G + 0.114 B``, rounded to float32. The oracle we are bit-exact with,
   the ``pdqhash`` bindings, evaluates this sum in float64 (numpy) and then rounds to float32; so do we.
2. Images with a side below 5 px hash to all zeros with quality 0.
3. Two passes of the Jarosz box filter: rows then columns, twice. The window along an axis of length
   ``n`` is ``ceil(n / 128)``; each 1-D pass is the reference's running sum in float32 (add the entering
   sample, then subtract the leaving one, divide by the number of samples actually in the window).
   Running sums accumulate rounding, so we replay them in exactly the same order (vectorised across the
   independent rows or columns, one numpy call per step along the filtered axis).
4. Decimation to 64x64 at pixel centres: ``in[int((i + 0.5) * n / 64)]``.
5. Quality: ``min(100, sum |int((u - v) * 100 / 255)| / 90)`` over vertical and horizontal neighbours.
6. DCT: ``B = D A D^T`` with the 16x64 matrix ``D[i][j] = sqrt(2/64) cos(pi/128 (i+1)(2j+1))``,
   accumulated in float32 in the reference's order (k = 0..63).
7. Bit ``k = 16 i + j`` is set when ``B[i][j]`` exceeds the lower median (128th smallest) of ``B``.
8. Hex is the 256-bit integer, most significant digit first (ThreatExchange / StopNCII convention).

The eight dihedral hashes come from the one DCT by transposes and sign flips of odd/even frequencies.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from scanner.hashers.base import HashResult, bits_to_bytes, check_rgb

__all__ = [
    "PDQ_MATCH_DISTANCE",
    "PDQ_MIN_QUALITY",
    "PdqHasher",
    "dct16",
    "dihedral_dcts",
    "jarosz_filter",
    "luma",
    "pdq_float",
    "pdq_hash",
]

PDQ_MATCH_DISTANCE = 31
"""Hamming distance at or below which two PDQ hashes are a match (ThreatExchange default)."""
PDQ_MIN_QUALITY = 50
"""Hashes below this quality are unreliable (the PDQ authors' advice): do not match on them."""
MIN_HASHABLE_DIM = 5
"""Images with a side shorter than this hash to all zeros with quality 0."""

_F32 = np.float32
_HUNDRED = np.float32(100.0)
_TWO55 = np.float32(255.0)


def luma(rgb: np.ndarray) -> np.ndarray:
    """Float32 luminance of an ``HxWx3`` uint8 array, rounded exactly like the reference bindings."""
    r = rgb[:, :, 0] * 0.299
    r += rgb[:, :, 1] * 0.587
    r += rgb[:, :, 2] * 0.114
    return r.astype(np.float32)


def window_size(dim: int) -> int:
    """Jarosz window for an axis of ``dim`` samples, downscaling to 64: ``ceil(dim / 128)``."""
    return (dim + 2 * 64 - 1) // (2 * 64)


@lru_cache(maxsize=256)
def _counts(length: int, window: int) -> np.ndarray:
    """Number of samples inside the window at each output position (the reference's divisors)."""
    half = (window + 2) // 2
    head = np.arange(half, window + 1)
    mid = np.full(length - window, window)
    tail = np.arange(window - 1, window - half, -1)
    return np.concatenate([head, mid, tail]).astype(np.float32)[:, None]


def box_axis0(x: np.ndarray, window: int) -> np.ndarray:
    """One reference box-filter pass along axis 0 of a C-contiguous float32 ``(L, W)`` array.

    Replays ``box1DFloat`` for all ``W`` columns at once: the running sums are float32 and updated in
    the reference's order (``sum += in[ri]; sum -= in[li]``), then divided by the true window count.
    """
    length = x.shape[0]
    half = (window + 2) // 2
    s = np.empty_like(x)
    add = np.add
    sub = np.subtract
    # Phases 1 and 2: only adds; outputs start once `half` samples are in.
    acc = x[0].copy()
    o = 0
    if half - 1 == 0:
        s[0] = acc
        o = 1
    for ri in range(1, window):
        add(acc, x[ri], out=acc)
        if ri >= half - 1:
            s[o] = acc
            o += 1
    # Phase 3: add the entering sample then subtract the leaving one.
    li = 0
    for ri in range(window, length):
        add(s[o - 1], x[ri], out=s[o])
        sub(s[o], x[li], out=s[o])
        li += 1
        o += 1
    # Phase 4: only subtracts.
    for _ in range(half - 1):
        sub(s[o - 1], x[li], out=s[o])
        li += 1
        o += 1
    np.divide(s, _counts(length, window), out=s)
    return s


def _decimation_indices(dim: int) -> np.ndarray:
    return np.array([int(((i + 0.5) * dim) / 64) for i in range(64)], dtype=np.intp)


def jarosz_filter(y: np.ndarray) -> np.ndarray:
    """Two rows-then-columns box passes and decimation: the 64x64 float32 downsample of ``y``."""
    rows, cols = y.shape
    wr = window_size(cols)
    wc = window_size(rows)
    ri = _decimation_indices(rows)
    ci = _decimation_indices(cols)
    # Pass 1 (rows then columns), on transposed copies so each step is one contiguous vector op.
    a = box_axis0(np.ascontiguousarray(y.T), wr)  # (cols, rows)
    b = box_axis0(np.ascontiguousarray(a.T), wc)  # (rows, cols)
    # Pass 2: rows, then columns only where decimation samples them.
    c = box_axis0(np.ascontiguousarray(b.T), wr)  # (cols, rows)
    d = box_axis0(np.ascontiguousarray(c[ci].T), wc)  # (rows, 64)
    return np.ascontiguousarray(d[ri])


def quality_metric(a: np.ndarray) -> int:
    """The reference's image-domain quality metric of the 64x64 downsample."""
    dv = (((a[:-1, :] - a[1:, :]) * _HUNDRED) / _TWO55).astype(np.int32)
    dh = (((a[:, :-1] - a[:, 1:]) * _HUNDRED) / _TWO55).astype(np.int32)
    total = int(np.abs(dv).sum(dtype=np.int64) + np.abs(dh).sum(dtype=np.int64))
    return min(100, total // 90)


@lru_cache(maxsize=1)
def dct_matrix() -> np.ndarray:
    """The 16x64 float32 DCT-II matrix, rounded exactly as the reference builds it."""
    scale = np.float64(np.float32(np.sqrt(2.0 / 64.0)))
    m = np.empty((16, 64), dtype=np.float32)
    for i in range(16):
        for j in range(64):
            m[i, j] = np.float32(scale * np.cos((np.pi / 2.0 / 64.0) * (i + 1) * (2 * j + 1)))
    return m


def dct16(a: np.ndarray) -> np.ndarray:
    """``D A D^T`` for a 64x64 float32 ``a``, summed in float32 in the reference's order."""
    d = dct_matrix()
    prod = d[:, :, None] * a[None, :, :]  # (16, 64k, 64j): D[i,k] * A[k,j]
    t = prod[:, 0, :].copy()
    for k in range(1, 64):
        t += prod[:, k, :]
    prod2 = t[:, None, :] * d[None, :, :]  # (16i, 16j, 64k): T[i,k] * D[j,k]
    prod2 = np.ascontiguousarray(prod2.transpose(2, 0, 1))
    b = prod2[0].copy()
    for k in range(1, 64):
        b += prod2[k]
    return b


_ODD = (np.arange(16) & 1).astype(bool)
_SIGN_ODD = np.where(_ODD, 1.0, -1.0).astype(np.float32)  # +1 where the index is odd, -1 where even
_SIGN_CHECKER = np.where(np.add.outer(np.arange(16), np.arange(16)) & 1, -1.0, 1.0).astype(np.float32)


def dihedral_dcts(b: np.ndarray) -> tuple[np.ndarray, ...]:
    """The 16x16 DCT of each dihedral variant, in the order of :data:`~scanner.hashers.base.DIHEDRAL_NAMES`.

    Same transforms as the reference's ``dct16OriginalTo*``: a transpose for the variants that swap
    axes, and a sign flip of the coefficients whose frequency is odd along a mirrored axis.
    """
    row_sign = _SIGN_ODD[:, None]
    col_sign = _SIGN_ODD[None, :]
    return (
        b,
        (b * col_sign).T,  # rot90
        b * _SIGN_CHECKER,  # rot180
        (b * row_sign).T,  # rot270
        b * row_sign,  # flipX
        b * col_sign,  # flipY
        b.T,  # flipPlus1
        (b * _SIGN_CHECKER).T,  # flipMinus1
    )


def _bits(b: np.ndarray) -> bytes:
    flat = np.ascontiguousarray(b).ravel()
    median = np.partition(flat, 127)[127]  # lower median, as the reference's Torben selection
    return bits_to_bytes(flat > median)


def pdq_float(rgb: np.ndarray) -> tuple[np.ndarray, int]:
    """The 16x16 float32 DCT and the quality of an RGB array (the reference's ``pdqFloat256``)."""
    rgb = check_rgb(rgb)
    rows, cols = rgb.shape[:2]
    y = luma(rgb)
    # The reference skips the filter when the input already is 64x64.
    a = y if rows == 64 and cols == 64 else jarosz_filter(y)
    return dct16(a), quality_metric(a)


def pdq_hash(rgb: np.ndarray, *, dihedral: bool = False) -> HashResult:
    """PDQ hash and quality of an ``HxWx3`` uint8 array (with the 8 dihedral variants if asked)."""
    rgb = check_rgb(rgb)
    rows, cols = rgb.shape[:2]
    if rows < MIN_HASHABLE_DIM or cols < MIN_HASHABLE_DIM:
        zero = bytes(32)
        return HashResult("pdq", 256, zero, 0, (zero,) * 8 if dihedral else None)
    b, quality = pdq_float(rgb)
    if not dihedral:
        return HashResult("pdq", 256, _bits(b), quality)
    variants = tuple(_bits(v) for v in dihedral_dcts(b))
    return HashResult("pdq", 256, variants[0], quality, variants)


class PdqHasher:
    """Meta's PDQ: 256 bits, quality 0..100, match at distance <= 31 (:data:`PDQ_MATCH_DISTANCE`)."""

    name = "pdq"
    bits = 256
    match_distance = PDQ_MATCH_DISTANCE
    min_quality = PDQ_MIN_QUALITY

    def hash_rgb(self, rgb: np.ndarray, *, dihedral: bool = False) -> HashResult:
        """Hash one decoded image."""
        return pdq_hash(rgb, dihedral=dihedral)
