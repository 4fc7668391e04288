"""PDQ, Meta's 256-bit perceptual hash, in numpy, bit-exact with the reference C++.

Algorithm (ThreatExchange ``pdq/cpp/hashing/pdqhashing.cpp`` and ``downscaling/downscaling.cpp``):

1. Luminance ``Y = 0.299 R + 0.587 G + 0.114 B``, rounded to float32. The oracle we are bit-exact with,
   the ``pdqhash`` bindings, evaluates this sum in float64 (numpy) and then rounds to float32, which
   equals ``float32(N / 1000)`` with ``N = 299 R + 587 G + 114 B``: that is what we compute.
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
Reference quirk: for an input of exactly 64x64 its plain routine skips the filter but its dihedral
routine does not; we follow the plain routine for both, so ``hash`` never depends on ``dihedral``.

:func:`pdq_hash` is the exact path. :func:`pdq_hash_fast` (fast mode for files) computes the same filter
as a sparse linear operator: much cheaper, within a couple of bits, not bit-exact.
"""

from __future__ import annotations

import threading
from functools import lru_cache

import numpy as np

from scanner.hashers.base import HashResult, bits_to_bytes, check_rgb
from scanner.hashers.spec import PDQ

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
    "pdq_hash_fast",
]

PDQ_MATCH_DISTANCE = PDQ.match_distance
"""Hamming distance at or below which two PDQ hashes are a match (ThreatExchange default, ``spec.PDQ``)."""
PDQ_MIN_QUALITY = PDQ.min_quality
"""Hashes below this quality are unreliable (the PDQ authors' advice): do not match on them."""
MIN_HASHABLE_DIM = 5
"""Images with a side shorter than this hash to all zeros with quality 0."""

_F32 = np.float32


class _Workspace(threading.local):
    """Per-thread float32 buffers reused from one hash to the next.

    Fresh multi-megabyte arrays cost page faults (the allocator hands large blocks back to the kernel),
    which measured about a third of the time of a ~1 MP hash. Buffers up to :data:`_WORKSPACE_MAX`
    elements are kept per thread; larger images allocate as usual.
    """

    def __init__(self) -> None:
        self.buffers: dict[str, np.ndarray] = {}

    def take(self, name: str, shape: tuple[int, ...]) -> np.ndarray:
        size = int(np.prod(shape))
        if size > _WORKSPACE_MAX:
            return np.empty(shape, dtype=np.float32)
        buf = self.buffers.get(name)
        if buf is None or buf.size < size:
            buf = np.empty(size, dtype=np.float32)
            self.buffers[name] = buf
        return buf[:size].reshape(shape)


_WORKSPACE_MAX = 4 * 1024 * 1024
_WS = _Workspace()
_HUNDRED = np.float32(100.0)
_TWO55 = np.float32(255.0)


def luma(rgb: np.ndarray) -> np.ndarray:
    """Float32 luminance of an ``HxWx3`` uint8 array, equal to the reference's rounding.

    The reference bindings evaluate ``0.299 R + 0.587 G + 0.114 B`` in float64 and round to float32.
    Over all 2^24 colours that equals ``float32(N / 1000)`` with the integer ``N = 299 R + 587 G +
    114 B`` (checked exhaustively in the tests). ``N`` is exact in float32 (< 2^24) and float32 division
    is correctly rounded, so computing it in float32 gives the same bits with half the memory traffic.
    """
    rows, cols = rgb.shape[:2]
    n = np.empty((rows, cols), dtype=np.float32)
    for i in range(0, rows, _LUMA_BLOCK):  # blocks of rows stay in cache: about 2x faster than whole planes
        block = rgb[i : i + _LUMA_BLOCK]
        out = n[i : i + _LUMA_BLOCK]
        np.multiply(block[:, :, 0], _F32(299), out=out)
        out += block[:, :, 1] * _F32(587)
        out += block[:, :, 2] * _F32(114)
        out /= _F32(1000)
    return n


