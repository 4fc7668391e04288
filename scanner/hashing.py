"""One-call hashing of files and encoded bytes (used by the bank, the client pipeline and research)."""

from __future__ import annotations

import os

import numpy as np

from scanner.hashers.base import Hasher, HashResult
from scanner.hashers.registry import get_hasher
from scanner.image import DecodeMode, load_luma_or_rgb, load_luma_or_rgb_bytes, load_rgb, load_rgb_bytes

__all__ = ["hash_bytes", "hash_file"]


def _mode(mode: str) -> DecodeMode:
    if mode == "fast":
        return "fast"
    if mode == "exact":
        return "exact"
    raise ValueError(f"mode must be 'fast' or 'exact', not {mode!r}")


def hash_file(
    path: str | os.PathLike[str], *, algo: str = "pdq", mode: str = "fast", dihedral: bool = False
) -> HashResult:
    """Decode ``path`` (EXIF orientation applied) and hash it with ``algo``.

    ``mode="exact"`` decodes at full resolution and (for PDQ) equals Meta's reference bit for bit;
    ``mode="fast"`` decodes large JPEGs at reduced scale and evaluates PDQ's filter as a sparse linear
    operator: within a few bits of the exact hash (see ``pocketscan bench hash``).

    Raises:
        ImageError: the file cannot be decoded or hashed.
        KeyError: ``algo`` is not a registered hasher.
    """
    hasher = get_hasher(algo)
    if getattr(hasher, "accepts_luma", False):  # PDQ: reduced-scale JPEGs decode to luminance only
        return _hash(hasher, load_luma_or_rgb(path, mode=_mode(mode)), mode, dihedral)
    return _hash(hasher, load_rgb(path, mode=_mode(mode)), mode, dihedral)


def hash_bytes(
    data: bytes, *, name: str = "<bytes>", algo: str = "pdq", mode: str = "fast", dihedral: bool = False
) -> HashResult:
    """Hash an encoded image held in memory; same behaviour and errors as :func:`hash_file`."""
    hasher = get_hasher(algo)
    if getattr(hasher, "accepts_luma", False):
        return _hash(hasher, load_luma_or_rgb_bytes(data, name=name, mode=_mode(mode)), mode, dihedral)
    return _hash(hasher, load_rgb_bytes(data, name=name, mode=_mode(mode)), mode, dihedral)


def _hash(hasher: Hasher, pixels: np.ndarray, mode: str, dihedral: bool) -> HashResult:
    fast = getattr(hasher, "hash_fast", None) if mode == "fast" else None
    if fast is not None:  # PDQ's fast evaluation of the same filter (not bit-exact, a few bits at most)
        result: HashResult = fast(pixels, dihedral=dihedral)
        return result
    return hasher.hash_rgb(pixels, dihedral=dihedral)
