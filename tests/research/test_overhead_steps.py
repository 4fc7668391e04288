"""The send-overhead measurement's pure steps: the research report's tables and the bench's figures."""

from __future__ import annotations

from pathlib import Path

import pytest

from research.bench_overhead import figures
from research.evals.overhead import STAGES, SendTiming, image_rows, stage_rows
from scanner.outcome import Outcome, ScanOutcome

REPO = Path(__file__).resolve().parents[2]


def _send(image: str, scanning: bool, scale: float, outcome: Outcome = "no_match") -> SendTiming:
    stages = {stage: scale * (i + 1) / 1000 for i, stage in enumerate(STAGES)}
    if not scanning:
        stages["decode"] = stages["hash"] = stages["match"] = 0.0
    scan = ScanOutcome(outcome, votes=3, min_votes=2) if scanning else None
    return SendTiming(image=image, repeat=0, scanning=scanning, bytes=100, blob_bytes=200, stages=stages,
                      seal=0.001 * scale, scan=scan)


def test_stage_and_image_rows_are_medians_in_milliseconds() -> None:
    rows = [_send("a.jpg", True, 1.0).row(), _send("a.jpg", False, 1.0).row(),
            _send("b.jpg", True, 3.0).row(), _send("b.jpg", False, 3.0).row()]
    stages = stage_rows(rows)
    assert [r[0] for r in stages] == [*STAGES, "total"]
    by_stage = {r[0]: r for r in stages}
    assert by_stage["read"][1:] == pytest.approx([2.0, 2.0, 0.0])  # median of 1 and 3 ms
    assert by_stage["hash"][1:] == pytest.approx([6.0, 0.0, 6.0])  # nothing hashed without scanning
    assert by_stage["total"][1] == pytest.approx(2.0 * 28)  # 1 + 2 + ... + 7 ms at the median scale
    images = image_rows(rows)
    assert [r[0] for r in images] == ["a.jpg", "b.jpg"] and images[0][1] == 100
    assert images[1][2:] == pytest.approx([84.0, 3.0 * 19, 84.0 - 57.0])  # without: no decode, hash, match


def test_bench_figures_from_timed_sends() -> None:
    sends = [_send("rocket.jpg", True, 1.0, "match"), _send("rocket.jpg", True, 2.0, "no_match")]
    result = figures(sends, [REPO / "samples" / "rocket.jpg"], rounds=2, dihedral=True)
    steps = result["steps"]
    assert steps["scan"]["median_ms"] == pytest.approx(1.5 * (2 + 3 + 4))  # decode + hash + match
    assert steps["encrypt"]["median_ms"] == pytest.approx(1.5 * (5 - 1))  # sealing the verdict excluded
    assert steps["upload"]["median_ms"] == pytest.approx(1.5 * 6)
    assert steps["send"]["median_ms"] == pytest.approx(1.5 * 28) and steps["send"]["n"] == 2
    assert result["statuses"] == ["blocked", "sent"]  # policy block on a match
    assert result["scan_vs_encrypt_upload"] == pytest.approx(9 / 10)
    assert result["images"] == ["rocket.jpg"] and result["rounds"] == 2 and result["dihedral"] is True
