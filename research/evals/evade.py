"""Evasion: how easily a bank image is changed, imperceptibly, so that the scanner no longer matches it.

For each bank image and algorithm the attack (see :mod:`research.attacks`) searches for a small perturbation
after which the hash is more than the match threshold away from the original's (PDQ: > 31 bits) while the
quality gate still passes (so the image is scanned and *not* matched, rather than skipped). Success is judged
on the file after a PNG save and reload, with the project's real hasher. The snapshot's verdict on the
attacked image is reported too (it usually stops matching well before the raw distance passes 31, since the
snapshot recalls few matches near the threshold).

Methods: ``whitebox-linear`` for PDQ (exact linear model, closed-form minimum-L2 perturbation), and
``blackbox-nes`` for any hasher (hash-only queries; NES on a smooth low-resolution perturbation).
"""

from __future__ import annotations

import io
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from research import stats
from research.corpus import algo_info, get_cached_hasher, hash_corpus, list_bank
from research.evals.common import percentiles, run_meta
from research.render import match_word
from research.results import Gallery, GalleryItem, Plot, Results, Section, Series, Table

if TYPE_CHECKING:
    from research.attacks import AttackResult

__all__ = ["AlgoEvasion", "EvadeConfig", "evade_algo", "evasion_outcome", "run"]


@dataclass
class EvadeConfig:
    bank: str
    out: str
    algos: list[str] | None = None
    workers: int | None = None
    decode: str = "fast"
    method: str = "auto"
    max_queries: int | None = None
    limit: int | None = None
    quiet: bool = True
    snapshot: bool = True
    gallery: int = 8


def _method(algo: str, requested: str) -> str:
    if requested == "whitebox":
        if algo != "pdq":
            raise ValueError(f"the white-box attack models PDQ only; use --method blackbox for {algo}")
        return "whitebox"
    if requested == "blackbox":
        return "blackbox"
    return "whitebox" if algo == "pdq" else "blackbox"


def _thumbs(before: np.ndarray, after: np.ndarray, size: int = 320) -> tuple[bytes, bytes, bytes]:
    from PIL import Image

    diff = np.clip(np.abs(after.astype(np.int16) - before.astype(np.int16)) * 10, 0, 255).astype(np.uint8)
    outs = []
    for arr in (before, after, diff):
        im = Image.fromarray(arr, "RGB")
        im.thumbnail((size, size))
        buf = io.BytesIO()
        im.save(buf, format="PNG")
        outs.append(buf.getvalue())
    return outs[0], outs[1], outs[2]


_MATCHERS: dict[str, Any] = {}
"""Snapshot matchers by algorithm, set before the worker pool forks (the workers inherit them)."""

EvadeJob = tuple[str, int, str, str, int, int, int, int, str, bool, bool, str]
"""(path, index, algo, method, threshold, gate, max queries, seed, decode, thumbs?, snapshot?, out)."""


def _min_dihedral_distance(orig_hash: bytes, variants: Sequence[bytes]) -> int:
    """The smallest Hamming distance from ``orig_hash`` to any of ``variants``."""
    ref = np.frombuffer(orig_hash, np.uint8)
    return min(int(np.bitwise_count(np.bitwise_xor(np.frombuffer(v, np.uint8), ref)).sum()) for v in variants)


def _attack(job: EvadeJob, rgb: np.ndarray, hasher: Any, matcher: Any) -> AttackResult:
    """Run the job's attack on ``rgb``; with ``matcher`` the snapshot must stop matching too."""
    from research.attacks import evade_blackbox, evade_whitebox

    _path, index, _algo, method, thr, gate, max_q, seed = job[:8]

    def oracle(x: np.ndarray) -> tuple[bytes, int]:
        r = hasher.hash_rgb(x)
        return r.hash, int(r.quality)

    def still_detected(x: np.ndarray) -> bool:
        r = hasher.hash_rgb(x, dihedral=True)
        return bool(matcher.match(r.hash, list(r.dihedral or []))[0]) if matcher is not None else False

    detector = still_detected if matcher is not None else None
    if method == "whitebox":
        return evade_whitebox(
            rgb, oracle, threshold=thr, max_queries=max_q, min_quality=gate, still_detected=detector
        )
    return evade_blackbox(
        rgb,
        oracle,
        threshold=thr,
        max_queries=max_q,
        seed=seed * 100003 + index,
        min_quality=gate,
        still_detected=detector,
    )


