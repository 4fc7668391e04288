"""Choose thresholds on a calibration split, report them on a disjoint test split.

A threshold picked on the images it is reported on flatters itself. ``pocketscan research calibrate``
chooses every threshold the tools choose on ``--calibrate-on`` and measures it on ``--test-on`` (or splits
one folder deterministically with ``--split DIR``: each near-duplicate cluster goes to calibration when the
first 8 bytes of ``sha256(seed/key)`` fall below the fraction, the key being the path of the cluster's first
image relative to the folder). Byte-identical files on both sides are removed from the test
side and counted. Images PDQ rates below quality 50 are left out for every hasher (as ``eval_learned``).

For each hasher and each transform of :mod:`research.transforms`, a *positive* is a transformed copy and its
own original; its *closest incorrect* is the nearest other original (thorn's ``perception`` convention).
Threshold rules, all fitted on the calibration split only:

* ``fixed``: the hasher's own match distance (PDQ 31/256, the shipped learned hash's 25/256);
* ``matched_fmr``: the largest ``t`` whose share of unrelated original pairs at ``d <= t`` is no higher than
  PDQ's at 31 on the same pairs (the rule ``research.eval_learned`` applies to the whole corpus);
* ``precision``: perception's ``compute_threshold_precision_recall``: candidate thresholds are the sorted
  positive distances, ``TP(t)`` the positives at ``<= t``, ``FP(t)`` the queries whose closest incorrect is at
  ``<= t``; the threshold is the last one before precision falls below the target (99.99 % by default).

The snapshot's minimum votes are chosen the same way: the calibration originals are cut in two halves; a
snapshot of half A is queried with transformed copies of A (positives) and with B's originals and copies
(negatives), and ``min_votes`` is the smallest vote count whose precision reaches the target. The test split
repeats this with its own halves, at the calibrated count and at the snapshot's default.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from research import stats
from research.corpus import AlgoInfo, ImageEntry, algo_info, get_cached_hasher, list_images
from research.evals.common import file_digest, near_duplicate_clusters, run_meta
from research.results import Plot, Results, Section, Series, Table
from scanner.hashers.spec import PDQ

__all__ = ["CalibrateConfig", "precision_threshold", "run", "snapshot_halves", "split_folder", "split_keys"]

PDQ_GATE = PDQ.min_quality
NEAR_DUPLICATE_BITS = PDQ.match_distance
"""Originals within this PDQ distance are copies of one picture: split together, never each other's
"incorrect" match."""


@dataclass
class CalibrateConfig:
    out: str
    calibrate_on: str | None = None
    test_on: str | None = None
    split: str | None = None
    calibrate_fraction: float = 0.5
    algos: list[str] = field(default_factory=lambda: ["pdq", "onnx"])
    transforms: list[str] | None = None
    precision: float = 0.9999
    snapshot: bool = True
    quiet: bool = True


def _relative_key(key: str, root: Path) -> str:
    """A path under ``root`` relative to it; any other cluster key as given."""
    try:
        return str(Path(key).relative_to(root))
    except ValueError:
        return key


def split_folder(
    folder: str, fraction: float, seed: int, clusters: dict[str, str] | None = None
) -> tuple[list[ImageEntry], list[ImageEntry]]:
    """Deterministic split by ``sha256(f"{seed}/{key}")``, the key being the image's path relative to
    ``folder`` or, when ``clusters`` maps paths to their cluster's first path, that one's (so near-duplicates
    land on the same side)."""
    if not 0.0 < fraction < 1.0:
        raise ValueError(f"--calibrate-fraction must be in (0, 1), got {fraction}")
    cal: list[ImageEntry] = []
    test: list[ImageEntry] = []
    root = Path(folder)
    for e in list_images(folder):
        # The key is relative to the folder, so the split does not depend on where the folder is or how
        # its path is spelled (``../shared/corpus`` and ``/abs/shared/corpus`` split alike).
        key = _relative_key((clusters or {}).get(e.path) or e.path, root)
        u = int.from_bytes(hashlib.sha256(f"{seed}/{key}".encode()).digest()[:8], "big") / 2**64
        (cal if u < fraction else test).append(e)
    return cal, test


def _pdq_of(entries: list[ImageEntry]) -> tuple[list[ImageEntry], np.ndarray]:
    from scanner.errors import ImageError
    from scanner.hashers.pdq import pdq_hash
    from scanner.image import load_rgb

    kept, hashes = [], []
    for e in entries:
        try:
            r = pdq_hash(load_rgb(e.path, mode="fast"))
        except (ImageError, OSError, ValueError):
            continue
        kept.append(e)
        hashes.append(np.frombuffer(r.hash, np.uint8))
    return kept, np.array(hashes, np.uint8).reshape(len(kept), 32)


def precision_threshold(pos: np.ndarray, closest_incorrect: np.ndarray, target: float) -> tuple[int, float]:
    """perception's rule: (threshold, precision there); threshold -1 when even the smallest fails."""
    best, best_prec = -1, 1.0
    for t in np.unique(pos):
        tp = int((pos <= t).sum())
        fp = int((closest_incorrect <= t).sum())
        prec = tp / (tp + fp) if tp + fp else 1.0
        if prec < target:
            break
        best, best_prec = int(t), prec
    return best, best_prec


