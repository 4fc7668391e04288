"""Interval estimates for rates and Apple-style account-level arithmetic.

* :func:`wilson` is the Wilson score interval: with p = k/n and z the normal quantile, centre
  (p + z^2/2n)/(1 + z^2/n), half-width z*sqrt(p(1-p)/n + z^2/4n^2)/(1 + z^2/n). It is what the reports print
  beside every rate (k=5, n=100 gives [0.0215, 0.1118]).
* :func:`clopper_pearson` is the exact (conservative) interval from Beta quantiles.
* :func:`rule_of_three` is the one-sided 95% upper bound 1 - 0.05^(1/n) ~ 3/n when k = 0.
* :func:`account_flag_probability` models the matches of one innocent account in a year as
  X ~ Binomial(n, p) ~ Poisson(n*p) and returns P(X >= t). :func:`account_table` adds the same at the upper
  confidence bound of p and the expected number of wrongly flagged accounts, with the assumptions spelled out
  (:data:`ACCOUNT_ASSUMPTIONS`).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

__all__ = [
    "ACCOUNT_ASSUMPTIONS",
    "AccountRow",
    "Rate",
    "account_flag_probability",
    "account_table",
    "clopper_pearson",
    "rate",
    "rule_of_three",
    "wilson",
]

ACCOUNT_ASSUMPTIONS: tuple[str, ...] = (
    "Each image an innocent account sends is an independent trial with the same false-match probability p "
    "(the measured per-query rate of the scanner at the deployed bank size).",
    "Matches per account per year follow Binomial(n, p), computed as Poisson(lambda = n*p); the account is "
    "flagged when it reaches t matches.",
    "Independence is optimistic: a benign collision repeats through bursts, near-duplicates, forwards and "
    "saved memes, so real accounts are overdispersed; count distinct visual clusters or treat the figure at "
    "the upper confidence bound of p as the central case.",
    "p is measured on the benign folders given, not on real traffic; a different image mix changes it.",
    "An attacker who can craft t colliding images (see `pocketscan research attacks collide`) defeats any "
    "threshold t whatever p is.",
)
"""Printed beside every account-level figure."""


def _z(confidence: float) -> float:
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    from statistics import NormalDist

    return NormalDist().inv_cdf(0.5 + confidence / 2.0)


def _check(k: int, n: int) -> None:
    if n < 0 or k < 0 or k > n:
        raise ValueError(f"need 0 <= k <= n, got k={k}, n={n}")


def wilson(k: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval for k successes in n trials; (0, 1) when n == 0."""
    _check(k, n)
    if n == 0:
        return (0.0, 1.0)
    z = _z(confidence)
    p = k / n
    denom = 1.0 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    lo = 0.0 if k == 0 else max(0.0, centre - half)
    hi = 1.0 if k == n else min(1.0, centre + half)
    return (lo, hi)