def _job(job: EvadeJob) -> dict[str, Any]:
    """Attack one bank image: its per-image record (or ``error`` / ``skipped``)."""
    path, index, algo, _method, _thr, gate, _max_q, _seed, mode, want_thumbs, use_snapshot, out_dir = job
    from scanner.errors import ImageError
    from scanner.image import load_rgb

    try:
        rgb = load_rgb(path, mode=mode)  # type: ignore[arg-type]
    except (ImageError, OSError, ValueError) as exc:
        return {"path": path, "error": str(exc)}
    hasher = get_cached_hasher(algo)
    orig = hasher.hash_rgb(rgb, dihedral=True)
    if orig.quality < gate:
        return {"path": path, "skipped": f"quality {orig.quality} below the gate {gate}: not in the bank"}
    matcher = _MATCHERS.get(algo) if use_snapshot else None
    t = time.perf_counter()
    res = _attack(job, rgb, hasher, matcher)
    elapsed = time.perf_counter() - t
    after = hasher.hash_rgb(res.image, dihedral=True)
    out: dict[str, Any] = {
        "path": path,
        **res.summary(),
        "seconds": elapsed,
        "orig_hash": orig.hash,
        "after_hash": after.hash,
        "after_dihedral": after.dihedral,
        "orig_dihedral_min": _min_dihedral_distance(orig.hash, after.dihedral or (after.hash,)),
    }
    if want_thumbs:
        out["thumbs"] = _thumbs(rgb, res.image)
    if res.success and res.png:  # the attacked file itself, exactly as judged
        written = Path(out_dir) / f"evaded-{algo}" / f"{index:04d}-{Path(path).stem}.png"
        written.parent.mkdir(parents=True, exist_ok=True)
        written.write_bytes(res.png)
        out["written"] = str(written)
    return out


def _snapshot_matcher(cfg: EvadeConfig, entries: list[Any], algo: str, seed: int) -> tuple[Any, str]:
    """The bank's snapshot matcher for ``algo`` (the attack must also stop it matching), or (None, why)."""
    from research.snapshot_view import build_matcher

    if not cfg.snapshot:
        return None, "disabled"
    sets, _errs = hash_corpus(entries, [algo], dihedral=False, mode=cfg.decode, workers=cfg.workers)
    hs = sets[algo]
    return build_matcher(
        algo,
        [bytes(h) for h in hs.hashes],
        hs.quality.tolist(),
        Path(cfg.out) / f"snapshot-{algo}",
        seed=seed,
    )


def _attack_bank(
    cfg: EvadeConfig, entries: list[Any], algo: str, method: str, max_q: int, matcher: Any, seed: int
) -> list[dict[str, Any]]:
    """Attack every bank image (in the worker pool): one record per image, in bank order."""
    from research.parallel import imap, progress

    info = algo_info(algo)
    _MATCHERS.clear()
    if matcher is not None:
        _MATCHERS[algo] = matcher
    jobs: list[EvadeJob] = [
        (
            e.path,
            i,
            algo,
            method,
            info.threshold,
            info.min_quality,
            max_q,
            seed,
            cfg.decode,
            i < cfg.gallery,
            matcher is not None,
            cfg.out,
        )
        for i, e in enumerate(entries)
    ]
    return list(
        progress(
            imap(_job, jobs, workers=cfg.workers, chunksize=1),
            total=len(jobs),
            description=f"evading {algo} ({method})",
            quiet=cfg.quiet,
        )
    )


