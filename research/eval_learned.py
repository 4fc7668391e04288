"""Compare the learned hash with PDQ: recall per transform at equal false-match rates.

Method (``compare``):

1. Hash every image of a benign corpus with PDQ and with the learned hasher. Images PDQ rates below its
   quality gate (50) are left out for *both* hashers, so both are measured on the same images.
2. False-match rate = the share of unrelated pairs ``(i, j), i < j`` at distance ``<= t``. PDQ is taken at
   its standard threshold 31; the learned hash's threshold is the largest ``t`` whose false-match rate on
   the same pairs is no higher than PDQ's at 31 (``calibrate_threshold``).
3. Recall of a transform = the share of images whose transformed copy hashes within the threshold of its
   own original (transforms from :mod:`research.transforms`, applied in memory, no re-save).

Usage::

    python -m research.eval_learned ../shared/corpus --out results/learned_eval.json
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from scanner.hashers.spec import PDQ

__all__ = ["Comparison", "calibrate_threshold", "compare", "load_folder", "main", "markdown_table"]

PDQ_THRESHOLD = PDQ.match_distance


@dataclass
class Comparison:
    """Result of :func:`compare`."""

    images: int
    gated_out: int
    pairs: int
    pdq_threshold: int
    pdq_false_matches: int
    learned_threshold: int
    learned_false_matches: int
    learned_bits: int
    recall: dict[str, dict[str, float]] = field(default_factory=dict)
    """transform -> {"pdq": recall, "learned": recall, "pdq_median": d, "learned_median": d}"""
    seconds: float = 0.0

    @property
    def pdq_fmr(self) -> float:
        return self.pdq_false_matches / self.pairs if self.pairs else 0.0

    @property
    def learned_fmr(self) -> float:
        return self.learned_false_matches / self.pairs if self.pairs else 0.0


def load_folder(folder: str | Path) -> list[tuple[str, Image.Image]]:
    """Every image under ``folder`` (``scanner.discovery`` rules: recursive, sorted, no hidden entries) as
    RGB, decoded through the image guard, named by its path relative to ``folder``."""
    from scanner.discovery import image_paths
    from scanner.image import load_rgb

    root = Path(folder)
    out = []
    for path in image_paths(root):
        name = path.relative_to(root).as_posix()
        out.append((name, Image.fromarray(load_rgb(path, mode="exact", orient=False))))  # guarded
    return out


def _pair_distances(codes: np.ndarray) -> np.ndarray:
    """Hamming distances of all pairs i < j of packed codes (N x nbytes uint8)."""
    bits = np.unpackbits(codes, axis=1).astype(np.int16)
    d = (bits[:, None, :] != bits[None, :, :]).sum(axis=2)
    return d[np.triu_indices(len(codes), 1)]


def calibrate_threshold(pair_distances: np.ndarray, max_false_matches: int) -> int:
    """Largest ``t`` with at most ``max_false_matches`` pairs at distance ``<= t`` (-1: even 0 is)."""
    ordered = np.sort(pair_distances)
    if len(ordered) <= max_false_matches:
        return int(ordered.max()) if len(ordered) else 0
    # the (max+1)-th smallest distance must stay above t
    return int(ordered[max_false_matches]) - 1


def _hamming(a: bytes, b: bytes) -> int:
    return int(np.unpackbits(np.frombuffer(bytes(x ^ y for x, y in zip(a, b, strict=True)), np.uint8)).sum())


def compare(
    images: Sequence[tuple[str, Image.Image]],
    transforms: Sequence[str],
    *,
    learned: object | None = None,
    seed: int = 0,
    progress: bool = False,
) -> Comparison:
    """Run the comparison on in-memory images (see the module docstring)."""
    from research.transforms import TRANSFORMS
    from scanner.hashers.onnx import OnnxHasher
    from scanner.hashers.pdq import PDQ_MIN_QUALITY, PdqHasher

    t0 = time.monotonic()
    pdq = PdqHasher()
    onnx_hasher: OnnxHasher = learned if isinstance(learned, OnnxHasher) else OnnxHasher()
    arrays = [np.asarray(im, np.uint8) for _, im in images]
    pdq_res = [pdq.hash_rgb(a) for a in arrays]
    keep = [i for i, r in enumerate(pdq_res) if r.quality >= PDQ_MIN_QUALITY]
    kept_imgs = [images[i][1] for i in keep]
    pdq_codes = [pdq_res[i].hash for i in keep]
    learned_codes = [r.hash for r in onnx_hasher.hash_many([arrays[i] for i in keep])]
    dp = _pair_distances(np.frombuffer(b"".join(pdq_codes), np.uint8).reshape(len(keep), -1))
    dl = _pair_distances(np.frombuffer(b"".join(learned_codes), np.uint8).reshape(len(keep), -1))
    pdq_fm = int((dp <= PDQ_THRESHOLD).sum())
    t_learned = calibrate_threshold(dl, pdq_fm)
    result = Comparison(
        images=len(keep),
        gated_out=len(images) - len(keep),
        pairs=len(dp),
        pdq_threshold=PDQ_THRESHOLD,
        pdq_false_matches=pdq_fm,
        learned_threshold=t_learned,
        learned_false_matches=int((dl <= t_learned).sum()),
        learned_bits=onnx_hasher.bits,
    )
    from scanner.progress import progress as progress_iter

    steps = progress_iter(transforms, total=len(transforms), description="transforms", quiet=not progress)
    for name in steps:
        fn = TRANSFORMS[name]
        outs = [np.asarray(fn(im, np.random.default_rng(seed)), np.uint8) for im in kept_imgs]
        pd = np.array([_hamming(pdq.hash_rgb(o).hash, c) for o, c in zip(outs, pdq_codes, strict=True)])
        ld = np.array(
            [_hamming(r.hash, c) for r, c in zip(onnx_hasher.hash_many(outs), learned_codes, strict=True)]
        )
        result.recall[name] = {
            "pdq": float((pd <= PDQ_THRESHOLD).mean()) if len(pd) else 0.0,
            "learned": float((ld <= t_learned).mean()) if len(ld) else 0.0,
            "pdq_median": float(np.median(pd)) if len(pd) else 0.0,
            "learned_median": float(np.median(ld)) if len(ld) else 0.0,
        }
    result.seconds = time.monotonic() - t0
    return result


def markdown_table(c: Comparison) -> str:
    """The recall table, as in docs/performance.md."""
    lines = [
        f"Benign pairs: {c.pairs} ({c.images} images, {c.gated_out} below PDQ quality {PDQ.min_quality} "
        "left out). "
        f"False matches: PDQ at {c.pdq_threshold}/256 bits: {c.pdq_false_matches} ({c.pdq_fmr:.2%}); "
        f"learned at {c.learned_threshold}/{c.learned_bits} bits: {c.learned_false_matches} "
        f"({c.learned_fmr:.2%}).",
        "",
        f"| transform | PDQ recall (d<={c.pdq_threshold}) | learned recall (d<={c.learned_threshold}) "
        "| PDQ median d | learned median d |",
        "|---|---|---|---|---|",
    ]
    for name, r in c.recall.items():
        lines.append(
            f"| {name} | {r['pdq']:.0%} | {r['learned']:.0%} | {r['pdq_median']:.0f}/256 "
            f"| {r['learned_median']:.0f}/{c.learned_bits} |"
        )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    from research.transforms import DEFAULT_ROBUSTNESS_SET
    from scanner.hashers.onnx import OnnxHasher

    parser = argparse.ArgumentParser(
        description="Recall per transform, PDQ vs the learned hash, at PDQ's false-match rate at "
        f"{PDQ.match_distance} bits."
    )
    parser.add_argument("folder", type=Path, help="benign corpus (a folder of images)")
    parser.add_argument("--model", type=Path, default=None, help="ONNX model (default: the shipped one)")
    parser.add_argument("--seed-file", type=Path, default=None, help="hyperplane seed file")
    parser.add_argument("--bits", type=int, default=None)
    parser.add_argument("--transforms", nargs="*", default=list(DEFAULT_ROBUSTNESS_SET))
    parser.add_argument("--json", action="store_true", help="print the result as JSON instead of the table")
    parser.add_argument("--out", type=Path, metavar="FILE", help="also write the result as JSON here")
    args = parser.parse_args(argv)
    hasher = OnnxHasher(model=args.model, seed=args.seed_file, bits=args.bits)
    c = compare(load_folder(args.folder), args.transforms, learned=hasher, progress=True)
    document = json.dumps({**asdict(c), "pdq_fmr": c.pdq_fmr, "learned_fmr": c.learned_fmr}, indent=2) + "\n"
    if args.json:
        sys.stdout.write(document)
    else:
        print(markdown_table(c))
        print(f"\n{c.seconds:.0f} s")
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(document)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
