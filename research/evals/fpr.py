"""False-match rates of the scanner on benign images, with intervals, breakdowns and account arithmetic.

Two rates, always labelled:

* **per query**: the share of benign images whose *nearest* bank entry is within the threshold (what a user
  experiences: "was my image flagged?"), at the bank size actually used;
* **per pair**: the share of (benign, bank) pairs within the threshold. With independent pairs,
  ``p_query ~ 1 - (1 - p_pair)^N``; the report shows both so the reader can check.

Raw hash distances are reported at several thresholds, with and without the 8 dihedral variants of the query;
the snapshot's verdict (LSH + Bloom filter, built from the bank with a throwaway authority key) is reported
beside them. Images below the algorithm's quality gate are never matched and are counted apart. Byte-identical
files are removed within each side; files present on both sides are reported (they are true matches, not
false ones) and excluded from the rates unless ``keep_cross_duplicates``.

:func:`run` is a chain of small steps: :func:`_inputs` (listing and byte dedupe), :func:`_distances` (nearest
bank entry per benign image), :func:`_snapshot_verdicts`, :func:`_false_matches`, :func:`_breakdowns`,
:func:`_accounts`; :func:`_algo_data`, :func:`_algo_summary` and :func:`_algo_section` turn one algorithm's
steps into results.json fields, summary lines and a report section.
"""

from __future__ import annotations

import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from research import readable, stats
from research.corpus import AlgoInfo, HashSet, ImageEntry, algo_info, hash_corpus, list_images
from research.evals.common import (
    environment,
    file_digest,
    near_duplicate_clusters,
    nearest,
    pair_histogram,
    percentiles,
)
from research.evals.fpr_figures import (
    ThresholdRates,
    account_table,
    cumulative_counts,
    false_match_caption,
    threshold_rates,
    threshold_table,
)
from research.results import Gallery, GalleryItem, Plot, Results, Section, Series, Table
from scanner.hashers.spec import PDQ

__all__ = ["FprConfig", "run"]

QUALITY_BUCKETS: tuple[tuple[int, int], ...] = (
    (0, PDQ.min_quality - 1), (PDQ.min_quality, 69), (70, 89), (90, 100)
)


@dataclass
class FprConfig:
    bank: str
    benign: str
    out: str
    algos: list[str] = field(default_factory=lambda: ["pdq"])
    workers: int | None = None
    decode: str = "fast"
    keep_cross_duplicates: bool = True
    snapshot: bool = True
    account: stats.AccountOptions = field(default_factory=stats.AccountOptions)
    max_gallery: int = 40
    quiet: bool = True


def _dedupe(entries: list[ImageEntry]) -> tuple[list[ImageEntry], list[tuple[str, str]], dict[str, str]]:
    seen: dict[str, str] = {}
    kept: list[ImageEntry] = []
    dups: list[tuple[str, str]] = []
    for e in entries:
        d = file_digest(e.path)
        if d in seen:
            dups.append((e.path, seen[d]))
        else:
            seen[d] = e.path
            kept.append(e)
    return kept, dups, seen


def _bucket(q: int) -> str:
    for lo, hi in QUALITY_BUCKETS:
        if lo <= q <= hi:
            return f"{lo}-{hi}"
    return "?"


@dataclass
class _Inputs:
    """Both sides after byte dedupe: what is hashed, and the counts the report gives."""

    bank_files: int
    benign_files: int
    bank: list[ImageEntry]
    benign: list[ImageEntry]
    bank_duplicates: int
    benign_duplicates: int
    cross: list[str]  # benign files byte-identical to a bank file


@dataclass
class _Distances:
    """One algorithm's nearest bank entry for every scannable benign image (``scanned`` indexes ``ben``)."""

    info: AlgoInfo
    bank: HashSet
    ben: HashSet
    bank_ok: np.ndarray
    bank_hashes: np.ndarray
    bank_paths: list[str]
    scanned: np.ndarray
    queries: np.ndarray
    dihedral: np.ndarray | None
    d_plain: np.ndarray
    d_dih: np.ndarray
    i_dih: np.ndarray
    pair_hist: np.ndarray

    @property
    def n(self) -> int:
        return len(self.scanned)