_LUMA_BLOCK = 64


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
    return np.concatenate([head, mid, tail]).astype(np.float32)


# The reference's box1DFloat, for one vector of `length` samples and a window `w` (half = (w + 2) // 2),
# performs this sequence of float32 operations on a running sum that starts at 0:
#   phases 1-2: + in[0], + in[1], ..., + in[w-1]      outputs 0 .. w-half after + in[half-1] .. + in[w-1]
#   phase 3:    + in[w+i], - in[i]    (i < length-w)  output  w-half+1+i after each subtraction
#   phase 4:    - in[length-w+j]      (j < half-1)    one output after each subtraction
# then divides each output by the number of samples in its window (_counts). Every implementation below
# replays exactly this sequence, vectorised over independent vectors ("lanes").


def box_sums(x: np.ndarray, window: int, *, out: np.ndarray | None = None) -> np.ndarray:
    """Undivided running sums of a box pass along axis 0 of a C-contiguous float32 ``(L, lanes)`` array.

    One step per output, each one vector operation over all lanes (many lanes, any length).
    """
    length = x.shape[0]
    half = (window + 2) // 2
    s = np.empty_like(x) if out is None else out
    xs = list(x)
    ss = list(s)
    add = np.add
    sub = np.subtract
    np.add.accumulate(x[:window], axis=0, out=s[:window])  # phases 1-2 (a short prefix)
    if half > 1:
        s[: window - half + 1] = s[half - 1 : window]
    o = window - half + 1
    n3 = length - window
    steps = zip(ss[o - 1 : o - 1 + n3], xs[window:], ss[o : o + n3], xs[:n3], strict=True)
    for prev, entering, cur, leaving in steps:
        add(prev, entering, cur)  # phase 3: add the entering sample, then subtract the leaving one
        sub(cur, leaving, cur)
    o += n3
    n4 = half - 1
    for prev, cur, leaving in zip(ss[o - 1 : o - 1 + n4], ss[o : o + n4], xs[n3 : n3 + n4], strict=True):
        sub(prev, leaving, cur)  # phase 4: subtracts only
    return s


def _divide_transpose(s: np.ndarray, counts: np.ndarray, *, block: int = 32, name: str = "") -> np.ndarray:
    """``(s / counts[:, None]).T`` C-contiguous; ``s`` is divided in place, block by block while cached."""
    rows, cols = s.shape
    out = _WS.take(name, (cols, rows)) if name else np.empty((cols, rows), dtype=np.float32)
    for i in range(0, rows, block):
        part = s[i : i + block]
        part /= counts[i : i + block, None]
        out[:, i : i + block] = part.T
    return out


def _luma_transposed(pixels: np.ndarray, *, block: int = 64) -> np.ndarray:
    """The float32 luminance, transposed (``(cols, rows)``), computed block by block while cached."""
    rows, cols = pixels.shape[:2]
    out = _WS.take("luma", (cols, rows))
    for i in range(0, rows, block):
        out[:, i : i + block] = _luma_of(pixels[i : i + block]).T
    return out


def _sequence_length(length: int, window: int) -> int:
    half = (window + 2) // 2
    return window + 2 * (length - window) + half - 1


def _sequence_positions(length: int, window: int, outputs: np.ndarray) -> np.ndarray:
    """Index, in the interleaved operation sequence, after which each output is written."""
    half = (window + 2) // 2
    mid = length - window
    p2 = window - half + 1
    o = np.asarray(outputs)
    pos = np.where(o < p2, half - 1 + o, window + 2 * (o - p2) + 1)  # phases 2 and 3
    return np.where(o >= p2 + mid, window + 2 * mid + (o - p2 - mid), pos)  # phase 4


