"""False positives of an on-device sensitive-content classifier on benign images, beside hash matching.

For every benign image (the user's folders, plus optional generated confusers and skin-tone-heavy synthetic
images), in one pass over the same decoded pixels:

* the classifier's score and label (``sensitive`` at the model's threshold): a ``sensitive`` label on a
  benign image is a false positive;
* PDQ against a bank built from ``--bank`` (nearest bank hash over the 8 dihedral variants of the query,
  within PDQ's match distance 31, quality gate 50): a false match. This is the exact matching rule that
  the client's signed snapshot (LSH + Bloom filter) approximates; ``research fpr`` reports the snapshot's
  own verdict beside it.

Rates are per family (sub-folder) with Wilson 95% intervals; files byte-identical to a bank file are
excluded and counted. A threshold sweep shows what another threshold would have cost. The cost per image is
measured on the photo families (not the synthetic ones), each file timed end to end (decode + rate, and
decode + PDQ) and on decoded pixels (rate only, PDQ only), CPU and wall clock, best of ``repeat`` runs,
the two alternating image by image in one process.
"""

from __future__ import annotations

import os
import platform
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from research import stats
from research.corpus import ImageEntry, list_images
from research.evals.common import environment, file_digest, nearest, percentiles
from research.results import Gallery, GalleryItem, Plot, Results, Section, Series, Table
from scanner.hashers.spec import PDQ

__all__ = ["Bars", "FamilyRates", "Rated", "SensitiveConfig", "family_rates", "run", "threshold_sweep"]

SWEEP: tuple[float, ...] = (0.25, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)
PDQ_DISTANCE = PDQ.match_distance
PDQ_MIN_QUALITY = PDQ.min_quality


@dataclass
class SensitiveConfig:
    benign: list[str]
    bank: str
    out: str
    classifier: str = "nudenet"
    threshold: float | None = None
    generated: int = 0
    skin: int = 0
    photo_families: list[str] | None = None
    """Families timed for the cost per image (default: every family of the user's folders)."""
    repeat: int = 3
    timing_limit: int = 60
    threads: int = 1
    quiet: bool = True
    extra: dict[str, Any] = field(default_factory=dict)


def _families(cfg: SensitiveConfig, seed: int) -> tuple[list[ImageEntry], set[str]]:
    """(entries with family names, names of the families from the user's folders)."""
    entries: list[ImageEntry] = []
    user: set[str] = set()
    for folder in cfg.benign:
        base = Path(folder).resolve().name
        for e in list_images(folder):
            fam = base if e.family == "(root)" else f"{base}/{e.family}"
            entries.append(ImageEntry(e.path, fam))
            user.add(fam)
    if cfg.generated > 0:
        from research.generate import generate_corpus

        gen_dir = Path(cfg.out) / "benign" / "generated"
        for p in generate_corpus(gen_dir, cfg.generated, seed, workers=1):
            entries.append(ImageEntry(p, f"generated/{Path(p).parent.name}"))
    if cfg.skin > 0:
        from research.skin import generate_skin

        for p in generate_skin(Path(cfg.out) / "benign" / "skin", cfg.skin, seed):
            entries.append(ImageEntry(p, f"skin-synthetic/{Path(p).parent.name}"))
    return entries, user


def _best(fn: Any, repeat: int) -> tuple[float, float, Any]:
    """(best CPU seconds, best wall seconds, last result) of ``repeat`` calls."""
    cpu, wall, result = float("inf"), float("inf"), None
    for _ in range(max(1, repeat)):
        c0, w0 = time.process_time(), time.perf_counter()
        result = fn()
        cpu = min(cpu, time.process_time() - c0)
        wall = min(wall, time.perf_counter() - w0)
    return cpu, wall, result