def _add_snapshot_verdicts(attacked: list[dict[str, Any]], matcher: Any) -> None:
    """Record the snapshot's verdict before and after the attack on each attacked image."""
    if matcher is None:
        return
    for r in attacked:
        r["snapshot_before"] = bool(matcher.match(r["orig_hash"], None)[0])
        r["snapshot_after"] = bool(matcher.match(r["after_hash"], list(r["after_dihedral"] or []))[0])


def _median(values: list[float], empty: float) -> float:
    return float(np.median(values)) if values else empty


@dataclass
class AlgoEvasion:
    """What the attack achieved on one algorithm's bank images."""

    algo: str
    method: str
    max_queries: int
    threshold: int
    min_quality: int
    bits: int
    records: list[dict[str, Any]]
    attacked: list[dict[str, Any]]
    skipped: int
    errors: int
    snapshot_used: bool
    snapshot_why: str
    success: stats.Rate
    distance_evaded: stats.Rate
    snapshot_evaded: stats.Rate | None

    @property
    def successes(self) -> list[dict[str, Any]]:
        return [r for r in self.attacked if r["success"]]

    def metric(self, key: str) -> list[Any]:
        """``key`` of every successful attack."""
        return [r[key] for r in self.successes]

    @property
    def median_psnr(self) -> float:
        return _median(self.metric("psnr"), float("nan"))


def evasion_outcome(
    algo: str,
    method: str,
    max_q: int,
    records: list[dict[str, Any]],
    matcher_used: bool,
    why: str,
) -> AlgoEvasion:
    """Count the attacked, skipped and failed images and the success rates (Wilson intervals)."""
    info = algo_info(algo)
    attacked = [r for r in records if "success" in r]
    n = len(attacked)
    snapshot_evaded = (
        stats.rate(sum(1 for r in attacked if r.get("snapshot_after") is False), n) if matcher_used else None
    )
    distance_evaded = stats.rate(
        sum(
            1
            for r in attacked
            if r["distance_after"] > info.threshold and r["quality_after"] >= info.min_quality
        ),
        n,
    )
    return AlgoEvasion(
        algo,
        method,
        max_q,
        info.threshold,
        info.min_quality,
        info.bits,
        records=records,
        attacked=attacked,
        skipped=sum(1 for r in records if "skipped" in r),
        errors=sum(1 for r in records if "error" in r),
        snapshot_used=matcher_used,
        snapshot_why=why,
        success=stats.rate(sum(1 for r in attacked if r["success"]), n),
        distance_evaded=distance_evaded,
        snapshot_evaded=snapshot_evaded,
    )


def _method_label(method: str) -> str:
    return (
        "white-box (PDQ's exact linear model; closed-form minimum-L2 luma perturbation)"
        if method == "whitebox"
        else "black-box (hash-only queries, NES on a smooth perturbation)"
    )


def _criterion(ev: AlgoEvasion) -> str:
    return f"distance > {ev.threshold}, quality >= {ev.min_quality}" + (
        ", snapshot no longer matching" if ev.snapshot_used else ""
    )


def _verdict(ev: AlgoEvasion) -> str:
    if ev.success.p >= 0.9 and ev.median_psnr >= 30:
        return (
            "This is a finding about the hash, not a failure of the tool: an adversary who knows the "
            "algorithm removes a match with changes a viewer does not notice."
        )
    return "The attack did not reach 90% success at >= 30 dB median PSNR with this budget."