def _interleave_rows(v: np.ndarray, z: np.ndarray, window: int) -> None:
    """Write the operation sequence of each row of ``v`` (lanes, length) into ``z`` rows (lanes, M)."""
    length = v.shape[1]
    half = (window + 2) // 2
    mid = length - window
    z[:, :window] = v[:, :window]
    z[:, window : window + 2 * mid : 2] = v[:, window:]
    np.negative(v[:, :mid], out=z[:, window + 1 : window + 2 * mid : 2])
    np.negative(v[:, mid : mid + half - 1], out=z[:, window + 2 * mid :])


def _interleave_lanes(v: np.ndarray, window: int) -> np.ndarray:
    """The operation sequence of a box pass along axis 0 of ``v`` (``(length, lanes)``), as an
    ``(M, lanes)`` array of whole rows (``+v[ri]`` and ``-v[li]`` rows in the reference's order)."""
    length, lanes = v.shape
    half = (window + 2) // 2
    mid = length - window
    z = _WS.take("z", (_sequence_length(length, window), lanes))
    z[:window] = v[:window]
    pairs = z[window : window + 2 * mid].reshape(mid, 2, lanes)
    pairs[:, 0] = v[window:]
    np.negative(v[:mid], out=pairs[:, 1])
    np.negative(v[mid : mid + half - 1], out=z[window + 2 * mid :])
    return z


def sequence_states_at(z: np.ndarray, length: int, window: int, keep: np.ndarray) -> np.ndarray:
    """Box outputs at positions ``keep`` from an operation sequence ``z`` of shape ``(M, lanes)``.

    Only the running sums at kept outputs are needed, so each stretch between two kept outputs is one
    ``add.reduce`` along axis 0, which numpy evaluates row after row (lanes >= 2 keep the reduced axis
    outermost), i.e. in the reference's order. ``z`` is overwritten. Returns ``(len(keep), lanes)``.
    """
    uniq, inverse = np.unique(np.asarray(keep), return_inverse=True)
    positions = _sequence_positions(length, window, uniq)
    counts = _counts(length, window)[uniq]
    out = np.empty((len(uniq), z.shape[1]), dtype=np.float32)
    start = 0
    for i, pos in enumerate(positions.tolist()):
        state = np.add.reduce(z[start : pos + 1], axis=0)
        z[pos] = state  # the next stretch starts from this running sum
        start = pos
        np.divide(state, counts[i], out=out[i])
    return out[inverse]


def box_lanes_at(x: np.ndarray, window: int, keep: np.ndarray) -> np.ndarray:
    """The box pass along axis 1 of ``x`` (``(lanes, L)``), evaluated at positions ``keep``.

    For few lanes and long sequences: each lane's operation sequence (``+in[ri], -in[li], ...``) is
    summed by a float32 cumulative sum, which numpy evaluates strictly left to right.
    """
    lanes, length = x.shape
    z = np.empty((lanes, _sequence_length(length, window)), dtype=np.float32)
    _interleave_rows(x, z, window)
    np.add.accumulate(z, axis=1, dtype=np.float32, out=z)
    o = np.asarray(keep)
    return z[:, _sequence_positions(length, window, o)] / _counts(length, window)[o]


@lru_cache(maxsize=256)
def _decimation_indices(dim: int) -> np.ndarray:
    return np.array([int(((i + 0.5) * dim) / 64) for i in range(64)], dtype=np.intp)


def jarosz_filter(y: np.ndarray) -> np.ndarray:
    """Two rows-then-columns box passes and decimation: the 64x64 float32 downsample of ``y``."""
    return jarosz_filter_t(np.ascontiguousarray(y.T))


_MIN_REDUCE_LANES = 16