@dataclass
class _Snapshot:
    """The snapshot's verdicts on the scanned queries (``info["available"]`` False when not measured)."""

    info: dict[str, Any]
    rate: stats.Rate | None = None
    rate_dihedral: stats.Rate | None = None
    match: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=bool))


@dataclass
class _Breakdowns:
    bucket_rows: list[list[Any]]
    family_rows: list[list[Any]]
    families: dict[str, dict[str, Any]]


@dataclass
class _Accounts:
    base: stats.Rate
    basis: str
    rows: list[stats.AccountRow]


@dataclass
class _AlgoRun:
    """Every step of one algorithm, as the renderers read them."""

    algo: str
    dist: _Distances
    snap: _Snapshot
    rates: ThresholdRates
    false_matches: list[dict[str, Any]]
    breakdowns: _Breakdowns
    accounts: _Accounts
    clusters: int


def _inputs(cfg: FprConfig) -> _Inputs:
    bank_all, benign_all = list_images(cfg.bank), list_images(cfg.benign)
    if not bank_all:
        raise ValueError(f"{cfg.bank}: no images found")
    if not benign_all:
        raise ValueError(f"{cfg.benign}: no images found")
    bank_entries, bank_dups, bank_digest = _dedupe(bank_all)
    benign_entries, benign_dups, _ = _dedupe(benign_all)
    cross = [e.path for e in benign_entries if file_digest(e.path) in bank_digest]
    if not cfg.keep_cross_duplicates:
        cross_set = set(cross)
        benign_entries = [e for e in benign_entries if e.path not in cross_set]
    return _Inputs(len(bank_all), len(benign_all), bank_entries, benign_entries, len(bank_dups),
                   len(benign_dups), cross)


def _distances(algo: str, bank: HashSet, ben: HashSet) -> _Distances:
    """Nearest bank entry (plain and over the 8 dihedral variants) and all pair distances."""
    info = algo_info(algo)
    bank_ok = bank.quality >= info.min_quality
    bank_h = bank.hashes[bank_ok]
    bank_paths = [e.path for e, ok in zip(bank.entries, bank_ok, strict=True) if ok]
    q_idx = np.where(ben.quality >= info.min_quality)[0]
    queries = ben.hashes[q_idx]
    qdih = ben.dihedral[q_idx] if ben.dihedral is not None else None
    d_plain, i_plain = nearest(queries, bank_h)
    d_dih, i_dih = (
        nearest(queries, bank_h, query_dihedral=qdih) if qdih is not None else (d_plain, i_plain)
    )
    phist = (
        pair_histogram(queries, bank_h, info.bits)
        if len(q_idx) and len(bank_h)
        else np.zeros(info.bits + 1, np.int64)
    )
    return _Distances(info, bank, ben, bank_ok, bank_h, bank_paths, q_idx, queries, qdih, d_plain, d_dih,
                      i_dih, phist)


def _snapshot_verdicts(algo: str, dist: _Distances, workdir: Path, seed: int) -> _Snapshot:
    """Build the snapshot from the whole bank and ask it about every scanned query."""
    from research.snapshot_view import build_matcher

    bank, queries, qdih, n = dist.bank, dist.queries, dist.dihedral, dist.n
    matcher, why = build_matcher(
        algo, [bytes(h) for h in bank.hashes], bank.quality.tolist(), workdir, seed=seed
    )
    if matcher is None:
        return _Snapshot({"available": False, "reason": why}, match=np.zeros(n, dtype=bool))
    votes_plain = [matcher.match(bytes(queries[i]), None) for i in range(n)]
    votes_dih = [
        matcher.match(bytes(queries[i]), [bytes(v) for v in qdih[i]] if qdih is not None else None)
        for i in range(n)
    ]
    match = np.array([v[0] for v in votes_dih], dtype=bool)
    rate = stats.rate(int(sum(v[0] for v in votes_plain)), n)
    rate_dih = stats.rate(int(match.sum()), n)
    info = {
        "available": True,
        **matcher.info(),
        "per_query": rate.as_dict(),
        "per_query_dihedral": rate_dih.as_dict(),
        "votes_dihedral": [int(v[1]) for v in votes_dih],
    }
    return _Snapshot(info, rate, rate_dih, match)


