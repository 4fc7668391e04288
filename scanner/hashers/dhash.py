"""dHash (difference hash), a 64-bit baseline.

Definition: convert to 8-bit grayscale (Pillow ``convert("L")``), resize to 9 columns x 8 rows with
Lanczos, and set bit ``8*r + c`` (most significant first) when pixel ``(r, c + 1)`` is brighter than
pixel ``(r, c)``. Bit-for-bit the ``imagehash.dhash`` of the same pixels.
"""

from __future__ import annotations

import numpy as np

from scanner.hashers._baseline import gray_resized, hash_with_dihedral
from scanner.hashers.base import HashResult
from scanner.hashers.spec import DHASH

__all__ = ["DHasher", "dhash_bits"]


def dhash_bits(rgb: np.ndarray) -> bytes:
    """The 8 bytes of the dHash of an RGB array."""
    pixels = gray_resized(rgb, 9, 8)
    return np.packbits(pixels[:, 1:] > pixels[:, :-1]).tobytes()


class DHasher:
    """Difference hash: 64 bits, no quality notion (reports 100)."""

    name = "dhash"
    bits = 64
    algorithm = DHASH

    def hash_rgb(self, rgb: np.ndarray, *, dihedral: bool = False) -> HashResult:
        """Hash one decoded image."""
        return hash_with_dihedral(self.name, rgb, dhash_bits, dihedral=dihedral)
