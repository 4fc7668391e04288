"""PDQ as a linear map plus one threshold: the white-box model behind the attacks.

In PDQ (facebook/ThreatExchange ``pdq/cpp/hashing/pdqhashing.cpp``) every step before the hash bits is
linear in the pixels: luma ``Y = 0.299 R + 0.587 G + 0.114 B``; two passes of a Jarosz box filter (a moving
mean whose window ``(dim + 127) // 128`` is truncated at the borders) along rows and columns; decimation to
64x64 by sampling rows ``int((i + 0.5) * H / 64)``; a 16x64 DCT matrix ``D[i][j] = sqrt(2/64) cos(pi/128
(i+1)(2j+1))``. The filter and decimation act on rows and columns separately, so the 16x16 coefficients are

    C = A_y  Y  A_x^T        with A_y = D S_y B_y^2 (16 x H), A_x = D S_x B_x^2 (16 x W)

and bit ``k = 16 i + j`` is ``C[i, j] > median(C)``. Only the median comparison is non-linear. This gives
the attacks exact gradients, and the minimum-L2 luma change that moves the coefficients by ``dC`` in closed
form: ``dY = pinv(A_y) dC pinv(A_x)^T``. The attacks still judge success only with the project's real hasher
after a PNG save and reload; this model only proposes perturbations.

Bit order: PDQ's hex prints word 15 first, so bit ``k`` sits at position ``255 - k`` of the big-endian
bitstring of ``HashResult.hash`` (:func:`bits_from_hash`).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

__all__ = ["LUMA", "PdqLinear", "bits_from_hash", "hash_from_bits", "pdq_operator"]

LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float64)


def _box_matrix(n: int, window: int) -> np.ndarray:
    """The reference ``box1DFloat`` as an n x n matrix: mean over [o - (w - h), o + h - 1], truncated."""
    half = (window + 2) // 2
    before, after = window - half, half - 1
    o = np.arange(n)
    lo, hi = np.maximum(0, o - before), np.minimum(n - 1, o + after)
    j = np.arange(n)[None, :]
    inside = (j >= lo[:, None]) & (j <= hi[:, None])
    return inside / (hi - lo + 1)[:, None].astype(np.float64)


def _dct_matrix() -> np.ndarray:
    i = np.arange(1, 17)[:, None]
    j = np.arange(64)[None, :]
    return np.sqrt(2.0 / 64.0) * np.cos((np.pi / 2 / 64.0) * i * (2 * j + 1))


@lru_cache(maxsize=64)
def pdq_operator(n: int) -> np.ndarray:
    """The 16 x n matrix taking one image axis of length n to PDQ's 16 DCT frequencies (2 box passes)."""
    window = (n + 2 * 64 - 1) // (2 * 64)
    box = _box_matrix(n, window)
    idx = np.minimum(np.array([int((i + 0.5) * n / 64) for i in range(64)]), n - 1)
    sample = box[idx, :] @ box  # rows of (box @ box) at the decimation points
    op = _dct_matrix() @ sample
    op.setflags(write=False)
    return op


def bits_from_hash(h: bytes) -> np.ndarray:
    """PDQ hash bytes -> bool array indexed by bit number k = 16 i + j."""
    return np.unpackbits(np.frombuffer(h, dtype=np.uint8))[::-1].astype(bool)


def hash_from_bits(bits: np.ndarray) -> bytes:
    """Inverse of :func:`bits_from_hash`."""
    return np.packbits(np.asarray(bits, dtype=np.uint8)[::-1]).tobytes()


@dataclass
class PdqLinear:
    """The linear part of PDQ for one image size (H, W)."""

    height: int
    width: int

    def __post_init__(self) -> None:
        self.ay = pdq_operator(self.height)
        self.ax = pdq_operator(self.width)
        self.ay_pinv = np.linalg.pinv(self.ay)
        self.ax_pinv = np.linalg.pinv(self.ax)

    @staticmethod
    def luma(rgb: np.ndarray) -> np.ndarray:
        x = np.asarray(rgb)
        return x[:, :, 0] * LUMA[0] + x[:, :, 1] * LUMA[1] + x[:, :, 2] * LUMA[2]

    def coefficients(self, rgb: np.ndarray) -> np.ndarray:
        """The 256 DCT coefficients (flattened 16x16, index k = 16 i + j) of an HxWx3 image."""
        y = self.luma(rgb)
        return (self.ay @ y @ self.ax.T).reshape(256)

    def bits(self, rgb: np.ndarray) -> np.ndarray:
        c = self.coefficients(rgb)
        return c > np.median(c)

    def luma_delta(self, dcoef: np.ndarray) -> np.ndarray:
        """Minimum-L2 luma change (H x W) that moves the coefficients by ``dcoef`` (256,)."""
        return self.ay_pinv @ np.asarray(dcoef, dtype=np.float64).reshape(16, 16) @ self.ax_pinv.T
