"""aHash (average hash), a 64-bit baseline.

Definition: convert to 8-bit grayscale (Pillow ``convert("L")``), resize to 8x8 with Lanczos, and set
bit ``8*r + c`` (most significant first) when pixel ``(r, c)`` is brighter than the mean of the 64
pixels. Bit-for-bit the ``imagehash.average_hash`` of the same pixels.
"""

from __future__ import annotations

import numpy as np

from scanner.hashers._baseline import gray_resized, hash_with_dihedral
from scanner.hashers.base import HashResult
from scanner.hashers.spec import AHASH

__all__ = ["AHasher", "ahash_bits"]


def ahash_bits(rgb: np.ndarray) -> bytes:
    """The 8 bytes of the aHash of an RGB array."""
    pixels = gray_resized(rgb, 8, 8)
    return np.packbits(pixels > pixels.mean()).tobytes()


class AHasher:
    """Average hash: 64 bits, no quality notion (reports 100)."""

    name = "ahash"
    bits = 64
    algorithm = AHASH

    def hash_rgb(self, rgb: np.ndarray, *, dihedral: bool = False) -> HashResult:
        """Hash one decoded image."""
        return hash_with_dihedral(self.name, rgb, ahash_bits, dihedral=dihedral)
