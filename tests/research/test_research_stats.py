"""Interval estimates and account arithmetic against known values."""

from __future__ import annotations

import math

import pytest

from research import stats


def test_wilson_matches_known_value() -> None:
    lo, hi = stats.wilson(5, 100)
    # scipy.stats.binomtest(5, 100).proportion_ci(method="wilson")
    assert lo == pytest.approx(0.021543679154367973, rel=1e-9)
    assert hi == pytest.approx(0.11175046923191914, rel=1e-9)


def test_wilson_zero_events_large_n() -> None:
    lo, hi = stats.wilson(0, 1_000_000)
    assert lo == 0.0
    assert hi == pytest.approx(3.841444063944942e-06, rel=1e-6)


def test_clopper_pearson_known_values() -> None:
    lo, hi = stats.clopper_pearson(0, 1_000_000)
    assert lo == 0.0 and hi == pytest.approx(3.688872650897376e-06, rel=1e-6)
    lo, hi = stats.clopper_pearson(5, 100)
    assert lo < 0.05 < hi and lo == pytest.approx(0.0164, abs=1e-4) and hi == pytest.approx(0.1128, abs=1e-4)


def test_rule_of_three() -> None:
    assert stats.rule_of_three(1_000_000) == pytest.approx(3e-6, rel=2e-3)  # -ln(0.05)/n


def test_all_and_none() -> None:
    assert stats.wilson(10, 10)[1] == 1.0
    assert stats.rate(0, 0).p == 0.0
    with pytest.raises(ValueError):
        stats.wilson(3, 2)


@pytest.mark.parametrize(
    ("p", "n", "t", "expected"),
    [
        (1e-6, 1e5, 1, 0.09516258196404044),
        (1e-6, 1e5, 2, 0.004678840160444474),
        (1e-6, 1e5, 30, 3.422264318380487e-63),
        (1e-3, 1e4, 30, 2.509951201527959e-07),
        (3e-3, 1e4, 30, 0.52428301389368),
    ],
)
def test_account_flag_probability(p: float, n: float, t: int, expected: float) -> None:
    assert stats.account_flag_probability(p, n, t) == pytest.approx(expected, rel=1e-6)


def test_account_table_scales_with_accounts() -> None:
    rows = stats.account_table(1e-6, 2e-6, images_per_year=[100_000], thresholds=[1, 30], accounts=1_000)
    assert [r.threshold for r in rows] == [1, 30]
    assert rows[0].expected_flagged_accounts == pytest.approx(1_000 * rows[0].prob_flagged)
    assert rows[0].prob_flagged_upper > rows[0].prob_flagged
    assert not math.isnan(rows[1].prob_flagged)


def test_thorn_style_precision_threshold() -> None:
    from research.evals.robustness import precision_threshold

    # correct distances 0, 4, 10, 40; the closest wrong entries are at 12 and 50: precision stays 1 up to 10.
    assert precision_threshold([0, 4, 10, 40], [12, 50, 60, 70], 0.9999) == (10, 0.75)
    assert precision_threshold([5], [0], 0.9999) == (None, 0.0)
    assert precision_threshold([], [], 0.9999) == (None, 0.0)