def _false_matches(dist: _Distances, snap_match: np.ndarray) -> list[dict[str, Any]]:
    """Every scanned query within the default threshold (dihedral) or matched by the snapshot."""
    thr, ben = dist.info.threshold, dist.ben
    found = []
    for j in np.where((dist.d_dih <= thr) | snap_match)[0]:
        qi = int(dist.scanned[j])
        found.append(
            {
                "benign": ben.entries[qi].path,
                "family": ben.entries[qi].family,
                "quality": int(ben.quality[qi]),
                "nearest_bank": dist.bank_paths[int(dist.i_dih[j])] if dist.i_dih[j] >= 0 else None,
                "distance": int(dist.d_plain[j]),
                "distance_dihedral": int(dist.d_dih[j]),
                "snapshot_match": bool(snap_match[j]),
            }
        )
    found.sort(key=lambda m: (m["distance_dihedral"], m["benign"]))
    return found


def _shown_rate(images: int, scanned: int, hits: int) -> str:
    return stats.rate(hits, scanned).fmt() if scanned else (readable.GATED_OUT if images else "-")


def _breakdowns(dist: _Distances) -> _Breakdowns:
    """Per quality bucket and per family: images, scanned, hits at the default threshold (dihedral on)."""
    ben, thr = dist.ben, dist.info.threshold
    by_bucket: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0])
    by_family: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0])
    for i, e in enumerate(ben.entries):
        by_bucket[_bucket(int(ben.quality[i]))][0] += 1
        by_family[e.family][0] += 1
    for j, qi in enumerate(dist.scanned):
        e = ben.entries[int(qi)]
        hit = int(dist.d_dih[j] <= thr)
        by_bucket[_bucket(int(ben.quality[qi]))][1] += 1
        by_bucket[_bucket(int(ben.quality[qi]))][2] += hit
        by_family[e.family][1] += 1
        by_family[e.family][2] += hit
    bucket_rows: list[list[Any]] = []
    for lo, hi in QUALITY_BUCKETS:
        tot, scanned, hits = by_bucket.get(f"{lo}-{hi}", [0, 0, 0])
        bucket_rows.append([f"{lo}-{hi}", tot, scanned, _shown_rate(tot, scanned, hits)])
    fam_rows: list[list[Any]] = []
    fam_data: dict[str, dict[str, Any]] = {}
    for fam in sorted(by_family):
        tot, scanned, hits = by_family[fam]
        fam_rows.append([fam, tot, scanned, _shown_rate(tot, scanned, hits)])
        fam_data[fam] = {"images": tot, "scanned": scanned, **stats.rate(hits, scanned).as_dict()}
    return _Breakdowns(bucket_rows, fam_rows, fam_data)


def _accounts(cfg: FprConfig, dist: _Distances, snap: _Snapshot) -> _Accounts:
    """Account-level arithmetic from the per-query rate at the default threshold."""
    thr = dist.info.threshold
    if snap.rate_dihedral is not None:
        base, basis = snap.rate_dihedral, "snapshot verdict, dihedral on"
    else:
        base, basis = stats.rate(int((dist.d_dih <= thr).sum()), dist.n), f"raw distance <= {thr}, dihedral"
    return _Accounts(base, basis, cfg.account.table(base.p, base.wilson_high))