def _load_classifier(cfg: SensitiveConfig) -> tuple[Any, float]:
    """The classifier and the threshold it labels ``sensitive`` at."""
    from scanner.classifiers import get_classifier

    options: dict[str, Any] = {"threads": cfg.threads}
    if cfg.threshold is not None:
        options["threshold"] = cfg.threshold
    classifier = get_classifier(cfg.classifier, **options)
    threshold = float(getattr(getattr(classifier, "spec", None), "threshold", cfg.threshold or 0.5))
    return classifier, threshold


def _bank(cfg: SensitiveConfig) -> tuple[np.ndarray, set[str]]:
    """PDQ hashes of ``--bank`` (as the client would match against them) and the files' digests."""
    from research.parallel import progress
    from scanner.errors import ImageError
    from scanner.hashing import hash_file

    bank_entries = list_images(cfg.bank)
    bank_digests = {file_digest(e.path) for e in bank_entries}
    bank_hashes = []
    for e in progress(bank_entries, total=len(bank_entries), description="hashing the bank", quiet=cfg.quiet):
        try:
            bank_hashes.append(np.frombuffer(hash_file(e.path, algo="pdq", mode="fast").hash, np.uint8))
        except ImageError:
            continue
    return np.array(bank_hashes, np.uint8).reshape(-1, 32), bank_digests


def _rate(e: ImageEntry, classifier: Any, bank: np.ndarray) -> dict[str, Any]:
    """One benign image: the classifier's score and label, and PDQ's nearest bank distance."""
    from scanner.hashing import hash_file
    from scanner.image import load_rgb

    rgb = load_rgb(e.path, mode="fast")
    rating = classifier.classify_rgb(rgb)
    hashed = hash_file(e.path, algo="pdq", mode="fast", dihedral=True)
    dih = np.array([np.frombuffer(h, np.uint8) for h in hashed.dihedral or (hashed.hash,)], np.uint8)
    dist, _ = nearest(dih[:1], bank, query_dihedral=dih[None])
    distance = int(dist[0])
    return {
        "path": e.path, "family": e.family, "score": float(rating.score), "label": rating.label,
        "labels": sorted({d.label for d in rating.detections}), "pdq_quality": int(hashed.quality),
        "pdq_distance": distance,
        "pdq_match": bool(hashed.quality >= PDQ_MIN_QUALITY and distance <= PDQ_DISTANCE),
    }


@dataclass
class Rated:
    """Every benign image rated, the files left out (bank duplicates) and those that failed."""

    rows: list[dict[str, Any]] = field(default_factory=list)
    errors: list[tuple[str, str]] = field(default_factory=list)
    excluded: list[str] = field(default_factory=list)


def rate_images(entries: list[ImageEntry], classifier: Any, bank: np.ndarray, bank_digests: set[str],
                quiet: bool) -> Rated:
    """Rate and hash every entry; byte-identical bank files are excluded, a bad file costs one row."""
    from research.parallel import progress

    rated = Rated()
    for e in progress(entries, total=len(entries), description="rating and hashing", quiet=quiet):
        if file_digest(e.path) in bank_digests:
            rated.excluded.append(e.path)
            continue
        try:
            rated.rows.append(_rate(e, classifier, bank))
        except Exception as exc:  # one bad file costs one row, reported
            rated.errors.append((e.path, str(exc)))
    return rated


@dataclass
class Bars:
    """Percentages with their Wilson 95% interval ends, one per category."""

    values: list[float] = field(default_factory=list)
    low: list[float] = field(default_factory=list)
    high: list[float] = field(default_factory=list)

    def add(self, r: stats.Rate) -> None:
        self.values.append(100 * r.p)
        self.low.append(100 * r.wilson_low)
        self.high.append(100 * r.wilson_high)


@dataclass
class FamilyRates:
    """Classifier false positives and PDQ false matches per family (and ``all``)."""

    families: list[str]
    data: dict[str, Any] = field(default_factory=dict)
    table_rows: list[list[Any]] = field(default_factory=list)
    classifier: Bars = field(default_factory=Bars)
    pdq: Bars = field(default_factory=Bars)


