"""Recall of the scanner when bank images are edited (the transforms of :mod:`research.transforms`).

For every bank image and transform, the edited pixels are hashed directly (a lossless save: only the JPEG
transforms compress) by every algorithm. A bank image is *recalled* under a transform when the edited image
passes the quality gate and its hash is within the algorithm's threshold of the original's hash (PDQ: 31
bits), optionally with the 8 dihedral variants of the edited image; the snapshot's verdict (LSH + Bloom,
built from all bank images) is reported beside PDQ. Originals below the quality gate are not in the bank and
are left out. Each recall carries a Wilson 95% interval; distance percentiles and histograms show how far
each edit moves the hash. "Wrong entry" counts edited images within the threshold of a *different* bank
image (a false match inside the bank).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from research import stats
from research.corpus import algo_info, cheap_dihedral, get_cached_hasher, list_bank
from research.evals.common import environment, percentiles
from research.results import Plot, Results, Section, Series, Table
from research.transforms import DESCRIPTIONS, TRANSFORMS

__all__ = [
    "PRECISION_TARGET",
    "TRANSFORM_GROUPS",
    "AlgoRobustness",
    "Hashed",
    "RobustnessConfig",
    "TransformOutcome",
    "common_bank_set",
    "measure_transform",
    "precision_threshold",
    "robustness_algo",
    "run",
]

TRANSFORM_GROUPS: dict[str, tuple[str, ...]] = {
    "compression and scaling": ("noop", "jpeg95", "jpeg70", "jpeg50", "resize0.5", "resize0.25"),
    "crops and padding": ("crop0.02", "crop0.05", "crop0.1", "pad0.2", "screenshot"),
    "geometry": ("rotate4", "rotate90", "mirror"),
    "filters and colour": ("blur2", "noise0.05", "noise0.2", "gamma2", "vignette", "recolour"),
    "overlays": ("watermark", "caption"),
}


PRECISION_TARGET = 0.9999
"""Precision target of the secondary, thorn-style view (perception's docs use 99.99%)."""


def precision_threshold(correct: list[int], incorrect: list[int], target: float) -> tuple[int | None, float]:
    """Thorn's ``compute_threshold_precision_recall``: (threshold, recall) at a precision target.

    ``correct`` are distances of edited images to their own original, ``incorrect`` the distances to their
    closest other bank image. Candidate thresholds are the sorted correct distances; TP(t) = #correct <= t,
    FP(t) = #incorrect <= t; the chosen threshold is the last candidate before precision first falls below
    ``target`` (None with recall 0 when even the first one does).
    """
    if not correct:
        return None, 0.0
    inc = np.sort(np.asarray(incorrect, dtype=np.int64))
    chosen: int | None = None
    for t in sorted(set(correct)):
        tp = sum(1 for d in correct if d <= t)
        fp = int(np.searchsorted(inc, t, side="right"))
        if tp / (tp + fp) < target:
            break
        chosen = t
    if chosen is None:
        return None, 0.0
    return chosen, sum(1 for d in correct if d <= chosen) / len(correct)


@dataclass
class RobustnessConfig:
    bank: str
    out: str
    algos: list[str] | None = None
    transforms: list[str] = field(default_factory=lambda: list(TRANSFORMS))
    workers: int | None = None
    decode: str = "fast"
    snapshot: bool = True
    limit: int | None = None
    quiet: bool = True


Row = dict[str, tuple[bytes, int, tuple[bytes, ...] | None]]


def _job(job: tuple[str, int, tuple[str, ...], tuple[str, ...], int, str]) -> tuple[Row, list[Row]] | str:
    path, index, transforms, algos, seed, mode = job
    from PIL import Image

    from scanner.errors import ImageError
    from scanner.image import load_rgb

    try:
        rgb = load_rgb(path, mode=mode)  # type: ignore[arg-type]
    except (ImageError, OSError, ValueError) as exc:
        return str(exc)

    def hash_all(arr: np.ndarray) -> Row:
        row: Row = {}
        for a in algos:
            r = get_cached_hasher(a).hash_rgb(arr, dihedral=cheap_dihedral(a))
            row[a] = (r.hash, int(r.quality), r.dihedral)
        return row

    orig = hash_all(rgb)
    img = Image.fromarray(rgb, "RGB")
    out: list[Row] = []
    for ti, name in enumerate(transforms):
        edited = TRANSFORMS[name](img, np.random.default_rng([seed, index, ti]))
        out.append(hash_all(np.asarray(edited.convert("RGB"))))
    return orig, out


def _d(a: bytes, b: bytes) -> int:
    return int(np.bitwise_count(np.bitwise_xor(np.frombuffer(a, np.uint8), np.frombuffer(b, np.uint8))).sum())


Hashed = tuple[Row, list[Row]]
"""One bank image's hashes: (original by algorithm, one row per transform)."""


def _hash_bank(
    cfg: RobustnessConfig, entries: list[Any], algos: list[str], seed: int
) -> tuple[list[Hashed], list[tuple[str, str]]]:
    """Hash every bank image and its edited copies (in the worker pool): (hashed images, (path, error))."""
    from research.parallel import imap, progress

    jobs = [(e.path, i, tuple(cfg.transforms), tuple(algos), seed, cfg.decode) for i, e in enumerate(entries)]
    raw = list(
        progress(
            imap(_job, jobs, workers=cfg.workers),
            total=len(jobs),
            description=f"{len(cfg.transforms)} transforms x {len(algos)} hashers",
            quiet=cfg.quiet,
        )
    )
    errors = [(e.path, r) for e, r in zip(entries, raw, strict=True) if isinstance(r, str)]
    good = [r for r in raw if not isinstance(r, str)]
    return good, errors


@dataclass
class TransformOutcome:
    """One transform's effect on one algorithm over the common bank set."""

    distances: list[int] = field(default_factory=list)
    distances_dihedral: list[int] = field(default_factory=list)
    closest_other: list[int] = field(default_factory=list)
    gated: int = 0
    wrong: int = 0
    hits: int = 0
    hits_dihedral: int = 0
    snapshot_hits: int = 0


def measure_transform(
    originals: list[bytes],
    edited: Sequence[tuple[bytes, int, tuple[bytes, ...] | None]],
    bits: int,
    threshold: int,
    gate: int,
    matcher: Any = None,
) -> TransformOutcome:
    """Distances of each edited image to its own original (and, dihedral, the nearest variant) and to the
    closest other original; hits at ``threshold`` among those passing the quality ``gate``."""
    bank_arr = np.array([np.frombuffer(h, np.uint8) for h in originals], dtype=np.uint8).reshape(
        len(originals), bits // 8
    )
    out = TransformOutcome()
    for bi, (orig_h, (h, q, dih)) in enumerate(zip(originals, edited, strict=True)):
        d = _d(h, orig_h)
        dd = min(_d(v, orig_h) for v in dih) if dih else d
        out.distances.append(d)
        out.distances_dihedral.append(dd)
        closest_other = bits + 1
        if len(originals) > 1:
            others = np.bitwise_count(np.bitwise_xor(bank_arr, np.frombuffer(h, np.uint8))).sum(axis=1)
            others[bi] = bits + 1
            closest_other = int(others.min())
        out.closest_other.append(closest_other)
        if q < gate:
            out.gated += 1
            continue
        out.hits += d <= threshold
        out.hits_dihedral += dd <= threshold
        out.wrong += int(closest_other <= threshold)
        if matcher is not None:
            out.snapshot_hits += matcher.match(h, list(dih) if dih else None)[0]
    return out


@dataclass
class AlgoRobustness:
    """One algorithm's recall under every transform, with what the report needs beside it."""

    algo: str
    bits: int
    threshold: int
    min_quality: int
    bank_used: int
    gated_by_algo: int
    left_out: int
    snapshot_info: dict[str, Any]
    snapshot_used: bool
    snapshot_reason: str
    per_transform: dict[str, Any]
    table_rows: list[list[Any]]
    thorn_rows: list[list[Any]]
    distances: dict[str, list[int]]
    recall_series: Series
    transforms: list[str]
    dihedral: list[stats.Rate]


def _transform_entry(m: TransformOutcome, n: int, snapshot: bool) -> dict[str, Any]:
    """A transform's entry in ``results.json`` (a contract: keys and order stay)."""
    r, rd = stats.rate(int(m.hits), n), stats.rate(int(m.hits_dihedral), n)
    rs = stats.rate(int(m.snapshot_hits), n) if snapshot else None
    t_star, rec_star = precision_threshold(m.distances, m.closest_other, PRECISION_TARGET)
    return {
        "recall": r.as_dict(),
        "recall_dihedral": rd.as_dict(),
        "snapshot_recall_dihedral": rs.as_dict() if rs else None,
        "gated_out": m.gated,
        "wrong_entry_within_threshold": m.wrong,
        "distance_percentiles": percentiles(m.distances),
        "distances": m.distances,
        "distances_dihedral": m.distances_dihedral,
        "thorn_view": {"threshold": t_star, "recall": rec_star, "precision_target": PRECISION_TARGET},
    }


def _table_row(name: str, entry: dict[str, Any]) -> list[Any]:
    snap = entry["snapshot_recall_dihedral"]
    pc = entry["distance_percentiles"]
    return [
        name,
        stats.Rate(**entry["recall"]).fmt(),
        stats.Rate(**entry["recall_dihedral"]).fmt(),
        stats.Rate(**snap).fmt() if snap else "n/a",
        entry["gated_out"],
        entry["wrong_entry_within_threshold"],
        pc["p50"],
        pc["p95"],
    ]


def _snapshot_for(
    cfg: RobustnessConfig, algo: str, good: list[Hashed], seed: int, timings: dict[str, float]
) -> tuple[Any, str]:
    """The snapshot of every readable bank image (all qualities: the build gates them), or (None, why)."""
    from research.snapshot_view import build_matcher

    if not cfg.snapshot:
        return None, "disabled"
    ts = time.perf_counter()
    all_h = [r[0][algo][0] for r in good]
    all_q = [r[0][algo][1] for r in good]
    matcher, reason = build_matcher(algo, all_h, all_q, Path(cfg.out) / f"snapshot-{algo}", seed=seed)
    timings[f"snapshot_build_{algo}_s"] = time.perf_counter() - ts
    return matcher, reason


def robustness_algo(
    cfg: RobustnessConfig,
    algo: str,
    good: list[Hashed],
    ok_idx: list[int],
    seed: int,
    timings: dict[str, float],
) -> AlgoRobustness:
    """Recall of ``algo`` under every transform over the common bank set ``ok_idx`` of ``good``."""
    info = algo_info(algo)
    originals = [good[i][0][algo][0] for i in ok_idx]
    matcher, snap_reason = _snapshot_for(cfg, algo, good, seed, timings)
    per_t: dict[str, Any] = {}
    dist_by_t: dict[str, list[int]] = {}
    rows: list[list[Any]] = []
    thorn_rows: list[list[Any]] = []
    dihedral: list[stats.Rate] = []
    for ti, tname in enumerate(cfg.transforms):
        edited = [good[i][1][ti][algo] for i in ok_idx]
        m = measure_transform(originals, edited, info.bits, info.threshold, info.min_quality, matcher)
        entry = per_t[tname] = _transform_entry(m, len(ok_idx), matcher is not None)
        dist_by_t[tname] = m.distances
        rows.append(_table_row(tname, entry))
        thorn_rows.append([tname, entry["thorn_view"]["threshold"], entry["thorn_view"]["recall"]])
        dihedral.append(stats.Rate(**entry["recall_dihedral"]))
    label = f"{algo} (d<={info.threshold}{', dihedral' if cheap_dihedral(algo) else ''})"
    return AlgoRobustness(
        algo=algo,
        bits=info.bits,
        threshold=info.threshold,
        min_quality=info.min_quality,
        bank_used=len(ok_idx),
        gated_by_algo=sum(1 for orig, _ in good if orig[algo][1] < info.min_quality),
        left_out=len(good) - len(ok_idx),
        snapshot_info=matcher.info() if matcher is not None else {"available": False, "reason": snap_reason},
        snapshot_used=matcher is not None,
        snapshot_reason=snap_reason,
        per_transform=per_t,
        table_rows=rows,
        thorn_rows=thorn_rows,
        distances=dist_by_t,
        transforms=list(cfg.transforms),
        dihedral=dihedral,
        recall_series=Series(
            label,
            [r.p for r in dihedral],
            low=[r.wilson_low for r in dihedral],
            high=[r.wilson_high for r in dihedral],
        ),
    )


def _algo_data(ar: AlgoRobustness) -> dict[str, Any]:
    return {
        "bits": ar.bits,
        "threshold": ar.threshold,
        "min_quality": ar.min_quality,
        "bank_used": ar.bank_used,
        "bank_gated_out_by_this_algo": ar.gated_by_algo,
        "bank_left_out_common_set": ar.left_out,
        "snapshot": ar.snapshot_info,
        "per_transform": ar.per_transform,
    }


def _summary_line(ar: AlgoRobustness) -> str:
    worst = sorted((row.p, t) for t, row in zip(ar.transforms, ar.dihedral, strict=True))[:3]
    return f"{ar.algo}: {ar.bank_used} bank images; weakest (dihedral) recall: " + ", ".join(
        f"{t} {100 * p:.0f}%" for p, t in worst
    )


def _section_text(ar: AlgoRobustness) -> str:
    if ar.snapshot_used:
        keys = ("tables", "bits", "min_votes", "size_bytes")
        snap = "Snapshot: " + ", ".join(f"{k}={v}" for k, v in ar.snapshot_info.items() if k in keys)
    else:
        snap = f"Snapshot verdict not measured: {ar.snapshot_reason}."
    return (
        f"Match rule: distance <= {ar.threshold} of {ar.bits} bits, "
        f"edited image quality >= {ar.min_quality}. "
        f"{ar.bank_used} bank images used: those passing every compared algorithm's quality gate "
        f"({ar.left_out} left out, {ar.gated_by_algo} of them by {ar.algo}'s own gate). " + snap
    )


_RECALL_COLUMNS = ("transform", "recall", "recall, dihedral", "snapshot (dihedral)", "gated (quality)")


def _tables(ar: AlgoRobustness) -> list[Table]:
    recall = Table(
        f"{ar.algo}: recall by transform (Wilson 95%)",
        [*_RECALL_COLUMNS, "wrong entry", "median d", "p95 d"],
        ar.table_rows,
        note="Recall = edited image within the threshold of its own original. "
        "Wrong entry = within the threshold of another bank image.",
    )
    thorn = Table(
        f"{ar.algo}: thorn-style view (threshold chosen per transform at precision >= "
        f"{100 * PRECISION_TARGET:g}%)",
        ["transform", "threshold (bits)", "recall"],
        ar.thorn_rows,
        note="As in thorn's perception benchmark: candidate thresholds are the correct distances; "
        "a query is a false positive when its closest *other* bank image is within the threshold; "
        "the threshold is the largest before precision drops below the target. The threshold "
        "differs per row, so these are not results at a fixed rule (the table above is). '-' means "
        "precision fails at the first candidate: some bank images are near-duplicates of each other.",
    )
    return [recall, thorn]


def _distance_plots(ar: AlgoRobustness) -> list[Plot]:
    plots = []
    for group, names in TRANSFORM_GROUPS.items():
        series = [Series(t, [float(v) for v in ar.distances[t]]) for t in names if t in ar.distances]
        if series:
            plots.append(
                Plot(
                    "hist",
                    f"{ar.algo}: distance to the original, {group}",
                    "Hamming distance",
                    "images",
                    series,
                    vlines=[(ar.threshold, f"threshold {ar.threshold}")],
                    bins=list(np.linspace(-0.5, ar.bits // 2 + 0.5, 33)),
                    name=f"robustness-{ar.algo}-{group}",
                )
            )
    return plots


def _algo_section(ar: AlgoRobustness) -> Section:
    sec = Section(f"{ar.algo}: recall per transform")
    sec.text.append(_section_text(ar))
    sec.tables.extend(_tables(ar))
    sec.plots.extend(_distance_plots(ar))
    return sec


def _overview(transforms: list[str], outcomes: list[AlgoRobustness]) -> Section:
    overview = Section("Overview")
    overview.plots.append(
        Plot(
            "bar",
            "Recall per transform (PDQ with its 8 dihedral variants; Wilson 95%)",
            "transform",
            "recall",
            [ar.recall_series for ar in outcomes],
            categories=list(transforms),
            name="robustness-recall",
        )
    )
    overview.tables.append(
        Table("Transforms", ["name", "what it does"], [[t, DESCRIPTIONS[t]] for t in transforms])
    )
    return overview


def common_bank_set(good: Sequence[Hashed], algos: list[str]) -> list[int]:
    """Indexes of the originals that pass every algorithm's quality gate: one image set for every
    algorithm, so the columns compare like with like (the others would never be in that algorithm's bank)."""
    gates = {a: algo_info(a).min_quality for a in algos}
    return [i for i, (orig, _) in enumerate(good) if all(orig[a][1] >= gates[a] for a in algos)]


def run(cfg: RobustnessConfig, seed: int = 0) -> Results:
    """Recall of every algorithm under every transform of the bank images."""
    t0 = time.perf_counter()
    algos = cfg.algos or ["pdq", "phash", "dhash", "ahash"]
    unknown = [t for t in cfg.transforms if t not in TRANSFORMS]
    if unknown:
        raise ValueError(f"unknown transforms {unknown}; known: {', '.join(TRANSFORMS)}")
    entries = list_bank(cfg.bank, cfg.limit)
    good, errors = _hash_bank(cfg, entries, algos, seed)
    timings = {"hashing_s": time.perf_counter() - t0}
    ok_idx = common_bank_set(good, algos)
    outcomes = [robustness_algo(cfg, algo, good, ok_idx, seed, timings) for algo in algos]
    data: dict[str, Any] = {
        "bank_dir": cfg.bank,
        "images": len(entries),
        "unreadable": errors,
        "transforms": {t: DESCRIPTIONS[t] for t in cfg.transforms},
        "algos": {ar.algo: _algo_data(ar) for ar in outcomes},
    }
    sections = [_overview(cfg.transforms, outcomes), *(_algo_section(ar) for ar in outcomes)]
    timings["total_s"] = time.perf_counter() - t0
    meta = {
        "seed": seed,
        "algos": algos,
        "decode": cfg.decode,
        "workers": cfg.workers,
        "timings": timings,
        **environment(),
    }
    return Results(
        "robustness",
        "pocketscan research robustness: recall under edits",
        [_summary_line(ar) for ar in outcomes],
        data,
        sections,
        meta,
    )
