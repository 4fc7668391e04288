"""One-call hashing of files and encoded bytes (used by the bank, the client pipeline and research)."""

from __future__ import annotations

import os

from scanner.hashers.base import HashResult
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

    Raises:
        ImageError: the file cannot be decoded or hashed.
        KeyError: ``algo`` is not a registered hasher.
    """
    hasher = get_hasher(algo)
    if getattr(hasher, "accepts_luma", False):  # PDQ: reduced-scale JPEGs decode to luminance only
        return hasher.hash_rgb(load_luma_or_rgb(path, mode=_mode(mode)), dihedral=dihedral)
    return hasher.hash_rgb(load_rgb(path, mode=_mode(mode)), dihedral=dihedral)


def hash_bytes(
    data: bytes, *, name: str = "<bytes>", algo: str = "pdq", mode: str = "fast", dihedral: bool = False
) -> HashResult:
    """Hash an encoded image held in memory; same behaviour and errors as :func:`hash_file`."""
    hasher = get_hasher(algo)
    if getattr(hasher, "accepts_luma", False):
        pixels = load_luma_or_rgb_bytes(data, name=name, mode=_mode(mode))
        return hasher.hash_rgb(pixels, dihedral=dihedral)
    return hasher.hash_rgb(load_rgb_bytes(data, name=name, mode=_mode(mode)), dihedral=dihedral)
