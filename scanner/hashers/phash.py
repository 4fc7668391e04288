"""pHash (DCT hash), a 64-bit baseline.

Definition: convert to 8-bit grayscale (Pillow ``convert("L")``), resize to 32x32 with Lanczos, take
the unnormalised 2-D DCT-II ``X[k] = 2 sum_n x[n] cos(pi k (2n + 1) / 64)`` along columns then rows,
keep the 8x8 lowest frequencies (including DC), and set bit ``8*u + v`` (most significant first) when
coefficient ``(u, v)`` exceeds their median (mean of the two middle values). Bit-for-bit the
``imagehash.phash`` of the same pixels (which computes the same DCT with ``scipy.fftpack``).
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from scanner.hashers._baseline import gray_resized, hash_with_dihedral
from scanner.hashers.base import HashResult
from scanner.hashers.spec import PHASH

__all__ = ["PHasher", "phash_bits"]


@lru_cache(maxsize=1)
def _dct_matrix() -> np.ndarray:
    n = np.arange(32)
    k = np.arange(32)[:, None]
    return 2.0 * np.cos(np.pi * k * (2 * n + 1) / 64.0)


def phash_bits(rgb: np.ndarray) -> bytes:
    """The 8 bytes of the pHash of an RGB array."""
    pixels = gray_resized(rgb, 32, 32).astype(np.float64)
    m = _dct_matrix()
    # Round away float noise (~1e-10) so that exact ties (flat or symmetric images, where the true
    # coefficients are 0) compare like scipy's FFT-based DCT, which gives exact zeros there.
    low = np.round((m @ pixels @ m.T)[:8, :8], 6)
    return np.packbits(low > np.median(low)).tobytes()


class PHasher:
    """Perceptual (DCT) hash: 64 bits, no quality notion (reports 100)."""

    name = "phash"
    bits = 64
    algorithm = PHASH

    def hash_rgb(self, rgb: np.ndarray, *, dihedral: bool = False) -> HashResult:
        """Hash one decoded image."""
        return hash_with_dihedral(self.name, rgb, phash_bits, dihedral=dihedral)
