"""Words for research reports that a policy reader cannot misread.

Helpers of the report layer: evaluations compute numbers; these turn them into headlines, notes, plots and a
glossary that say what the numbers can and cannot support:

* a sample too small to bound a rate is said to be too small, with the rule of three (0 events in n bound
  the rate only below about 3/n at 95%), instead of account-level figures computed from a huge upper bound;
* a category with nothing scanned gets no interval (an interval [0, 1] looks like 100 % risk) but the words
  "0 scanned: all below the quality gate";
* distances of hashes of different widths never share an axis: one histogram per bit width, with each
  hasher's threshold drawn;
* a glossary of the terms a report uses; unreadable inputs are listed, never only counted.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from research import stats
from research.results import Plot, Results, Section, Series, Table

__all__ = [
    "GATED_OUT",
    "GLOSSARY",
    "account_note",
    "family_series",
    "glossary_section",
    "headline",
    "nearest_histograms",
    "report_summary",
    "sample_too_small",
    "unreadable_section",
]

GATED_OUT = "0 scanned: all below the quality gate"
"""What a category with images but none scanned shows instead of a rate or an error bar."""

#: The account arithmetic is informative only if, at the rate's upper bound, the most favourable
#: (images per year, threshold) row flags an innocent account with at most this probability.
INFORMATIVE_FLAG_PROBABILITY = 1e-6

GLOSSARY: dict[str, str] = {
    "per-query": "Per-query rate: the share of benign images whose nearest bank entry is within the "
                 "threshold, i.e. the chance that one innocent image sent is flagged.",
    "per-pair": "Per-pair rate: the share of (benign image, bank entry) pairs within the threshold. It "
                "grows with neither bank size nor sample in the same way; multiply it out only if pairs "
                "were independent (they are not).",
    "dihedral": "Dihedral: the 8 rotations and mirror images of an image (rot90/180/270, flips, "
                "transposes). Matching with dihedral variants also catches rotated or mirrored copies, and "
                "gives innocent images 8 chances to collide.",
    "Wilson": "Wilson interval: the 95% confidence interval [low, high] of a rate k/n. It stays inside "
              "[0, 1] and is honest for small k; with k = 0 its upper end is about 3/n.",
    "snapshot verdict": "Snapshot verdict: what the deployed matcher decides from the signed Bloom-filter "
                        "snapshot (LSH votes across tables), as opposed to the exact Hamming distance to "
                        "the raw bank, which a device never holds.",
    "rule of three": "Rule of three: with 0 events in n independent trials, the 95% upper bound on the rate "
                     "is about 3/n. Zero false matches in 500 images supports 'below 0.6%', not "
                     "'one in a trillion'.",
}
_GLOSSARY_TRIGGERS: dict[str, tuple[str, ...]] = {
    "per-query": ("per query", "per-query"),
    "per-pair": ("per pair", "per-pair"),
    "dihedral": ("dihedral",),
    "Wilson": ("wilson",),
    "snapshot verdict": ("snapshot verdict", "snapshot"),
    "rule of three": ("rule of three", "3/n", "too small"),
}


def _pct(p: float) -> str:
    """0.136 -> '14%', 0.00139 -> '0.14%' (two significant digits)."""
    return f"{100 * p:.2g}%"


def _flag(p: float, images: int, threshold: int) -> float:
    return stats.account_flag_probability(p, images, threshold)


def sample_too_small(p_upper: float, rows: Sequence[stats.AccountRow]) -> bool:
    """True if even the most favourable account row is uninformative at the rate's upper bound."""
    if not rows:
        return True
    return min(r.prob_flagged_upper for r in rows) > INFORMATIVE_FLAG_PROBABILITY


def _needed_images(rows: Sequence[stats.AccountRow]) -> tuple[int, stats.AccountRow] | None:
    """Benign images (with 0 false matches) needed before the most favourable row becomes informative."""
    if not rows:
        return None
    best = max(rows, key=lambda r: (r.threshold, -r.images_per_year))
    lo, hi = 1e-15, 1.0  # bisection on p for P(flagged) = INFORMATIVE_FLAG_PROBABILITY (monotone in p)
    if _flag(lo, best.images_per_year, best.threshold) > INFORMATIVE_FLAG_PROBABILITY:
        return None
    for _ in range(100):
        mid = math.sqrt(lo * hi)
        if _flag(mid, best.images_per_year, best.threshold) > INFORMATIVE_FLAG_PROBABILITY:
            hi = mid
        else:
            lo = mid
    return math.ceil(3.0 / lo), best


def headline(algo: str, basis: str, rate: stats.Rate) -> str:
    """The report's first line: the rate, and in words what a sample of this size can bound."""
    text = f"Headline ({algo}, {basis}): {rate.fmt()}; n={rate.n} scanned benign images"
    if rate.n == 0:
        return (f"Headline ({algo}, {basis}): no benign image was scanned (all below the quality gate or "
                "unreadable): no rate can be given")
    if rate.k == 0:
        text += (f". No false match in {rate.n:,}: by the rule of three the rate is below about "
                 f"3/{rate.n:,} = {_pct(3 / rate.n)} (95%); a sample this size cannot show it is lower")
    return text


