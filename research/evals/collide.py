"""Collision (false-positive injection): an innocent-looking image whose hash lands on a target's.

Critics of client-side scanning warn that whoever can compute the hash can make an innocuous image that the
scanner flags (Struppek et al. 2022 against NeuralHash; Dolhansky & Canton Ferrer 2020 for PDQ-like hashes).
For PDQ the white-box attack of :mod:`research.attacks` perturbs each ``--source`` image until its hash is
within the match threshold (31 bits) of ``--target``'s hash, with quality >= 50, judged on the PNG-reloaded
file; the report gives success, the distance reached and the distortion from the source, and whether the
snapshot built from the target flags the result. Other hashers have no white-box model here and are reported
as not attempted.
"""

from __future__ import annotations

import io
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from research import stats
from research.corpus import algo_info, get_cached_hasher
from research.evals.common import run_meta
from research.render import match_word
from research.results import Gallery, GalleryItem, Results, Section, Table

if TYPE_CHECKING:
    from research.attacks import AttackResult

__all__ = ["CollideConfig", "Collisions", "collide_pdq", "run"]


@dataclass
class CollideConfig:
    target: str
    source: list[str]
    out: str
    algos: list[str] = field(default_factory=lambda: ["pdq"])
    decode: str = "fast"
    max_queries: int = 40
    workers: int | None = None
    quiet: bool = True


def _png(arr: np.ndarray) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(arr, "RGB").save(buf, format="PNG")
    return buf.getvalue()


def _collide_one(
    path: str, src: np.ndarray, target_hash: bytes, hasher: Any, matcher: Any, cfg: CollideConfig
) -> tuple[dict[str, Any], AttackResult]:
    """Perturb one source image toward ``target_hash``; (its results row, the attack's result). The crafted
    PNG is written under ``cfg.out``."""
    from research.attacks import collide_whitebox

    info = algo_info("pdq")

    def oracle(x: np.ndarray) -> tuple[bytes, int]:
        r = hasher.hash_rgb(x)
        return r.hash, int(r.quality)

    res = collide_whitebox(
        src,
        target_hash,
        oracle,
        threshold=info.threshold,
        max_queries=cfg.max_queries,
        min_quality=info.min_quality,
    )
    after = hasher.hash_rgb(res.image, dihedral=True)
    snap = matcher.match(after.hash, list(after.dihedral or [])) if matcher is not None else None
    out_png = Path(cfg.out) / f"collision-{Path(path).stem}.png"
    out_png.parent.mkdir(parents=True, exist_ok=True)
    out_png.write_bytes(res.png)
    row = {
        "source": path,
        **res.summary(),
        "written": str(out_png),
        "snapshot_match": None if snap is None else bool(snap[0]),
        "snapshot_votes": None if snap is None else int(snap[1]),
    }
    return row, res


def _gallery_item(path: str, src: np.ndarray, res: AttackResult, target_rgb: np.ndarray) -> GalleryItem:
    return GalleryItem(
        f"{Path(path).name}: distance {res.distance_before} -> {res.distance_after}, quality "
        f"{res.quality_after}, PSNR {res.metrics['psnr']:.1f} dB, SSIM {res.metrics['ssim']:.3f}",
        [_png(src), res.png, _png(target_rgb)],
        ["source", "crafted", "target"],
    )


@dataclass
class Collisions:
    """PDQ collisions of every source image with the target."""

    threshold: int
    min_quality: int
    target_quality: int
    results: list[dict[str, Any]]
    gallery: list[GalleryItem]
    snapshot: dict[str, Any]

    @property
    def success(self) -> stats.Rate:
        return stats.rate(sum(1 for r in self.results if r["success"]), len(self.results))