def _measure_algo(cfg: FprConfig, algo: str, bank: HashSet, ben: HashSet, seed: int,
                  timings: dict[str, float]) -> _AlgoRun:
    """Every step for one algorithm."""
    dist = _distances(algo, bank, ben)
    info = dist.info
    rates = threshold_rates(
        info.bits,
        info.threshold,
        cumulative_counts(dist.d_plain, info.bits),
        cumulative_counts(dist.d_dih, info.bits),
        np.cumsum(dist.pair_hist),
        queries=dist.n,
        bank_size=len(dist.bank_hashes),
    )
    snap = _Snapshot({"available": False}, match=np.zeros(dist.n, dtype=bool))
    if cfg.snapshot:
        ts0 = time.perf_counter()
        snap = _snapshot_verdicts(algo, dist, Path(cfg.out) / "snapshot", seed)
        if snap.rate is not None and snap.rate_dihedral is not None:
            rates.rows.append(
                ["snapshot verdict", snap.rate.fmt(), snap.rate_dihedral.fmt(), "n/a (no pairs)", None]
            )
        timings[f"snapshot_{algo}_s"] = time.perf_counter() - ts0
    return _AlgoRun(
        algo,
        dist,
        snap,
        rates,
        _false_matches(dist, snap.match),
        _breakdowns(dist),
        _accounts(cfg, dist, snap),
        len(np.unique(near_duplicate_clusters(dist.queries, info.threshold))),
    )


def _algo_data(cfg: FprConfig, r: _AlgoRun) -> dict[str, Any]:
    """One algorithm's results.json fields."""
    d, info = r.dist, r.dist.info
    return {
        "bits": info.bits,
        "default_threshold": info.threshold,
        "min_quality": info.min_quality,
        "bank_images": len(d.bank),
        "bank_scannable": int(d.bank_ok.sum()),
        "bank_gated_out": int((~d.bank_ok).sum()),
        "benign_images": len(d.ben),
        "benign_scanned": d.n,
        "benign_gated_out": len(d.ben) - d.n,
        "benign_near_duplicate_clusters": r.clusters,
        "pairs": d.n * len(d.bank_hashes),
        "thresholds": r.rates.per_threshold,
        "snapshot": r.snap.info,
        "quality_buckets": {row[0]: row[1:] for row in r.breakdowns.bucket_rows},
        "families": r.breakdowns.families,
        "false_matches": r.false_matches,
        "nearest_distance_percentiles": percentiles(d.d_dih),
        "pair_distance_histogram": d.pair_hist.tolist(),
        "account": {
            "basis": r.accounts.basis,
            "p": r.accounts.base.p,
            "p_upper": r.accounts.base.wilson_high,
            "rows": r.accounts.rows,
            "configured_threshold": cfg.account.configured_threshold,
            "assumptions": list(stats.ACCOUNT_ASSUMPTIONS),
        },
    }


def _algo_summary(cfg: FprConfig, r: _AlgoRun) -> list[str]:
    d, thr, acct = r.dist, r.dist.info.threshold, r.accounts
    line = (
        f"{r.algo}: per-query false-match rate at d<={thr} (dihedral) {_distance_rate(r).fmt()} over {d.n} "
        f"benign images vs a bank of {len(d.bank_hashes)}"
    )
    if r.snap.rate_dihedral is not None:
        line += f"; snapshot verdict {r.snap.rate_dihedral.fmt()}"
    lines = [line, readable.account_note(r.algo, acct.basis, acct.base, acct.rows)]
    configured = cfg.account.configured_threshold
    if configured:  # the client's report-threshold, at the least busy account of the table
        row = min((a for a in acct.rows if a.threshold == configured),
                  key=lambda a: a.images_per_year)
        lines.append(
            f"{r.algo} at the configured report-threshold t={row.threshold}: an innocent account sending "
            f"{row.images_per_year:,} images a year reaches it with probability {row.prob_flagged:.3g} "
            f"at p={acct.base.p:.3g}, up to {row.prob_flagged_upper:.3g} at p's 95% upper bound"
        )
    return lines


def _distance_rate(r: _AlgoRun) -> stats.Rate:
    return stats.rate(int((r.dist.d_dih <= r.dist.info.threshold).sum()), r.dist.n)


def _algo_text(cfg: FprConfig, inputs: _Inputs, r: _AlgoRun) -> str:
    d, info = r.dist, r.dist.info
    return (
        f"{len(d.bank)} bank images ({int((~d.bank_ok).sum())} below quality {info.min_quality} not put "
        "in the "
        f"bank/snapshot), {len(d.ben)} benign images ({len(d.ben) - d.n} below quality {info.min_quality} "
        f"never matched), {d.n} scanned queries, {d.n * len(d.bank_hashes)} (query, bank) pairs. "
        f"Byte-identical duplicates removed: {inputs.bank_duplicates} bank, {inputs.benign_duplicates} "
        f"benign; benign files also in the bank: {len(inputs.cross)} "
        f"({'kept: they are true matches' if cfg.keep_cross_duplicates else 'excluded'}). "
        f"Benign near-duplicate clusters at d<={info.threshold}: {r.clusters}."
    )