def account_note(algo: str, basis: str, rate: stats.Rate, rows: Sequence[stats.AccountRow]) -> str:
    """One summary line on innocent accounts: the arithmetic if the sample supports it, else why not."""
    if not sample_too_small(rate.wilson_high, rows):
        best = max(rows, key=lambda r: (r.threshold, -r.images_per_year))
        return (
            f"{algo} account arithmetic ({basis}; assumptions in the report): with p at its 95% upper bound "
            f"{rate.wilson_high:.3g}, an innocent account sending {best.images_per_year:,} images a year "
            f"reaches t={best.threshold} matches with probability up to {best.prob_flagged_upper:.3g} "
            f"({best.prob_flagged:.3g} at p={rate.p:.3g}; n={rate.n:,})"
        )
    bound = f"3/{rate.n:,} = {_pct(3 / rate.n)}" if rate.k == 0 and rate.n else _pct(rate.wilson_high)
    method = "rule of three" if rate.k == 0 else "Wilson"
    text = (
        f"{algo}: the sample is too small to say anything about innocent accounts: {rate.k:,} false "
        f"match(es) in {rate.n:,} scanned images bound the rate only below {bound} (95%, {method}), and "
        "at that rate every account figure would be an artefact of the sample size, not a property of the "
        "scanner"
    )
    needed = _needed_images(rows) if rate.k == 0 else None
    if needed is not None:
        n_needed, best = needed
        text += (f"; about {n_needed:,} benign images with no false match would bound it low enough "
                 f"(P < {INFORMATIVE_FLAG_PROBABILITY:g} for {best.images_per_year:,} images a year at "
                 f"t={best.threshold})")
    return text


def family_series(label: str, families: Sequence[str], data: dict[str, dict[str, Any]]) -> Series:
    """Bars of per-family rates; a family with nothing scanned gets no bar, no interval, but a note."""
    values, low, high, notes = [], [], [], []
    for fam in families:
        d = data.get(fam, {})
        if not d.get("scanned"):
            values.append(math.nan)
            low.append(math.nan)
            high.append(math.nan)
            notes.append(GATED_OUT if d.get("images") else "no images")
        else:
            values.append(float(d["p"]))
            low.append(float(d["wilson_low"]))
            high.append(float(d["wilson_high"]))
            notes.append("")
    return Series(label, values, low=low, high=high, notes=notes)


def nearest_histograms(entries: Sequence[tuple[str, int, int, list[float]]], *, name: str) -> list[Plot]:
    """One histogram per hash width: ``entries`` are (hasher, bits, threshold, nearest distances)."""
    plots = []
    for bits in sorted({e[1] for e in entries}, reverse=True):
        group = [e for e in entries if e[1] == bits]
        plots.append(Plot(
            "hist",
            f"{bits}-bit hashes: distance from each benign image to its nearest bank entry",
            f"Hamming distance (bits, of {bits})",
            "benign images",
            [Series(f"{algo} (dihedral)", values) for algo, _, _, values in group],
            vlines=[(thr, f"{algo} threshold {thr}") for algo, _, thr, _ in group],
            bins=list(map(float, [x - 0.5 for x in range(0, bits + 2, max(1, bits // 64))])),
            name=f"{name}-{bits}bit",
        ))
    return plots


def unreadable_section(results: Results) -> Section | None:
    """Every input file an evaluation could not read, with the reason (``data["unreadable"]``)."""
    items = results.data.get("unreadable") if isinstance(results.data, dict) else None
    if not items:
        return None
    rows = []
    for item in items:
        if isinstance(item, dict):
            rows.append([str(item.get("path", "")), str(item.get("error", ""))])
        elif isinstance(item, list | tuple) and len(item) >= 2:
            rows.append([str(item[0]), str(item[1])])
        else:
            rows.append([str(item), ""])
    sec = Section(f"Unreadable inputs ({len(rows)})")
    sec.text.append("These files were skipped: they are in none of the figures above.")
    sec.tables.append(Table("Files that could not be read", ["file", "reason"], rows))
    return sec


def report_summary(results: Results) -> list[str]:
    """The summary lines, plus a line naming how many inputs were unreadable (listed in the report)."""
    lines = list(results.summary)
    items = results.data.get("unreadable") if isinstance(results.data, dict) else None
    if items:
        lines.append(f"{len(items)} input file(s) could not be read and were skipped: listed in the report "
                     "under 'Unreadable inputs'")
    return lines


def _report_text(results: Results) -> str:
    parts = list(results.summary)
    for sec in results.sections:
        parts += [sec.heading, *sec.text]
        for t in sec.tables:
            parts += [t.title, t.note, *t.columns]
            parts += [str(c) for row in t.rows for c in row[:1]]
        for p in sec.plots:
            parts += [p.title, p.caption]
    return "\n".join(parts).lower()


def glossary_section(results: Results) -> Section | None:
    """A short glossary of the terms this report uses (per-query, per-pair, dihedral, Wilson, ...)."""
    text = _report_text(results)
    used = [term for term, triggers in _GLOSSARY_TRIGGERS.items() if any(t in text for t in triggers)]
    if not used:
        return None
    sec = Section("Glossary")
    sec.tables.append(Table("Terms used in this report", ["term", "meaning"],
                            [[term, GLOSSARY[term].split(": ", 1)[1]] for term in used]))
    return sec
