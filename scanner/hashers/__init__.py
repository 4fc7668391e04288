"""Perceptual hashers behind one interface: PDQ, the 64-bit baselines, and registered plugins.

Each hasher carries its algorithm's facts as ``hasher.algorithm`` (:class:`AlgorithmSpec`, ``spec.py``).
The names below are imported on first use, so ``scanner.hashers.spec`` (pure, no numpy) stays cheap for the
command line's parser.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from scanner.hashers.base import DIHEDRAL_NAMES, Hasher, HashResult
    from scanner.hashers.registry import get_hasher, hasher_names, register_hasher
    from scanner.hashers.spec import AlgorithmSpec, spec_for

__all__ = ["DIHEDRAL_NAMES", "AlgorithmSpec", "HashResult", "Hasher", "get_hasher", "hasher_names",
           "register_hasher", "spec_for"]

_HOMES = {
    "DIHEDRAL_NAMES": "scanner.hashers.base",
    "HashResult": "scanner.hashers.base",
    "Hasher": "scanner.hashers.base",
    "get_hasher": "scanner.hashers.registry",
    "hasher_names": "scanner.hashers.registry",
    "register_hasher": "scanner.hashers.registry",
    "AlgorithmSpec": "scanner.hashers.spec",
    "spec_for": "scanner.hashers.spec",
}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'scanner.hashers' has no attribute {name!r}")
    return getattr(importlib.import_module(home), name)