def family_rates(rows: list[dict[str, Any]], user_families: set[str]) -> FamilyRates:
    """Rates per family, the user's families first, then ``all``."""
    out = FamilyRates(sorted({r["family"] for r in rows}, key=lambda f: (f not in user_families, f)))
    for fam in [*out.families, "all"]:
        sub = rows if fam == "all" else [r for r in rows if r["family"] == fam]
        n = len(sub)
        k_clf = sum(r["label"] == "sensitive" for r in sub)
        k_pdq = sum(r["pdq_match"] for r in sub)
        gated = sum(r["pdq_quality"] < PDQ_MIN_QUALITY for r in sub)
        rc, rp = stats.rate(k_clf, n), stats.rate(k_pdq, n)
        top = max((r["score"] for r in sub), default=0.0)
        out.data[fam] = {"n": n, "classifier": rc.as_dict(), "pdq": rp.as_dict(), "max_score": top,
                         "pdq_below_quality_gate": gated}
        out.table_rows.append([fam, n, rc.fmt(), rp.fmt(), round(top, 3), gated])
        if fam != "all":
            out.classifier.add(rc)
            out.pdq.add(rp)
    return out


def threshold_sweep(rows: list[dict[str, Any]]) -> tuple[list[list[Any]], Bars]:
    """The share of all benign images whose score reaches each threshold of :data:`SWEEP`."""
    sweep_rows: list[list[Any]] = []
    bars = Bars()
    for t in SWEEP:
        r = stats.rate(sum(row["score"] >= t for row in rows), len(rows))
        sweep_rows.append([t, r.fmt()])
        bars.add(r)
    return sweep_rows, bars


def _ms(values: list[float]) -> dict[str, float]:
    if not values:
        return {"median": float("nan"), "mean": float("nan"), **percentiles([])}
    arr = 1000 * np.asarray(values)
    return {"median": float(np.median(arr)), "mean": float(arr.mean()), **percentiles(arr, (5, 95))}


def time_photos(photos: list[str], classifier: Any, repeat: int, threads: int, quiet: bool) -> dict[str, Any]:
    """CPU and wall milliseconds per photo: file (decode + rate, decode + PDQ) and pixels (rate, PDQ)."""
    from research.parallel import progress
    from scanner.hashers.registry import get_hasher
    from scanner.hashing import hash_file
    from scanner.image import load_rgb

    pdq = get_hasher("pdq")
    t_clf_file, t_pdq_file, t_clf_px, t_pdq_px = [], [], [], []
    w_clf_file, w_pdq_file = [], []
    for path in progress(photos, total=len(photos), description="timing", quiet=quiet):
        c, w, _ = _best(lambda p=path: classifier.classify_rgb(load_rgb(p, mode="fast")), repeat)
        t_clf_file.append(c)
        w_clf_file.append(w)
        c, w, _ = _best(lambda p=path: hash_file(p, algo="pdq", mode="fast", dihedral=True), repeat)
        t_pdq_file.append(c)
        w_pdq_file.append(w)
        rgb = load_rgb(path, mode="fast")
        t_clf_px.append(_best(lambda a=rgb: classifier.classify_rgb(a), repeat)[0])
        t_pdq_px.append(_best(lambda a=rgb: pdq.hash_rgb(a, dihedral=True), repeat)[0])
    return {
        "images": len(photos), "repeat": repeat, "onnxruntime_threads": threads,
        "classifier_file_cpu_ms": _ms(t_clf_file), "pdq_file_cpu_ms": _ms(t_pdq_file),
        "classifier_file_wall_ms": _ms(w_clf_file), "pdq_file_wall_ms": _ms(w_pdq_file),
        "classifier_pixels_cpu_ms": _ms(t_clf_px), "pdq_pixels_cpu_ms": _ms(t_pdq_px),
    }


def _ratio(timing: dict[str, Any], a: str, b: str) -> float:
    den = timing[b]["median"]
    return float(timing[a]["median"] / den) if den and den == den else float("nan")


