"""Figures of a streaming run, computed from its columnar store in bounded chunks.

:func:`build_results` reads the ``.npy`` memmaps of :class:`research.stream.Store` ``CHUNK`` rows at a time
and sums integer counts: histograms of the nearest-bank distance (with and without dihedral variants),
snapshot votes, counts per family, per source and per quality bucket, and the false matches (all counted,
the first :data:`~research.stream.MAX_FALSE_MATCHES_LISTED` listed). Byte-identical benign images (same
SHA-256 prefix of the file, or of the pixels of a produced image) count once: the first index is kept.
``results.json`` keeps the field names of the in-memory ``fpr`` run (``benign_scanned``, ``thresholds``,
``per_query``, ``snapshot``...) and adds ``run`` (throughput, memory, checkpoint) and ``bound``.

Steps: :func:`_masks` (which rows count), :func:`_tally` (one algorithm's counts, chunk by chunk),
:func:`_measure` (rates, accounts, listed false matches), then :func:`_figures` (results.json) and
:func:`_section` (the report).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from research import stats
from research.evals.common import environment
from research.evals.fpr_figures import (
    ThresholdRates,
    account_table,
    false_match_caption,
    threshold_rates,
    threshold_table,
)
from research.results import Gallery, GalleryItem, Plot, Results, Section, Series, Table
from research.sources import Plan, item_image, png_bytes
from research.stream import MAX_FALSE_MATCHES_LISTED, AlgoBank, BankContext, Store, StreamConfig, bound
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


@dataclass
class _Masks:
    """Which benign rows count: readable, first of their bytes, and (unless kept) not also in the bank."""

    readable: np.ndarray
    first: np.ndarray
    cross: np.ndarray
    counted: np.ndarray
    processed: int


def _masks(cfg: StreamConfig, plan: Plan, store: Store, bank_digests: set[str]) -> _Masks:
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
    return _Masks(readable, first, cross, counted, processed_all)


def _data(
    cfg: StreamConfig,
    plan: Plan,
    masks: _Masks,
    ckpt: dict[str, Any],
    run_info: dict[str, Any],
    bank_counts: dict[str, Any],
) -> dict[str, Any]:
    """results.json's fields before the per-algorithm ones."""
    errors = [(int(gi), msg) for part in ckpt["partitions"].values() for gi, msg in part["errors"]]
    return {
        "bank_dir": cfg.bank,
        "benign_dir": ", ".join(_source_names(cfg, plan)),
        "sources": plan.describe(),
        "counts": {
            **bank_counts,
            "benign_planned": plan.total,
            "benign_files": len(plan.files),
            "benign_processed": masks.processed,
            "benign_byte_duplicates_removed": int((masks.readable & ~masks.first).sum()),
            "benign_also_in_bank": int(masks.cross.sum()),
            "cross_duplicates_kept": cfg.keep_cross_duplicates,
            "benign_unreadable": len(errors),
        },
        "unreadable": [{"index": gi, "image": plan.label_of(gi), "error": msg} for gi, msg in errors[:1000]],
        "algos": {},
        "run": run_info,
    }


def _run_lines(cfg: StreamConfig, total: int, run_info: dict[str, Any], head: dict[str, Any],
               basis: str) -> list[str]:
    """The summary's first two lines: how far the run got, and the headline bound."""
    state = "complete" if run_info["complete"] else f"PARTIAL ({run_info['stopped']})"
    return [
        f"Run {state}: {run_info['images_processed']:,} of {total:,} benign images processed in "
        f"{run_info['partitions_done']}/{run_info['partitions_total']} partitions; "
        f"{run_info['images_per_second'] or 0:.1f} images/s in this invocation on "
        f"{run_info['engine']['workers']} worker(s)",
        f"Headline ({cfg.algos[0]}, {basis}): {head['k']} false matches in "
        f"{head['n']:,} scanned benign images; 95% Clopper-Pearson [{head['clopper_pearson_95'][0]:.3g}, "
        f"{head['clopper_pearson_95'][1]:.3g}], one-sided 95% upper bound {head['one_sided_95_upper']:.3g}",
    ]