def _matched_fmr_threshold(pairs: np.ndarray, max_rate: float, bits: int) -> int:
    """Largest t whose pair false-match share is <= max_rate (-1: not even 0)."""
    if len(pairs) == 0:
        return bits
    cum = np.cumsum(np.bincount(pairs, minlength=bits + 1)) / len(pairs)
    ok = np.flatnonzero(cum <= max_rate + 1e-15)
    return int(ok.max()) if len(ok) else -1


def _dist(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(N, nb) x (M, nb) -> (N, M) Hamming distances."""
    return np.bitwise_count(np.bitwise_xor(a[:, None, :], b[None, :, :])).sum(axis=2).astype(np.int64)


def _hash_all(algo: str, rgbs: list[np.ndarray]) -> np.ndarray:
    h = get_cached_hasher(algo)
    results = h.hash_many(rgbs) if hasattr(h, "hash_many") else [h.hash_rgb(x) for x in rgbs]
    return np.array([np.frombuffer(r.hash, np.uint8) for r in results], np.uint8).reshape(len(rgbs), -1)


@dataclass
class _Split:
    name: str
    entries: list[ImageEntry]
    rgbs: list[np.ndarray]
    gated_out: int
    copies: dict[str, list[np.ndarray]]
    cluster: np.ndarray  # near-duplicate cluster id of each image


def _load_split(name: str, entries: list[ImageEntry], transforms: list[str], seed: int) -> _Split:
    from PIL import Image

    from research.transforms import TRANSFORMS
    from scanner.errors import ImageError
    from scanner.hashers.pdq import pdq_hash
    from scanner.image import load_rgb

    kept, rgbs, gated = [], [], 0
    for e in entries:
        try:
            rgb = load_rgb(e.path, mode="fast")
        except (ImageError, OSError, ValueError):
            gated += 1
            continue
        if pdq_hash(rgb).quality < PDQ_GATE:
            gated += 1
            continue
        kept.append(e)
        rgbs.append(rgb)
    copies = {
        t: [
            np.asarray(TRANSFORMS[t](Image.fromarray(x), np.random.default_rng([seed, i])), np.uint8)
            for i, x in enumerate(rgbs)
        ]
        for t in transforms
    }
    _, h = _pdq_of(kept)
    return _Split(name, kept, rgbs, gated, copies, near_duplicate_clusters(h, NEAR_DUPLICATE_BITS))


@dataclass
class _Measured:
    """Distances of one split under one hasher."""

    hashes: np.ndarray  # originals
    pairs: np.ndarray  # distances of unrelated original pairs
    pos: dict[str, np.ndarray]  # per transform: copy to its own original
    wrong: dict[str, np.ndarray]  # per transform: copy to its closest incorrect original
    copy_hashes: dict[str, np.ndarray]
    cluster: np.ndarray

    def all_pos(self) -> np.ndarray:
        return np.concatenate(list(self.pos.values())) if self.pos else np.zeros(0, np.int64)

    def all_wrong(self) -> np.ndarray:
        return np.concatenate(list(self.wrong.values())) if self.wrong else np.zeros(0, np.int64)


def _measure(algo: str, split: _Split) -> _Measured:
    """Distances of one split: unrelated original pairs, positives and closest incorrect per transform."""
    orig = _hash_all(algo, split.rgbs)
    n = len(orig)
    same = split.cluster[:, None] == split.cluster[None, :]  # copies of one picture (diagonal included)
    d_orig = _dist(orig, orig) if n else np.zeros((0, 0), np.int64)
    upper = np.triu(np.ones((n, n), dtype=bool), 1) & ~same
    pos: dict[str, np.ndarray] = {}
    wrong: dict[str, np.ndarray] = {}
    copy_hashes: dict[str, np.ndarray] = {}
    for t, imgs in split.copies.items():
        h = copy_hashes[t] = _hash_all(algo, imgs)
        d = _dist(h, orig)
        pos[t] = np.diag(d).copy() if n else np.zeros(0, np.int64)
        d[same] = 10**6
        wrong[t] = d.min(axis=1) if n else np.zeros(0, np.int64)
    return _Measured(orig, d_orig[upper], pos, wrong, copy_hashes, split.cluster)


def _evaluate(m: _Measured, t: int, bits: int) -> dict[str, Any]:
    pos, wrong = m.all_pos(), m.all_wrong()
    tp, fp = int((pos <= t).sum()), int((wrong <= t).sum())
    rec = stats.rate(tp, len(pos))
    fm = stats.rate(int((m.pairs <= t).sum()), len(m.pairs))
    return {
        "threshold": t,
        "recall": rec.as_dict(),
        "precision": tp / (tp + fp) if tp + fp else 1.0,
        "closest_incorrect_matches": fp,
        "pair_false_matches": fm.as_dict(),
        "recall_by_transform": {
            name: stats.rate(int((d <= t).sum()), len(d)).as_dict() for name, d in m.pos.items()
        },
    }


PARAM_KEYS = ("tables", "bits", "min_votes", "probe_radius", "bloom_bits", "bloom_hashes")


@dataclass
class _Votes:
    """Snapshot votes of positives and negatives, and the snapshot's parameters."""

    pos: np.ndarray
    neg: np.ndarray
    tables: int
    default_min_votes: int
    params: dict[str, int]


def snapshot_halves(cluster: np.ndarray) -> np.ndarray:
    """True for the rows of half A: every other near-duplicate cluster (by sorted label), whole."""
    return np.isin(cluster, np.unique(cluster)[::2])


def _snapshot_votes(
    algo: str, m: _Measured, workdir: Path, seed: int, params: dict[str, int] | None = None
) -> _Votes | None:
    """Votes of positives and negatives against a snapshot of the first half of the originals."""
    from research.snapshot_view import build_matcher

    in_a = snapshot_halves(m.cluster)
    if not in_a.any() or in_a.all():
        return None
    bank = m.hashes[in_a]
    matcher, _why = build_matcher(
        algo, [bytes(h) for h in bank], [100] * len(bank), workdir, seed=seed, params=params
    )
    if matcher is None:
        return None
    inner = matcher.device
    info = matcher.info()
    pos_h = [m.copy_hashes[t][in_a] for t in m.copy_hashes]
    neg_h = [m.hashes[~in_a]] + [m.copy_hashes[t][~in_a] for t in m.copy_hashes]
    pos = np.concatenate([inner.votes_many(h)[0] for h in pos_h]) if pos_h else np.zeros(0, np.int64)
    neg = np.concatenate([inner.votes_many(h)[0] for h in neg_h])
    params = {k: int(info[k]) for k in PARAM_KEYS}
    return _Votes(pos, neg, int(info["tables"]), int(info["min_votes"]), params)


def _votes_rule(pos: np.ndarray, neg: np.ndarray, tables: int, target: float) -> int:
    """Smallest min_votes whose precision on (pos, neg) reaches target (tables + 1 if none)."""
    for v in range(1, tables + 1):
        tp, fp = int((pos >= v).sum()), int((neg >= v).sum())
        if tp + fp == 0 or tp / (tp + fp) >= target:
            return v
    return tables + 1


def _votes_eval(sv: _Votes, v: int) -> dict[str, Any]:
    tp, fp = int((sv.pos >= v).sum()), int((sv.neg >= v).sum())
    return {
        "min_votes": v,
        "recall": stats.rate(tp, len(sv.pos)).as_dict(),
        "false_matches": stats.rate(fp, len(sv.neg)).as_dict(),
        "precision": tp / (tp + fp) if tp + fp else 1.0,
    }


def _check(cfg: CalibrateConfig) -> list[str]:
    """The transforms to apply; raises ValueError on an unknown transform or a precision out of (0, 1)."""
    from research.transforms import DEFAULT_ROBUSTNESS_SET, TRANSFORMS

    transforms = list(cfg.transforms or DEFAULT_ROBUSTNESS_SET)
    unknown = [t for t in transforms if t not in TRANSFORMS]
    if unknown:
        raise ValueError(f"unknown transforms {unknown}; known: {', '.join(TRANSFORMS)}")
    if not 0.0 < cfg.precision < 1.0:
        raise ValueError(f"--precision must be in (0, 1), got {cfg.precision}")
    return transforms


def split_keys(entries: list[ImageEntry], hashes: np.ndarray) -> dict[str, str]:
    """Each image's split key: the path of the first image of its near-duplicate cluster."""
    ids = near_duplicate_clusters(hashes, NEAR_DUPLICATE_BITS)
    first = {int(c): entries[int(np.flatnonzero(ids == c)[0])].path for c in np.unique(ids)}
    return {e.path: first[int(c)] for e, c in zip(entries, ids, strict=True)}


def _choose_splits(cfg: CalibrateConfig, seed: int) -> tuple[list[ImageEntry], list[ImageEntry], str]:
    """(calibration entries, test entries, how they were chosen)."""
    if cfg.split:
        if cfg.calibrate_on or cfg.test_on:
            raise ValueError("give either --split DIR or --calibrate-on DIR --test-on DIR, not both")
        every, every_h = _pdq_of(list_images(cfg.split))
        keys = split_keys(every, every_h)
        cal_entries, test_entries = split_folder(cfg.split, cfg.calibrate_fraction, seed, clusters=keys)
        how = (
            f"deterministic split of {cfg.split} by near-duplicate cluster (PDQ d<={NEAR_DUPLICATE_BITS}; "
            f"fraction {cfg.calibrate_fraction}, seed {seed})"
        )
        return cal_entries, test_entries, how
    if cfg.calibrate_on and cfg.test_on:
        how = f"calibration {cfg.calibrate_on}, test {cfg.test_on}"
        return list_images(cfg.calibrate_on), list_images(cfg.test_on), how
    raise ValueError("give --calibrate-on DIR and --test-on DIR, or --split DIR")


def _disjoint_test(
    cal_entries: list[ImageEntry], test_entries: list[ImageEntry]
) -> tuple[list[ImageEntry], int, int]:
    """The test entries without byte-identical copies and PDQ near-duplicates of calibration images."""
    cal_digests = {file_digest(e.path) for e in cal_entries}
    overlap = [e for e in test_entries if file_digest(e.path) in cal_digests]
    test_entries = [e for e in test_entries if e not in overlap]
    _, cal_h = _pdq_of(cal_entries)
    kept_test, test_h = _pdq_of(test_entries)
    near = (
        []
        if not len(cal_h) or not len(test_h)
        else [
            e
            for e, row in zip(kept_test, _dist(test_h, cal_h).min(axis=1), strict=True)
            if row <= NEAR_DUPLICATE_BITS
        ]
    )
    return [e for e in test_entries if e not in near], len(overlap), len(near)


def _split_data(
    cfg: CalibrateConfig, how: str, transforms: list[str], cal: _Split, test: _Split, overlap: int, near: int
) -> dict[str, Any]:
    return {
        "how": how,
        "precision_target": cfg.precision,
        "transforms": transforms,
        "calibration": {
            "images": len(cal.rgbs),
            "gated_out": cal.gated_out,
            "files": [e.path for e in cal.entries],
        },
        "test": {
            "images": len(test.rgbs),
            "gated_out": test.gated_out,
            "files": [e.path for e in test.entries],
            "removed_identical_to_calibration": overlap,
            "removed_near_duplicates_of_calibration": near,
        },
        "algos": {},
    }


def _rules(algo: str, info: AlgoInfo, mc: _Measured, pdq_rate: float, precision: float) -> dict[str, int]:
    """Each rule's threshold, fitted on the calibration split."""
    return {
        "fixed": info.threshold,
        "matched_fmr": info.threshold
        if algo == "pdq"
        else _matched_fmr_threshold(mc.pairs, pdq_rate, info.bits),
        "precision": precision_threshold(mc.all_pos(), mc.all_wrong(), precision)[0],
    }


def _snapshot_min_votes(
    cfg: CalibrateConfig, algo: str, mc: _Measured, mt: _Measured, seed: int
) -> dict[str, Any] | None:
    """The minimum votes chosen on calibration, measured on test with the same snapshot parameters."""
    svc = _snapshot_votes(algo, mc, Path(cfg.out) / "snapshots" / algo / "calibration", seed)
    if svc is None:
        return None
    # the same snapshot parameters as calibration, so only the vote count is being tested
    svt = _snapshot_votes(algo, mt, Path(cfg.out) / "snapshots" / algo / "test", seed, svc.params)
    if svt is None:
        return None
    v = _votes_rule(svc.pos, svc.neg, svc.tables, cfg.precision)
    return {
        "tables": svc.tables,
        "default_min_votes": svc.default_min_votes,
        "params": svc.params,
        "calibrated_min_votes": v,
        "calibration": _votes_eval(svc, v),
        "test_at_calibrated": _votes_eval(svt, v),
        "test_at_default": _votes_eval(svt, svt.default_min_votes),
    }


def _algo_figures(
    cfg: CalibrateConfig, algo: str, mc: _Measured, mt: _Measured, pdq_rate: float, seed: int
) -> tuple[dict[str, Any], dict[str, int]]:
    """One hasher's results.json fields, and the thresholds its rules chose."""
    info = algo_info(algo)
    rules = _rules(algo, info, mc, pdq_rate, cfg.precision)
    oracle = precision_threshold(mt.all_pos(), mt.all_wrong(), cfg.precision)[0]
    out: dict[str, Any] = {
        "bits": info.bits,
        "rules": {
            name: {"calibration": _evaluate(mc, t, info.bits), "test": _evaluate(mt, t, info.bits)}
            for name, t in rules.items()
        },
        "test_oracle_precision_threshold": oracle,
        "test_oracle": _evaluate(mt, oracle, info.bits),
    }
    if cfg.snapshot:
        votes = _snapshot_min_votes(cfg, algo, mc, mt, seed)
        if votes is not None:
            out["snapshot_min_votes"] = votes
    return out, rules


def _fmt(r: dict[str, Any]) -> str:
    """A rate stored as ``Rate.as_dict()``, formatted."""
    return stats.rate(r["k"], r["n"]).fmt()


RULE_LABELS = {
    "fixed": "fixed rule (the hasher's own)",
    "matched_fmr": "PDQ's pair false-match rate at 31",
    "precision": "precision {target} (perception)",
}


def _rules_table(algo: str, out: dict[str, Any], target_pct: str, n_transforms: int) -> Table:
    rows: list[list[Any]] = []
    for name, r in out["rules"].items():
        c, t = r["calibration"], r["test"]
        rows.append(
            [
                RULE_LABELS[name].format(target=target_pct),
                c["threshold"],
                _fmt(c["recall"]),
                _fmt(t["recall"]),
                f"{100 * t['precision']:.3f}%",
                _fmt(t["pair_false_matches"]),
            ]
        )
    oracle = out["test_oracle"]
    rows.append(
        [
            f"oracle: precision {target_pct} chosen on test itself",
            out["test_oracle_precision_threshold"],
            "-",
            _fmt(oracle["recall"]),
            f"{100 * oracle['precision']:.3f}%",
            _fmt(oracle["pair_false_matches"]),
        ]
    )
    return Table(
        f"{algo}: threshold rules (fitted on calibration; recall pooled over {n_transforms} transforms)",
        [
            "rule",
            "threshold (bits)",
            "calibration recall",
            "test recall",
            "test precision",
            "test unrelated pairs matched",
        ],
        rows,
        note="Precision: positives over positives plus queries whose closest incorrect original is within "
        "the threshold (perception's convention). The oracle row shows how much a threshold chosen on "
        "the reported images flatters itself.",
    )


def _transform_table(algo: str, out: dict[str, Any], rules: dict[str, int], transforms: list[str]) -> Table:
    by_rule = {name: out["rules"][name]["test"]["recall_by_transform"] for name in rules}
    return Table(
        f"{algo}: test recall per transform",
        [
            "transform",
            f"fixed d<={rules['fixed']}",
            f"precision rule d<={rules['precision']}",
            f"matched-FMR d<={rules['matched_fmr']}",
        ],
        [
            [name, _fmt(by_rule["fixed"][name]), _fmt(by_rule["precision"][name]),
             _fmt(by_rule["matched_fmr"][name])]
            for name in transforms
        ],
    )


def _votes_table(algo: str, s: dict[str, Any]) -> Table:
    return Table(
        f"{algo}: snapshot minimum votes (of {s['tables']} tables)",
        ["setting", "min votes", "recall", "false matches", "precision"],
        [
            [label, r["min_votes"], _fmt(r["recall"]), _fmt(r["false_matches"]),
             f"{100 * r['precision']:.3f}%"]
            for label, r in (
                ("calibration, calibrated", s["calibration"]),
                ("test, calibrated", s["test_at_calibrated"]),
                ("test, snapshot default", s["test_at_default"]),
            )
        ],
        note="Each split's originals are halved: a snapshot of half A is queried with A's transformed "
        "copies (positives) and with B's originals and copies (negatives).",
    )


def _distance_plot(algo: str, bits: int, mt: _Measured, rules: dict[str, int]) -> Plot:
    return Plot(
        "hist",
        f"{algo}: test distances, positives vs closest incorrect",
        "Hamming distance (bits)",
        "queries",
        [
            Series("positive (own original)", mt.all_pos().astype(float).tolist()),
            Series("closest incorrect original", np.minimum(mt.all_wrong(), bits).astype(float).tolist()),
        ],
        vlines=[
            (rules["fixed"], f"fixed {rules['fixed']}"),
            (rules["precision"], f"calibrated {rules['precision']}"),
        ],
        bins=list(np.arange(0, bits + 2, max(1, bits // 64)) - 0.5),
        name=f"calibrate-{algo}",
    )


def _algo_section(
    algo: str,
    out: dict[str, Any],
    rules: dict[str, int],
    mt: _Measured,
    transforms: list[str],
    target_pct: str,
) -> Section:
    sec = Section(f"{algo}: thresholds chosen on calibration, measured on test")
    sec.tables.append(_rules_table(algo, out, target_pct, len(transforms)))
    sec.tables.append(_transform_table(algo, out, rules, transforms))
    if "snapshot_min_votes" in out:
        sec.tables.append(_votes_table(algo, out["snapshot_min_votes"]))
    sec.plots.append(_distance_plot(algo, out["bits"], mt, rules))
    return sec


def _algo_summary(algo: str, out: dict[str, Any], rules: dict[str, int], target_pct: str) -> str:
    fixed_t, prec_t = out["rules"]["fixed"]["test"], out["rules"]["precision"]["test"]
    return (
        f"{algo}: fixed d<={rules['fixed']}: test recall {_fmt(fixed_t['recall'])}, "
        f"precision {100 * fixed_t['precision']:.3f}%; precision-{target_pct} threshold from calibration "
        f"d<={rules['precision']}: test recall {_fmt(prec_t['recall'])}, "
        f"precision {100 * prec_t['precision']:.3f}%; matched-FMR threshold d<={rules['matched_fmr']}"
    )


def _load_splits(
    cfg: CalibrateConfig, transforms: list[str], seed: int
) -> tuple[_Split, _Split, dict[str, Any]]:
    """Both splits loaded and transformed, and results.json's description of them."""
    cal_entries, test_entries, how = _choose_splits(cfg, seed)
    test_entries, overlap, near = _disjoint_test(cal_entries, test_entries)
    if not cal_entries or not test_entries:
        raise ValueError("both splits need images (after removing test files identical to calibration ones)")
    cal = _load_split("calibration", cal_entries, transforms, seed)
    test = _load_split("test", test_entries, transforms, seed + 1)
    if len(cal.rgbs) < 2 or len(test.rgbs) < 2:
        raise ValueError(f"each split needs at least 2 images of PDQ quality >= {PDQ_GATE}")
    return cal, test, _split_data(cfg, how, transforms, cal, test, overlap, near)


def run(cfg: CalibrateConfig, seed: int = 0) -> Results:
    """Fit thresholds on the calibration split and report them on the test split."""
    t0 = time.perf_counter()
    transforms = _check(cfg)
    cal, test, data = _load_splits(cfg, transforms, seed)
    measured = {(a, s.name): _measure(a, s) for a in cfg.algos for s in (cal, test)}
    pdq_cal = measured.get(("pdq", "calibration")) or _measure("pdq", cal)
    pdq_rate = float((pdq_cal.pairs <= PDQ.match_distance).mean()) if len(pdq_cal.pairs) else 0.0
    sections: list[Section] = []
    summary: list[str] = [
        f"Splits: {data['how']}; calibration {len(cal.rgbs)} images, test {len(test.rgbs)} images "
        f"(PDQ quality >= {PDQ_GATE}); {len(transforms)} transforms"
    ]
    target_pct = f"{100 * cfg.precision:g}%"
    for algo in cfg.algos:
        mc, mt = measured[(algo, "calibration")], measured[(algo, "test")]
        out, rules = _algo_figures(cfg, algo, mc, mt, pdq_rate, seed)
        data["algos"][algo] = out
        sections.append(_algo_section(algo, out, rules, mt, transforms, target_pct))
        summary.append(_algo_summary(algo, out, rules, target_pct))
    meta = run_meta(seed, t0, algos=cfg.algos)
    return Results(
        "calibrate",
        "pocketscan research calibrate: thresholds on a calibration split, measured on a test split",
        summary,
        data,
        sections,
        meta,
    )
