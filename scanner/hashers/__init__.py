"""Perceptual hashers behind one interface: PDQ, the 64-bit baselines, and registered plugins."""

from __future__ import annotations

from scanner.hashers.base import DIHEDRAL_NAMES, Hasher, HashResult
from scanner.hashers.registry import get_hasher, hasher_names, register_hasher

__all__ = ["DIHEDRAL_NAMES", "HashResult", "Hasher", "get_hasher", "hasher_names", "register_hasher"]