def _snapshot_text(snap_info: dict[str, Any]) -> str:
    if not snap_info.get("available"):
        return f"Snapshot verdict not measured: {snap_info.get('reason', 'disabled')}."
    return "Snapshot: " + ", ".join(
        f"{k}={v}"
        for k, v in snap_info.items()
        if k in ("tables", "bits", "min_votes", "size_bytes", "fingerprint")
    )


def _algo_tables(cfg: FprConfig, r: _AlgoRun) -> list[Table]:
    algo, thr, b = r.algo, r.dist.info.threshold, r.breakdowns
    return [
        threshold_table(algo, r.rates.rows, implied_note=True),
        Table(
            f"{algo}: by quality bucket of the benign image (d<={thr}, dihedral)",
            ["quality", "images", "scanned", "per-query rate"],
            b.bucket_rows,
        ),
        Table(
            f"{algo}: by family (sub-folder of the benign folder; d<={thr}, dihedral)",
            ["family", "images", "scanned", "per-query rate"],
            b.family_rows,
        ),
    ]


def _algo_plots(r: _AlgoRun) -> list[Plot]:
    algo, d, bits, thr = r.algo, r.dist, r.dist.info.bits, r.dist.info.threshold
    return [
        Plot(
            "hist",
            f"{algo}: distance from each benign image to its nearest bank entry",
            "Hamming distance (bits)",
            "benign images",
            [
                Series("nearest (dihedral)", [float(v) for v in d.d_dih]),
                Series("nearest (no dihedral)", [float(v) for v in d.d_plain]),
            ],
            vlines=[(thr, f"threshold {thr}")],
            bins=list(np.arange(0, bits + 2) - 0.5) if bits <= 64 else 40,
            name=f"fpr-{algo}-nearest",
        ),
        Plot(
            "bar",
            f"{algo}: all (benign, bank) pair distances",
            "Hamming distance (bits)",
            "pairs",
            [Series("pairs", d.pair_hist.astype(float).tolist())],
            categories=[str(i) if i % 16 == 0 else "" for i in range(bits + 1)],
            name=f"fpr-{algo}-pairs",
        ),
    ]


def _algo_gallery(cfg: FprConfig, r: _AlgoRun) -> Gallery:
    items = []
    for m in r.false_matches[: cfg.max_gallery]:
        bank_path = m["nearest_bank"]
        items.append(
            GalleryItem(
                false_match_caption(m, Path(m["benign"]).name, Path(bank_path or "").name),
                [m["benign"], bank_path] if bank_path else [m["benign"]],
                ["benign", "bank"],
            )
        )
    shown = len(r.false_matches) > cfg.max_gallery
    return Gallery(
        f"{r.algo}: every false match (benign left, nearest bank image right)",
        items,
        note=f"{len(r.false_matches)} false match(es) at d<={r.dist.info.threshold} or by snapshot verdict"
        + (f"; the first {cfg.max_gallery} are shown, all are in results.json" if shown else ""),
    )


def _algo_section(cfg: FprConfig, inputs: _Inputs, r: _AlgoRun) -> Section:
    """One algorithm's report section: text, tables, plots and the gallery of false matches."""
    sec = Section(f"{r.algo}: false matches")
    sec.text.append(_algo_text(cfg, inputs, r))
    tables = _algo_tables(cfg, r)
    sec.tables.append(tables[0])
    sec.text.append(_snapshot_text(r.snap.info))
    sec.tables.extend(tables[1:])
    acct = r.accounts
    if readable.sample_too_small(acct.base.wilson_high, acct.rows):
        sec.text.append("Innocent accounts: " + readable.account_note(r.algo, acct.basis, acct.base,
                                                                       acct.rows) + ".")
    else:
        sec.tables.append(account_table(r.algo, acct.base, acct.basis, acct.rows, cfg.account.accounts))
    sec.plots.extend(_algo_plots(r))
    sec.galleries.append(_algo_gallery(cfg, r))
    return sec


