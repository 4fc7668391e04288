"""Threshold reporting, measured: falsely opened accounts per year, and what the authority sees below t.

Part 1, false openings. An innocent account sends ``d`` images a day; each falsely matches with
probability ``p`` (measured by ``research fpr``, with its Wilson interval, or given). Vouchers of one
key period (30 days by default, as the client) combine; the authority opens an account's period when
it holds ``t`` real vouchers. Per period the false matches are Binomial(d x period, p) ~ Poisson(lambda),
so ``P(open in a period) = P(Poisson(lambda) >= t)`` (the regularised incomplete gamma, exact in the
tail) and ``P(opened in a year) = 1 - prod(1 - q_i)`` over the year's periods (12 of 30 days and one of
5 by default); times N accounts gives the expected
falsely opened accounts per year, at p and at both ends of p's interval. A Monte Carlo run of
``mc_accounts`` accounts (binomial draws per period) checks the formula where it is large enough to see.

Part 2, distinguishability below t. Synthetic vouchers are meant to hide how many real matches an
account has below t. The evaluation builds every voucher with the client's own code
(``client.vouchers``), seals it to an authority key, opens the seal and files it in the authority's
:class:`~client.vouchers.book.VoucherBook`, and reads the per-account counts from the book: half of
the accounts have 1 .. t-1 real matches in the period, the other half only their false matches at
rate p; each account's volume is log-normal around ``eval_images_per_day``; at synthetic rate ``q``
each non-matching image also sends a synthetic voucher. Three distinguishers, scored by ROC AUC with a
bootstrap 95% interval (0.5 = chance, 1 = always right):

* **count**: the authority ranks accounts by their voucher count alone;
* **count and volume**: the authority also knows how many images the account sent (a relay that
  colludes, or the authority running the relay, sees every upload) and scores ``k - q n``
  standardised;
* **timing**: a synthetic voucher leaves with an image that is delivered (the client sends it during
  that image's send), a real one with an image that is blocked; the relay sees whether an attachment
  upload from the same account follows within a few seconds. Scored per account as the number of
  vouchers without an upload next to them. Measured twice: as the client sends today with
  ``voucher-delay 0`` (the voucher leaves during the send), and with ``voucher-delay`` D (each voucher
  waits an exponential time of mean D before it leaves; ``--voucher-delay``, default 3600 s).

Part 3, the cost of opening with synthetic vouchers. The authority's book has to find t real shares among
decoys. For each t and s synthetic vouchers held first (the worst order), real vouchers are added one by
one until the book opens: how many real ones it needed and how long it took (wall clock, this machine).
"""

from __future__ import annotations

import json
import math
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from research import stats
from research.evals.common import environment
from research.results import Plot, Results, Section, Series, Table

__all__ = ["ThresholdConfig", "auc", "p_from_fpr_results", "parse_rate", "run"]

DAYS_PER_YEAR = 365.0
TIMING_WINDOW_S = 5.0
"""A voucher with an attachment upload of the same account this close is taken as synthetic."""
_FLOOR = 1e-300


@dataclass
class ThresholdConfig:
    out: str
    p: float = 0.0
    p_low: float = 0.0
    p_high: float = 0.0
    p_source: str = "given"
    images_per_day: list[float] = field(default_factory=lambda: [5.0, 20.0, 100.0])
    thresholds: list[int] = field(default_factory=lambda: [1, 2, 3, 5, 10, 20, 30])
    configured_threshold: int | None = None
    accounts: int = 1_000_000_000
    period_days: float = 30.0
    mc_accounts: int = 100_000
    eval_accounts: int = 400
    eval_threshold: int | None = None
    eval_images_per_day: float = 10.0
    synthetic_rates: list[float] = field(default_factory=lambda: [0.0, 0.01, 0.05, 0.2])
    bootstrap: int = 300
    voucher_delay: float = 3600.0
    opening_thresholds: list[int] = field(default_factory=lambda: [3, 10])
    opening_synthetic: list[int] = field(default_factory=lambda: [0, 1, 3, 10, 30])
    quiet: bool = True


