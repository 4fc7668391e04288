"""The hasher interface shared by PDQ, the 64-bit baselines and the learned hash."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np

from scanner.hashers.spec import AlgorithmSpec

__all__ = ["DIHEDRAL_NAMES", "AlgorithmSpec", "HashResult", "Hasher", "bits_to_bytes", "check_rgb"]

#: Order of the eight dihedral variants (same names and meaning as Meta's reference PDQ).
DIHEDRAL_NAMES: tuple[str, ...] = (
    "original",
    "rot90",
    "rot180",
    "rot270",
    "flipX",
    "flipY",
    "flipPlus1",
    "flipMinus1",
)


@dataclass(frozen=True)
class HashResult:
    """One perceptual hash of one image."""

    algo: str
    """Hasher name: ``"pdq"``, ``"phash"``, ``"dhash"``, ``"ahash"`` or ``"onnx"``."""
    bits: int
    """Hash width in bits (256 for PDQ, 64 for the baselines)."""
    hash: bytes
    """``bits // 8`` bytes, big-endian: ``hash.hex()`` is the canonical lowercase hex."""
    quality: int
    """0..100; hashers without a quality notion report 100."""
    dihedral: tuple[bytes, ...] | None = None
    """The 8 dihedral variants (see :data:`DIHEDRAL_NAMES`) when asked for, else ``None``."""

    @property
    def hex(self) -> str:
        """The hash as lowercase hex, most significant digit first."""
        return self.hash.hex()

    @property
    def dihedral_hex(self) -> tuple[str, ...] | None:
        """The dihedral variants as hex strings (or ``None``)."""
        return None if self.dihedral is None else tuple(h.hex() for h in self.dihedral)


@runtime_checkable
class Hasher(Protocol):
    """Anything that turns an ``HxWx3`` uint8 RGB array into a :class:`HashResult`."""

    name: str
    bits: int
    algorithm: AlgorithmSpec
    """The algorithm's facts at this hasher's width (match distance, quality gate, hex, distance)."""

    def hash_rgb(self, rgb: np.ndarray, *, dihedral: bool = False) -> HashResult:
        """Hash one decoded image (``HxWx3`` uint8)."""
        ...


def check_rgb(rgb: np.ndarray) -> np.ndarray:
    """Validate an ``HxWx3`` uint8 array and return it C-contiguous."""
    if not isinstance(rgb, np.ndarray) or rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
        shape = getattr(rgb, "shape", None)
        dtype = getattr(rgb, "dtype", None)
        raise ValueError(f"expected an HxWx3 uint8 array, got shape {shape} dtype {dtype}")
    if rgb.shape[0] < 1 or rgb.shape[1] < 1:
        raise ValueError(f"empty image array of shape {rgb.shape}")
    return np.ascontiguousarray(rgb)


def bits_to_bytes(bits: np.ndarray) -> bytes:
    """Pack a flat 0/1 array where element ``k`` is bit ``k`` of an integer into big-endian bytes."""
    flat = np.asarray(bits, dtype=bool).ravel()
    return np.packbits(flat[::-1]).tobytes()
