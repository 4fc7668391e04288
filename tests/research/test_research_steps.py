"""The typed compute steps behind the research commands, on small hand-made inputs (no images, no files)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from research.bench_crypto import crypto_figures
from research.bench_hash import fidelity_figures
from research.evals.evade import evasion_outcome
from research.evals.recover import score_against_bank
from research.evals.robustness import Hashed, common_bank_set, measure_transform
from research.evals.tradeoffs import pareto_front
from research.recovery import candidate_hashes
from research.render import match_word


def _flip(h: bytes, n: int) -> bytes:
    """``h`` with its first ``n`` bits inverted."""
    bits = np.unpackbits(np.frombuffer(h, np.uint8))
    bits[:n] ^= 1
    return np.packbits(bits).tobytes()


def test_measure_transform_counts_hits_gates_and_wrong_entries() -> None:
    rng = np.random.default_rng(3)
    a, b = rng.bytes(32), rng.bytes(32)
    c = _flip(a, 5)  # a third bank entry 5 bits from the first
    originals = [a, b, c]
    edited = [
        (_flip(a, 2), 90, None),  # near its own original, and within the threshold of c (3 bits)
        (_flip(b, 40), 90, None),  # moved past the threshold
        (_flip(c, 1), 10, (_flip(c, 1), c)),  # exact among its dihedral variants, but below the gate
    ]
    m = measure_transform(originals, edited, 256, 31, 50)
    assert m.distances == [2, 40, 1]
    assert m.distances_dihedral == [2, 40, 0]
    assert m.closest_other[0] == 3
    assert m.gated == 1
    assert (m.hits, m.hits_dihedral) == (1, 1)  # the gated image counts in neither
    assert m.wrong == 1  # the first edit is also within 31 bits of c
    assert m.snapshot_hits == 0  # no matcher


def test_measure_transform_asks_the_snapshot_with_the_dihedral_variants() -> None:
    class Recorder:
        def __init__(self) -> None:
            self.calls: list[tuple[bytes, list[bytes] | None]] = []

        def match(self, h: bytes, dihedral: list[bytes] | None) -> tuple[bool, int]:
            self.calls.append((h, dihedral))
            return True, 3

    h = bytes(32)
    rec = Recorder()
    m = measure_transform([h], [(h, 80, (h, _flip(h, 3)))], 256, 31, 50, rec)
    assert m.snapshot_hits == 1
    assert rec.calls == [(h, [h, _flip(h, 3)])]


def test_common_bank_set_keeps_images_passing_every_gate() -> None:
    good: list[Hashed] = [
        ({"pdq": (b"", 90, None), "dhash": (b"", 90, None)}, []),
        ({"pdq": (b"", 20, None), "dhash": (b"", 90, None)}, []),
        ({"pdq": (b"", 90, None), "dhash": (b"", 0, None)}, []),
    ]
    assert common_bank_set(good, ["pdq"]) == [0, 2]
    assert common_bank_set(good, ["pdq", "dhash"]) == [0]


def _point(label: str, size: int, fm: float, recall24: float) -> dict[str, Any]:
    return {"label": label, "size_bytes": size, "false_match_per_image": fm, "recall": {24: recall24}}


def test_pareto_front_keeps_the_smallest_snapshot_per_gain_in_recall() -> None:
    points = [
        _point("big", 300, 1e-5, 0.9),
        _point("small", 100, 1e-5, 0.5),
        _point("noisy", 50, 1e-2, 1.0),  # over the false-match budget
        _point("same", 200, 1e-5, 0.5),  # no gain over "small"
        _point("mid", 250, 1e-4, 0.7),
    ]
    feasible, front = pareto_front(points)
    assert [p["label"] for p in feasible] == ["small", "same", "mid", "big"]
    assert [p["label"] for p in front] == ["small", "mid", "big"]


def test_evasion_outcome_counts_and_rates() -> None:
    records: list[dict[str, Any]] = [
        {"success": True, "distance_after": 40, "quality_after": 90, "psnr": 41.0, "snapshot_after": False},
        {"success": False, "distance_after": 35, "quality_after": 30, "psnr": 38.0, "snapshot_after": True},
        {"success": False, "distance_after": 10, "quality_after": 90, "psnr": 45.0, "snapshot_after": False},
        {"skipped": "quality 10 below the gate 50: not in the bank"},
        {"error": "cannot identify image file"},
    ]
    ev = evasion_outcome("pdq", "whitebox", 40, records, True, "")
    assert len(ev.attacked) == 3 and ev.skipped == 1 and ev.errors == 1
    assert (ev.success.k, ev.success.n) == (1, 3)
    assert ev.distance_evaded.k == 1  # distance > 31 with quality >= 50: only the first
    assert ev.snapshot_evaded is not None and ev.snapshot_evaded.k == 2
    assert ev.median_psnr == 41.0
    no_snapshot = evasion_outcome("pdq", "whitebox", 40, records, False, "disabled")
    assert no_snapshot.snapshot_evaded is None


def test_score_against_bank_exact_and_within() -> None:
    rng = np.random.default_rng(5)
    bank = rng.integers(0, 256, size=(3, 32), dtype=np.uint8)
    candidates = [bytes(bank[0]), _flip(bytes(bank[1]), 20), _flip(bytes(bank[2]), 100)]
    score = score_against_bank(candidates, bank, 31)
    assert score.bank_size == 3
    assert score.distances[:2] == [0, 20] and score.distances[2] > 31
    assert (score.exact, score.within) == (1, 2)
    empty = score_against_bank([], bank, 31)
    assert (empty.bank_size, empty.exact, empty.within, empty.distances) == (3, 0, 0, [])


def test_candidate_hashes_zero_the_unsampled_bits() -> None:
    cand = np.full((2, 16), -1, dtype=np.int8)
    cand[:, :8] = [[1, 0, 1, 0, 1, 0, 1, 0], [0, 0, 0, 0, 1, 1, 1, 1]]
    hashes, uncovered = candidate_hashes(cand)
    assert hashes == [bytes([0xAA, 0x00]), bytes([0x0F, 0x00])]
    assert uncovered == 8
    assert candidate_hashes(np.zeros((0, 16), np.int8)) == ([], 0)


def test_fidelity_figures_count_only_images_passing_the_gate() -> None:
    rows = [(Path("a.jpg"), 90, 4), (Path("large-00-a.jpg"), 80, 12), (Path("flat.png"), 10, 90)]
    f = fidelity_figures(rows)
    assert f["images"] == 3 and f["quality_ge_50"] == 2
    assert f["within_10_bits"] == 1 and f["share_within_10_bits"] == 0.5
    assert f["bits"]["max"] == 12.0 and f["large_12mp"]["max"] == 12.0
    assert [w[1] for w in f["worst"]] == ["large-00-a.jpg", "a.jpg"]


def test_crypto_figures_rates_and_ratios() -> None:
    jobs = ("ratchet_chain", "ratchet_pingpong", "aesgcm_msg", "attachment", "aesgcm_bulk", "cbc_hmac_bulk")
    seconds = dict(zip(jobs, (2.0, 4.0, 0.5, 1.0, 0.25, 0.5), strict=True))
    f = crypto_figures(seconds, 1000, 200, 2_000_000)
    assert f["ratchet_chain_msgs_per_s"] == 500.0 and f["aesgcm_msgs_per_s"] == 2000.0
    assert f["ratchet_chain_vs_gcm"] == pytest.approx(0.25)
    assert f["attachment_mb_per_s"] == 2.0 and f["attachment_vs_gcm"] == pytest.approx(0.25)


def test_match_word() -> None:
    assert [match_word(v) for v in (True, False, None)] == ["match", "no match", "n/a"]
