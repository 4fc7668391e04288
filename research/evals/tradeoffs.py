"""Snapshot size vs recall at each distance vs false-match rate, across LSH parameters.

Predicted: :func:`scanner.calibration.predict` over a grid of (bits sampled per table k, tables L, minimum
votes v, probe radius) with the Bloom filter sized so that it adds at most as much noise as the bank itself
(never below a 1e-4 per-lookup rate), for a bank of ``--bank-size`` hashes: file size, recall at
distances 8/16/24/31, and false matches per image (8 dihedral variants). The default parameters (what
``pocketscan snapshot build`` picks, :func:`scanner.calibration.calibrate`) are marked.

Measured: for the default and a few grid points, a real signed snapshot is built (through
:mod:`research.snapshot_view`) from ``bank_size`` generated random hashes; queries are bank hashes with ``d``
random bits flipped (recall) and fresh random hashes (false-match rate), ``--samples`` of each, with Wilson
intervals beside the prediction. With ``--bank DIR`` the same snapshots are also measured on the user's
images: bank images edited by JPEG 70, resize 0.5 and 2%/5% crops as queries (and ``--benign`` images as
negatives).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from research import stats
from research.evals.common import run_meta
from research.results import Plot, Results, Section, Series, Table
from scanner.hashers.spec import PDQ

__all__ = ["MeasuredGenerated", "TradeoffsConfig", "measure_generated", "pareto_front", "run"]

DISTANCES: tuple[int, ...] = (0, 8, 16, 24, PDQ.match_distance, 40)
IMAGE_EDITS: tuple[str, ...] = ("jpeg70", "resize0.5", "crop0.02", "crop0.05")


@dataclass
class TradeoffsConfig:
    bank_size: int
    out: str
    bank: str | None = None
    benign: str | None = None
    algos: list[str] = field(default_factory=lambda: ["pdq"])
    workers: int | None = None
    decode: str = "fast"
    quiet: bool = True
    samples: int = 2000
    measure_points: int = 4
    max_measured_bank: int = 200_000
    default_timeout_s: float = 600.0
    privacy: bool = True
    privacy_queries: int = 12


def _grid(bank_size: int, hash_bits: int) -> list[Any]:
    from scanner.calibration import Params, bloom_geometry, rounded_entry_count

    out = []
    n_rounded = rounded_entry_count(bank_size)
    for radius in (0, 1):
        for k in (12, 16, 20, 24, 28, 32):
            probes = 1 + (k if radius else 0)
            for votes in (1, 2, 3):
                for tables in (8, 16, 32, 64, 128):
                    if tables < votes or tables * probes > 640:
                        continue
                    r_bank = -math.expm1(bank_size * math.log1p(-min(probes * 2.0**-k, 1 - 1e-12)))
                    p = max(1e-4, min(0.05, r_bank / max(1, probes)))
                    m, h = bloom_geometry(n_rounded * tables, p)
                    out.append(Params(tables, k, votes, radius, m, h, hash_bits))
    return out


def _default_params(bank_size: int, hash_bits: int, timeout: float) -> tuple[Any | None, str]:
    """The calibrated default, computed in a child process so a slow search cannot hang the report."""
    import multiprocessing as mp

    ctx = mp.get_context("fork")
    with ctx.Pool(1) as pool:
        res = pool.apply_async(_calibrate, (bank_size, hash_bits))
        try:
            return res.get(timeout=timeout), ""
        except mp.TimeoutError:
            return None, f"scanner.calibration.calibrate({bank_size}) took more than {timeout:.0f} s"
        except Exception as exc:
            return None, f"calibration failed: {exc}"


def _calibrate(bank_size: int, hash_bits: int) -> Any:
    from scanner.calibration import calibrate, rounded_entry_count

    # Snapshots are padded to the rounded count (what `snapshot build` calibrates for).
    return calibrate(rounded_entry_count(bank_size), hash_bits=hash_bits).params


def _label(p: Any) -> str:
    return f"k={p.bits} L={p.tables} v={p.min_votes} r={p.probe_radius}"


def _flip(rng: np.random.Generator, h: np.ndarray, d: int, bits: int) -> np.ndarray:
    flat = np.unpackbits(h)
    idx = rng.choice(bits, size=d, replace=False)
    flat[idx] ^= 1
    return np.packbits(flat)


def _predicted_points(bank_size: int, bits: int, threshold: int, default: Any | None) -> list[dict[str, Any]]:
    """The calibration model's prediction for every grid point (and the default, marked)."""
    from scanner.calibration import predict, rounded_entry_count

    sized_for = rounded_entry_count(bank_size)  # padded tables hold the rounded count of keys
    points = []
    for p in _grid(bank_size, bits) + ([default] if default is not None else []):
        c = predict(p, sized_for, target_distance=min(threshold, bits))
        points.append(
            {
                "params": p,
                "label": _label(p),
                "default": p is default,
                "size_bytes": p.size_bytes,
                "false_match_per_image": c.false_match_per_image,
                "recall": {d: c.recall_at(round(d * bits / 256)) for d in DISTANCES},
                "lookups_per_variant": p.lookups_per_variant,
            }
        )
    return points