def parse_rate(text: str) -> tuple[float, float, float, str]:
    """``K/N`` (Wilson 95% interval) or a bare rate (no interval): ``(p, low, high, source)``."""
    text = text.strip()
    if "/" in text:
        k_s, n_s = text.split("/", 1)
        try:
            k, n = int(k_s), int(n_s)
        except ValueError:
            raise ValueError(f"--p {text!r}: write K/N with whole numbers, or a rate") from None
        if n <= 0 or not 0 <= k <= n:
            raise ValueError(f"--p {text!r}: need 0 <= K <= N and N > 0")
        r = stats.rate(k, n)
        return r.p, r.wilson_low, r.wilson_high, f"{k}/{n} given (Wilson 95%)"
    try:
        p = float(text)
    except ValueError:
        raise ValueError(f"--p {text!r}: write K/N or a rate between 0 and 1") from None
    if not 0.0 <= p <= 1.0 or math.isnan(p):
        raise ValueError(f"--p {text!r}: a rate is between 0 and 1")
    return p, p, p, "given as a point (no interval)"


def p_from_fpr_results(path: str, algo: str = "pdq") -> tuple[float, float, float, str]:
    """The per-image false-match rate and its Wilson interval from a ``research fpr`` results.json.

    The snapshot verdict with dihedral variants (what the client enforces) when it was measured, else
    the raw distance at the hasher's default threshold with dihedral variants.
    """
    try:
        data = json.loads(Path(path).read_text())
        algos = data["data"]["algos"]
    except (OSError, json.JSONDecodeError, KeyError, TypeError):
        raise ValueError(f"{path}: not a `research fpr` results.json") from None
    if algo not in algos:
        raise ValueError(f"{path}: no {algo!r} results (has {', '.join(sorted(algos))})")
    a = algos[algo]
    snap = a.get("snapshot") or {}
    if snap.get("available") and snap.get("per_query_dihedral"):
        r, basis = snap["per_query_dihedral"], "snapshot verdict, dihedral"
    else:
        thr = a["default_threshold"]
        r = next(t["per_query_dihedral"] for t in a["thresholds"] if t["threshold"] == thr)
        basis = f"distance <= {thr}, dihedral"
    k, n = int(r["k"]), int(r["n"])
    return float(r["p"]), float(r["wilson_low"]), float(r["wilson_high"]), \
        f"{k}/{n} from {Path(path).name} ({algo}, {basis}; Wilson 95%)"


# ----- part 1: false openings ------------------------------------------------------------------
def _p_open_period(p: float, images_per_period: float, t: int) -> float:
    return stats.account_flag_probability(p, images_per_period, t)