def collide_pdq(
    cfg: CollideConfig, target_rgb: np.ndarray, sources: list[tuple[str, np.ndarray]], seed: int
) -> Collisions:
    """Craft a collision from each source; the snapshot built from the target judges each one too."""
    from research.snapshot_view import build_matcher

    info = algo_info("pdq")
    hasher = get_cached_hasher("pdq")
    target = hasher.hash_rgb(target_rgb, dihedral=True)
    matcher, why = build_matcher(
        "pdq", [target.hash], [target.quality], Path(cfg.out) / "snapshot", seed=seed
    )
    results, items = [], []
    for path, src in sources:
        row, res = _collide_one(path, src, target.hash, hasher, matcher, cfg)
        results.append(row)
        items.append(_gallery_item(path, src, res, target_rgb))
    return Collisions(
        threshold=info.threshold,
        min_quality=info.min_quality,
        target_quality=target.quality,
        results=results,
        gallery=items,
        snapshot=matcher.info() if matcher is not None else {"available": False, "reason": why},
    )


def _collide_data(c: Collisions) -> dict[str, Any]:
    return {
        "attempted": True,
        "method": "whitebox-linear",
        "threshold": c.threshold,
        "target_quality": c.target_quality,
        "success": c.success.as_dict(),
        "results": c.results,
        "snapshot": c.snapshot,
    }


def _summary_lines(algo: str, c: Collisions) -> list[str]:
    best = min(c.results, key=lambda r: r["distance_after"]) if c.results else None
    lines = [
        f"{algo}: collision within {c.threshold} bits of the target on {c.success.fmt()} source image(s)"
        + (f"; best distance {best['distance_after']} at PSNR {best['psnr']:.1f} dB" if best else "")
        + " (white-box, PDQ's exact linear model; judged after PNG save+reload)"
    ]
    if c.target_quality < c.min_quality:
        lines.append(
            f"note: the target's quality is {c.target_quality} < {c.min_quality}: such hashes are "
            "never in a bank, and flat hashes are degenerate targets"
        )
    return lines


def _results_table(algo: str, c: Collisions) -> Table:
    columns = ["source", "success", "distance before", "distance after", "quality", "queries", "PSNR dB"]
    keys = ("success", "distance_before", "distance_after", "quality_after", "queries", "psnr", "ssim", "l2")
    rows = [
        [Path(r["source"]).name, *(r[k] for k in keys), match_word(r["snapshot_match"])] for r in c.results
    ]
    return Table(f"{algo}: results", [*columns, "SSIM", "L2", "snapshot"], rows)


def _section(algo: str, c: Collisions) -> Section:
    sec = Section(f"{algo}: collision")
    sec.text.append(
        "Method: white-box through PDQ's exact linear model. Each disagreeing hash bit is pushed to the "
        "target's side of the median except the costliest few the distance budget allows to stay wrong; "
        "the minimum-L2 luma change is solved in closed form and the push grows until the real hasher, "
        "on the reloaded PNG, confirms. The crafted images are written next to this report."
    )
    sec.tables.append(_results_table(algo, c))
    sec.galleries.append(Gallery("source, crafted collision, target", c.gallery, thumb=300))
    return sec


def run(cfg: CollideConfig, seed: int = 0) -> Results:
    """Craft collisions with the target from every source image (PDQ; other hashers are not attempted)."""
    from scanner.image import load_rgb

    t0 = time.perf_counter()
    target_rgb = load_rgb(cfg.target, mode=cfg.decode)  # type: ignore[arg-type]
    sources = [(s, load_rgb(s, mode=cfg.decode)) for s in cfg.source]  # type: ignore[arg-type]
    data: dict[str, Any] = {"target": cfg.target, "sources": cfg.source, "algos": {}}
    summary: list[str] = []
    sections: list[Section] = []
    for algo in cfg.algos:
        if algo != "pdq":
            get_cached_hasher(algo).hash_rgb(target_rgb, dihedral=True)  # an unusable hasher fails here
            data["algos"][algo] = {
                "attempted": False,
                "reason": "no white-box model for this hasher; collisions not attempted",
            }
            summary.append(f"{algo}: not attempted (the collision attack models PDQ only)")
            continue
        collisions = collide_pdq(cfg, target_rgb, sources, seed)
        data["algos"][algo] = _collide_data(collisions)
        summary.extend(_summary_lines(algo, collisions))
        sections.append(_section(algo, collisions))
    meta = run_meta(seed, t0, algos=cfg.algos, decode=cfg.decode)
    return Results(
        "collide",
        "pocketscan research attacks collide: false-positive injection",
        summary,
        data,
        sections,
        meta,
    )
