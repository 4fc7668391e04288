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
from typing import Any

import numpy as np

from research import stats
from research.corpus import algo_info, get_cached_hasher
from research.evals.common import environment
from research.results import Gallery, GalleryItem, Results, Section, Table

__all__ = ["CollideConfig", "run"]


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


def run(cfg: CollideConfig, seed: int = 0) -> Results:
    from research.attacks import collide_whitebox
    from research.snapshot_view import build_matcher
    from scanner.image import load_rgb

    t0 = time.perf_counter()
    target_rgb = load_rgb(cfg.target, mode=cfg.decode)  # type: ignore[arg-type]
    sources = [(s, load_rgb(s, mode=cfg.decode)) for s in cfg.source]  # type: ignore[arg-type]
    data: dict[str, Any] = {"target": cfg.target, "sources": cfg.source, "algos": {}}
    summary: list[str] = []
    sections: list[Section] = []
    for algo in cfg.algos:
        info = algo_info(algo)
        hasher = get_cached_hasher(algo)
        target = hasher.hash_rgb(target_rgb, dihedral=True)
        if algo != "pdq":
            data["algos"][algo] = {
                "attempted": False,
                "reason": "no white-box model for this hasher; collisions not attempted",
            }
            summary.append(f"{algo}: not attempted (the collision attack models PDQ only)")
            continue

        def oracle(x: np.ndarray, hasher: Any = hasher) -> tuple[bytes, int]:
            r = hasher.hash_rgb(x)
            return r.hash, int(r.quality)

        matcher, why = build_matcher(
            algo, [target.hash], [target.quality], Path(cfg.out) / "snapshot", seed=seed
        )
        results = []
        items = []
        for path, src in sources:
            res = collide_whitebox(
                src,
                target.hash,
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
            results.append(row)
            items.append(
                GalleryItem(
                    f"{Path(path).name}: distance {res.distance_before} -> {res.distance_after}, quality "
                    f"{res.quality_after}, PSNR {res.metrics['psnr']:.1f} dB, SSIM {res.metrics['ssim']:.3f}",
                    [_png(src), res.png, _png(target_rgb)],
                    ["source", "crafted", "target"],
                )
            )
        rate = stats.rate(sum(1 for r in results if r["success"]), len(results))
        data["algos"][algo] = {
            "attempted": True,
            "method": "whitebox-linear",
            "threshold": info.threshold,
            "target_quality": target.quality,
            "success": rate.as_dict(),
            "results": results,
            "snapshot": matcher.info() if matcher is not None else {"available": False, "reason": why},
        }
        best = min(results, key=lambda r: r["distance_after"]) if results else None
        summary.append(
            f"{algo}: collision within {info.threshold} bits of the target on {rate.fmt()} source image(s)"
            + (f"; best distance {best['distance_after']} at PSNR {best['psnr']:.1f} dB" if best else "")
            + " (white-box, PDQ's exact linear model; judged after PNG save+reload)"
        )
        if target.quality < info.min_quality:
            summary.append(
                f"note: the target's quality is {target.quality} < {info.min_quality}: such hashes are "
                "never in a bank, and flat hashes are degenerate targets"
            )
        sec = Section(f"{algo}: collision")
        sec.text.append(
            "Method: white-box through PDQ's exact linear model. Each disagreeing hash bit is pushed to the "
            "target's side of the median except the costliest few the distance budget allows to stay wrong; "
            "the minimum-L2 luma change is solved in closed form and the push grows until the real hasher, "
            "on the reloaded PNG, confirms. The crafted images are written next to this report."
        )
        sec.tables.append(
            Table(
                f"{algo}: results",
                [
                    "source",
                    "success",
                    "distance before",
                    "distance after",
                    "quality",
                    "queries",
                    "PSNR dB",
                    "SSIM",
                    "L2",
                    "snapshot",
                ],
                [
                    [
                        Path(r["source"]).name,
                        r["success"],
                        r["distance_before"],
                        r["distance_after"],
                        r["quality_after"],
                        r["queries"],
                        r["psnr"],
                        r["ssim"],
                        r["l2"],
                        {True: "match", False: "no match"}.get(r["snapshot_match"], "n/a"),
                    ]
                    for r in results
                ],
            )
        )
        sec.galleries.append(Gallery("source, crafted collision, target", items, thumb=300))
        sections.append(sec)
    meta = {
        "seed": seed,
        "algos": cfg.algos,
        "decode": cfg.decode,
        "timings": {"total_s": time.perf_counter() - t0},
        **environment(),
    }
    return Results(
        "collide",
        "pocketscan research attacks collide: false-positive injection",
        summary,
        data,
        sections,
        meta,
    )
