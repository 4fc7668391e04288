"""Signed, privacy-preserving Bloom-filter snapshots of the hash bank.

``format`` (header layout), ``lsh`` (sampled-bit keys and keyed digests), ``bloom`` (keyed probe for
``bloom-filter2`` and the numpy writer), ``builder`` (authority side), ``reader`` (verification),
``io`` (atomic writes, read-only maps). The format is specified in ``docs/snapshot-format.md``.
"""

from __future__ import annotations

from scanner.snapshot.builder import build_snapshot
from scanner.snapshot.format import Header
from scanner.snapshot.io import map_snapshot_file, write_snapshot_file
from scanner.snapshot.reader import VerifiedSnapshot, fingerprint_of, verify_snapshot

__all__ = [
    "Header",
    "VerifiedSnapshot",
    "build_snapshot",
    "fingerprint_of",
    "map_snapshot_file",
    "verify_snapshot",
    "write_snapshot_file",
]