def _med(timing: dict[str, Any], key: str) -> float:
    return round(timing[key]["median"], 2)


def _timing_rows(timing: dict[str, Any]) -> list[list[Any]]:
    med = _med
    return [
        ["file: decode + rate / decode + PDQ (8 dihedral)", med(timing, "classifier_file_cpu_ms"),
         med(timing, "pdq_file_cpu_ms"),
         round(_ratio(timing, "classifier_file_cpu_ms", "pdq_file_cpu_ms"), 2),
         med(timing, "classifier_file_wall_ms"), med(timing, "pdq_file_wall_ms")],
        ["decoded pixels: rate / PDQ (8 dihedral)", med(timing, "classifier_pixels_cpu_ms"),
         med(timing, "pdq_pixels_cpu_ms"),
         round(_ratio(timing, "classifier_pixels_cpu_ms", "pdq_pixels_cpu_ms"), 2), "-", "-"],
    ]


def _summary(name: str, threshold: float, overall: dict[str, Any], bank_size: int,
             timing: dict[str, Any]) -> list[str]:
    return [
        f"{name} (threshold {threshold:g}) on {overall['n']} benign images: false positives "
        f"{stats.rate(overall['classifier']['k'], overall['n']).fmt()}; PDQ false matches on the same images "
        f"against a {bank_size}-image bank: {stats.rate(overall['pdq']['k'], overall['n']).fmt()}",
        f"cost per photo (median CPU, {timing['images']} photos): {name} "
        f"{_med(timing, 'classifier_file_cpu_ms'):.1f} ms vs PDQ {_med(timing, 'pdq_file_cpu_ms'):.1f} ms "
        f"per file ({_ratio(timing, 'classifier_file_cpu_ms', 'pdq_file_cpu_ms'):.2f}x)",
    ]


def _family_section(fr: FamilyRates, name: str, threshold: float, rated: Rated) -> Section:
    return Section(
        "False positives per family, classifier beside hash matching",
        text=[
            f"A benign image labelled `sensitive` (score >= {threshold:g}) is a classifier false "
            "positive; a benign image whose nearest bank hash (best of 8 dihedral variants) is within "
            f"{PDQ_DISTANCE} bits with PDQ quality >= {PDQ_MIN_QUALITY} is a hash false match. Wilson "
            f"95% intervals. {len(rated.excluded)} files byte-identical to a bank file were excluded; "
            f"{len(rated.errors)} files could not be decoded.",
        ],
        tables=[Table("Per family", ["family", "n", f"{name} false positives", "PDQ false matches",
                                     "max score", f"PDQ quality < {PDQ_MIN_QUALITY}"], fr.table_rows)],
        plots=[Plot("bar", f"False-positive rate per family: {name} vs PDQ (Wilson 95%)", "family",
                    "% of benign images flagged", [
                        Series(f"{name} (>= {threshold:g})", fr.classifier.values, low=fr.classifier.low,
                               high=fr.classifier.high),
                        Series(f"PDQ (<= {PDQ_DISTANCE} bits)", fr.pdq.values, low=fr.pdq.low,
                               high=fr.pdq.high),
                    ], categories=fr.families, name="fpr_per_family")],
    )


def _sweep_section(sweep_rows: list[list[Any]], sweep: Bars, rows: list[dict[str, Any]], name: str,
                   threshold: float) -> Section:
    return Section(
        "Threshold sweep",
        text=["The share of all benign images whose score reaches each threshold (what another threshold "
              "would flag)."],
        tables=[Table("Benign images flagged by threshold", ["threshold", "flagged"], sweep_rows)],
        plots=[Plot("line", "Benign images flagged vs threshold", "threshold", "% flagged",
                    [Series(name, sweep.values, x=list(SWEEP), low=sweep.low, high=sweep.high)],
                    vlines=[(threshold, f"threshold {threshold:g}")], name="threshold_sweep"),
               Plot("hist", "Scores of benign images (non-zero only)", "score", "images",
                    [Series("benign", [r["score"] for r in rows if r["score"] > 0])],
                    vlines=[(threshold, "threshold")], bins=20, name="scores")],
    )