def jarosz_filter_t(yt: np.ndarray) -> np.ndarray:
    """:func:`jarosz_filter` taking the luminance transposed (``(cols, rows)``, C-contiguous).

    Pass 1 needs every output, so it steps (one vector op per output) over all rows, then all columns.
    Pass 2 only feeds the 64x64 decimation: along rows only the 64 sampled columns are materialised
    (one ``add.reduce`` per stretch between them), and along those columns only the 64 sampled rows.
    """
    cols, rows = yt.shape
    wr = window_size(cols)
    wc = window_size(rows)
    ri = _decimation_indices(rows)
    ci = _decimation_indices(cols)
    # Buffers are dropped (`del`) as soon as they are consumed, and workspace buffers are shared by
    # stages that never overlap, so a large image peaks at about three float32 planes.
    s1 = box_sums(yt, wr, out=_WS.take("sums", yt.shape))  # pass 1 along rows: (cols, rows) running sums
    del yt
    a = _divide_transpose(s1, _counts(cols, wr), name="plane")  # (rows, cols)
    del s1
    s2 = box_sums(a, wc, out=_WS.take("sums", a.shape))  # pass 1 along columns: (rows, cols)
    del a
    if rows >= _MIN_REDUCE_LANES:
        # pass 2 along rows, as (M, rows) operation rows, evaluated at the 64 sampled columns: (64, rows)
        b = _divide_transpose(s2, _counts(rows, wc), name="plane")
        del s2
        z = _interleave_lanes(b, wr)
        del b
        c = sequence_states_at(z, cols, wr, ci)
        del z
    else:
        s2 /= _counts(rows, wc)[:, None]
        c = np.ascontiguousarray(box_lanes_at(s2, wr, ci).T)
    d = box_lanes_at(c, wc, ri)  # pass 2 along those columns at the sampled rows: (64 cols, 64 rows)
    return np.ascontiguousarray(d.T)


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


@lru_cache(maxsize=64)
def _sampled_filter_band(length: int) -> tuple[np.ndarray, np.ndarray]:
    """The two box passes along an axis of ``length`` followed by decimation, as a linear operator.

    Output sample ``j`` (at ``c = int((j + 0.5) * length / 64)``) is ``sum_k weight[j, k] * in[index[j, k]]``
    where ``weight`` are the entries of row ``c`` of ``F @ F``; ``F`` averages each position over the
    reference's window ``[max(0, o - (w - half)), min(length - 1, o + half - 1)]``.
    Returns ``(index, weight)``, both ``(64, K)`` with ``K`` about ``2 w``.
    """
    w = window_size(length)
    half = (w + 2) // 2
    lo = np.maximum(0, np.arange(length) - (w - half))
    hi = np.minimum(length - 1, np.arange(length) + half - 1)
    rows = []
    for c in _decimation_indices(length).tolist():
        acc: dict[int, float] = {}
        for o in range(int(lo[c]), int(hi[c]) + 1):
            share = 1.0 / ((hi[c] - lo[c] + 1) * (hi[o] - lo[o] + 1))
            for k in range(int(lo[o]), int(hi[o]) + 1):
                acc[k] = acc.get(k, 0.0) + share
        rows.append(acc)
    width = max(len(r) for r in rows)
    index = np.zeros((64, width), dtype=np.intp)
    weight = np.zeros((64, width), dtype=np.float32)
    for j, r in enumerate(rows):
        keys = sorted(r)
        index[j, : len(keys)] = keys
        weight[j, : len(keys)] = [r[k] for k in keys]
    return index, weight


_FAST_MAX_BAND = 64


