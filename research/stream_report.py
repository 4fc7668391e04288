"""Figures of a streaming run, computed from its columnar store in bounded chunks.

:func:`build_results` reads the ``.npy`` memmaps of :class:`research.stream.Store` ``CHUNK`` rows at a time
and sums integer counts: histograms of the nearest-bank distance (with and without dihedral variants),
snapshot votes, counts per family, per source and per quality bucket, and the false matches (all counted,
the first :data:`~research.stream.MAX_FALSE_MATCHES_LISTED` listed). Byte-identical benign images (same
SHA-256 prefix of the file, or of the pixels of a produced image) count once: the first index is kept.
``results.json`` keeps the field names of the in-memory ``fpr`` run (``benign_scanned``, ``thresholds``,
``per_query``, ``snapshot``...) and adds ``run`` (throughput, memory, checkpoint) and ``bound``.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

from research import stats
from research.evals.common import environment, thresholds_for
from research.results import Gallery, GalleryItem, Plot, Results, Section, Series, Table
from research.sources import Plan, item_image, png_bytes
from research.stream import MAX_FALSE_MATCHES_LISTED, BankContext, Store, StreamConfig, bound
from scanner.hashers.spec import PDQ

__all__ = ["CHUNK", "build_results"]

CHUNK = 1 << 17
QUALITY_BUCKETS: tuple[tuple[int, int], ...] = (
    (0, PDQ.min_quality - 1), (PDQ.min_quality, 69), (70, 89), (90, 100)
)


def _percentiles_from_hist(hist: np.ndarray, qs: tuple[int, ...] = (5, 25, 50, 75, 95)) -> dict[str, float]:
    total = int(hist.sum())
    if total == 0:
        return {f"p{q}": float("nan") for q in qs}
    cum = np.cumsum(hist)
    return {f"p{q}": float(np.searchsorted(cum, q / 100 * total, side="left")) for q in qs}


def _first_occurrence(store: Store, processed: np.ndarray) -> np.ndarray:
    """True for the first index of each benign digest among readable images."""
    digest = np.asarray(store.column("digest"))
    idx = np.flatnonzero(processed)
    first = np.zeros(len(digest), dtype=bool)
    _, pos = np.unique(digest[idx], return_index=True)
    first[idx[pos]] = True
    return first


def build_results(
    cfg: StreamConfig,
    seed: int,
    plan: Plan,
    store: Store,
    ctx: BankContext,
    bank_meta: dict[str, dict[str, Any]],
    ckpt: dict[str, Any],
    run_info: dict[str, Any],
    *,
    bank_counts: dict[str, Any],
    bank_digests: set[str],
    total_seconds: float,
) -> Results:
    status = store.column("status")
    total = plan.total
    readable = np.zeros(total, dtype=bool)
    for s in range(0, total, CHUNK):
        readable[s : s + CHUNK] = np.asarray(status[s : s + CHUNK]) == 1
    processed_all = int((np.asarray(status) != 0).sum())
    first = _first_occurrence(store, readable)
    bank_prefixes = {int(d[:16], 16) for d in bank_digests}
    digest = store.column("digest")
    cross = np.zeros(total, dtype=bool)
    nfiles = len(plan.files)
    if nfiles and bank_prefixes:
        prefixes = np.array(sorted(bank_prefixes), dtype=np.uint64)
        cross[:nfiles] = readable[:nfiles] & np.isin(np.asarray(digest[:nfiles]), prefixes)
    counted = readable & first & (cfg.keep_cross_duplicates | ~cross)
    errors = [(int(gi), msg) for part in ckpt["partitions"].values() for gi, msg in part["errors"]]
    data: dict[str, Any] = {
        "bank_dir": cfg.bank,
        "benign_dir": ", ".join(_source_names(cfg, plan)),
        "sources": plan.describe(),
        "counts": {
            **bank_counts,
            "benign_planned": total,
            "benign_files": nfiles,
            "benign_processed": processed_all,
            "benign_byte_duplicates_removed": int((readable & ~first).sum()),
            "benign_also_in_bank": int(cross.sum()),
            "cross_duplicates_kept": cfg.keep_cross_duplicates,
            "benign_unreadable": len(errors),
        },
        "unreadable": [{"index": gi, "image": plan.label_of(gi), "error": msg} for gi, msg in errors[:1000]],
        "algos": {},
        "run": run_info,
    }
    sections: list[Section] = []
    summary: list[str] = []
    for algo, bank in ctx.algos.items():
        data["algos"][algo], sec, lines = _algo_figures(
            cfg, plan, store, algo, bank, bank_meta[algo], counted, readable & first
        )
        sections.append(sec)
        summary.extend(lines)
    first_algo = data["algos"][cfg.algos[0]]
    data["benign_images"] = first_algo["benign_images"]
    data["benign_scanned"] = first_algo["benign_scanned"]
    data["bound"] = first_algo["bound"]
    head = first_algo["bound"]
    state = "complete" if run_info["complete"] else f"PARTIAL ({run_info['stopped']})"
    summary.insert(
        0,
        f"Run {state}: {run_info['images_processed']:,} of {total:,} benign images processed in "
        f"{run_info['partitions_done']}/{run_info['partitions_total']} partitions; "
        f"{run_info['images_per_second'] or 0:.1f} images/s in this invocation on "
        f"{run_info['engine']['workers']} worker(s)",
    )
    summary.insert(
        1,
        f"Headline ({cfg.algos[0]}, {first_algo['account']['basis']}): {head['k']} false matches in "
        f"{head['n']:,} scanned benign images; 95% Clopper-Pearson [{head['clopper_pearson_95'][0]:.3g}, "
        f"{head['clopper_pearson_95'][1]:.3g}], one-sided 95% upper bound {head['one_sided_95_upper']:.3g}",
    )
    run_sec = Section("Run: throughput, memory, checkpoint")
    run_sec.tables.append(
        Table(
            "How this run was computed",
            ["item", "value"],
            [
                ["engine", f"{run_info['engine']['engine']} {run_info['engine']['distributed']}"],
                ["scheduler", run_info["engine"]["scheduler"]],
                ["workers", run_info["engine"]["workers"]],
                [
                    "partitions done / total",
                    f"{run_info['partitions_done']} / {run_info['partitions_total']}",
                ],
                ["partitions resumed from the checkpoint", run_info["partitions_resumed"]],
                ["images processed", run_info["images_processed"]],
                ["images/s (this invocation, wall clock)", run_info["images_per_second"]],
                [
                    "task seconds per image (load, hash, match)",
                    ", ".join(
                        f"{k} {v * 1000:.2f} ms"
                        for k, v in run_info["task_seconds_per_image"].items()
                        if v is not None and k not in ("total", "cpu")
                    ),
                ],
                [
                    "CPU seconds per image inside the tasks (not inflated by other load)",
                    _ms(run_info["task_seconds_per_image"].get("cpu")),
                ],
                [
                    "peak RSS driver / worker (MB)",
                    f"{run_info['peak_rss_mb_driver']} / {run_info['peak_rss_mb_worker']}",
                ],
                ["store", run_info["store"]],
            ],
            note="Peak RSS is each process's maximum resident set (getrusage); the store is on disk.",
        )
    )
    sections.insert(0, run_sec)
    meta = {
        "seed": seed,
        "algos": cfg.algos,
        "decode": plan.decode,
        "workers": run_info["engine"]["workers"],
        "mode": "streaming",
        "timings": {"total_s": total_seconds, "bank_s": run_info["bank_seconds"]},
        **environment(),
    }
    return Results(
        "fpr",
        "pocketscan research fpr: false matches on benign images (streaming)",
        summary,
        data,
        sections,
        meta,
    )


def _ms(seconds: float | None) -> str:
    return "n/a" if seconds is None else f"{seconds * 1000:.2f} ms"


def _source_names(cfg: StreamConfig, plan: Plan) -> list[str]:
    names = []
    if plan.files:
        names.append(f"{len(plan.files)} files")
    if plan.generate:
        names.append(f"{plan.generate} generated (seed {plan.generate_seed}, scale {plan.generate_scale})")
    if plan.edits:
        names.append(f"{plan.edits} edits of {len(plan.edit_corpus)} corpus images (seed {plan.edit_seed})")
    return names


def _bucket(q: np.ndarray) -> np.ndarray:
    out = np.zeros(len(q), dtype=np.int64)
    for i, (lo, _hi) in enumerate(QUALITY_BUCKETS):
        out[q >= lo] = i
    return out


def _algo_figures(
    cfg: StreamConfig,
    plan: Plan,
    store: Store,
    algo: str,
    bank: Any,
    meta: dict[str, Any],
    counted: np.ndarray,
    distinct: np.ndarray,
) -> tuple[dict[str, Any], Section, list[str]]:
    bits, thr = bank.bits, bank.threshold
    snap = meta["snapshot"]
    min_votes = int(snap.get("min_votes", 0)) if snap.get("available") else None
    tables = int(snap.get("tables", 0)) if snap.get("available") else 0
    fams = list(plan.families)
    hist_plain = np.zeros(bits + 2, np.int64)
    hist_dih = np.zeros(bits + 2, np.int64)
    votes_hist = np.zeros(max(tables, 1) + 1, np.int64)
    votes_hist_plain = np.zeros(max(tables, 1) + 1, np.int64)
    fam_counts = np.zeros((len(fams), 5), np.int64)  # images, scanned, hits (d_dih), snapshot hits, gated
    src_counts: dict[str, np.ndarray] = defaultdict(lambda: np.zeros(4, np.int64))
    bucket_counts = np.zeros((len(QUALITY_BUCKETS), 3), np.int64)  # images, scanned, hits
    snap_plain = snap_dih = 0
    fm_total = 0
    fm: list[tuple[int, int, int]] = []  # (distance_dihedral, index, votes)
    q_col, dp_col, dd_col = (
        store.column(f"{algo}.quality"),
        store.column(f"{algo}.d_plain"),
        store.column(f"{algo}.d_dih"),
    )
    v_col, vd_col, fam_col = (
        store.column(f"{algo}.votes"),
        store.column(f"{algo}.votes_dih"),
        store.column("family"),
    )
    bounds = [
        ("files", 0, len(plan.files)),
        ("generated", len(plan.files), len(plan.files) + plan.generate),
        ("edits", len(plan.files) + plan.generate, plan.total),
    ]
    for s in range(0, plan.total, CHUNK):
        e = min(plan.total, s + CHUNK)
        q = np.asarray(q_col[s:e])
        dist = distinct[s:e]
        scanned = counted[s:e] & (q >= bank.min_quality)
        gated = counted[s:e] & (q < bank.min_quality)
        dp = np.asarray(dp_col[s:e]).astype(np.int64)
        dd = np.asarray(dd_col[s:e]).astype(np.int64)
        v = np.asarray(v_col[s:e]).astype(np.int64)
        vd = np.asarray(vd_col[s:e]).astype(np.int64)
        fam = np.asarray(fam_col[s:e]).astype(np.int64)
        hist_plain += np.bincount(dp[scanned], minlength=bits + 2)[: bits + 2]
        hist_dih += np.bincount(dd[scanned], minlength=bits + 2)[: bits + 2]
        hit = scanned & (dd <= thr)
        snap_hit = scanned & (vd >= min_votes) if min_votes is not None else np.zeros_like(scanned)
        if min_votes is not None:
            votes_hist += np.bincount(np.clip(vd[scanned], 0, tables), minlength=tables + 1)
            votes_hist_plain += np.bincount(np.clip(v[scanned], 0, tables), minlength=tables + 1)
            snap_plain += int((scanned & (v >= min_votes)).sum())
            snap_dih += int(snap_hit.sum())
        for col, mask in enumerate((counted[s:e], scanned, hit, snap_hit, gated)):
            fam_counts[:, col] += np.bincount(fam[mask], minlength=len(fams))[: len(fams)]
        qb = _bucket(q)
        for col, mask in enumerate((counted[s:e], scanned, hit)):
            bucket_counts[:, col] += np.bincount(qb[mask], minlength=len(QUALITY_BUCKETS))
        for name, lo, hi in bounds:
            a, b = max(lo, s) - s, min(hi, e) - s
            if a < b:
                src_counts[name] += np.array(
                    [counted[s:e][a:b].sum(), scanned[a:b].sum(), hit[a:b].sum(), snap_hit[a:b].sum()]
                )
        false = np.flatnonzero(hit | snap_hit)
        fm_total += len(false)
        for j in false[: max(0, MAX_FALSE_MATCHES_LISTED - len(fm))].tolist():
            fm.append((int(dd[j]), s + j, int(vd[j])))
        del dist
    n = int(hist_dih.sum())
    pairs_hist = np.asarray(store.column(f"{algo}.pairs")).sum(axis=0)
    m = int(meta["scannable"])
    n_pairs = n * m
    pcum = np.cumsum(pairs_hist)
    cum_plain, cum_dih = np.cumsum(hist_plain), np.cumsum(hist_dih)
    rows: list[list[Any]] = []
    per_t: list[dict[str, Any]] = []
    for t in thresholds_for(bits, thr):
        rq = stats.rate(int(cum_plain[t]), n)
        rqd = stats.rate(int(cum_dih[t]), n)
        rp = stats.rate(int(pcum[t]) if t < len(pcum) else n_pairs, n_pairs)
        implied = 1 - (1 - rp.p) ** m if n_pairs else 0.0
        rows.append(
            [
                f"{t}{' (default)' if t == thr else ''}",
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
    snap_out: dict[str, Any] = {k: v for k, v in snap.items() if k != "path"} | {"path": snap.get("path")}
    if min_votes is not None:
        r_plain, r_dih = stats.rate(snap_plain, n), stats.rate(snap_dih, n)
        snap_out |= {
            "per_query": r_plain.as_dict(),
            "per_query_dihedral": r_dih.as_dict(),
            "votes_histogram_dihedral": votes_hist.tolist(),
            "votes_histogram": votes_hist_plain.tolist(),
        }
        rows.append(["snapshot verdict", r_plain.fmt(), r_dih.fmt(), "n/a (no pairs)", None])
        base, basis = r_dih, "snapshot verdict, dihedral on"
    else:
        base, basis = stats.rate(int(cum_dih[thr]), n), f"raw distance <= {thr}, dihedral"
    acct = stats.account_table(
        base.p,
        base.wilson_high,
        images_per_year=[1_000, 10_000, 100_000],
        thresholds=[1, 2, 5, 10, 30],
        accounts=1_000_000_000,
    )
    fm.sort()
    bank_paths = meta["paths"]
    i_dih = store.column(f"{algo}.i_dih")
    d_plain_col = store.column(f"{algo}.d_plain")
    false_matches: list[dict[str, Any]] = [
        {
            "benign": plan.label_of(gi),
            "index": gi,
            "family": plan.family_of(gi),
            "quality": int(q_col[gi]),
            "nearest_bank": bank_paths[int(i_dih[gi])] if int(i_dih[gi]) >= 0 else None,
            "distance": int(d_plain_col[gi]),
            "distance_dihedral": d,
            "snapshot_match": min_votes is not None and votes >= min_votes,
        }
        for d, gi, votes in fm
    ]
    families = {
        f: {
            "images": int(c[0]),
            "scanned": int(c[1]),
            "snapshot_matches": int(c[3]),
            "gated_out": int(c[4]),
            **stats.rate(int(c[2]), int(c[1])).as_dict(),
        }
        for f, c in zip(fams, fam_counts, strict=True)
        if c[0]
    }
    sources: dict[str, dict[str, Any]] = {
        name: {
            "images": int(c[0]),
            "scanned": int(c[1]),
            "distance_matches": int(c[2]),
            "snapshot_matches": int(c[3]),
            "bound": bound(int(max(c[2], c[3])), int(c[1])),
        }
        for name, c in src_counts.items()
        if c[0]
    }
    k_head = snap_dih if min_votes is not None else int(cum_dih[thr])
    figures = {
        "bits": bits,
        "default_threshold": thr,
        "min_quality": bank.min_quality,
        "bank_images": meta["images"],
        "bank_scannable": m,
        "bank_gated_out": meta["gated_out"],
        "benign_images": int(counted.sum()),
        "benign_scanned": n,
        "benign_gated_out": int(fam_counts[:, 4].sum()),
        "benign_near_duplicate_clusters": None,
        "pairs": n_pairs,
        "thresholds": per_t,
        "snapshot": snap_out,
        "quality_buckets": {
            f"{lo}-{hi}": [int(c[0]), int(c[1]), stats.rate(int(c[2]), int(c[1])).fmt()]
            for (lo, hi), c in zip(QUALITY_BUCKETS, bucket_counts, strict=True)
        },
        "families": families,
        "sources": sources,
        "false_matches": false_matches,
        "false_matches_total": fm_total,
        "nearest_distance_percentiles": _percentiles_from_hist(hist_dih[: bits + 1]),
        "nearest_distance_histogram": hist_dih[: bits + 1].tolist(),
        "nearest_distance_histogram_plain": hist_plain[: bits + 1].tolist(),
        "pair_distance_histogram": pairs_hist.tolist(),
        "bound": bound(k_head, n) | {"basis": basis},
        "account": {
            "basis": basis,
            "p": base.p,
            "p_upper": base.wilson_high,
            "rows": acct,
            "assumptions": list(stats.ACCOUNT_ASSUMPTIONS),
        },
    }
    sec = Section(f"{algo}: false matches")
    sec.text.append(
        f"{meta['images']} bank images ({meta['gated_out']} below quality {bank.min_quality}), "
        f"{int(counted.sum())} distinct benign images counted, {n} scanned (quality >= {bank.min_quality}), "
        f"{n_pairs} (query, bank) pairs. Sources: {', '.join(_source_names(cfg, plan))}."
    )
    sec.tables.append(
        Table(
            f"{algo}: false-match rate by threshold (Wilson 95%)",
            ["threshold", "per query", "per query, dihedral", "per pair", "per query implied by pairs"],
            rows,
            note="Per query: share of benign images whose nearest bank entry is within the threshold. "
            "Per pair: "
            "share of (benign, bank) pairs within it.",
        )
    )
    b = figures["bound"]
    sec.tables.append(
        Table(
            f"{algo}: the bound ({basis})",
            ["false matches k", "scanned n", "Clopper-Pearson 95%", "one-sided 95% upper", "Wilson 95%"],
            [
                [
                    b["k"],
                    b["n"],
                    f"[{b['clopper_pearson_95'][0]:.3g}, {b['clopper_pearson_95'][1]:.3g}]",
                    b["one_sided_95_upper"],
                    f"[{b['wilson_95'][0]:.3g}, {b['wilson_95'][1]:.3g}]",
                ]
            ],
        )
    )
    sec.tables.append(
        Table(
            f"{algo}: by source",
            ["source", "images", "scanned", "distance matches", "snapshot matches", "one-sided 95% upper"],
            [
                [
                    k,
                    v["images"],
                    v["scanned"],
                    v["distance_matches"],
                    v["snapshot_matches"],
                    v["bound"]["one_sided_95_upper"],
                ]
                for k, v in sources.items()
            ],
            note="Edits of a few corpus images are near-duplicates of each other: "
            "they are not independent trials.",
        )
    )
    sec.tables.append(
        Table(
            f"{algo}: by family (d<={thr}, dihedral)",
            ["family", "images", "scanned", "per-query rate"],
            [[f, v["images"], v["scanned"], stats.rate(v["k"], v["n"]).fmt()] for f, v in families.items()],
        )
    )
    sec.tables.append(
        Table(
            f"{algo}: by quality bucket",
            ["quality", "images", "scanned", "per-query rate"],
            [[k, *v] for k, v in figures["quality_buckets"].items()],
        )
    )
    sec.tables.append(
        Table(
            f"{algo}: innocent accounts flagged per year "
            f"(p = {base.p:.3g}, upper {base.wilson_high:.3g}; {basis})",
            [
                "images/year",
                "threshold t",
                "P(flagged)",
                "P(flagged) at upper p",
                "accounts of 1e+09",
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
                for r in acct
            ],
            note="Assumptions: " + " ".join(stats.ACCOUNT_ASSUMPTIONS),
        )
    )
    cats = [str(i) if i % 16 == 0 else "" for i in range(bits + 1)]
    sec.plots.append(
        Plot(
            "bar",
            f"{algo}: distance from each benign image to its nearest bank entry (dihedral)",
            "Hamming distance (bits)",
            "benign images",
            [Series("images", hist_dih[: bits + 1].astype(float).tolist())],
            categories=cats,
            logy=True,
            name=f"fpr-stream-{algo}-nearest",
            caption=f"Threshold {thr}: every bar at or left of it is a false match.",
        )
    )
    sec.plots.append(
        Plot(
            "bar",
            f"{algo}: all (benign, bank) pair distances",
            "Hamming distance (bits)",
            "pairs",
            [Series("pairs", pairs_hist.astype(float).tolist())],
            categories=cats,
            name=f"fpr-stream-{algo}-pairs",
        )
    )
    items = []
    for fmi in false_matches[:40]:
        gi = fmi["index"]
        img: str | bytes = (
            plan.files[gi] if gi < len(plan.files) else png_bytes(_as_array(item_image(plan, gi)))
        )
        pics: list[str | bytes] = [img] + ([fmi["nearest_bank"]] if fmi["nearest_bank"] else [])
        items.append(
            GalleryItem(
                f"d={fmi['distance_dihedral']} (plain {fmi['distance']}), q={fmi['quality']}, "
                f"snapshot={'match' if fmi['snapshot_match'] else 'no'}: {fmi['benign']} vs "
                f"{Path(fmi['nearest_bank'] or '').name}",
                pics,
                ["benign", "bank"],
            )
        )
    sec.galleries.append(
        Gallery(
            f"{algo}: false matches (benign left, nearest bank image right)",
            items,
            note=f"{fm_total} false match(es); the first {len(items)} are shown.",
        )
    )
    line = (
        f"{algo}: per-query false-match rate at d<={thr} (dihedral) "
        f"{stats.rate(int(cum_dih[thr]), n).fmt()} over {n} benign images vs a bank of {m}"
    )
    if min_votes is not None:
        line += f"; snapshot verdict {stats.rate(snap_dih, n).fmt()}"
    return (
        figures,
        sec,
        [
            line,
            f"{algo}: source breakdown "
            + "; ".join(
                f"{k}: {v['distance_matches']}/{v['scanned']} by distance, "
                f"{v['snapshot_matches']} by snapshot"
                for k, v in sources.items()
            ),
        ],
    )


def _as_array(x: np.ndarray | str) -> np.ndarray:
    if isinstance(x, str):
        raise ValueError(x)
    return x
