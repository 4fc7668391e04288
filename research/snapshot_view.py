"""The research side of the snapshot: build one from bank hashes and ask it for verdicts.

A thin adapter over the public APIs of ``scanner.bank``, ``scanner.snapshot`` and ``scanner.matcher`` so the
evaluations see one small interface: :func:`build_matcher` returns a :class:`SnapshotMatcher` (or ``None`` and
the reason, e.g. the algorithm has no snapshot support) whose ``match(hash, dihedral)`` gives
``(matched, votes)``. Keys are throwaway: a fresh authority key is written under the given work folder.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

__all__ = ["SnapshotMatcher", "build_matcher"]


class SnapshotMatcher(Protocol):
    def match(self, h: bytes, dihedral: Sequence[bytes] | None) -> tuple[bool, int]:
        """(matched, votes) for one hash; with ``dihedral`` the best of the variants."""
        ...

    def info(self) -> dict[str, Any]:
        """Parameters, size in bytes and fingerprint of the snapshot."""
        ...

    @property
    def device(self) -> Any:
        """The device's :class:`scanner.matcher.Matcher` behind the adapter (for batch lookups)."""
        ...


def build_matcher(
    algo: str,
    hashes: Sequence[bytes],
    qualities: Sequence[int],
    workdir: Path,
    *,
    seed: int = 0,
    params: dict[str, int] | None = None,
) -> tuple[SnapshotMatcher | None, str]:
    """Build a signed snapshot of ``hashes`` in ``workdir`` and load it back through the device matcher."""
    from research._snapshot_impl import build

    return build(algo, hashes, qualities, workdir, seed=seed, params=params)