def _summary_line(ev: AlgoEvasion) -> str:
    if ev.successes:
        med_ssim = _median(ev.metric("ssim"), float("nan"))
        med_q = _median(ev.metric("queries"), 0.0)
        quality_txt = (
            f"median PSNR {ev.median_psnr:.1f} dB, median SSIM {med_ssim:.3f}, median {med_q:.0f} queries"
        )
    else:
        best = max(ev.attacked, key=lambda r: r["distance_after"], default=None)
        quality_txt = "no success within the budget" + (
            f"; best distance reached {best['distance_after']} at PSNR {best['psnr']:.1f} dB" if best else ""
        )
    snap = ev.snapshot_evaded
    return (
        f"{ev.algo}: evasion succeeded on {ev.success.fmt()} of bank images ({_criterion(ev)}; after PNG "
        f"save+reload), {quality_txt}; method {_method_label(ev.method)}. "
        f"Distance alone > {ev.threshold}: {ev.distance_evaded.fmt()}"
        + (f"; snapshot no longer matches: {snap.fmt()}." if snap else ".")
    )


def _algo_data(ev: AlgoEvasion) -> dict[str, Any]:
    """The algorithm's entry in ``results.json`` (a contract: keys and order stay)."""
    psnrs = ev.metric("psnr")
    snap = ev.snapshot_evaded
    return {
        "method": ev.method,
        "method_description": _method_label(ev.method),
        "threshold": ev.threshold,
        "min_quality": ev.min_quality,
        "max_queries": ev.max_queries,
        "attacked": len(ev.attacked),
        "skipped_low_quality": ev.skipped,
        "errors": ev.errors,
        "success_criterion": _criterion(ev),
        "distance_evaded": ev.distance_evaded.as_dict(),
        "success": ev.success.as_dict(),
        "snapshot_evaded": snap.as_dict() if snap else {"available": False, "reason": ev.snapshot_why},
        "psnr": percentiles(psnrs),
        "ssim": percentiles(ev.metric("ssim")),
        "l2": percentiles(ev.metric("l2")),
        "linf": percentiles(ev.metric("linf")),
        "queries": percentiles(ev.metric("queries")),
        "median_psnr": ev.median_psnr,
        "verdict": _verdict(ev),
        "images": [{k: v for k, v in r.items() if k not in ("thumbs", "after_dihedral")} for r in ev.records],
    }


def _overview_row(ev: AlgoEvasion) -> list[Any]:
    ssims, queries = ev.metric("ssim"), ev.metric("queries")
    return [
        ev.algo,
        ev.method,
        ev.success.fmt(),
        ev.median_psnr,
        float(np.median(ssims)) if ssims else None,
        float(np.median(queries)) if queries else None,
        ev.snapshot_evaded.fmt() if ev.snapshot_evaded else "n/a",
    ]


def _per_image_table(ev: AlgoEvasion) -> Table:
    keys = ("success", "distance_after", "orig_dihedral_min", "quality_after", "queries", "psnr", "ssim")
    rows = [
        [Path(r["path"]).name, *(r[k] for k in keys), r["l2"], r["linf"], match_word(r.get("snapshot_after"))]
        for r in ev.attacked
    ]
    columns = ["image", "success", "distance", "min dihedral distance", "quality", "queries", "PSNR dB"]
    columns += ["SSIM", "L2 (RMS)", "L-inf", "snapshot after"]
    return Table(f"{ev.algo}: per image", columns, rows)


def _algo_plots(ev: AlgoEvasion) -> list[Plot]:
    psnr_plot = Plot(
        "hist",
        f"{ev.algo}: PSNR of successful evasions",
        "PSNR (dB)",
        "images",
        [Series("PSNR", ev.metric("psnr"))],
        vlines=[(30.0, "30 dB")],
        bins=20,
        name=f"evade-{ev.algo}-psnr",
    )
    distance_plot = Plot(
        "hist",
        f"{ev.algo}: distance reached",
        "Hamming distance to the original",
        "images",
        [Series("distance", [float(r["distance_after"]) for r in ev.attacked])],
        vlines=[(ev.threshold, f"threshold {ev.threshold}")],
        bins=20,
        name=f"evade-{ev.algo}-distance",
    )
    return [psnr_plot, distance_plot]


