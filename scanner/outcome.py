"""The one typed scan outcome, from the matcher through the client's policy to the UI.

:class:`ScanOutcome` is what scanning one image found: the matcher returns it, the client's scanner adds the
outcomes the matcher cannot know (``skipped`` without a usable snapshot, ``error`` for an image that could not
be hashed), :func:`client.policy.decide` reads it and the UI explains it. It is a plain value: anyone can
build one.

:class:`scanner.verdict.ScanVerdict` is a different thing on purpose: the *sealed* ticket, bound to the
SHA-256 of exactly one byte string by a process-local HMAC, that attachment encryption demands. A verdict is
made from a :class:`ScanOutcome` by :func:`scanner.verdict.seal_outcome` and cannot be built by hand.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, get_args

__all__ = ["OUTCOMES", "Outcome", "ScanOutcome"]

Outcome = Literal["match", "no_match", "low_quality", "error", "skipped"]
"""``match``/``no_match`` (the snapshot's vote rule), ``low_quality`` (below the algorithm's quality gate:
never matched), ``error`` (could not be hashed or matched), ``skipped`` (not scanned: no valid snapshot)."""
OUTCOMES: tuple[Outcome, ...] = get_args(Outcome)


@dataclass(frozen=True)
class ScanOutcome:
    """What scanning one image found.

    Attributes:
        outcome: see :data:`Outcome`.
        votes: LSH tables hit by the best dihedral variant (0 for low quality, errors and skips).
        min_votes: votes the snapshot needs for a match (None without a snapshot).
        quality: hash quality 0..100 (None if the image could not be hashed).
        snapshot_version: version of the snapshot used (None without a snapshot).
        snapshot_fingerprint: hex SHA-256 of the snapshot file used (None without a snapshot).
        reason: a person-readable explanation (never a hash).
        variant: index of the best dihedral variant (0 = as sent), None when no lookup was made.
    """

    outcome: Outcome
    votes: int = 0
    min_votes: int | None = None
    quality: int | None = None
    snapshot_version: int | None = None
    snapshot_fingerprint: str | None = None
    reason: str = ""
    variant: int | None = None

    @property
    def matched(self) -> bool:
        """True when the outcome is ``match``."""
        return self.outcome == "match"