def _run_section(run_info: dict[str, Any]) -> Section:
    """Throughput, memory and checkpoint of the run."""
    engine, per_image = run_info["engine"], run_info["task_seconds_per_image"]
    run_sec = Section("Run: throughput, memory, checkpoint")
    run_sec.tables.append(
        Table(
            "How this run was computed",
            ["item", "value"],
            [
                ["engine", f"{engine['engine']} {engine['distributed']}"],
                ["scheduler", engine["scheduler"]],
                ["workers", engine["workers"]],
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
                        for k, v in per_image.items()
                        if v is not None and k not in ("total", "cpu")
                    ),
                ],
                [
                    "CPU seconds per image inside the tasks (not inflated by other load)",
                    _ms(per_image.get("cpu")),
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
    return run_sec


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
    masks = _masks(cfg, plan, store, bank_digests)
    data = _data(cfg, plan, masks, ckpt, run_info, bank_counts)
    sections: list[Section] = []
    summary: list[str] = []
    for algo, bank in ctx.algos.items():
        data["algos"][algo], sec, lines = _algo_figures(cfg, plan, store, algo, bank, bank_meta[algo],
                                                        masks.counted)
        sections.append(sec)
        summary.extend(lines)
    first_algo = data["algos"][cfg.algos[0]]
    data["benign_images"] = first_algo["benign_images"]
    data["benign_scanned"] = first_algo["benign_scanned"]
    data["bound"] = first_algo["bound"]
    summary[:0] = _run_lines(cfg, plan.total, run_info, first_algo["bound"], first_algo["account"]["basis"])
    sections.insert(0, _run_section(run_info))
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


@dataclass
class _Tally:
    """Integer counts of one algorithm, summed over the store's chunks."""

    bits: int
    tables: int
    families: int
    hist_plain: np.ndarray = field(init=False)
    hist_dih: np.ndarray = field(init=False)
    votes_hist: np.ndarray = field(init=False)
    votes_hist_plain: np.ndarray = field(init=False)
    fam_counts: np.ndarray = field(init=False)  # images, scanned, hits (d_dih), snapshot hits, gated
    src_counts: dict[str, np.ndarray] = field(init=False)  # images, scanned, hits, snapshot hits
    bucket_counts: np.ndarray = field(init=False)  # images, scanned, hits
    snap_plain: int = 0
    snap_dih: int = 0
    fm_total: int = 0
    fm: list[tuple[int, int, int]] = field(default_factory=list)  # (distance_dihedral, index, votes)

    def __post_init__(self) -> None:
        self.hist_plain = np.zeros(self.bits + 2, np.int64)
        self.hist_dih = np.zeros(self.bits + 2, np.int64)
        self.votes_hist = np.zeros(max(self.tables, 1) + 1, np.int64)
        self.votes_hist_plain = np.zeros(max(self.tables, 1) + 1, np.int64)
        self.fam_counts = np.zeros((self.families, 5), np.int64)
        self.src_counts = defaultdict(lambda: np.zeros(4, np.int64))
        self.bucket_counts = np.zeros((len(QUALITY_BUCKETS), 3), np.int64)


@dataclass
class _Chunk:
    """Rows ``[start, stop)`` of one algorithm's columns, as int64 arrays."""

    start: int
    stop: int
    counted: np.ndarray
    quality: np.ndarray
    d_plain: np.ndarray
    d_dih: np.ndarray
    votes: np.ndarray
    votes_dih: np.ndarray
    family: np.ndarray


def _chunks(store: Store, algo: str, total: int, counted: np.ndarray) -> Iterator[_Chunk]:
    cols = [store.column(f"{algo}.{name}") for name in ("quality", "d_plain", "d_dih", "votes", "votes_dih")]
    fam_col = store.column("family")
    for s in range(0, total, CHUNK):
        e = min(total, s + CHUNK)
        q, dp, dd, v, vd = (np.asarray(c[s:e]) for c in cols)
        yield _Chunk(s, e, counted[s:e], q, dp.astype(np.int64), dd.astype(np.int64), v.astype(np.int64),
                     vd.astype(np.int64), np.asarray(fam_col[s:e]).astype(np.int64))


def _source_spans(plan: Plan) -> list[tuple[str, int, int]]:
    nfiles = len(plan.files)
    return [
        ("files", 0, nfiles),
        ("generated", nfiles, nfiles + plan.generate),
        ("edits", nfiles + plan.generate, plan.total),
    ]


def _add_chunk(
    t: _Tally, c: _Chunk, bank: AlgoBank, min_votes: int | None, spans: list[tuple[str, int, int]]
) -> None:
    """Add one chunk's counts to ``t``."""
    bits, thr, tables = t.bits, bank.threshold, t.tables
    scanned = c.counted & (c.quality >= bank.min_quality)
    gated = c.counted & (c.quality < bank.min_quality)
    t.hist_plain += np.bincount(c.d_plain[scanned], minlength=bits + 2)[: bits + 2]
    t.hist_dih += np.bincount(c.d_dih[scanned], minlength=bits + 2)[: bits + 2]
    hit = scanned & (c.d_dih <= thr)
    snap_hit = scanned & (c.votes_dih >= min_votes) if min_votes is not None else np.zeros_like(scanned)
    if min_votes is not None:
        t.votes_hist += np.bincount(np.clip(c.votes_dih[scanned], 0, tables), minlength=tables + 1)
        t.votes_hist_plain += np.bincount(np.clip(c.votes[scanned], 0, tables), minlength=tables + 1)
        t.snap_plain += int((scanned & (c.votes >= min_votes)).sum())
        t.snap_dih += int(snap_hit.sum())
    for col, mask in enumerate((c.counted, scanned, hit, snap_hit, gated)):
        t.fam_counts[:, col] += np.bincount(c.family[mask], minlength=t.families)[: t.families]
    qb = _bucket(c.quality)
    for col, mask in enumerate((c.counted, scanned, hit)):
        t.bucket_counts[:, col] += np.bincount(qb[mask], minlength=len(QUALITY_BUCKETS))
    for name, lo, hi in spans:
        a, b = max(lo, c.start) - c.start, min(hi, c.stop) - c.start
        if a < b:
            t.src_counts[name] += np.array(
                [c.counted[a:b].sum(), scanned[a:b].sum(), hit[a:b].sum(), snap_hit[a:b].sum()]
            )
    false = np.flatnonzero(hit | snap_hit)
    t.fm_total += len(false)
    for j in false[: max(0, MAX_FALSE_MATCHES_LISTED - len(t.fm))].tolist():
        t.fm.append((int(c.d_dih[j]), c.start + j, int(c.votes_dih[j])))


def _tally(
    plan: Plan,
    store: Store,
    algo: str,
    bank: AlgoBank,
    counted: np.ndarray,
    min_votes: int | None,
    tables: int,
) -> _Tally:
    """Every count of one algorithm, read from the store ``CHUNK`` rows at a time."""
    t = _Tally(bank.bits, tables, len(plan.families))
    spans = _source_spans(plan)
    for chunk in _chunks(store, algo, plan.total, counted):
        _add_chunk(t, chunk, bank, min_votes, spans)
    return t


def _false_matches(
    plan: Plan, store: Store, algo: str, bank_paths: list[str], t: _Tally, min_votes: int | None
) -> list[dict[str, Any]]:
    """The listed false matches, nearest first."""
    q_col, i_dih, d_plain_col = (store.column(f"{algo}.{name}") for name in ("quality", "i_dih", "d_plain"))
    return [
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
        for d, gi, votes in sorted(t.fm)
    ]


def _families(plan: Plan, t: _Tally) -> dict[str, dict[str, Any]]:
    return {
        f: {
            "images": int(c[0]),
            "scanned": int(c[1]),
            "snapshot_matches": int(c[3]),
            "gated_out": int(c[4]),
            **stats.rate(int(c[2]), int(c[1])).as_dict(),
        }
        for f, c in zip(plan.families, t.fam_counts, strict=True)
        if c[0]
    }


def _sources(t: _Tally) -> dict[str, dict[str, Any]]:
    return {
        name: {
            "images": int(c[0]),
            "scanned": int(c[1]),
            "distance_matches": int(c[2]),
            "snapshot_matches": int(c[3]),
            "bound": bound(int(max(c[2], c[3])), int(c[1])),
        }
        for name, c in t.src_counts.items()
        if c[0]
    }


@dataclass
class _AlgoFigures:
    """One algorithm's figures, as results.json and the report section read them."""

    algo: str
    bank: AlgoBank
    meta: dict[str, Any]
    tally: _Tally
    min_votes: int | None
    rates: ThresholdRates
    pairs_hist: np.ndarray
    accounts: list[stats.AccountRow]
    base: stats.Rate
    basis: str
    false_matches: list[dict[str, Any]]
    families: dict[str, dict[str, Any]]
    sources: dict[str, dict[str, Any]]
    snapshot: dict[str, Any]

    @property
    def n(self) -> int:
        return int(self.tally.hist_dih.sum())

    @property
    def scannable(self) -> int:
        return int(self.meta["scannable"])


def _snapshot_out(fig_snap: dict[str, Any], t: _Tally, n: int, min_votes: int | None) -> dict[str, Any]:
    snap_out: dict[str, Any] = {k: v for k, v in fig_snap.items() if k != "path"}
    snap_out |= {"path": fig_snap.get("path")}
    if min_votes is not None:
        snap_out |= {
            "per_query": stats.rate(t.snap_plain, n).as_dict(),
            "per_query_dihedral": stats.rate(t.snap_dih, n).as_dict(),
            "votes_histogram_dihedral": t.votes_hist.tolist(),
            "votes_histogram": t.votes_hist_plain.tolist(),
        }
    return snap_out


def _measure(
    cfg: StreamConfig, plan: Plan, store: Store, algo: str, bank: AlgoBank, meta: dict[str, Any],
    counted: np.ndarray,
) -> _AlgoFigures:
    """Tally the store, then derive the rates, the account table and the listed false matches."""
    bits, thr, snap = bank.bits, bank.threshold, meta["snapshot"]
    min_votes = int(snap.get("min_votes", 0)) if snap.get("available") else None
    tables = int(snap.get("tables", 0)) if snap.get("available") else 0
    t = _tally(plan, store, algo, bank, counted, min_votes, tables)
    n, m = int(t.hist_dih.sum()), int(meta["scannable"])
    pairs_hist = np.asarray(store.column(f"{algo}.pairs")).sum(axis=0)
    rates = threshold_rates(bits, thr, np.cumsum(t.hist_plain), np.cumsum(t.hist_dih), np.cumsum(pairs_hist),
                            queries=n, bank_size=m)
    if min_votes is not None:
        r_plain, r_dih = stats.rate(t.snap_plain, n), stats.rate(t.snap_dih, n)
        rates.rows.append(["snapshot verdict", r_plain.fmt(), r_dih.fmt(), "n/a (no pairs)", None])
        base, basis = r_dih, "snapshot verdict, dihedral on"
    else:
        base, basis = stats.rate(int(np.cumsum(t.hist_dih)[thr]), n), f"raw distance <= {thr}, dihedral"
    acct = cfg.account.table(base.p, base.wilson_high)
    return _AlgoFigures(algo, bank, meta, t, min_votes, rates, pairs_hist, acct, base, basis,
                        _false_matches(plan, store, algo, meta["paths"], t, min_votes), _families(plan, t),
                        _sources(t), _snapshot_out(snap, t, n, min_votes))


def _figures(f: _AlgoFigures, counted: np.ndarray) -> dict[str, Any]:
    """One algorithm's results.json fields (the in-memory run's names, plus sources and the bound)."""
    bits, t, n = f.bank.bits, f.tally, f.n
    k_head = t.snap_dih if f.min_votes is not None else int(np.cumsum(t.hist_dih)[f.bank.threshold])
    return {
        "bits": bits,
        "default_threshold": f.bank.threshold,
        "min_quality": f.bank.min_quality,
        "bank_images": f.meta["images"],
        "bank_scannable": f.scannable,
        "bank_gated_out": f.meta["gated_out"],
        "benign_images": int(counted.sum()),
        "benign_scanned": n,
        "benign_gated_out": int(t.fam_counts[:, 4].sum()),
        "benign_near_duplicate_clusters": None,
        "pairs": n * f.scannable,
        "thresholds": f.rates.per_threshold,
        "snapshot": f.snapshot,
        "quality_buckets": {
            f"{lo}-{hi}": [int(c[0]), int(c[1]), stats.rate(int(c[2]), int(c[1])).fmt()]
            for (lo, hi), c in zip(QUALITY_BUCKETS, t.bucket_counts, strict=True)
        },
        "families": f.families,
        "sources": f.sources,
        "false_matches": f.false_matches,
        "false_matches_total": t.fm_total,
        "nearest_distance_percentiles": _percentiles_from_hist(t.hist_dih[: bits + 1]),
        "nearest_distance_histogram": t.hist_dih[: bits + 1].tolist(),
        "nearest_distance_histogram_plain": t.hist_plain[: bits + 1].tolist(),
        "pair_distance_histogram": f.pairs_hist.tolist(),
        "bound": bound(k_head, n) | {"basis": f.basis},
        "account": {
            "basis": f.basis,
            "p": f.base.p,
            "p_upper": f.base.wilson_high,
            "rows": f.accounts,
            "assumptions": list(stats.ACCOUNT_ASSUMPTIONS),
        },
    }


def _rate_tables(f: _AlgoFigures, figures: dict[str, Any]) -> list[Table]:
    algo, b = f.algo, figures["bound"]
    return [
        threshold_table(algo, f.rates.rows, implied_note=False),
        Table(
            f"{algo}: the bound ({f.basis})",
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
        ),
    ]


def _breakdown_tables(f: _AlgoFigures, figures: dict[str, Any]) -> list[Table]:
    algo, thr = f.algo, f.bank.threshold
    return [
        Table(
            f"{algo}: by source",
            ["source", "images", "scanned", "distance matches", "snapshot matches", "one-sided 95% upper"],
            [
                [k, v["images"], v["scanned"], v["distance_matches"], v["snapshot_matches"],
                 v["bound"]["one_sided_95_upper"]]
                for k, v in f.sources.items()
            ],
            note="Edits of a few corpus images are near-duplicates of each other: "
            "they are not independent trials.",
        ),
        Table(
            f"{algo}: by family (d<={thr}, dihedral)",
            ["family", "images", "scanned", "per-query rate"],
            [[k, v["images"], v["scanned"], stats.rate(v["k"], v["n"]).fmt()] for k, v in f.families.items()],
        ),
        Table(
            f"{algo}: by quality bucket",
            ["quality", "images", "scanned", "per-query rate"],
            [[k, *v] for k, v in figures["quality_buckets"].items()],
        ),
    ]


def _plots(f: _AlgoFigures) -> list[Plot]:
    algo, bits, thr = f.algo, f.bank.bits, f.bank.threshold
    cats = [str(i) if i % 16 == 0 else "" for i in range(bits + 1)]
    return [
        Plot(
            "bar",
            f"{algo}: distance from each benign image to its nearest bank entry (dihedral)",
            "Hamming distance (bits)",
            "benign images",
            [Series("images", f.tally.hist_dih[: bits + 1].astype(float).tolist())],
            categories=cats,
            logy=True,
            name=f"fpr-stream-{algo}-nearest",
            caption=f"Threshold {thr}: every bar at or left of it is a false match.",
        ),
        Plot(
            "bar",
            f"{algo}: all (benign, bank) pair distances",
            "Hamming distance (bits)",
            "pairs",
            [Series("pairs", f.pairs_hist.astype(float).tolist())],
            categories=cats,
            name=f"fpr-stream-{algo}-pairs",
        ),
    ]


def _gallery(plan: Plan, f: _AlgoFigures) -> Gallery:
    items = []
    for fmi in f.false_matches[:40]:
        gi = fmi["index"]
        img: str | bytes = (
            plan.files[gi] if gi < len(plan.files) else png_bytes(_as_array(item_image(plan, gi)))
        )
        pics: list[str | bytes] = [img] + ([fmi["nearest_bank"]] if fmi["nearest_bank"] else [])
        caption = false_match_caption(fmi, fmi["benign"], Path(fmi["nearest_bank"] or "").name)
        items.append(GalleryItem(caption, pics, ["benign", "bank"]))
    return Gallery(
        f"{f.algo}: false matches (benign left, nearest bank image right)",
        items,
        note=f"{f.tally.fm_total} false match(es); the first {len(items)} are shown.",
    )


def _section(cfg: StreamConfig, plan: Plan, f: _AlgoFigures, figures: dict[str, Any]) -> Section:
    meta, mq, n = f.meta, f.bank.min_quality, f.n
    sec = Section(f"{f.algo}: false matches")
    sec.text.append(
        f"{meta['images']} bank images ({meta['gated_out']} below quality {mq}), "
        f"{figures['benign_images']} distinct benign images counted, {n} scanned (quality >= {mq}), "
        f"{n * f.scannable} (query, bank) pairs. Sources: {', '.join(_source_names(cfg, plan))}."
    )
    sec.tables.extend(_rate_tables(f, figures))
    sec.tables.extend(_breakdown_tables(f, figures))
    sec.tables.append(account_table(f.algo, f.base, f.basis, f.accounts, cfg.account.accounts))
    sec.plots.extend(_plots(f))
    sec.galleries.append(_gallery(plan, f))
    return sec


def _summary_lines(f: _AlgoFigures) -> list[str]:
    algo, thr, n, t = f.algo, f.bank.threshold, f.n, f.tally
    line = (
        f"{algo}: per-query false-match rate at d<={thr} (dihedral) "
        f"{stats.rate(int(np.cumsum(t.hist_dih)[thr]), n).fmt()} over {n} benign images vs a bank of "
        f"{f.scannable}"
    )
    if f.min_votes is not None:
        line += f"; snapshot verdict {stats.rate(t.snap_dih, n).fmt()}"
    return [
        line,
        f"{algo}: source breakdown "
        + "; ".join(
            f"{k}: {v['distance_matches']}/{v['scanned']} by distance, "
            f"{v['snapshot_matches']} by snapshot"
            for k, v in f.sources.items()
        ),
    ]


def _algo_figures(
    cfg: StreamConfig,
    plan: Plan,
    store: Store,
    algo: str,
    bank: AlgoBank,
    meta: dict[str, Any],
    counted: np.ndarray,
) -> tuple[dict[str, Any], Section, list[str]]:
    """One algorithm's results.json fields, report section and summary lines."""
    f = _measure(cfg, plan, store, algo, bank, meta, counted)
    figures = _figures(f, counted)
    return figures, _section(cfg, plan, f, figures), _summary_lines(f)


def _as_array(x: np.ndarray | str) -> np.ndarray:
    if isinstance(x, str):
        raise ValueError(x)
    return x