def _gallery(ev: AlgoEvasion) -> Gallery:
    items = [
        GalleryItem(
            f"{Path(r['path']).name}: d={r['distance_after']}, PSNR {r['psnr']:.1f} dB, SSIM {r['ssim']:.3f}",
            list(r["thumbs"]),
            ["before", "after", "|after-before| x10"],
        )
        for r in ev.attacked
        if "thumbs" in r
    ]
    return Gallery(f"{ev.algo}: before, after, and the difference amplified 10x", items, thumb=320)


def _algo_section(ev: AlgoEvasion) -> Section:
    sec = Section(f"{ev.algo}: evasion ({ev.method})")
    sec.text.append(
        f"Method: {_method_label(ev.method)}. Success = Hamming distance > {ev.threshold} of {ev.bits} bits "
        f"from the original's hash AND quality >= {ev.min_quality}"
        + (" AND the bank's snapshot (dihedral on) no longer matches" if ev.snapshot_used else "")
        + ", measured on the attacked image after a PNG save and reload. "
        f"Budget {ev.max_queries} queries per image (hasher and snapshot calls). "
        f"{ev.skipped} bank image(s) below the quality gate were not attacked (they are never "
        f"matched anyway: pushing quality below {ev.min_quality} is itself an evasion route). " + _verdict(ev)
    )
    sec.tables.append(_per_image_table(ev))
    sec.plots.extend(_algo_plots(ev))
    sec.galleries.append(_gallery(ev))
    return sec


def _overview_section(outcomes: list[AlgoEvasion]) -> Section:
    overview = Section("Overview")
    columns = ["algo", "method", "success (Wilson 95%)", "median PSNR dB", "median SSIM", "median queries"]
    overview.tables.append(
        Table("Evasion success", [*columns, "snapshot evaded"], [_overview_row(ev) for ev in outcomes])
    )
    psnr_series = [Series(ev.algo, ev.metric("psnr")) for ev in outcomes]
    if any(s.values for s in psnr_series):
        overview.plots.append(
            Plot(
                "hist",
                "PSNR of successful evasions",
                "PSNR (dB)",
                "images",
                psnr_series,
                vlines=[(30.0, "30 dB")],
                bins=20,
                name="evade-psnr",
            )
        )
    return overview


def evade_algo(cfg: EvadeConfig, entries: list[Any], algo: str, seed: int) -> AlgoEvasion:
    """Build the bank's snapshot, attack every bank image and count what worked, for one algorithm."""
    method = _method(algo, cfg.method)
    max_q = cfg.max_queries or (40 if method == "whitebox" else 600)
    matcher, why = _snapshot_matcher(cfg, entries, algo, seed)
    records = _attack_bank(cfg, entries, algo, method, max_q, matcher, seed)
    _add_snapshot_verdicts([r for r in records if "success" in r], matcher)
    return evasion_outcome(algo, method, max_q, records, matcher is not None, why)


def run(cfg: EvadeConfig, seed: int = 0) -> Results:
    """Attack every bank image for each algorithm; the report with per-image figures and galleries."""
    t0 = time.perf_counter()
    algos = cfg.algos or ["pdq"]
    entries = list_bank(cfg.bank, cfg.limit)
    outcomes = [evade_algo(cfg, entries, algo, seed) for algo in algos]
    data: dict[str, Any] = {
        "bank_dir": cfg.bank,
        "images": len(entries),
        "algos": {ev.algo: _algo_data(ev) for ev in outcomes},
    }
    sections = [_overview_section(outcomes), *(_algo_section(ev) for ev in outcomes)]
    meta = run_meta(seed, t0, algos=algos, decode=cfg.decode, workers=cfg.workers)
    return Results(
        "evade",
        "pocketscan research attacks evade: removing matches imperceptibly",
        [_summary_line(ev) for ev in outcomes],
        data,
        sections,
        meta,
    )
