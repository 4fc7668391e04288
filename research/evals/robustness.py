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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from research import stats
from research.corpus import algo_info, cheap_dihedral, get_cached_hasher, list_images
from research.evals.common import environment, percentiles
from research.results import Plot, Results, Section, Series, Table
from research.transforms import DESCRIPTIONS, TRANSFORMS

__all__ = ["PRECISION_TARGET", "TRANSFORM_GROUPS", "RobustnessConfig", "precision_threshold", "run"]

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


def run(cfg: RobustnessConfig, seed: int = 0) -> Results:
    from research.parallel import imap, progress
    from research.snapshot_view import build_matcher

    t0 = time.perf_counter()
    algos = cfg.algos or ["pdq", "phash", "dhash", "ahash"]
    unknown = [t for t in cfg.transforms if t not in TRANSFORMS]
    if unknown:
        raise ValueError(f"unknown transforms {unknown}; known: {', '.join(TRANSFORMS)}")
    entries = list_images(cfg.bank)
    if cfg.limit:
        entries = entries[: cfg.limit]
    if not entries:
        raise ValueError(f"{cfg.bank}: no images found")
    infos = {a: algo_info(a) for a in algos}
    jobs = [(e.path, i, tuple(cfg.transforms), tuple(algos), seed, cfg.decode) for i, e in enumerate(entries)]
    raw = list(
        progress(
            imap(_job, jobs, workers=cfg.workers),
            total=len(jobs),
            description=f"{len(cfg.transforms)} transforms x {len(algos)} hashers",
            quiet=cfg.quiet,
        )
    )
    t_hash = time.perf_counter() - t0
    errors = [(e.path, r) for e, r in zip(entries, raw, strict=True) if isinstance(r, str)]
    good = [(e, r) for e, r in zip(entries, raw, strict=True) if not isinstance(r, str)]

    data: dict[str, Any] = {
        "bank_dir": cfg.bank,
        "images": len(entries),
        "unreadable": errors,
        "transforms": {t: DESCRIPTIONS[t] for t in cfg.transforms},
        "algos": {},
    }
    summary: list[str] = []
    sections: list[Section] = []
    recall_series: list[Series] = []
    timings = {"hashing_s": t_hash}

    # One image set for every algorithm, so the columns compare like with like: the originals that pass
    # every algorithm's quality gate (the others would never be in that algorithm's bank).
    ok_idx = [
        i for i, (_e, (orig, _)) in enumerate(good) if all(orig[a][1] >= infos[a].min_quality for a in algos)
    ]
    gated_by = {a: sum(1 for _e, (orig, _) in good if orig[a][1] < infos[a].min_quality) for a in algos}
    for algo in algos:
        info = infos[algo]
        thr, gate = info.threshold, info.min_quality
        originals = [good[i][1][0][algo][0] for i in ok_idx]
        bank_arr = np.array([np.frombuffer(h, np.uint8) for h in originals], dtype=np.uint8).reshape(
            len(originals), info.bits // 8
        )
        matcher = None
        snap_reason = "disabled"
        if cfg.snapshot:
            ts = time.perf_counter()
            all_h = [r[0][algo][0] for _e, r in good]
            all_q = [r[0][algo][1] for _e, r in good]
            matcher, snap_reason = build_matcher(
                algo, all_h, all_q, Path(cfg.out) / f"snapshot-{algo}", seed=seed
            )
            timings[f"snapshot_build_{algo}_s"] = time.perf_counter() - ts
        rows = []
        thorn_rows: list[list[Any]] = []
        per_t: dict[str, Any] = {}
        recall_vals, lows, highs = [], [], []
        dist_by_t: dict[str, list[int]] = {}
        for ti, tname in enumerate(cfg.transforms):
            dists, dists_dih, gated, wrong = [], [], 0, 0
            incorrect: list[int] = []
            hit, hit_dih, snap_hit = 0, 0, 0
            for bi, i in enumerate(ok_idx):
                orig_h = originals[bi]
                h, q, dih = good[i][1][1][ti][algo]
                d = _d(h, orig_h)
                dd = min(_d(v, orig_h) for v in dih) if dih else d
                dists.append(d)
                dists_dih.append(dd)
                closest_other = info.bits + 1
                if len(originals) > 1:
                    others = np.bitwise_count(np.bitwise_xor(bank_arr, np.frombuffer(h, np.uint8))).sum(
                        axis=1
                    )
                    others[bi] = info.bits + 1
                    closest_other = int(others.min())
                incorrect.append(closest_other)
                if q < gate:
                    gated += 1
                    continue
                hit += d <= thr
                hit_dih += dd <= thr
                wrong += int(closest_other <= thr)
                if matcher is not None:
                    snap_hit += matcher.match(h, list(dih) if dih else None)[0]
            n = len(ok_idx)
            r, rd = stats.rate(int(hit), n), stats.rate(int(hit_dih), n)
            rs = stats.rate(int(snap_hit), n) if matcher is not None else None
            pc = percentiles(dists)
            per_t[tname] = {
                "recall": r.as_dict(),
                "recall_dihedral": rd.as_dict(),
                "snapshot_recall_dihedral": rs.as_dict() if rs else None,
                "gated_out": gated,
                "wrong_entry_within_threshold": wrong,
                "distance_percentiles": pc,
                "distances": dists,
                "distances_dihedral": dists_dih,
            }
            t_star, rec_star = precision_threshold(dists, incorrect, PRECISION_TARGET)
            per_t[tname]["thorn_view"] = {"threshold": t_star, "recall": rec_star,
                                          "precision_target": PRECISION_TARGET}
            thorn_rows.append([tname, t_star, rec_star])
            dist_by_t[tname] = dists
            rows.append(
                [tname, r.fmt(), rd.fmt(), rs.fmt() if rs else "n/a", gated, wrong, pc["p50"], pc["p95"]]
            )
            recall_vals.append(rd.p)
            lows.append(rd.wilson_low)
            highs.append(rd.wilson_high)
        label = f"{algo} (d<={thr}{', dihedral' if cheap_dihedral(algo) else ''})"
        recall_series.append(Series(label, recall_vals, low=lows, high=highs))
        snap_info = matcher.info() if matcher is not None else {"available": False, "reason": snap_reason}
        data["algos"][algo] = {
            "bits": info.bits,
            "threshold": thr,
            "min_quality": gate,
            "bank_used": len(ok_idx),
            "bank_gated_out_by_this_algo": gated_by[algo],
            "bank_left_out_common_set": len(good) - len(ok_idx),
            "snapshot": snap_info,
            "per_transform": per_t,
        }
        worst = sorted((per_t[t]["recall_dihedral"]["p"], t) for t in cfg.transforms)[:3]
        summary.append(
            f"{algo}: {len(ok_idx)} bank images; weakest (dihedral) recall: "
            + ", ".join(f"{t} {100 * p:.0f}%" for p, t in worst)
        )
        sec = Section(f"{algo}: recall per transform")
        sec.text.append(
            f"Match rule: distance <= {thr} of {info.bits} bits, edited image quality >= {gate}. "
            f"{len(ok_idx)} bank images used: those passing every compared algorithm's quality gate "
            f"({len(good) - len(ok_idx)} left out, {gated_by[algo]} of them by {algo}'s own gate). "
            + (
                "Snapshot: "
                + ", ".join(
                    f"{k}={v}"
                    for k, v in snap_info.items()
                    if k in ("tables", "bits", "min_votes", "size_bytes")
                )
                if matcher is not None
                else f"Snapshot verdict not measured: {snap_reason}."
            )
        )
        sec.tables.append(
            Table(
                f"{algo}: recall by transform (Wilson 95%)",
                [
                    "transform",
                    "recall",
                    "recall, dihedral",
                    "snapshot (dihedral)",
                    "gated (quality)",
                    "wrong entry",
                    "median d",
                    "p95 d",
                ],
                rows,
                note="Recall = edited image within the threshold of its own original. "
                "Wrong entry = within the threshold of another bank image.",
            )
        )
        sec.tables.append(
            Table(
                f"{algo}: thorn-style view (threshold chosen per transform at precision >= "
                f"{100 * PRECISION_TARGET:g}%)",
                ["transform", "threshold (bits)", "recall"],
                thorn_rows,
                note="As in thorn's perception benchmark: candidate thresholds are the correct distances; "
                "a query is a false positive when its closest *other* bank image is within the threshold; "
                "the threshold is the largest before precision drops below the target. The threshold "
                "differs per row, so these are not results at a fixed rule (the table above is). '-' means "
                "precision fails at the first candidate: some bank images are near-duplicates of each other.",
            )
        )
        for group, names in TRANSFORM_GROUPS.items():
            series = [Series(t, [float(v) for v in dist_by_t[t]]) for t in names if t in dist_by_t]
            if series:
                sec.plots.append(
                    Plot(
                        "hist",
                        f"{algo}: distance to the original, {group}",
                        "Hamming distance",
                        "images",
                        series,
                        vlines=[(thr, f"threshold {thr}")],
                        bins=list(np.linspace(-0.5, info.bits // 2 + 0.5, 33)),
                        name=f"robustness-{algo}-{group}",
                    )
                )
        sections.append(sec)
    overview = Section("Overview")
    overview.plots.append(
        Plot(
            "bar",
            "Recall per transform (PDQ with its 8 dihedral variants; Wilson 95%)",
            "transform",
            "recall",
            recall_series,
            categories=list(cfg.transforms),
            name="robustness-recall",
        )
    )
    overview.tables.append(
        Table("Transforms", ["name", "what it does"], [[t, DESCRIPTIONS[t]] for t in cfg.transforms])
    )
    sections.insert(0, overview)
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
        "robustness", "pocketscan research robustness: recall under edits", summary, data, sections, meta
    )
