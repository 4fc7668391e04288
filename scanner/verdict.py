"""Scan verdicts: the only ticket that lets the client encrypt an image.

A :class:`ScanVerdict` is issued by the scanner for one exact byte string (bound by its
SHA-256 digest) and sealed with an HMAC under a key that exists only in this process, so a
verdict cannot be forged by constructing the dataclass by hand, nor reused for other bytes.
The client's attachment encryption calls :func:`require_verdict_for` before it encrypts.

The plain, unsealed result of a scan is :class:`scanner.outcome.ScanOutcome` (matcher -> policy -> UI);
:func:`seal_outcome` turns one into the verdict for the bytes that were scanned.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from dataclasses import dataclass, field, replace

from scanner.outcome import OUTCOMES, Outcome, ScanOutcome

__all__ = ["Outcome", "ScanVerdict", "VerdictMismatch", "issue_verdict", "require_verdict_for",
           "seal_outcome", "with_classification"]

_OUTCOMES: frozenset[str] = frozenset(OUTCOMES)

# Process-local sealing key: verdicts never leave the process that issued them.
_SEAL_KEY = os.urandom(32)


class VerdictMismatch(Exception):
    """The verdict was not issued by this scanner for exactly these bytes."""


@dataclass(frozen=True)
class ScanVerdict:
    """What the scanner concluded about one exact image byte string.

    Attributes:
        content_digest: SHA-256 of the image bytes the verdict is bound to.
        outcome: ``match``, ``no_match``, ``low_quality``, ``error`` or ``skipped`` (policy off).
        votes: LSH tables that hit (0 when not matched or not scanned).
        snapshot_fingerprint: hex SHA-256 of the snapshot used, or None.
        algo: hash algorithm used (``pdq``), or None when not scanned.
        quality: hash quality 0..100, or None.
        reason: a person-readable explanation (for errors and low quality).
    """

    content_digest: bytes
    outcome: Outcome
    votes: int = 0
    snapshot_fingerprint: str | None = None
    algo: str | None = None
    quality: int | None = None
    reason: str = ""
    seal: bytes = field(default=b"", repr=False)
    sensitive: str | None = None
    """The on-device classifier's label for these bytes (``sensitive``/``ok``), None when not rated."""
    sensitive_score: float | None = None
    sensitive_model: str | None = None

    def _payload(self) -> bytes:
        parts = [
            self.content_digest.hex(),
            self.outcome,
            str(self.votes),
            self.snapshot_fingerprint or "",
            self.algo or "",
            "" if self.quality is None else str(self.quality),
            self.reason,
            self.sensitive or "",
            "" if self.sensitive_score is None else repr(float(self.sensitive_score)),
            self.sensitive_model or "",
        ]
        return "\x1f".join(parts).encode()

    def is_bound_to(self, data: bytes) -> bool:
        """True if this verdict was issued here for exactly ``data``."""
        expected = hmac.new(_SEAL_KEY, self._payload(), hashlib.sha256).digest()
        digest = hashlib.sha256(data).digest()
        return hmac.compare_digest(self.seal, expected) and hmac.compare_digest(self.content_digest, digest)


def issue_verdict(
    data: bytes,
    outcome: Outcome,
    *,
    votes: int = 0,
    snapshot_fingerprint: str | None = None,
    algo: str | None = None,
    quality: int | None = None,
    reason: str = "",
) -> ScanVerdict:
    """Issue a sealed verdict for ``data`` (scanner side only)."""
    if outcome not in _OUTCOMES:
        raise ValueError(f"unknown scan outcome {outcome!r}")
    unsealed = ScanVerdict(
        content_digest=hashlib.sha256(data).digest(),
        outcome=outcome,
        votes=votes,
        snapshot_fingerprint=snapshot_fingerprint,
        algo=algo,
        quality=quality,
        reason=reason,
    )
    seal = hmac.new(_SEAL_KEY, unsealed._payload(), hashlib.sha256).digest()
    return ScanVerdict(**{**unsealed.__dict__, "seal": seal})


def seal_outcome(data: bytes, scan: ScanOutcome, *, algo: str | None) -> ScanVerdict:
    """Seal the scan of exactly ``data`` into its verdict (``algo`` None when nothing was hashed)."""
    return issue_verdict(
        data,
        scan.outcome,
        votes=scan.votes,
        snapshot_fingerprint=scan.snapshot_fingerprint,
        algo=algo,
        quality=scan.quality,
        reason=scan.reason,
    )


def require_verdict_for(verdict: object, data: bytes) -> ScanVerdict:
    """Return ``verdict`` if it is genuinely for ``data``; else raise :class:`VerdictMismatch`."""
    if not isinstance(verdict, ScanVerdict) or not verdict.is_bound_to(data):
        raise VerdictMismatch(
            "refusing to encrypt an image without a scan verdict for its exact bytes"
        )
    return verdict


def with_classification(verdict: ScanVerdict, data: bytes, *, label: str, score: float,
                        model: str) -> ScanVerdict:
    """The verdict for the same bytes with the on-device classifier's rating bound in, sealed again.

    Raises:
        VerdictMismatch: ``verdict`` was not issued here for exactly ``data``.
        ValueError: ``label`` is not ``sensitive`` or ``ok``.
    """
    require_verdict_for(verdict, data)
    if label not in ("sensitive", "ok"):
        raise ValueError(f"unknown classifier label {label!r}")
    unsealed = replace(verdict, sensitive=label, sensitive_score=float(score), sensitive_model=model,
                       seal=b"")
    return replace(unsealed, seal=hmac.new(_SEAL_KEY, unsealed._payload(), hashlib.sha256).digest())