def pareto_front(points: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(feasible, front): the points within the false-match budget 1e-4, by size; and among them the
    Pareto front on (size, recall at 24 bits)."""
    feasible = sorted(
        (pt for pt in points if pt["false_match_per_image"] <= 1e-4), key=lambda pt: pt["size_bytes"]
    )
    front, best = [], -1.0
    for pt in feasible:
        if pt["recall"][24] > best + 1e-9:
            front.append(pt)
            best = pt["recall"][24]
    return feasible, front


def _marked(pt: dict[str, Any], suffix: str = " (default)") -> str:
    return pt["label"] + (suffix if pt["default"] else "")


def _front_table(algo: str, points: list[dict[str, Any]], front: list[dict[str, Any]]) -> Table:
    shown = sorted(
        front + [p for p in points if p["default"] and p not in front], key=lambda pt: pt["size_bytes"]
    )
    rows = [
        [
            _marked(pt),
            pt["size_bytes"] / 1e6,
            pt["false_match_per_image"],
            *[pt["recall"][d] for d in DISTANCES],
            pt["lookups_per_variant"],
        ]
        for pt in shown
    ]
    columns = ["parameters", "size MB", "false matches / image", *[f"recall d={d}" for d in DISTANCES]]
    return Table(f"{algo}: Pareto front (predicted)", [*columns, "lookups / variant"], rows)


def _size_recall_plot(
    algo: str, bank_size: int, points: list[dict[str, Any]], feasible: list[dict[str, Any]]
) -> Plot:
    series = []
    for votes in (1, 2, 3):
        pts = sorted(
            (pt for pt in feasible if pt["params"].min_votes == votes), key=lambda pt: pt["size_bytes"]
        )
        if pts:
            series.append(
                Series(
                    f"v={votes} (within budget)",
                    [pt["recall"][24] for pt in pts],
                    x=[pt["size_bytes"] / 1e6 for pt in pts],
                )
            )
    marks = [(pt["size_bytes"] / 1e6, pt["recall"][24], "default") for pt in points if pt["default"]]
    return Plot(
        "line",
        f"{algo}: snapshot size vs predicted recall at 24 bits (N={bank_size:,})",
        "snapshot size (MB)",
        "recall at d=24",
        series,
        marks=marks,
        logx=True,
        name=f"tradeoffs-{algo}-size-recall",
    )


def _curves_plot(algo: str, bank_size: int, bits: int, threshold: int, chosen: list[dict[str, Any]]) -> Plot:
    from scanner.calibration import predict, rounded_entry_count

    curve_series = []
    for pt in chosen:
        c = predict(pt["params"], rounded_entry_count(bank_size))
        ds = list(range(0, min(bits, 64) + 1))
        curve_series.append(
            Series(_marked(pt, " default"), [c.recall_at(d) for d in ds], x=[float(d) for d in ds])
        )
    return Plot(
        "line",
        f"{algo}: predicted match probability by distance",
        "Hamming distance",
        "P(match)",
        curve_series,
        vlines=[(threshold, f"PDQ rule {threshold}")],
        name=f"tradeoffs-{algo}-curves",
    )


@dataclass
class MeasuredGenerated:
    """Real snapshots built from generated random hashes and queried: one row per parameter set."""

    rows: list[dict[str, Any]]
    bank_hashes: int
    why_not: str = ""


def _measure_point(
    matcher: Any, bank: np.ndarray, bits: int, samples: int, rng: np.random.Generator
) -> tuple[dict[int, dict[str, Any]], dict[str, Any]]:
    """(recall by distance, false matches per variant) of one snapshot, as Wilson rate dicts."""
    n_bank = bank.shape[0]
    recall: dict[int, dict[str, Any]] = {}
    for d in DISTANCES:
        dd = round(d * bits / 256)
        idx = rng.integers(0, n_bank, size=samples)
        hits = sum(matcher.match(bytes(_flip(rng, bank[i], dd, bits)), None)[0] for i in idx)
        recall[d] = stats.rate(int(hits), samples).as_dict()
    fresh = rng.integers(0, 256, size=(samples, bits // 8), dtype=np.uint8)
    fm = sum(matcher.match(bytes(h), None)[0] for h in fresh)
    return recall, stats.rate(int(fm), samples).as_dict()


def measure_generated(
    cfg: TradeoffsConfig, algo: str, bits: int, to_measure: list[dict[str, Any]], seed: int
) -> MeasuredGenerated:
    """Build a real signed snapshot per parameter set from generated hashes; measure recall and false
    matches."""
    from research.snapshot_view import build_matcher

    rng = np.random.default_rng(seed)
    n_bank = min(cfg.bank_size, cfg.max_measured_bank)
    bank = rng.integers(0, 256, size=(n_bank, bits // 8), dtype=np.uint8)
    measured: list[dict[str, Any]] = []
    for pt in to_measure:
        ts = time.perf_counter()
        matcher, why = build_matcher(
            algo,
            [bytes(h) for h in bank],
            [100] * n_bank,
            Path(cfg.out) / f"snapshot-{algo}-{len(measured)}",
            seed=seed,
            params=pt["params"].build_options(),
        )
        if matcher is None:
            return MeasuredGenerated(measured, n_bank, why)
        build_s = time.perf_counter() - ts
        mrow: dict[str, Any] = {
            "label": pt["label"],
            "default": pt["default"],
            "build_s": build_s,
            "info": matcher.info(),
            "recall": {},
            "predicted": pt["recall"],
        }
        mrow["recall"], mrow["false_match_per_variant"] = _measure_point(
            matcher, bank, bits, cfg.samples, rng
        )
        measured.append(mrow)
    return MeasuredGenerated(measured, n_bank)


def _measured_table(algo: str, gen: MeasuredGenerated) -> Table:
    rows = [
        [
            _marked(m),
            *[f"{100 * m['recall'][d]['p']:.1f}% ({100 * m['predicted'][d]:.1f}%)" for d in DISTANCES],
            stats.Rate(**m["false_match_per_variant"]).fmt(pct=False),
        ]
        for m in gen.rows
    ]
    return Table(
        f"{algo}: measured on {gen.bank_hashes:,} generated random hashes "
        "(Wilson 95%; predicted in brackets)",
        ["parameters", *[f"recall d={d}" for d in DISTANCES], "false matches / variant"],
        rows,
    )


def _algo_summary(
    algo: str,
    bank_size: int,
    points: list[dict[str, Any]],
    front: list[dict[str, Any]],
    gen: MeasuredGenerated,
) -> list[str]:
    lines = []
    dflt = [pt for pt in points if pt["default"]]
    if dflt:
        d0 = dflt[0]
        lines.append(
            f"{algo}: default {d0['label']} for N={bank_size:,}: {d0['size_bytes'] / 1e6:.1f} MB, "
            f"predicted recall {100 * d0['recall'][16]:.0f}% at 16 bits, "
            f"{100 * d0['recall'][31]:.0f}% at 31, {d0['false_match_per_image']:.2g} false "
            "matches per image"
        )
    measured = len(gen.rows)
    lines.append(
        f"{algo}: Pareto front of {len(front)} parameter sets within 1e-4 false matches/image; "
        + (f"{measured} measured through real snapshots" if measured else f"not measured ({gen.why_not})")
    )
    return lines


def _tradeoffs_algo(cfg: TradeoffsConfig, algo: str, seed: int) -> tuple[Section, dict[str, Any], list[str]]:
    """One algorithm's predicted grid, Pareto front and measured snapshots: (section, data, summary)."""
    from research.corpus import algo_info

    info = algo_info(algo)
    bits = info.bits
    default, why_default = _default_params(cfg.bank_size, bits, cfg.default_timeout_s)
    points = _predicted_points(cfg.bank_size, bits, info.threshold, default)
    feasible, front = pareto_front(points)
    sec = Section(f"{algo}: predicted trade-offs for a bank of {cfg.bank_size:,} hashes")
    sec.text.append(
        f"{len(points)} parameter sets evaluated with the calibration model; the table keeps "
        "the Pareto front (smallest snapshot for each gain in recall at 24 bits) among sets "
        "with at most 1e-4 predicted false matches per image (dihedral on). "
        + (
            "The default is what `pocketscan snapshot build` picks (calibrate)."
            if default is not None
            else f"Default not marked: {why_default}."
        )
    )
    sec.tables.append(_front_table(algo, points, front))
    sec.plots.append(_size_recall_plot(algo, cfg.bank_size, points, feasible))
    chosen = ([pt for pt in points if pt["default"]] + front[:: max(1, len(front) // 4)])[:5]
    sec.plots.append(_curves_plot(algo, cfg.bank_size, bits, info.threshold, chosen))
    to_measure = chosen[: cfg.measure_points]
    gen = measure_generated(cfg, algo, bits, to_measure, seed)
    if gen.rows:
        sec.tables.append(_measured_table(algo, gen))
    else:
        sec.text.append(f"Measured figures not available: {gen.why_not or 'no parameters to measure'}.")
    image_rows = _measure_images(cfg, algo, to_measure, seed) if cfg.bank and gen.rows else []
    if image_rows:
        sec.tables.append(
            Table(
                f"{algo}: measured on your images (recall of edited bank images)",
                ["parameters", *IMAGE_EDITS, "benign false matches"],
                image_rows,
            )
        )
    data = {
        "points": points,
        "pareto": [pt["label"] for pt in front],
        "default": _label(default) if default is not None else None,
        "default_note": why_default,
        "measured_generated": gen.rows,
        "measured_images": image_rows,
    }
    return sec, data, _algo_summary(algo, cfg.bank_size, points, front, gen)


def run(cfg: TradeoffsConfig, seed: int = 0) -> Results:
    """Predicted and measured trade-offs per algorithm, and the privacy axis for PDQ."""
    t0 = time.perf_counter()
    if cfg.bank_size < 1:
        raise ValueError("--bank-size must be at least 1")
    summary: list[str] = []
    sections: list[Section] = []
    data: dict[str, Any] = {"bank_size": cfg.bank_size, "algos": {}}
    for algo in cfg.algos:
        sec, data["algos"][algo], lines = _tradeoffs_algo(cfg, algo, seed)
        summary.extend(lines)
        sections.append(sec)
    if cfg.privacy and "pdq" in cfg.algos:
        psec, pdata, pline = _privacy_section(cfg, seed)
        sections.append(psec)
        data["privacy"] = pdata
        summary.append(pline)
    meta = run_meta(seed, t0, algos=cfg.algos)
    return Results(
        "tradeoffs",
        "pocketscan research tradeoffs: snapshot size, recall, false matches",
        summary,
        data,
        sections,
        meta,
    )


def _hash_edited_bank(cfg: TradeoffsConfig, algo: str, seed: int) -> tuple[list[bytes], dict[str, list[Any]]]:
    """(hashes of the bank images above the gate, hash results of their edited copies by edit)."""
    from PIL import Image

    from research.corpus import algo_info, cheap_dihedral, get_cached_hasher, list_images
    from research.transforms import TRANSFORMS
    from scanner.image import load_rgb

    assert cfg.bank is not None
    info = algo_info(algo)
    hasher = get_cached_hasher(algo)
    originals: list[bytes] = []
    edited: dict[str, list[Any]] = {t: [] for t in IMAGE_EDITS}
    for i, e in enumerate(list_images(cfg.bank)):
        rgb = load_rgb(e.path, mode=cfg.decode)  # type: ignore[arg-type]
        r = hasher.hash_rgb(rgb)
        if r.quality < info.min_quality:
            continue
        originals.append(r.hash)
        img = Image.fromarray(rgb, "RGB")
        for ti, t in enumerate(IMAGE_EDITS):
            out = np.asarray(TRANSFORMS[t](img, np.random.default_rng([seed, i, ti])))
            edited[t].append(hasher.hash_rgb(out, dihedral=cheap_dihedral(algo)))
    return originals, edited


def _benign_hashes(
    cfg: TradeoffsConfig, algo: str, min_quality: int
) -> list[tuple[bytes, list[bytes] | None]]:
    """(hash, dihedral variants or None) of the ``--benign`` images above the gate (none without it)."""
    from research.corpus import hash_corpus, list_images

    if not cfg.benign:
        return []
    sets, _ = hash_corpus(list_images(cfg.benign), [algo], mode=cfg.decode, workers=cfg.workers)
    hs = sets[algo]
    return [
        (bytes(hs.hashes[i]), None if hs.dihedral is None else [bytes(v) for v in hs.dihedral[i]])
        for i in range(len(hs))
        if hs.quality[i] >= min_quality
    ]


def _measure_images(
    cfg: TradeoffsConfig, algo: str, points: list[dict[str, Any]], seed: int
) -> list[list[Any]]:
    """Recall of edited bank images and benign false matches through snapshots with each parameter set."""
    from research.corpus import algo_info
    from research.snapshot_view import build_matcher

    info = algo_info(algo)
    originals, edited = _hash_edited_bank(cfg, algo, seed)
    benign = _benign_hashes(cfg, algo, info.min_quality)
    rows = []
    for j, pt in enumerate(points):
        matcher, _ = build_matcher(
            algo,
            originals,
            [100] * len(originals),
            Path(cfg.out) / f"snapshot-images-{algo}-{j}",
            seed=seed,
            params=pt["params"].build_options(),
        )
        if matcher is None:
            break
        row: list[Any] = [_marked(pt)]
        for t in IMAGE_EDITS:
            ok = [r for r in edited[t] if r.quality >= info.min_quality]
            hits = sum(matcher.match(r.hash, list(r.dihedral) if r.dihedral else None)[0] for r in ok)
            row.append(stats.rate(int(hits), len(edited[t])).fmt())
        fm = sum(matcher.match(h, d)[0] for h, d in benign)
        row.append(stats.rate(int(fm), len(benign)).fmt() if benign else "n/a (no --benign)")
        rows.append(row)
    return rows


def _privacy_row(f: Any) -> list[Any]:
    if f.enumeration_core_hours is not None:
        cost = f"{f.enumeration_digests:.3g} digests, {f.enumeration_core_hours:.3g} core-hours offline"
    else:
        cost = (
            f"{f.enumeration_digests:.3g} service evaluations, none offline; "
            f"{f.account_days_at_limit:,.0f} account-days at 2000 batches/day"
        )
    return [
        f.mode,
        f"L={f.params['tables']} k={f.params['bits']} v={f.params['min_votes']}",
        f.size_bytes / 1e6,
        f.predicted_recall[16],
        f.predicted_recall[24],
        f.predicted_recall[31],
        cost,
        f.match_ms_median,
        f.client_cpu_ms_median,
        f.service_cpu_ms_per_image,
        f.bytes_sent_per_image + f.bytes_received_per_image,
    ]


def _privacy_plots(figures: list[Any]) -> list[Plot]:
    modes = [f.mode for f in figures]
    recall = Plot(
        "bar",
        "Predicted recall by mode",
        "mode",
        "recall",
        [Series(f"d={d}", [f.predicted_recall[d] for f in figures]) for d in (16, 24, 31)],
        categories=modes,
        name="tradeoffs-privacy-recall",
    )
    latency = Plot(
        "bar",
        "Per-image match latency by mode (8 dihedral variants, loopback)",
        "mode",
        "milliseconds (median)",
        [
            Series("wall", [f.match_ms_median for f in figures]),
            Series("device CPU", [f.client_cpu_ms_median for f in figures]),
            Series("service CPU", [f.service_cpu_ms_per_image for f in figures]),
        ],
        categories=modes,
        logy=True,
        name="tradeoffs-privacy-latency",
    )
    return [recall, latency]


def _privacy_line(figures: list[Any]) -> str:
    by = {f.mode: f for f in figures}
    return (
        f"privacy: offline {by['offline'].enumeration_core_hours:.2g} core-hours to enumerate, "
        f"{by['offline'].match_ms_median:.0f} ms/image; OPRF (L={by['oprf'].params['tables']}) not "
        f"enumerable offline, {by['oprf'].match_ms_median:.0f} ms/image, recall at 31 bits "
        f"{by['oprf'].predicted_recall[31]:.2f} vs {by['offline'].predicted_recall[31]:.2f}"
    )


def _privacy_section(cfg: TradeoffsConfig, seed: int) -> tuple[Section, list[dict[str, Any]], str]:
    """The privacy axis: offline (padded and not) and OPRF snapshots side by side, latency measured."""
    import os
    from dataclasses import asdict

    from research.bench_oprf import MODES, UNPADDED, measure_modes, random_queries

    figures = measure_modes(
        cfg.bank_size, random_queries(cfg.privacy_queries, seed), seed=seed, modes=(UNPADDED, *MODES)
    )
    load = os.getloadavg()
    sec = Section(f"Privacy: offline and OPRF-keyed snapshots for a bank of {cfg.bank_size:,} hashes")
    sec.text.append(
        "Offline keys can be enumerated by anyone holding the file (L x 2^k digests; `research attacks "
        "recover`); OPRF keys cost one rate-limited service evaluation each. Padded tables hold the rounded "
        "entry count, so the calibration sizes noise for it. Latency: median match time per image with 8 "
        "dihedral variants (OPRF: blind, loopback round trip to a real service, proof check, unblind, "
        f"lookup), measured on {cfg.privacy_queries} random hashes; load average {load[0]:.2f} "
        f"on {os.cpu_count()} cores (shared machine)."
    )
    columns = ["mode", "parameters", "size MB", "recall d=16", "d=24", "d=31", "enumeration cost"]
    columns += ["match ms / image", "device CPU ms", "service CPU ms", "bytes / image"]
    sec.tables.append(
        Table(
            "Privacy axis (recall predicted by the calibration model)",
            columns,
            [_privacy_row(f) for f in figures],
        )
    )
    sec.plots.extend(_privacy_plots(figures))
    return sec, [asdict(f) for f in figures], _privacy_line(figures)