def _overview(cfg: FprConfig, runs: list[_AlgoRun]) -> Section:
    """Nearest-distance histograms of every algorithm and per-family rates (the first one's families)."""
    overview = Section("Overview")
    hist_entries = [
        (r.algo, r.dist.info.bits, r.dist.info.threshold, [float(v) for v in r.dist.d_dih]) for r in runs
    ]
    overview.plots.extend(readable.nearest_histograms(hist_entries, name="fpr-nearest"))
    cats = list(runs[0].breakdowns.families) if runs else []
    if cats:
        overview.plots.append(
            Plot(
                "bar",
                "Per-query false-match rate by family (default threshold, Wilson 95%)",
                "family",
                "rate",
                [readable.family_series(r.algo, cats, r.breakdowns.families) for r in runs],
                categories=cats,
                name="fpr-families",
            )
        )
    return overview


def _data(cfg: FprConfig, inputs: _Inputs, bank_err: list[tuple[str, str]], ben_err: list[tuple[str, str]],
          runs: list[_AlgoRun]) -> dict[str, Any]:
    data: dict[str, Any] = {
        "bank_dir": cfg.bank,
        "benign_dir": cfg.benign,
        "counts": {
            "bank_files": inputs.bank_files,
            "bank_byte_duplicates_removed": inputs.bank_duplicates,
            "benign_files": inputs.benign_files,
            "benign_byte_duplicates_removed": inputs.benign_duplicates,
            "benign_also_in_bank": len(inputs.cross),
            "cross_duplicates_kept": cfg.keep_cross_duplicates,
            "bank_unreadable": len(bank_err),
            "benign_unreadable": len(ben_err),
        },
        "unreadable": [{"path": p, "error": e} for p, e in bank_err + ben_err],
        "cross_duplicates": inputs.cross,
        "algos": {r.algo: _algo_data(cfg, r) for r in runs},
    }
    first_algo = data["algos"][cfg.algos[0]]
    data["benign_images"] = first_algo["benign_images"]  # the first algorithm's counts, at the top level
    data["benign_scanned"] = first_algo["benign_scanned"]
    return data


def _summary(cfg: FprConfig, runs: list[_AlgoRun]) -> list[str]:
    summary = [line for r in runs for line in _algo_summary(cfg, r)]
    if runs:
        first = runs[0]
        headline_rate = first.snap.rate_dihedral or _distance_rate(first)
        summary.insert(0, readable.headline(cfg.algos[0], first.accounts.basis, headline_rate))
    return summary


def run(cfg: FprConfig, seed: int = 0) -> Results:
    """Measure false-match rates of ``cfg.algos`` with a bank from ``cfg.bank`` on ``cfg.benign``."""
    t0 = time.perf_counter()
    inputs = _inputs(cfg)
    timings: dict[str, float] = {}
    t = time.perf_counter()
    bank_sets, bank_err = hash_corpus(inputs.bank, cfg.algos, dihedral=True, mode=cfg.decode,
                                      workers=cfg.workers, quiet=cfg.quiet, description="hashing bank")
    ben_sets, ben_err = hash_corpus(inputs.benign, cfg.algos, dihedral=True, mode=cfg.decode,
                                    workers=cfg.workers, quiet=cfg.quiet, description="hashing benign")
    timings["hashing_s"] = time.perf_counter() - t
    runs = [_measure_algo(cfg, a, bank_sets[a], ben_sets[a], seed, timings) for a in cfg.algos]
    sections = [_overview(cfg, runs)] + [_algo_section(cfg, inputs, r) for r in runs]
    data = _data(cfg, inputs, bank_err, ben_err, runs)
    timings["total_s"] = time.perf_counter() - t0
    meta = {
        "seed": seed,
        "algos": cfg.algos,
        "decode": cfg.decode,
        "workers": cfg.workers,
        "timings": timings,
        **environment(),
    }
    return Results(
        "fpr", "pocketscan research fpr: false matches on benign images", _summary(cfg, runs), data,
        sections, meta,
    )