def clopper_pearson(k: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Exact Clopper-Pearson interval (Beta quantiles); conservative, coverage >= ``confidence``."""
    _check(k, n)
    if n == 0:
        return (0.0, 1.0)
    from scipy.special import (
        betaincinv,
    )  # Beta(a, b) quantile q = betaincinv(a, b, q); lighter than scipy.stats

    a = 1.0 - confidence
    lo = 0.0 if k == 0 else float(betaincinv(k, n - k + 1, a / 2))
    hi = 1.0 if k == n else float(betaincinv(k + 1, n - k, 1 - a / 2))
    return (lo, hi)


def rule_of_three(n: int, confidence: float = 0.95) -> float:
    """One-sided upper bound on p when 0 events were seen in n trials: 1 - (1-confidence)^(1/n)."""
    if n <= 0:
        return 1.0
    return 1.0 - (1.0 - confidence) ** (1.0 / n)


@dataclass(frozen=True)
class Rate:
    """k of n with its point estimate and 95% intervals (Wilson, Clopper-Pearson)."""

    k: int
    n: int
    p: float
    wilson_low: float
    wilson_high: float
    cp_low: float
    cp_high: float

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def fmt(self, *, pct: bool = True) -> str:
        """'5/100 = 5.00% [2.15%, 11.18%]' (Wilson 95%); n is always printed beside a zero."""
        if pct:
            return (
                f"{self.k}/{self.n} = {100 * self.p:.2f}% "
                f"[{100 * self.wilson_low:.2f}%, {100 * self.wilson_high:.2f}%]"
            )
        return f"{self.k}/{self.n} = {self.p:.3g} [{self.wilson_low:.3g}, {self.wilson_high:.3g}]"


def rate(k: int, n: int, confidence: float = 0.95) -> Rate:
    """A :class:`Rate` for k of n."""
    lo, hi = wilson(k, n, confidence)
    clo, chi = clopper_pearson(k, n, confidence)
    return Rate(k=k, n=n, p=(k / n if n else 0.0), wilson_low=lo, wilson_high=hi, cp_low=clo, cp_high=chi)


def account_flag_probability(p: float, images_per_year: float, threshold: int) -> float:
    """P(an innocent account reaches ``threshold`` false matches in a year) under Poisson(n*p).

    P(X >= t) for X ~ Poisson(lambda) is the regularised lower incomplete gamma P(t, lambda), computed
    directly (not as 1 - CDF), so tiny tails stay accurate (p=1e-6, n=1e5, t=30 gives 3.4e-63).
    """
    if threshold <= 0:
        return 1.0
    if p <= 0.0 or images_per_year <= 0:
        return 0.0
    from scipy.special import gammainc

    return float(gammainc(threshold, p * images_per_year))


@dataclass(frozen=True)
class AccountRow:
    """One line of the account table."""

    images_per_year: int
    threshold: int
    p: float
    p_upper: float
    prob_flagged: float
    prob_flagged_upper: float
    expected_flagged_accounts: float
    expected_flagged_accounts_upper: float


@dataclass
class AccountOptions:
    """The account arithmetic's settings (``research fpr --images-per-year``, ``--account-threshold``,
    ``--accounts``)."""

    images_per_year: list[int] = field(default_factory=lambda: [1_000, 10_000, 100_000])
    thresholds: list[int] = field(default_factory=lambda: [1, 2, 5, 10, 30])
    accounts: int = 1_000_000_000
    configured_threshold: int | None = None
    """The client's ``report-threshold`` (``--profile`` or ``--report-threshold``): always in the table."""

    def __post_init__(self) -> None:
        """Refuse settings that would print a meaningless table (ValueError, one line for the CLI)."""
        _check_counts("--images-per-year", self.images_per_year, 1, 10**9)
        _check_counts("--account-threshold", self.thresholds, 1, 10**4)
        _check_counts("--accounts", [self.accounts], 1, 10**12)
        if self.configured_threshold is not None:
            _check_counts("the report-threshold", [self.configured_threshold], 1, 10**4)

    def table(self, p: float, p_upper: float) -> list[AccountRow]:
        """:func:`account_table` over these settings (the configured threshold added to the thresholds)."""
        extra = {self.configured_threshold} if self.configured_threshold else set()
        return account_table(p, p_upper, images_per_year=self.images_per_year,
                             thresholds=sorted(set(self.thresholds) | extra), accounts=self.accounts)


def _check_counts(flag: str, values: list[int], low: int, high: int) -> None:
    if not values or len(values) > 100:
        raise ValueError(f"{flag}: give 1 to 100 values")
    bad = [v for v in values if not low <= v <= high]
    if bad:
        raise ValueError(f"{flag} must be between {low:,} and {high:,}, got {bad[0]}")


def account_table(
    p: float, p_upper: float, *, images_per_year: list[int], thresholds: list[int], accounts: int
) -> list[AccountRow]:
    """Every (images per year, threshold) combination at p and at its upper confidence bound."""
    rows = []
    for n in images_per_year:
        for t in thresholds:
            pf = account_flag_probability(p, n, t)
            pu = account_flag_probability(p_upper, n, t)
            rows.append(
                AccountRow(
                    images_per_year=n,
                    threshold=t,
                    p=p,
                    p_upper=p_upper,
                    prob_flagged=pf,
                    prob_flagged_upper=pu,
                    expected_flagged_accounts=pf * accounts,
                    expected_flagged_accounts_upper=pu * accounts,
                )
            )
    return rows
