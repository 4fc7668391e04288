"""Figures both false-match runs share (in memory, :mod:`research.evals.fpr`; streaming,
:mod:`research.stream_report`): rates by threshold, the innocent-account table, a false match's caption."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from research import stats
from research.evals.common import thresholds_for
from research.results import Table

__all__ = [
    "ThresholdRates",
    "account_table",
    "cumulative_counts",
    "false_match_caption",
    "threshold_rates",
    "threshold_table",
]


@dataclass(frozen=True)
class ThresholdRates:
    """Rates at each reported threshold: the report's rows and results.json's ``thresholds`` list."""

    rows: list[list[Any]]
    per_threshold: list[dict[str, Any]]


def cumulative_counts(distances: np.ndarray, bits: int) -> np.ndarray:
    """``out[t]``: how many ``distances`` are ``<= t``, for ``t`` in ``0..bits+1`` (larger ones last)."""
    clipped = np.minimum(np.asarray(distances, dtype=np.int64), bits + 1)
    return np.cumsum(np.bincount(clipped, minlength=bits + 2))


def threshold_rates(
    bits: int,
    default: int,
    cum_plain: np.ndarray,
    cum_dihedral: np.ndarray,
    cum_pairs: np.ndarray,
    *,
    queries: int,
    bank_size: int,
) -> ThresholdRates:
    """Per-query (plain and dihedral) and per-pair rates at :func:`thresholds_for` ``(bits, default)``.

    ``cum_*[t]`` counts the queries (or pairs) within ``t``; pairs are ``queries * bank_size``.
    """
    n_pairs = queries * bank_size
    rows: list[list[Any]] = []
    per_t: list[dict[str, Any]] = []
    for t in thresholds_for(bits, default):
        rq = stats.rate(int(cum_plain[t]), queries)
        rqd = stats.rate(int(cum_dihedral[t]), queries)
        rp = stats.rate(int(cum_pairs[t]) if t < len(cum_pairs) else n_pairs, n_pairs)
        implied = 1 - (1 - rp.p) ** bank_size if n_pairs else 0.0
        rows.append(
            [
                f"{t}{' (default)' if t == default else ''}",
                rq.fmt(),
                rqd.fmt(),
                f"{rp.k}/{rp.n} = {rp.p:.3g} [{rp.wilson_low:.3g}, {rp.wilson_high:.3g}]",
                implied,
            ]
        )
        per_t.append(
            {
                "threshold": t,
                "per_query": rq.as_dict(),
                "per_query_dihedral": rqd.as_dict(),
                "per_pair": rp.as_dict(),
                "per_query_implied_by_pairs": implied,
            }
        )
    return ThresholdRates(rows, per_t)


def threshold_table(algo: str, rows: list[list[Any]], *, implied_note: bool) -> Table:
    """The report's table of rates by threshold (rows of :func:`threshold_rates`, maybe the snapshot's)."""
    note = (
        "Per query: share of benign images whose nearest bank entry is within the threshold. "
        "Per pair: share of (benign, bank) pairs within it."
    )
    if implied_note:
        note += " Implied = 1-(1-p_pair)^N if pairs were independent."
    return Table(
        f"{algo}: false-match rate by threshold (Wilson 95%)",
        ["threshold", "per query", "per query, dihedral", "per pair", "per query implied by pairs"],
        rows,
        note=note,
    )


def account_table(
    algo: str, base: stats.Rate, basis: str, rows: list[stats.AccountRow], accounts: int
) -> Table:
    """The innocent-accounts table of the report (rows of :func:`research.stats.account_table`)."""
    return Table(
        f"{algo}: innocent accounts flagged per year "
        f"(p = {base.p:.3g}, upper {base.wilson_high:.3g}; "
        f"{basis})",
        [
            "images/year",
            "threshold t",
            "P(flagged)",
            "P(flagged) at upper p",
            f"accounts of {accounts:.0e}",
            "at upper p",
        ],
        [
            [
                r.images_per_year,
                r.threshold,
                r.prob_flagged,
                r.prob_flagged_upper,
                r.expected_flagged_accounts,
                r.expected_flagged_accounts_upper,
            ]
            for r in rows
        ],
        note="Assumptions: " + " ".join(stats.ACCOUNT_ASSUMPTIONS),
    )


def false_match_caption(match: dict[str, Any], benign_name: str, bank_name: str) -> str:
    """A gallery caption: both distances, quality, the snapshot's verdict, and the two images' names."""
    return (
        f"d={match['distance_dihedral']} (plain {match['distance']}), q={match['quality']}, "
        f"snapshot={'match' if match['snapshot_match'] else 'no'}: {benign_name} vs {bank_name}"
    )