def _year_periods(period_days: float) -> list[float]:
    """Days of each key period a year touches: whole periods, then the remainder (365 = 12 x 30 + 5)."""
    whole = int(DAYS_PER_YEAR // period_days)
    rest = DAYS_PER_YEAR - whole * period_days
    return [period_days] * whole + ([rest] if rest > 1e-9 else [])


def _p_open_year(p: float, images_per_day: float, t: int, period_days: float) -> float:
    """P(some key period of the year holds >= t false matches), periods independent."""
    log_closed = 0.0
    for days in _year_periods(period_days):
        q = _p_open_period(p, images_per_day * days, t)
        if q >= 1.0:
            return 1.0
        log_closed += math.log1p(-q)
    return max(0.0, -math.expm1(log_closed))


def _monte_carlo(rng: np.random.Generator, p: float, images_per_day: float, t: int, period_days: float,
                 accounts: int) -> stats.Rate:
    """Accounts opened in a year, drawing each period's false matches as Binomial(images, p)."""
    sizes = [round(images_per_day * days) for days in _year_periods(period_days)]
    opened = 0
    chunk = 20_000
    done = 0
    while done < accounts:
        m = min(chunk, accounts - done)
        hit = np.zeros(m, bool)
        for size in sizes:
            hit |= rng.binomial(size, p, size=m) >= t
        opened += int(hit.sum())
        done += m
    return stats.rate(opened, accounts)


def _false_openings(cfg: ThresholdConfig, rng: np.random.Generator) -> tuple[list[dict[str, Any]], Table,
                                                                              Plot]:
    configured = {cfg.configured_threshold} if cfg.configured_threshold else set()
    thresholds = sorted(set(cfg.thresholds) | configured)
    rows: list[dict[str, Any]] = []
    table_rows: list[list[Any]] = []
    series: list[Series] = []
    for d in cfg.images_per_day:
        per_period = d * cfg.period_days
        ys, lo, hi = [], [], []
        for t in thresholds:
            exp = {}
            for label, p in (("p", cfg.p), ("p_low", cfg.p_low), ("p_high", cfg.p_high)):
                exp[label] = (_p_open_period(p, per_period, t), _p_open_year(p, d, t, cfg.period_days))
            mc = _monte_carlo(rng, cfg.p, d, t, cfg.period_days, cfg.mc_accounts)
            row: dict[str, Any] = {
                "images_per_day": d, "threshold": t, "configured": t == cfg.configured_threshold,
                "p_open_period": exp["p"][0], "p_open_year": exp["p"][1],
                "p_open_year_low": exp["p_low"][1], "p_open_year_high": exp["p_high"][1],
                "expected_opened_accounts": exp["p"][1] * cfg.accounts,
                "expected_opened_accounts_low": exp["p_low"][1] * cfg.accounts,
                "expected_opened_accounts_high": exp["p_high"][1] * cfg.accounts,
                "monte_carlo": mc.as_dict(),
            }
            rows.append(row)
            table_rows.append([
                d, f"{t}{' (configured)' if row['configured'] else ''}", row["p_open_year"],
                f"[{row['p_open_year_low']:.3g}, {row['p_open_year_high']:.3g}]",
                row["expected_opened_accounts"],
                f"[{row['expected_opened_accounts_low']:.3g}, {row['expected_opened_accounts_high']:.3g}]",
                f"{mc.k}/{mc.n} [{mc.wilson_low:.2g}, {mc.wilson_high:.2g}]",
            ])
            ys.append(max(row["expected_opened_accounts"], _FLOOR))
            lo.append(max(row["expected_opened_accounts_low"], _FLOOR))
            hi.append(max(row["expected_opened_accounts_high"], _FLOOR))
        series.append(Series(f"{d:g} images/day", ys, x=[float(t) for t in thresholds], low=lo, high=hi))
    table = Table(
        f"Falsely opened accounts per year (N = {cfg.accounts:.0e}, key period {cfg.period_days:g} days, "
        f"p = {cfg.p:.3g} [{cfg.p_low:.3g}, {cfg.p_high:.3g}])",
        ["images/day", "threshold t", "P(opened in a year)", "95% interval (from p)",
         "expected accounts/year", "95% interval (from p)", f"Monte Carlo, {cfg.mc_accounts:,} accounts"],
        table_rows,
        note="Poisson tail per key period, periods independent; the interval carries p's Wilson 95% "
             "interval through. Monte Carlo: binomial draws per period at p; 0/n only bounds the rate "
             "below about 3/n.",
    )
    plot = Plot(
        "line", "Expected falsely opened accounts per year", "threshold t (real vouchers per key period)",
        f"accounts of {cfg.accounts:.0e} per year", series, logy=True, name="threshold-false-openings",
        caption=f"p = {cfg.p:.3g} ({cfg.p_source}); bands: p's 95% interval; values below {_FLOOR:g} "
                f"drawn at {_FLOOR:g}; key period {cfg.period_days:g} days.",
        vlines=[(float(cfg.configured_threshold), f"configured t={cfg.configured_threshold}")]
        if cfg.configured_threshold else [],
    )
    return rows, table, plot


# ----- part 2: what the authority sees below t -------------------------------------------------
def auc(positive: list[float], negative: list[float]) -> float:
    """ROC AUC (Mann-Whitney, ties count one half): P(score of a positive > score of a negative)."""
    if not positive or not negative:
        return float("nan")
    pos = np.asarray(positive, float)
    neg = np.sort(np.asarray(negative, float))
    below = np.searchsorted(neg, pos, side="left")
    not_above = np.searchsorted(neg, pos, side="right")
    return float((below + 0.5 * (not_above - below)).sum() / (len(pos) * len(neg)))


def _auc_interval(rng: np.random.Generator, pos: list[float], neg: list[float],
                  n: int) -> tuple[float, float]:
    if not pos or not neg or n <= 0:
        return float("nan"), float("nan")
    p, q = np.asarray(pos), np.asarray(neg)
    vals = [auc(list(rng.choice(p, len(p))), list(rng.choice(q, len(q)))) for _ in range(n)]
    return float(np.percentile(vals, 2.5)), float(np.percentile(vals, 97.5))


@dataclass
class _Account:
    name: str
    matching: bool
    images: int
    real: int
    vouchers: int = 0
    timing_score: int = 0
    delayed_timing_score: int = 0


def _looks_real(delivered: np.ndarray, at: float) -> bool:
    """No delivered-image upload of the account within the window around ``at``."""
    lo, hi = np.searchsorted(delivered, [at - TIMING_WINDOW_S, at + TIMING_WINDOW_S])
    return bool(hi - lo == 0)


@dataclass
class _TimingTally:
    """How often the relay's timing view labels a voucher right (at once, and with the voucher delay)."""

    right: int = 0
    total: int = 0
    delayed_right: int = 0


@dataclass
class _Authority:
    """The authority's key and book of one simulation."""

    public_key: bytes
    seed: bytes
    book: Any  # client.vouchers.book.VoucherBook


def _draw_account(cfg: ThresholdConfig, rng: np.random.Generator, i: int, t: int) -> _Account:
    """Account ``i``: its images in the period and its real matches (odd accounts match, below t)."""
    matching = i % 2 == 1
    per_day = float(cfg.eval_images_per_day * rng.lognormal(0.0, 1.0))
    n = int(rng.poisson(per_day * cfg.period_days))
    real = int(rng.integers(1, t)) if matching and t > 1 else 0
    n = max(n, real)
    false_matches = int(rng.binomial(n - real, cfg.p)) if cfg.p > 0 else 0
    return _Account(f"acct{i:06d}", matching, n, real + false_matches)


def _send_period(
    cfg: ThresholdConfig,
    rng: np.random.Generator,
    delay_rng: np.random.Generator,
    acct: _Account,
    authority: _Authority,
    rate: float,
    t: int,
    tally: _TimingTally,
) -> None:
    """Build, seal, open and file the account's vouchers of one period; score what timing shows."""
    from client.vouchers.voucher import (
        derive_period_key,
        make_synthetic_voucher,
        make_voucher,
        open_voucher,
        seal_voucher,
        share_index,
    )

    period, n = 1, acct.images
    secret = rng.bytes(32)
    key = derive_period_key(secret, acct.name, period, t)
    # image send times over the period; the first `real` images are the (blocked) matches
    times = np.sort(rng.uniform(0, cfg.period_days * 86_400, n)) if n else np.zeros(0)
    order = rng.permutation(n)
    is_real = np.zeros(n, bool)
    is_real[order[: acct.real]] = True
    synthetic = (~is_real) & (rng.random(n) < rate)
    delivered_times = times[~is_real]
    for counter, j in enumerate(np.flatnonzero(is_real | synthetic)):
        x = share_index(secret, acct.name, period, counter)
        v = make_voucher(key, x, b"report") if is_real[j] else make_synthetic_voucher(key, x)
        sealed = seal_voucher(v, authority.public_key)
        authority.book.add(open_voucher(sealed, authority.seed), sender=acct.name)
        # timing: does an upload of a delivered image sit within the window of this voucher?
        looks_real = _looks_real(delivered_times, float(times[j]))
        acct.timing_score += int(looks_real)
        tally.right += int(looks_real == bool(is_real[j]))
        tally.total += 1
        # the same with the voucher held for an exponential delay before it leaves
        leaves = float(times[j]) + (float(delay_rng.exponential(cfg.voucher_delay))
                                    if cfg.voucher_delay > 0 else 0.0)
        looks_real = _looks_real(delivered_times, leaves)
        acct.delayed_timing_score += int(looks_real)
        tally.delayed_right += int(looks_real == bool(is_real[j]))


def _scores(cfg: ThresholdConfig, rate: float, match: list[_Account],
            clean: list[_Account]) -> dict[str, tuple[list[float], list[float]]]:
    """Each distinguisher's scores of the matching and the non-matching accounts."""

    def vol_score(a: _Account) -> float:
        q = rate + cfg.p * (1 - rate)  # vouchers per image of an account without matches
        expected = q * a.images
        sd = math.sqrt(q * (1 - q) * a.images + 1.0)
        return (a.vouchers - expected) / sd

    return {
        "count": ([float(a.vouchers) for a in match], [float(a.vouchers) for a in clean]),
        "count_and_volume": ([vol_score(a) for a in match], [vol_score(a) for a in clean]),
        "timing": ([float(a.timing_score) for a in match], [float(a.timing_score) for a in clean]),
        "timing_delayed": ([float(a.delayed_timing_score) for a in match],
                           [float(a.delayed_timing_score) for a in clean]),
    }


def _describe_counts(group: list[_Account]) -> dict[str, Any]:
    v = np.asarray([a.vouchers for a in group], float)
    return {"accounts": len(group), "mean": float(v.mean()), "median": float(np.median(v)),
            "p10": float(np.percentile(v, 10)), "p90": float(np.percentile(v, 90)),
            "zero": int((v == 0).sum()), "real_mean": float(np.mean([a.real for a in group])),
            "images_mean": float(np.mean([a.images for a in group]))}


def _simulate_rate(cfg: ThresholdConfig, rng: np.random.Generator, rate: float, t: int,
                   delay_rng: np.random.Generator) -> dict[str, Any]:
    import nacl.signing

    from client.vouchers.book import VoucherBook

    signing = nacl.signing.SigningKey(rng.bytes(32))
    # counts only: matching accounts stay below t by construction; an innocent account whose false matches
    # reach t would be opened by the real book (reported as accounts_reaching_t), which decoding here would
    # only slow down
    authority = _Authority(bytes(signing.verify_key), bytes(signing), VoucherBook(decode=False))
    accounts: list[_Account] = []
    tally = _TimingTally()
    for i in range(cfg.eval_accounts):
        acct = _draw_account(cfg, rng, i, t)
        _send_period(cfg, rng, delay_rng, acct, authority, rate, t, tally)
        accounts.append(acct)
    counts = {s.account: s for s in authority.book.status()}
    for a in accounts:
        a.vouchers = counts[a.name].vouchers if a.name in counts else 0
    match = [a for a in accounts if a.matching]
    clean = [a for a in accounts if not a.matching]
    result: dict[str, Any] = {"synthetic_rate": rate, "threshold": t,
                              "accounts_reaching_t": sum(1 for a in accounts if a.real >= t),
                              "vouchers": tally.total,
                              "timing_voucher_accuracy": stats.rate(tally.right, tally.total).as_dict(),
                              "voucher_delay": cfg.voucher_delay,
                              "delayed_timing_voucher_accuracy": stats.rate(tally.delayed_right,
                                                                            tally.total).as_dict()}
    for name, (pos, neg) in _scores(cfg, rate, match, clean).items():
        lo, hi = _auc_interval(rng, pos, neg, cfg.bootstrap)
        result[f"auc_{name}"] = {"auc": auc(pos, neg), "low": lo, "high": hi}
    result["matching"] = _describe_counts(match)
    result["non_matching"] = _describe_counts(clean)
    result["counts_matching"] = [a.vouchers for a in match]
    result["counts_non_matching"] = [a.vouchers for a in clean]
    return result


def _distinguish_table(cfg: ThresholdConfig, results: list[dict[str, Any]]) -> Table:
    """Voucher counts below t and each distinguisher's AUC, one row per synthetic rate."""
    rows = []
    for r in results:
        m, c = r["matching"], r["non_matching"]
        rows.append([
            r["synthetic_rate"],
            f"{m['mean']:.1f} / {m['median']:g} [{m['p10']:g}, {m['p90']:g}]",
            f"{c['mean']:.1f} / {c['median']:g} [{c['p10']:g}, {c['p90']:g}]",
            f"{c['zero']}/{c['accounts']}",
            *(f"{r[k]['auc']:.3f} [{r[k]['low']:.3f}, {r[k]['high']:.3f}]"
              for k in ("auc_count", "auc_count_and_volume", "auc_timing", "auc_timing_delayed")),
            r["accounts_reaching_t"],
            f"{r['timing_voucher_accuracy']['k']}/{r['timing_voucher_accuracy']['n']}",
            f"{r['delayed_timing_voucher_accuracy']['k']}/{r['delayed_timing_voucher_accuracy']['n']}",
        ])
    return Table(
        "Per-account voucher counts below t and distinguisher AUC (bootstrap 95%)",
        ["synthetic rate", "matching: mean / median [p10, p90]", "non-matching: mean / median [p10, p90]",
         "non-matching with 0 vouchers", "AUC count", "AUC count+volume", "AUC timing",
         f"AUC timing, delay {cfg.voucher_delay:g} s", "accounts with >= t real (would open)",
         "vouchers labelled right by timing", "same, delayed"],
        rows,
        note="count: rank by vouchers held; count+volume: also knowing the account's image count "
             "(relay collusion); timing: vouchers with no delivered-image upload within "
             f"{TIMING_WINDOW_S:g} s (a synthetic voucher leaves during a delivered image's send); delayed: "
             f"each voucher leaves after an exponential wait of mean {cfg.voucher_delay:g} s "
             "(`config set voucher-delay`).",
    )


def _distinguish(cfg: ThresholdConfig, rng: np.random.Generator) -> tuple[list[dict[str, Any]], Section]:
    t = cfg.eval_threshold or cfg.configured_threshold or 10
    t = max(2, t)
    delay_rng = rng.spawn(1)[0]  # its own stream: the other figures do not depend on the delay
    results = []
    for i, rate in enumerate(cfg.synthetic_rates):
        if not cfg.quiet and os.isatty(2):
            print(f"\rdistinguishability: synthetic rate {rate:g} ({i + 1}/{len(cfg.synthetic_rates)})",
                  end="", file=sys.stderr, flush=True)
        results.append(_simulate_rate(cfg, rng, rate, t, delay_rng))
    if not cfg.quiet and os.isatty(2):
        print(file=sys.stderr)
    sec = Section("What the authority sees below t")
    sec.text.append(
        f"{cfg.eval_accounts} accounts per synthetic rate, t = {t}, key period {cfg.period_days:g} days, "
        f"images/day log-normal around {cfg.eval_images_per_day:g} (sigma 1). Matching accounts (half) "
        f"hold 1..{t - 1} real matches; non-matching ones only false matches at p = {cfg.p:.3g}. Every "
        "voucher was made, sealed, opened and filed by the project's own code; counts are the "
        "VoucherBook's. AUC 0.5 = the authority cannot tell; 1.0 = it always can."
    )
    sec.tables.append(_distinguish_table(cfg, results))
    sec.plots.append(Plot(
        "line", f"How well the authority tells matching accounts below t={t} apart", "synthetic voucher rate",
        "ROC AUC (0.5 = chance)",
        [Series(label, [r[k]["auc"] for r in results], x=[r["synthetic_rate"] for r in results],
                low=[r[k]["low"] for r in results], high=[r[k]["high"] for r in results])
         for label, k in (("count", "auc_count"), ("count + volume", "auc_count_and_volume"),
                          ("timing", "auc_timing"),
                          (f"timing, vouchers delayed {cfg.voucher_delay:g} s", "auc_timing_delayed"))],
        name="threshold-distinguishability",
    ))
    last = results[-1]
    sec.plots.append(Plot(
        "hist", f"Vouchers held per account at synthetic rate {last['synthetic_rate']:g} (t={t})",
        "vouchers held below t", "accounts",
        [Series("matching", [float(v) for v in last["counts_matching"]]),
         Series("non-matching", [float(v) for v in last["counts_non_matching"]])],
        name="threshold-counts",
    ))
    return results, sec


def _opening_cost(cfg: ThresholdConfig) -> tuple[list[dict[str, Any]], Section]:
    from client.vouchers.book import VoucherBook
    from client.vouchers.voucher import derive_period_key, make_synthetic_voucher, make_voucher, share_index

    secret, account = bytes(range(32)), "opening-cost"
    rows: list[dict[str, Any]] = []
    for t in cfg.opening_thresholds:
        for s in cfg.opening_synthetic:
            key = derive_period_key(secret, account, 1, t)
            book = VoucherBook()
            counter = 0
            for _ in range(s):
                book.add(make_synthetic_voucher(key, share_index(secret, account, 1, counter)))
                counter += 1
            started = time.perf_counter()
            real, opened = 0, False
            while not opened and real < t + 3 * s + 10:
                real += 1
                out = book.add(make_voucher(key, share_index(secret, account, 1, counter), b"report"))
                counter += 1
                opened = out.status == "opened"
            rows.append({"threshold": t, "synthetic": s, "opened": opened, "real_needed": real,
                         "seconds": round(time.perf_counter() - started, 3)})
    sec = Section("Opening with synthetic vouchers")
    sec.text.append(
        "s synthetic vouchers arrive first (the worst order), then real ones until the book opens. The book "
        "tries every t-subset that holds the newest voucher while there are at most 20,000, then "
        "Berlekamp-Welch, which needs real >= (n + t)/2 of the n held. It never opens a wrong key; with many "
        "decoys it opens late."
    )
    sec.tables.append(Table(
        "Real vouchers needed to open, and the authority's time for them",
        ["threshold t", "synthetic held", "real vouchers needed", "seconds (all decoding attempts)"],
        [[r["threshold"], r["synthetic"], r["real_needed"] if r["opened"] else f"> {r['real_needed']}",
          r["seconds"]] for r in rows],
        note="Wall clock of this run, single process; see meta for the machine.",
    ))
    return rows, sec


def run(cfg: ThresholdConfig, seed: int = 0) -> Results:
    """Both parts; see the module docstring."""
    started = time.perf_counter()
    rng = np.random.default_rng(seed)
    rows, table, plot = _false_openings(cfg, rng)
    dist, dist_section = _distinguish(cfg, rng)
    opening, opening_section = _opening_cost(cfg)
    summary = [f"per-image false-match rate p = {cfg.p:.3g} [{cfg.p_low:.3g}, {cfg.p_high:.3g}] "
               f"({cfg.p_source})"]
    t_show = cfg.configured_threshold or 30
    for d in cfg.images_per_day:
        row = next((r for r in rows if r["images_per_day"] == d and r["threshold"] == t_show), None)
        if row is not None:
            summary.append(
                f"{d:g} images/day, t={t_show}{' (configured)' if row['configured'] else ''}: "
                f"{row['expected_opened_accounts']:.3g} falsely opened accounts/year of {cfg.accounts:.0e} "
                f"[{row['expected_opened_accounts_low']:.3g}, {row['expected_opened_accounts_high']:.3g}]"
            )
    for r in dist:
        summary.append(
            f"below t={r['threshold']}, synthetic rate {r['synthetic_rate']:g}: AUC count "
            f"{r['auc_count']['auc']:.2f}, count+volume {r['auc_count_and_volume']['auc']:.2f}, "
            f"timing {r['auc_timing']['auc']:.2f}; timing labels "
            f"{100 * r['timing_voucher_accuracy']['p']:.1f}% of {r['vouchers']} vouchers correctly "
            f"({100 * r['delayed_timing_voucher_accuracy']['p']:.1f}% with voucher-delay "
            f"{r['voucher_delay']:g} s, AUC {r['auc_timing_delayed']['auc']:.2f})"
        )
    sec1 = Section("Falsely opened accounts")
    sec1.text.append(
        f"p = {cfg.p:.3g}, 95% interval [{cfg.p_low:.3g}, {cfg.p_high:.3g}] ({cfg.p_source}). Key period "
        f"{cfg.period_days:g} days ({len(_year_periods(cfg.period_days))} periods touch a year); an account "
        "is opened when one period holds t false matches."
    )
    sec1.tables.append(table)
    sec1.plots.append(plot)
    data = {
        "p": cfg.p, "p_low": cfg.p_low, "p_high": cfg.p_high, "p_source": cfg.p_source,
        "accounts": cfg.accounts, "period_days": cfg.period_days,
        "configured_threshold": cfg.configured_threshold,
        "false_openings": rows, "distinguishability": dist, "opening_cost": opening,
    }
    meta = {"seed": seed, "seconds": round(time.perf_counter() - started, 2), **environment(),
            "config": {k: v for k, v in cfg.__dict__.items() if k != "quiet"}}
    return Results("threshold", "Threshold reporting: false openings and what the authority sees below t",
                   summary, data, [sec1, dist_section, opening_section], meta)
