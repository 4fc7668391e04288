"""Shared pieces of the 64-bit baseline hashers (aHash, dHash, pHash)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from PIL import Image

from scanner.hashers.base import HashResult, check_rgb

__all__ = ["dihedral_arrays", "gray_resized", "hash_with_dihedral"]


def gray_resized(rgb: np.ndarray, width: int, height: int) -> np.ndarray:
    """Pillow ``convert("L")`` then a Lanczos resize to ``width x height``, as a uint8 array.

    These are the exact Pillow operations the ``imagehash`` package uses, so the bits agree with it
    on the same pixels.
    """
    gray = Image.fromarray(check_rgb(rgb), "RGB").convert("L")
    return np.asarray(gray.resize((width, height), Image.Resampling.LANCZOS))


def dihedral_arrays(rgb: np.ndarray) -> tuple[np.ndarray, ...]:
    """The image under the 8 dihedral transforms, in PDQ's order (original, rot90, ... flipMinus1).

    The geometry matches Meta's reference names: rot90 is a counter-clockwise quarter turn, flipX
    mirrors top/bottom, flipY mirrors left/right, flipPlus1 is the transpose and flipMinus1 the
    anti-transpose.
    """
    return (
        rgb,
        np.rot90(rgb, 1),
        np.rot90(rgb, 2),
        np.rot90(rgb, 3),
        rgb[::-1],
        rgb[:, ::-1],
        rgb.transpose(1, 0, 2),
        np.rot90(rgb, 2).transpose(1, 0, 2),
    )


def hash_with_dihedral(
    name: str, rgb: np.ndarray, bits_of: Callable[[np.ndarray], bytes], *, dihedral: bool
) -> HashResult:
    """Hash ``rgb`` with ``bits_of`` and, if asked, each of its 8 dihedral transforms."""
    rgb = check_rgb(rgb)
    if not dihedral:
        return HashResult(name, 64, bits_of(rgb), 100)
    variants = tuple(bits_of(np.ascontiguousarray(v)) for v in dihedral_arrays(rgb))
    return HashResult(name, 64, variants[0], 100, variants)