def pdq_hash_fast(pixels: np.ndarray, *, dihedral: bool = False) -> HashResult:
    """PDQ of an image with the filter evaluated as a precomputed sparse linear operator (fast mode).

    The same luminance, the same two box passes with the same windows and edge counts, the same
    decimation, quality, DCT and median as :func:`pdq_hash`, but the 64x64 downsample is computed as
    ``P Y Q`` (each of the 4096 samples a weighted sum of about ``(2w)^2`` pixels) instead of replaying
    the reference's float32 running sums: about 8x faster on a 0.75 MP image, and not bit-exact
    (running sums round differently). Bits can differ only where a coefficient sits at the median:
    0 bits on the shared corpus at quality >= 50. Very long sides (a band over 64 pixels) fall back to
    :func:`pdq_hash`.
    """
    pixels = _checked(pixels)
    rows, cols = pixels.shape[:2]
    if rows < MIN_HASHABLE_DIM or cols < MIN_HASHABLE_DIM or (rows == 64 and cols == 64):
        return pdq_hash(pixels, dihedral=dihedral)
    col_index, col_weight = _sampled_filter_band(cols)
    row_index, row_weight = _sampled_filter_band(rows)
    if max(col_index.shape[1], row_index.shape[1]) > _FAST_MAX_BAND:
        return pdq_hash(pixels, dihedral=dihedral)
    y = _luma_of(pixels)
    t = np.einsum("rjk,jk->rj", y[:, col_index], col_weight)  # (rows, 64): along rows, sampled columns
    a = np.ascontiguousarray(np.einsum("ikj,ik->ij", t[row_index], row_weight), dtype=np.float32)
    return _result(dct16(a), quality_metric(a), dihedral)


def _result(b: np.ndarray, quality: int, dihedral: bool) -> HashResult:
    if not dihedral:
        return HashResult("pdq", 256, _bits(b), quality)
    variants = tuple(_bits(v) for v in dihedral_dcts(b))
    return HashResult("pdq", 256, variants[0], quality, variants)


def _checked(pixels: np.ndarray) -> np.ndarray:
    if isinstance(pixels, np.ndarray) and pixels.ndim == 2 and pixels.dtype == np.uint8 and pixels.size:
        return pixels  # a luminance plane
    return check_rgb(pixels)


def _luma_of(pixels: np.ndarray) -> np.ndarray:
    # A grey level v is its own luma: (299 + 587 + 114) v / 1000 == v exactly, as in the reference.
    return pixels.astype(np.float32) if pixels.ndim == 2 else luma(pixels)


def pdq_float(rgb: np.ndarray) -> tuple[np.ndarray, int]:
    """The 16x16 float32 DCT and the quality of an image (the reference's ``pdqFloat256``).

    ``rgb`` is ``HxWx3`` uint8 RGB, or an ``HxW`` uint8 luminance plane.
    """
    pixels = _checked(rgb)
    rows, cols = pixels.shape[:2]
    # The reference skips the filter when the input already is 64x64.
    a = _luma_of(pixels) if rows == 64 and cols == 64 else jarosz_filter_t(_luma_transposed(pixels))
    return dct16(a), quality_metric(a)


def pdq_hash(rgb: np.ndarray, *, dihedral: bool = False) -> HashResult:
    """PDQ hash and quality of an ``HxWx3`` uint8 RGB array or ``HxW`` uint8 luminance plane.

    With ``dihedral=True`` the 8 dihedral variants are computed from the same DCT.
    """
    rgb = _checked(rgb)
    rows, cols = rgb.shape[:2]
    if rows < MIN_HASHABLE_DIM or cols < MIN_HASHABLE_DIM:
        zero = bytes(32)
        return HashResult("pdq", 256, zero, 0, (zero,) * 8 if dihedral else None)
    b, quality = pdq_float(rgb)
    return _result(b, quality, dihedral)


class PdqHasher:
    """Meta's PDQ: 256 bits, quality 0..100, match at distance <= 31 (:data:`PDQ_MATCH_DISTANCE`)."""

    name = "pdq"
    bits = 256
    accepts_luma = True
    """``hash_rgb`` also takes an ``HxW`` luminance plane (see ``scanner.image.load_luma_or_rgb``)."""
    algorithm = PDQ

    def hash_rgb(self, rgb: np.ndarray, *, dihedral: bool = False) -> HashResult:
        """Hash one decoded image, bit-exact with the reference."""
        return pdq_hash(rgb, dihedral=dihedral)

    def hash_fast(self, pixels: np.ndarray, *, dihedral: bool = False) -> HashResult:
        """Hash one decoded image with the fast linear evaluation (see :func:`pdq_hash_fast`)."""
        return pdq_hash_fast(pixels, dihedral=dihedral)