def _cost_section(cfg: SensitiveConfig, timing: dict[str, Any], photo_fams: set[str], name: str) -> Section:
    return Section(
        "Cost per image beside PDQ",
        text=[f"{timing['images']} photos from {', '.join(sorted(photo_fams))}; each timed best of "
              f"{cfg.repeat}, classifier and PDQ alternating image by image in one process; CPU time "
              f"(the machine is shared); onnxruntime intra-op threads {cfg.threads}. PDQ includes its 8 "
              "dihedral variants, as the client computes them."],
        tables=[Table("Median milliseconds per image", ["what", f"{name} CPU ms", "PDQ CPU ms",
                                                        "ratio", f"{name} wall ms", "PDQ wall ms"],
                      _timing_rows(timing))],
    )


def _top_scores_section(rows: list[dict[str, Any]]) -> Section:
    flagged = sorted(rows, key=lambda r: -r["score"])
    gallery_items = [
        GalleryItem(f"{Path(r['path']).name} ({r['family']}): score {r['score']:.3f} -> {r['label']}"
                    f"{' [' + ', '.join(r['labels']) + ']' if r['labels'] else ''}", [r["path"]])
        for r in flagged[:16] if r["score"] > 0
    ]
    gallery = Gallery("Top scores", gallery_items, thumb=180)
    return Section("Highest-scoring benign images", galleries=[gallery])


def _meta(cfg: SensitiveConfig, seed: int, name: str, threshold: float, bank_size: int, rated: Rated,
          t_start: float) -> dict[str, Any]:
    try:
        load = os.getloadavg()
    except OSError:
        load = (float("nan"),) * 3
    return {
        **environment(), "seed": seed, "classifier": cfg.classifier, "model": name, "threshold": threshold,
        "benign": cfg.benign, "bank": cfg.bank, "bank_size": bank_size, "generated": cfg.generated,
        "skin": cfg.skin, "excluded_bank_duplicates": rated.excluded, "errors": rated.errors,
        "seconds": round(time.time() - t_start, 1), "load_average": [round(x, 2) for x in load],
        "cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(),
        "date_utc": time.strftime("%Y-%m-%d %H:%M", time.gmtime()),
    }


def run(cfg: SensitiveConfig, *, seed: int = 0) -> Results:
    t_start = time.time()
    classifier, threshold = _load_classifier(cfg)
    bank, bank_digests = _bank(cfg)
    entries, user_families = _families(cfg, seed)
    rated = rate_images(entries, classifier, bank, bank_digests, cfg.quiet)
    rows = rated.rows
    fr = family_rates(rows, user_families)
    sweep_rows, sweep = threshold_sweep(rows)
    photo_fams = set(cfg.photo_families) if cfg.photo_families else user_families
    photos = [r["path"] for r in rows if r["family"] in photo_fams][: max(0, cfg.timing_limit)]
    timing = time_photos(photos, classifier, cfg.repeat, cfg.threads, cfg.quiet)
    name = getattr(classifier, "name", cfg.classifier)
    sections = [
        _family_section(fr, name, threshold, rated),
        _sweep_section(sweep_rows, sweep, rows, name, threshold),
        _cost_section(cfg, timing, photo_fams, name),
        _top_scores_section(rows),
    ]
    return Results(
        command="sensitive",
        title=f"Sensitive-content classifier false positives beside hash matching: {name}",
        summary=_summary(name, threshold, fr.data["all"], len(bank), timing),
        data={"families": fr.data, "sweep": dict(zip((str(t) for t in SWEEP), sweep.values, strict=True)),
              "timing": timing, "rows": rows},
        sections=sections,
        meta=_meta(cfg, seed, name, threshold, len(bank), rated, t_start),
    )
