"""The compute steps of `research sensitive` on hand-written rows: rates per family, threshold sweep."""

from __future__ import annotations

from typing import Any

import pytest

from research.evals.sensitive import SWEEP, family_rates, threshold_sweep


def _row(family: str, score: float, match: bool = False, quality: int = 100) -> dict[str, Any]:
    return {"family": family, "score": score, "label": "sensitive" if score >= 0.5 else "safe",
            "pdq_match": match, "pdq_quality": quality}


ROWS = [_row("photos", 0.9), _row("photos", 0.1, match=True), _row("skin-synthetic/dark", 0.6, quality=10),
        _row("generated/chat", 0.0), _row("generated/chat", 0.3)]


def test_family_rates_put_the_users_families_first_then_all() -> None:
    fr = family_rates(ROWS, user_families={"photos"})
    assert fr.families == ["photos", "generated/chat", "skin-synthetic/dark"]
    assert [r[0] for r in fr.table_rows] == [*fr.families, "all"]
    assert fr.data["photos"]["n"] == 2 and fr.data["photos"]["classifier"]["k"] == 1
    assert fr.data["photos"]["pdq"]["k"] == 1 and fr.data["photos"]["max_score"] == 0.9
    assert fr.data["all"]["n"] == 5 and fr.data["all"]["pdq_below_quality_gate"] == 1
    assert fr.classifier.values == pytest.approx([50.0, 0.0, 100.0])  # "all" is not a bar
    assert all(lo <= v <= hi for lo, v, hi in zip(fr.pdq.low, fr.pdq.values, fr.pdq.high, strict=True))


def test_threshold_sweep_counts_scores_at_or_above_each_threshold() -> None:
    rows, bars = threshold_sweep(ROWS)
    assert [r[0] for r in rows] == list(SWEEP)
    flagged = dict(zip(SWEEP, bars.values, strict=True))
    assert flagged[0.25] == pytest.approx(60.0) and flagged[0.5] == pytest.approx(40.0)
    assert flagged[0.9] == pytest.approx(20.0)
