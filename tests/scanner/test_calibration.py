"""The calibration model against measurement on generated hashes, and the parameters it picks."""

from __future__ import annotations

import json
import math
import os

import numpy as np
import pytest

from client.cli.main import main
from scanner.authority import AuthorityKey
from scanner.calibration import (
    Params,
    blocked_bloom_fpr,
    bloom_geometry,
    calibrate,
    predict,
    rounded_entry_count,
)
from scanner.errors import CalibrationError
from scanner.hashers.base import HashResult
from scanner.matcher import Matcher
from scanner.snapshot import build_snapshot
from scanner.snapshot.bloom import BloomWriter, probe_bits

NOW = 1_800_000_000


def _flip(rng: np.random.Generator, row: np.ndarray, d: int) -> bytes:
    bits = np.unpackbits(row)
    bits[rng.choice(256, d, replace=False)] ^= 1
    return np.packbits(bits).tobytes()


def _within(measured: float, predicted: float, n: int, sigmas: float = 4.5, slack: float = 0.005) -> bool:
    se = math.sqrt(max(predicted * (1 - predicted), 1e-4) / n)
    return abs(measured - predicted) <= sigmas * se + slack


@pytest.mark.parametrize(
    ("n_bank", "tables", "bits", "votes", "radius"),
    [
        (2000, 24, 16, 2, 0),  # noisy: a false-match rate large enough to measure
        (300, 40, 24, 3, 0),  # the curve falls between d = 8 and d = 31
        (300, 12, 20, 2, 1),  # multi-probe (one-bit neighbours of each key)
        (300, 384, 15, 33, 0),  # the small-bank default: many tables, many votes, the edge above 31
    ],
)
def test_prediction_matches_measurement_on_generated_hashes(
    n_bank: int, tables: int, bits: int, votes: int, radius: int
) -> None:
    """Match rate at d = 0, 8, 16, 24, 31, 36, 40 and the random false-match rate agree with the model.

    Rates are averaged over several snapshots (fresh positions and salt each), the ensemble the model
    describes; the tolerance is 4.5 standard errors plus half a point.
    """
    snapshots, pairs, randoms = 8, 60, 400
    m, h = bloom_geometry(1024 * 2 * tables, 2e-3)
    params = Params(
        tables=tables, bits=bits, min_votes=votes, probe_radius=radius, bloom_bits=m, bloom_hashes=h
    )
    # Snapshots are padded: every table holds the rounded entry count of keys (real ones and random decoys).
    pred = predict(params, rounded_entry_count(n_bank))
    key = AuthorityKey.generate()
    rng = np.random.default_rng(11)
    distances = (0, 8, 16, 24, 31, 36, 40)
    hits = dict.fromkeys(distances, 0)
    false_hits = 0
    for _ in range(snapshots):
        bank = rng.integers(0, 256, size=(n_bank, 32), dtype=np.uint8)
        matcher = Matcher(key.public_key)
        matcher.load(
            build_snapshot(bank, params=params, key=key, version=1, created=NOW, expires=NOW + 9), now=NOW
        )
        for d in distances:
            for i in rng.choice(n_bank, pairs, replace=False):
                hits[d] += matcher.match(HashResult("pdq", 256, _flip(rng, bank[i], d), 90)).matched
        false_hits += sum(
            matcher.match(HashResult("pdq", 256, rng.bytes(32), 90)).matched for _ in range(randoms)
        )
    n = snapshots * pairs
    print(
        f"\nL={params.tables} k={params.bits} v={params.min_votes} radius={radius} N={n_bank} "
        f"Bloom p={pred.bloom_fpr:.2e}"
    )
    print(f"{'d':>4} {'predicted':>10} {'measured':>10}  (n={n} pairs per distance)")
    ok = True
    for d in distances:
        measured = hits[d] / n
        print(f"{d:4d} {pred.recall_at(d):10.4f} {measured:10.4f}")
        ok &= _within(measured, pred.recall_at(d), n)
    fm = false_hits / (snapshots * randoms)
    print(
        f"random false-match rate per variant: predicted {pred.false_match_per_variant:.4f}, "
        f"measured {fm:.4f} "
        f"(n={snapshots * randoms})"
    )
    ok &= _within(fm, pred.false_match_per_variant, snapshots * randoms)
    assert ok, "prediction and measurement disagree beyond statistical error (see the printed table)"


def test_blocked_bloom_fpr_matches_measurement() -> None:
    keys = 20000
    m, h = bloom_geometry(keys, 5e-3)
    writer = BloomWriter(m, h)
    writer.add_digests(os.urandom(16 * keys))
    body = writer.body()
    probes = 20000
    fp = sum(
        all(body[j // 8] >> (j % 8) & 1 for j in probe_bits(os.urandom(16), m, h)) for _ in range(probes)
    )
    predicted = blocked_bloom_fpr(keys, m, h)
    print(f"\nblocked Bloom: m={m} h={h} keys={keys}: predicted {predicted:.4f}, measured {fp / probes:.4f}")
    assert predicted <= 5e-3
    assert _within(fp / probes, predicted, probes, slack=0.0)


def test_calibration_meets_the_size_targets() -> None:
    big = calibrate(1_000_000)
    assert big.params.size_bytes <= 128_000_000
    assert big.false_match_per_image <= 1e-4 and big.recall_at(16) >= 0.95
    mid = calibrate(100_000)
    assert mid.params.size_bytes <= 13_000_000
    assert mid.false_match_per_image <= 1e-4 and mid.recall_at(16) >= 0.95
    small = calibrate(46)
    # A small bank affords many short-keyed tables: it keeps PDQ's pairs (<= 31 bits) and its soft edge lies
    # just above the threshold.
    assert small.recall_at(31) >= 0.999 and small.recall_at(32) >= 0.99
    assert small.recall_at(40) <= 0.25 and small.recall_at(44) <= 0.02
    assert small.params.lookups_per_variant <= 384
    assert small.false_match_per_image <= 1e-4
    for cal in (big, mid, small):
        assert all(a >= b for a, b in zip(cal.match_probability, cal.match_probability[1:], strict=False))


def test_calibration_errors_and_cli(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(CalibrationError, match="max-size"):
        calibrate(1_000_000, max_size_bytes=1_000_000)
    assert main(["snapshot", "calibrate", "--bank-size", "100000", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert len(data["match_probability"]) == 257 and data["false_match_per_image"] <= 1e-4
    assert main(["snapshot", "calibrate", "--bank-size", "1000", "--target-distance", "24"]) == 0
    text = capsys.readouterr().out
    assert "d=64" in text and "bank term" in text and "Bloom term" in text
    assert main(["snapshot", "calibrate", "--bank-size", "1000000", "--max-size-mb", "1"]) == 2
    # A privacy floor on the key length: the search never goes below it.
    assert main(["snapshot", "calibrate", "--bank-size", "46", "--min-key-bits", "24", "--json"]) == 0
    floored = json.loads(capsys.readouterr().out)
    assert floored["params"]["bits"] >= 24 and floored["match_probability"][31] >= 0.999
