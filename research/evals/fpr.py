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
"""

from __future__ import annotations

import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from research import readable, stats
from research.corpus import ImageEntry, algo_info, hash_corpus, list_images
from research.evals.common import (
    environment,
    file_digest,
    nearest,
    pair_histogram,
    percentiles,
    thresholds_for,
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
    images_per_year: list[int] = field(default_factory=lambda: [1_000, 10_000, 100_000])
    account_thresholds: list[int] = field(default_factory=lambda: [1, 2, 5, 10, 30])
    accounts: int = 1_000_000_000
    configured_threshold: int | None = None
    """The client's ``report-threshold`` (``--profile`` or ``--report-threshold``): always in the table."""
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


def run(cfg: FprConfig, seed: int = 0) -> Results:
    """Measure false-match rates of ``cfg.algos`` with a bank from ``cfg.bank`` on ``cfg.benign``."""
    from research.snapshot_view import build_matcher

    t0 = time.perf_counter()
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
    timings: dict[str, float] = {}
    t = time.perf_counter()
    bank_sets, bank_err = hash_corpus(
        bank_entries,
        cfg.algos,
        dihedral=True,
        mode=cfg.decode,
        workers=cfg.workers,
        quiet=cfg.quiet,
        description="hashing bank",
    )
    ben_sets, ben_err = hash_corpus(
        benign_entries,
        cfg.algos,
        dihedral=True,
        mode=cfg.decode,
        workers=cfg.workers,
        quiet=cfg.quiet,
        description="hashing benign",
    )
    timings["hashing_s"] = time.perf_counter() - t

    data: dict[str, Any] = {
        "bank_dir": cfg.bank,
        "benign_dir": cfg.benign,
        "counts": {
            "bank_files": len(bank_all),
            "bank_byte_duplicates_removed": len(bank_dups),
            "benign_files": len(benign_all),
            "benign_byte_duplicates_removed": len(benign_dups),
            "benign_also_in_bank": len(cross),
            "cross_duplicates_kept": cfg.keep_cross_duplicates,
            "bank_unreadable": len(bank_err),
            "benign_unreadable": len(ben_err),
        },
        "unreadable": [{"path": p, "error": e} for p, e in bank_err + ben_err],
        "cross_duplicates": cross,
        "algos": {},
    }
    sections: list[Section] = []
    summary: list[str] = []
    hist_entries: list[tuple[str, int, int, list[float]]] = []  # (algo, bits, threshold, nearest)
    rate_series: list[Series] = []
    rate_cats: list[str] = []
    headline_rate: stats.Rate | None = None
    headline_label = ""

    for algo in cfg.algos:
        info = algo_info(algo)
        bank, ben = bank_sets[algo], ben_sets[algo]
        bank_ok = bank.quality >= info.min_quality
        ben_ok = ben.quality >= info.min_quality
        bank_h = bank.hashes[bank_ok]
        bank_paths = [e.path for e, ok in zip(bank.entries, bank_ok, strict=True) if ok]
        q_idx = np.where(ben_ok)[0]
        queries = ben.hashes[q_idx]
        qdih = ben.dihedral[q_idx] if ben.dihedral is not None else None
        d_plain, i_plain = nearest(queries, bank_h)
        d_dih, i_dih = (
            nearest(queries, bank_h, query_dihedral=qdih) if qdih is not None else (d_plain, i_plain)
        )
        n = len(q_idx)
        n_pairs = n * len(bank_h)
        phist = (
            pair_histogram(queries, bank_h, info.bits)
            if n and len(bank_h)
            else np.zeros(info.bits + 1, np.int64)
        )
        pcum = np.cumsum(phist)
        ts = thresholds_for(info.bits, info.threshold)
        rows = []
        per_t: list[dict[str, Any]] = []
        for thr in ts:
            rq = stats.rate(int((d_plain <= thr).sum()), n)
            rqd = stats.rate(int((d_dih <= thr).sum()), n)
            rp = stats.rate(int(pcum[thr]) if thr < len(pcum) else n_pairs, n_pairs)
            implied = 1 - (1 - rp.p) ** len(bank_h) if n_pairs else 0.0
            rows.append(
                [
                    f"{thr}{' (default)' if thr == info.threshold else ''}",
                    rq.fmt(),
                    rqd.fmt(),
                    f"{rp.k}/{rp.n} = {rp.p:.3g} [{rp.wilson_low:.3g}, {rp.wilson_high:.3g}]",
                    implied,
                ]
            )
            per_t.append(
                {
                    "threshold": thr,
                    "per_query": rq.as_dict(),
                    "per_query_dihedral": rqd.as_dict(),
                    "per_pair": rp.as_dict(),
                    "per_query_implied_by_pairs": implied,
                }
            )
        # Snapshot verdicts (the deployed matcher), when the snapshot supports this algorithm.
        snap_info: dict[str, Any] = {"available": False}
        snap_rate: stats.Rate | None = None
        snap_rate_dih: stats.Rate | None = None
        snap_match = np.zeros(n, dtype=bool)
        if cfg.snapshot:
            ts0 = time.perf_counter()
            matcher, why = build_matcher(
                algo,
                [bytes(h) for h in bank.hashes],
                bank.quality.tolist(),
                Path(cfg.out) / "snapshot",
                seed=seed,
            )
            if matcher is not None:
                votes_plain = [matcher.match(bytes(queries[i]), None) for i in range(n)]
                votes_dih = [
                    matcher.match(
                        bytes(queries[i]), [bytes(v) for v in qdih[i]] if qdih is not None else None
                    )
                    for i in range(n)
                ]
                snap_match = np.array([v[0] for v in votes_dih], dtype=bool)
                snap_rate = stats.rate(int(sum(v[0] for v in votes_plain)), n)
                snap_rate_dih = stats.rate(int(snap_match.sum()), n)
                snap_info = {
                    "available": True,
                    **matcher.info(),
                    "per_query": snap_rate.as_dict(),
                    "per_query_dihedral": snap_rate_dih.as_dict(),
                    "votes_dihedral": [int(v[1]) for v in votes_dih],
                }
                rows.append(
                    ["snapshot verdict", snap_rate.fmt(), snap_rate_dih.fmt(), "n/a (no pairs)", None]
                )
            else:
                snap_info = {"available": False, "reason": why}
            timings[f"snapshot_{algo}_s"] = time.perf_counter() - ts0

        gated = int((~ben_ok).sum())
        thr = info.threshold
        fm_mask = (d_dih <= thr) | snap_match
        false_matches = []
        for j in np.where(fm_mask)[0]:
            e = ben.entries[int(q_idx[j])]
            false_matches.append(
                {
                    "benign": e.path,
                    "family": e.family,
                    "quality": int(ben.quality[q_idx[j]]),
                    "nearest_bank": bank_paths[int(i_dih[j])] if i_dih[j] >= 0 else None,
                    "distance": int(d_plain[j]),
                    "distance_dihedral": int(d_dih[j]),
                    "snapshot_match": bool(snap_match[j]),
                }
            )
        false_matches.sort(key=lambda m: (m["distance_dihedral"], m["benign"]))
        # Breakdown by quality bucket and by family, at the default threshold (dihedral on).
        by_bucket: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0])
        by_family: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0])
        for i, e in enumerate(ben.entries):
            qv = int(ben.quality[i])
            by_bucket[_bucket(qv)][0] += 1
            by_family[e.family][0] += 1
        for j, qi in enumerate(q_idx):
            e = ben.entries[int(qi)]
            hit = int(d_dih[j] <= thr)
            by_bucket[_bucket(int(ben.quality[qi]))][1] += 1
            by_bucket[_bucket(int(ben.quality[qi]))][2] += hit
            by_family[e.family][1] += 1
            by_family[e.family][2] += hit
        bucket_rows = []
        for lo, hi in QUALITY_BUCKETS:
            tot, scanned, hits = by_bucket.get(f"{lo}-{hi}", [0, 0, 0])
            r = stats.rate(hits, scanned)
            shown = r.fmt() if scanned else (readable.GATED_OUT if tot else "-")
            bucket_rows.append([f"{lo}-{hi}", tot, scanned, shown])
        fam_rows = []
        fam_data = {}
        for fam in sorted(by_family):
            tot, scanned, hits = by_family[fam]
            r = stats.rate(hits, scanned)
            fam_rows.append([fam, tot, scanned, r.fmt() if scanned else (readable.GATED_OUT if tot else "-")])
            fam_data[fam] = {"images": tot, "scanned": scanned, **r.as_dict()}
            if algo == cfg.algos[0]:
                rate_cats.append(fam)
        if algo == cfg.algos[0] or True:
            rate_series.append(readable.family_series(algo, rate_cats, fam_data))
        hist_entries.append((algo, info.bits, info.threshold, [float(v) for v in d_dih]))

        # Account-level arithmetic from the per-query rate at the default threshold.
        base = snap_rate_dih if snap_rate_dih is not None else stats.rate(int((d_dih <= thr).sum()), n)
        basis = (
            "snapshot verdict, dihedral on"
            if snap_rate_dih is not None
            else f"raw distance <= {thr}, dihedral"
        )
        thresholds = sorted(set(cfg.account_thresholds) | (
            {cfg.configured_threshold} if cfg.configured_threshold else set()))
        acct = stats.account_table(
            base.p,
            base.wilson_high,
            images_per_year=cfg.images_per_year,
            thresholds=thresholds,
            accounts=cfg.accounts,
        )
        acct_rows = [
            [
                r.images_per_year,
                r.threshold,
                r.prob_flagged,
                r.prob_flagged_upper,
                r.expected_flagged_accounts,
                r.expected_flagged_accounts_upper,
            ]
            for r in acct
        ]
        clusters = _clusters(queries, thr)
        data["algos"][algo] = {
            "bits": info.bits,
            "default_threshold": thr,
            "min_quality": info.min_quality,
            "bank_images": len(bank),
            "bank_scannable": int(bank_ok.sum()),
            "bank_gated_out": int((~bank_ok).sum()),
            "benign_images": len(ben),
            "benign_scanned": n,
            "benign_gated_out": gated,
            "benign_near_duplicate_clusters": clusters,
            "pairs": n_pairs,
            "thresholds": per_t,
            "snapshot": snap_info,
            "quality_buckets": {r[0]: r[1:] for r in bucket_rows},
            "families": fam_data,
            "false_matches": false_matches,
            "nearest_distance_percentiles": percentiles(d_dih),
            "pair_distance_histogram": phist.tolist(),
            "account": {
                "basis": basis,
                "p": base.p,
                "p_upper": base.wilson_high,
                "rows": acct,
                "configured_threshold": cfg.configured_threshold,
                "assumptions": list(stats.ACCOUNT_ASSUMPTIONS),
            },
        }
        d_rate = stats.rate(int((d_dih <= thr).sum()), n)
        line = (
            f"{algo}: per-query false-match rate at d<={thr} (dihedral) {d_rate.fmt()} over {n} benign "
            f"images vs a bank of {len(bank_h)}"
        )
        if snap_rate_dih is not None:
            line += f"; snapshot verdict {snap_rate_dih.fmt()}"
        summary.append(line)
        summary.append(readable.account_note(algo, basis, base, acct))
        if cfg.configured_threshold:  # the client's report-threshold, at the least busy account of the table
            row = min((r for r in acct if r.threshold == cfg.configured_threshold),
                      key=lambda r: r.images_per_year)
            summary.append(
                f"{algo} at the configured report-threshold t={row.threshold}: an innocent account sending "
                f"{row.images_per_year:,} images a year reaches it with probability {row.prob_flagged:.3g} "
                f"at p={base.p:.3g}, up to {row.prob_flagged_upper:.3g} at p's 95% upper bound"
            )
        if headline_rate is None:
            headline_rate, headline_label = (snap_rate_dih or d_rate), basis
        sec = Section(f"{algo}: false matches")
        sec.text.append(
            f"{len(bank)} bank images ({int((~bank_ok).sum())} below quality {info.min_quality} not put "
            "in the "
            f"bank/snapshot), {len(ben)} benign images ({gated} below quality {info.min_quality} never "
            f"matched), {n} scanned queries, {n_pairs} (query, bank) pairs. Byte-identical duplicates "
            f"removed: {len(bank_dups)} bank, {len(benign_dups)} benign; benign files also in the bank: "
            f"{len(cross)} ({'kept: they are true matches' if cfg.keep_cross_duplicates else 'excluded'}). "
            f"Benign near-duplicate clusters at d<={thr}: {clusters}."
        )
        sec.tables.append(
            Table(
                f"{algo}: false-match rate by threshold (Wilson 95%)",
                ["threshold", "per query", "per query, dihedral", "per pair", "per query implied by pairs"],
                rows,
                note="Per query: share of benign images whose nearest bank entry is within the threshold. "
                "Per pair: share of (benign, bank) pairs within it. Implied = 1-(1-p_pair)^N if pairs were "
                "independent.",
            )
        )
        if not snap_info.get("available"):
            sec.text.append(f"Snapshot verdict not measured: {snap_info.get('reason', 'disabled')}.")
        else:
            sec.text.append(
                "Snapshot: "
                + ", ".join(
                    f"{k}={v}"
                    for k, v in snap_info.items()
                    if k in ("tables", "bits", "min_votes", "size_bytes", "fingerprint")
                )
            )
        sec.tables.append(
            Table(
                f"{algo}: by quality bucket of the benign image (d<={thr}, dihedral)",
                ["quality", "images", "scanned", "per-query rate"],
                bucket_rows,
            )
        )
        sec.tables.append(
            Table(
                f"{algo}: by family (sub-folder of the benign folder; d<={thr}, dihedral)",
                ["family", "images", "scanned", "per-query rate"],
                fam_rows,
            )
        )
        if readable.sample_too_small(base.wilson_high, acct):
            sec.text.append("Innocent accounts: " + readable.account_note(algo, basis, base, acct) + ".")
        else:
            sec.tables.append(
                Table(
                    f"{algo}: innocent accounts flagged per year "
                    f"(p = {base.p:.3g}, upper {base.wilson_high:.3g}; "
                    f"{basis})",
                    [
                        "images/year",
                        "threshold t",
                        "P(flagged)",
                        "P(flagged) at upper p",
                        f"accounts of {cfg.accounts:.0e}",
                        "at upper p",
                    ],
                    acct_rows,
                    note="Assumptions: " + " ".join(stats.ACCOUNT_ASSUMPTIONS),
                )
            )
        sec.plots.append(
            Plot(
                "hist",
                f"{algo}: distance from each benign image to its nearest bank entry",
                "Hamming distance (bits)",
                "benign images",
                [
                    Series("nearest (dihedral)", [float(v) for v in d_dih]),
                    Series("nearest (no dihedral)", [float(v) for v in d_plain]),
                ],
                vlines=[(thr, f"threshold {thr}")],
                bins=list(np.arange(0, info.bits + 2) - 0.5) if info.bits <= 64 else 40,
                name=f"fpr-{algo}-nearest",
            )
        )
        sec.plots.append(
            Plot(
                "bar",
                f"{algo}: all (benign, bank) pair distances",
                "Hamming distance (bits)",
                "pairs",
                [Series("pairs", phist.astype(float).tolist())],
                categories=[str(i) if i % 16 == 0 else "" for i in range(info.bits + 1)],
                name=f"fpr-{algo}-pairs",
            )
        )
        items = []
        for m in false_matches[: cfg.max_gallery]:
            items.append(
                GalleryItem(
                    f"d={m['distance_dihedral']} (plain {m['distance']}), q={m['quality']}, "
                    f"snapshot={'match' if m['snapshot_match'] else 'no'}: {Path(m['benign']).name} vs "
                    f"{Path(m['nearest_bank'] or '').name}",
                    [m["benign"], m["nearest_bank"]] if m["nearest_bank"] else [m["benign"]],
                    ["benign", "bank"],
                )
            )
        sec.galleries.append(
            Gallery(
                f"{algo}: every false match (benign left, nearest bank image right)",
                items,
                note=f"{len(false_matches)} false match(es) at d<={thr} or by snapshot verdict"
                + (
                    f"; the first {cfg.max_gallery} are shown, all are in results.json"
                    if len(false_matches) > cfg.max_gallery
                    else ""
                ),
            )
        )
        sections.append(sec)

    overview = Section("Overview")
    overview.plots.extend(readable.nearest_histograms(hist_entries, name="fpr-nearest"))
    if rate_cats:
        overview.plots.append(
            Plot(
                "bar",
                "Per-query false-match rate by family (default threshold, Wilson 95%)",
                "family",
                "rate",
                rate_series,
                categories=rate_cats,
                name="fpr-families",
            )
        )
    sections.insert(0, overview)
    first_algo = data["algos"][cfg.algos[0]]
    data["benign_images"] = first_algo["benign_images"]  # the first algorithm's counts, at the top level
    data["benign_scanned"] = first_algo["benign_scanned"]
    if headline_rate is not None:
        summary.insert(0, readable.headline(cfg.algos[0], headline_label, headline_rate))
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
        "fpr", "pocketscan research fpr: false matches on benign images", summary, data, sections, meta
    )


def _clusters(hashes: np.ndarray, thr: int) -> int:
    """Connected components of the benign queries under d <= thr (distinct visual clusters)."""
    n = hashes.shape[0]
    if n == 0:
        return 0
    parent = list(range(n))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for s in range(0, n, 256):
        d = np.bitwise_count(np.bitwise_xor(hashes[s : s + 256, None, :], hashes[None, :, :])).sum(axis=2)
        for a, b in zip(*np.where(d <= thr), strict=True):
            ra, rb = find(int(a) + s), find(int(b))
            if ra != rb:
                parent[ra] = rb
    return len({find(i) for i in range(n)})
