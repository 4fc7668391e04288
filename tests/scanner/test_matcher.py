"""The matcher as a pure object: quality gate, best dihedral variant, algorithm checks, sealed verdicts."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from scanner.authority import AuthorityKey
from scanner.calibration import Params, bloom_geometry
from scanner.errors import ScannerError, SnapshotInvalid
from scanner.hashers.base import HashResult
from scanner.hashing import hash_bytes
from scanner.matcher import Matcher
from scanner.snapshot import build_snapshot
from scanner.verdict import VerdictMismatch, require_verdict_for

NOW = 1_800_000_000
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def setup() -> tuple[Matcher, np.ndarray, AuthorityKey]:
    key = AuthorityKey.generate()
    bank = np.random.default_rng(0).integers(0, 256, size=(40, 32), dtype=np.uint8)
    m, h = bloom_geometry(1024 * 30, 1e-5)
    params = Params(tables=30, bits=20, min_votes=3, probe_radius=0, bloom_bits=m, bloom_hashes=h)
    matcher = Matcher(key.public_key)
    matcher.load(
        build_snapshot(bank, params=params, key=key, version=1, created=NOW, expires=NOW + 60), now=NOW
    )
    return matcher, bank, key


def test_no_snapshot_means_no_match() -> None:
    with pytest.raises(SnapshotInvalid, match="no snapshot"):
        Matcher(bytes(32)).match(HashResult("pdq", 256, bytes(32), 90))
    with pytest.raises(SnapshotInvalid):
        Matcher(b"short")


def test_low_quality_is_never_matched(setup: tuple[Matcher, np.ndarray, AuthorityKey]) -> None:
    matcher, bank, _ = setup
    exact = bank[0].tobytes()
    assert matcher.match(HashResult("pdq", 256, exact, 50)).outcome == "match"
    low = matcher.match(HashResult("pdq", 256, exact, 49))
    assert (low.outcome, low.votes, low.variant, low.matched) == ("low_quality", 0, None, False)
    assert "below 50" in low.reason


def test_dihedral_takes_the_best_variant(setup: tuple[Matcher, np.ndarray, AuthorityKey]) -> None:
    matcher, bank, _ = setup
    rng = np.random.default_rng(1)
    variants = tuple(rng.bytes(32) for _ in range(8))
    assert matcher.match(HashResult("pdq", 256, variants[0], 90, variants)).outcome == "no_match"
    with_bank = (*variants[:5], bank[7].tobytes(), *variants[6:])
    r = matcher.match(HashResult("pdq", 256, variants[0], 90, with_bank))
    assert (r.outcome, r.variant, r.votes, r.min_votes) == ("match", 5, 30, 3)
    assert r.snapshot_fingerprint == matcher.info.fingerprint  # type: ignore[union-attr]


def test_algorithm_mismatch_is_an_error(setup: tuple[Matcher, np.ndarray, AuthorityKey]) -> None:
    matcher, _, _ = setup
    with pytest.raises(ScannerError, match="phash"):
        matcher.match(HashResult("phash", 64, bytes(8), 100))


def test_verdict_for_seals_the_outcome_to_the_bytes(setup: tuple[Matcher, np.ndarray, AuthorityKey]) -> None:
    matcher, _, _ = setup
    data = (REPO / "samples" / "coffee.jpg").read_bytes()
    result = hash_bytes(data)
    verdict = matcher.verdict_for(data, result)
    assert verdict.outcome == "no_match" and verdict.algo == "pdq" and verdict.quality == result.quality
    assert verdict.snapshot_fingerprint == matcher.info.fingerprint  # type: ignore[union-attr]
    assert require_verdict_for(verdict, data) is verdict
    with pytest.raises(VerdictMismatch):
        require_verdict_for(verdict, data + b"\0")
    err = Matcher.error_verdict(b"junk", "not an image")
    assert err.outcome == "error" and require_verdict_for(err, b"junk") is err


def test_vectorised_lookups_equal_bloom_filter2_lookups(
    setup: tuple[Matcher, np.ndarray, AuthorityKey],
) -> None:
    """The numpy lookup path gives the same votes and variant as ``key in BloomFilter`` for every query."""
    fast, bank, _ = setup
    assert fast.info is not None
    rng = np.random.default_rng(3)
    for i in range(60):
        base = np.unpackbits(bank[i % 40] if i % 2 else rng.integers(0, 256, 32, dtype=np.uint8))
        base[rng.choice(256, int(rng.integers(0, 40)), replace=False)] ^= 1
        variants = (np.packbits(base).tobytes(), *(rng.bytes(32) for _ in range(7)))
        q = HashResult("pdq", 256, variants[0], 90, variants if i % 3 else None)
        a = fast.match(q)
        assert (a.votes, a.variant, a.outcome) == _package_match(fast, q)


def _package_match(fast: Matcher, q: HashResult) -> tuple[int, int | None, str]:
    """The same query through bloom_filter2's ``__contains__`` (the reference lookup path)."""
    loaded = fast._loaded
    assert loaded is not None
    variants = list(q.dihedral) if q.dihedral else [q.hash]
    votes, variant = loaded.votes(variants)
    return votes, variant, "match" if votes >= loaded.info.header.min_votes else "no_match"
