"""One typed scan outcome from the matcher through client scanning to the policy and the sealed verdict."""

from __future__ import annotations

import numpy as np
import pytest

from client.policy import decide
from client.scanning import LocalScanner, SnapshotSlot, load_snapshot_view
from scanner.authority import AuthorityKey
from scanner.calibration import Params, bloom_geometry
from scanner.hashers.base import HashResult
from scanner.hashers.spec import PDQ
from scanner.outcome import OUTCOMES, ScanOutcome
from scanner.snapshot import build_snapshot
from scanner.verdict import require_verdict_for

NOW = 1_800_000_000


@pytest.fixture(scope="module")
def scanner_and_bank() -> tuple[LocalScanner, np.ndarray]:
    key = AuthorityKey.generate()
    bank = np.random.default_rng(1).integers(0, 256, size=(30, 32), dtype=np.uint8)
    m, h = bloom_geometry(1024 * 30, 1e-5)
    params = Params(tables=30, bits=20, min_votes=3, probe_radius=0, bloom_bits=m, bloom_hashes=h)
    data = build_snapshot(bank, params=params, key=key, version=7, created=NOW, expires=NOW + 600)
    slot = SnapshotSlot()
    assert slot.swap(load_snapshot_view(data, key.public_key, now=NOW))
    return LocalScanner(slot, clock=lambda: NOW), bank


def test_the_matchers_outcome_reaches_the_policy_unchanged(
    scanner_and_bank: tuple[LocalScanner, np.ndarray],
) -> None:
    scanner, bank = scanner_and_bank
    view = scanner.slot.current
    assert view is not None
    hashed = HashResult("pdq", 256, bank[3].tobytes(), 90)
    scan = scanner.match(hashed)
    direct = view.matcher.match(hashed)
    assert isinstance(scan, ScanOutcome) and scan == direct
    assert (scan.outcome, scan.matched, scan.quality) == ("match", True, 90)
    assert scan.votes >= scan.min_votes == view.min_votes == 3
    assert (scan.snapshot_version, scan.snapshot_fingerprint) == (7, view.fingerprint)
    decision = decide(scan, "block")
    assert (decision.action, decision.outcome) == ("block", "match")
    assert "snapshot v7" in decision.explanation
    data = b"the exact image bytes"
    verdict = scanner.verdict(data, scan)
    assert require_verdict_for(verdict, data) is verdict
    assert (verdict.outcome, verdict.votes, verdict.quality, verdict.algo) == ("match", scan.votes, 90, "pdq")
    assert verdict.snapshot_fingerprint == view.fingerprint


def test_the_quality_gate_is_the_algorithms(scanner_and_bank: tuple[LocalScanner, np.ndarray]) -> None:
    scanner, bank = scanner_and_bank
    below = scanner.match(HashResult("pdq", 256, bank[3].tobytes(), PDQ.min_quality - 1))
    assert (below.outcome, below.votes, below.variant) == ("low_quality", 0, None)
    assert str(PDQ.min_quality) in below.reason
    at_gate = scanner.match(HashResult("pdq", 256, bank[3].tobytes(), PDQ.min_quality))
    assert at_gate.outcome == "match"
    assert decide(below, "block").action == "confirm"


def test_outcomes_the_matcher_cannot_know(scanner_and_bank: tuple[LocalScanner, np.ndarray]) -> None:
    scanner, _ = scanner_and_bank
    skipped = LocalScanner(SnapshotSlot()).match(HashResult("pdq", 256, bytes(32), 90))
    assert (skipped.outcome, skipped.snapshot_version, skipped.min_votes) == ("skipped", None, None)
    wrong = scanner.match(HashResult("phash", 64, bytes(8), 100))
    assert wrong.outcome == "error" and wrong.snapshot_version == 7 and "phash" in wrong.reason
    failed = scanner.error(ValueError("truncated file"))
    assert failed.outcome == "error" and failed.quality is None and failed.snapshot_version == 7
    assert set(OUTCOMES) == {"match", "no_match", "low_quality", "error", "skipped"}
    for outcome in OUTCOMES:
        assert decide(ScanOutcome(outcome), "report").outcome == outcome
