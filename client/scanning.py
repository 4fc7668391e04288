"""The client's on-device scanner: hash with PDQ, match against the current snapshot, seal a verdict.

The current snapshot's matcher sits in a :class:`SnapshotSlot`; a new one is verified first and
then swapped in with one reference assignment, so a scan always sees one whole snapshot, and a
bad download leaves the last good snapshot in use.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from scanner.errors import ScannerError
from scanner.hashers.base import HashResult
from scanner.outcome import ScanOutcome
from scanner.verdict import ScanVerdict, seal_outcome

if TYPE_CHECKING:
    from scanner.matcher import OprfTransport

__all__ = ["LocalScanner", "MatcherLike", "SnapshotSlot", "SnapshotView", "load_snapshot_view"]


class MatcherLike(Protocol):
    """What the client needs of ``scanner.matcher.Matcher``."""

    def match(self, hash_result: HashResult) -> ScanOutcome: ...


@dataclass(frozen=True)
class SnapshotView:
    """A verified snapshot in use: its matcher and public header facts."""

    matcher: MatcherLike
    version: int
    fingerprint: str
    created_at: float | None
    expires_at: float | None
    min_votes: int | None
    authority_key_id: str


class SnapshotSlot:
    """Holds the current verified snapshot; ``swap`` replaces it atomically."""

    def __init__(self) -> None:
        self._current: SnapshotView | None = None
        self._lock = threading.Lock()

    @property
    def current(self) -> SnapshotView | None:
        return self._current

    def swap(self, view: SnapshotView) -> bool:
        """Install ``view`` unless it is older than the current one (rollback); True if installed."""
        with self._lock:
            if self._current is not None and view.version < self._current.version:
                return False
            self._current = view
            return True


class LocalScanner:
    """Hash, match and seal, in-process (``ScannerPort``)."""

    def __init__(self, slot: SnapshotSlot, *, algo: str = "pdq", mode: str = "fast",
                 clock: Callable[[], float] = time.time) -> None:
        self.slot = slot
        self.clock = clock
        self.algo = algo
        self.mode = mode

    def hash(self, data: bytes, *, name: str, dihedral: bool) -> HashResult:
        """PDQ hash of the image bytes; raises ``scanner.errors.ImageError`` if they cannot be hashed."""
        from scanner.hashing import hash_bytes

        return hash_bytes(data, name=name, algo=self.algo, mode=self.mode, dihedral=dihedral)

    def match(self, hashed: HashResult) -> ScanOutcome:
        """Check ``hashed`` against the current snapshot (pure lookup, no I/O)."""
        snap = self.slot.current
        if snap is None:
            return ScanOutcome("skipped", quality=hashed.quality, reason="no verified snapshot yet")
        if snap.expires_at is not None and self.clock() >= snap.expires_at:
            return ScanOutcome("skipped", quality=hashed.quality, snapshot_version=snap.version,
                               snapshot_fingerprint=snap.fingerprint,
                               reason=f"snapshot v{snap.version} expired; waiting for a newer one")
        try:
            # The matcher applies the algorithm's quality gate (scanner.hashers.spec): low_quality, 0 votes.
            return snap.matcher.match(hashed)
        except ScannerError as exc:
            return ScanOutcome("error", reason=str(exc), quality=hashed.quality, min_votes=snap.min_votes,
                               snapshot_version=snap.version, snapshot_fingerprint=snap.fingerprint)

    def error(self, exc: Exception) -> ScanOutcome:
        """The scan outcome of an image that could not be hashed."""
        reason = getattr(exc, "reason", None) or str(exc)
        snap = self.slot.current
        return ScanOutcome("error", reason=str(reason), snapshot_version=snap.version if snap else None,
                           snapshot_fingerprint=snap.fingerprint if snap else None)

    def verdict(self, data: bytes, scan: ScanOutcome) -> ScanVerdict:
        """Seal the scan of exactly ``data`` (the ticket attachment encryption demands)."""
        return seal_outcome(data, scan, algo=self.algo if scan.outcome != "skipped" else None)


def load_snapshot_view(data: bytes, authority_key: bytes, *, now: float,
                       min_version: int = 0, min_fingerprint: str | None = None,
                       oprf: OprfTransport | None = None) -> SnapshotView:
    """Verify a snapshot file against the pinned authority key and build its matcher.

    ``oprf`` (a ``scanner.matcher.OprfTransport``, e.g. ``scanner.oprf_client.OprfServiceClient``) serves
    OPRF-keyed snapshots; without it their matches are scan errors (the policy decides as without a
    snapshot).

    Raises:
        scanner.errors.SnapshotInvalid: bad signature, truncated, expired, older than ``min_version``, or
            version ``min_version`` with another fingerprint than ``min_fingerprint`` (a same-version swap).
    """
    from scanner.matcher import Matcher

    matcher = Matcher(authority_key, min_version=min_version, min_fingerprint=min_fingerprint, oprf=oprf)
    info = matcher.load(data, now=now)
    header = info.header
    return SnapshotView(
        matcher=matcher,
        version=int(info.version),
        fingerprint=str(info.fingerprint),
        created_at=float(header.created),
        expires_at=float(header.expires),
        min_votes=int(header.min_votes),
        authority_key_id=bytes(header.key_id).hex(),
    )
