"""`pocketscan bench learned`: images per second of the learned hash and PDQ, side by side.

Both hashers see the same images in the same run. Two figures each:

* ``hash``: from decoded pixels (``HxWx3`` arrays already in memory), PDQ one image at a time, the
  learned hash through :meth:`OnnxHasher.hash_many` in batches;
* ``file``: decode (``scanner.image.load_rgb``, fast mode) plus hash, the way ``pocketscan hash`` works.

The ratio column is learned / PDQ (above 1: the learned hash is faster). The machine is shared and
timings are noisy: each figure is the best of ``--repeat`` passes.
"""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from research.timing import best_of

if TYPE_CHECKING:
    from research.command_registry import CommandRegistry

__all__ = ["register", "run_bench"]



def register(registry: CommandRegistry) -> None:
    """Add ``pocketscan bench learned``."""
    bench = registry.group("bench")
    parser = bench.command(
        "learned",
        _handle,
        help="images/s of the learned (onnx) hash and PDQ, side by side",
        description=__doc__,
    )
    parser.add_argument(
        "folder",
        nargs="?",
        default=None,
        help="folder of images (default: the bundled sample photos, `pocketscan samples --dir`)",
    )
    parser.add_argument(
        "--limit", type=int, default=64, help="at most this many images (default: %(default)s)"
    )
    parser.add_argument(
        "--repeat", type=int, default=3, help="passes; the best is kept (default: %(default)s)"
    )
    parser.add_argument(
        "--batch", type=int, default=32, help="learned-hash batch size (default: %(default)s)"
    )
    parser.add_argument(
        "--threads", type=int, default=0, help="onnxruntime intra-op threads (default: onnxruntime's choice)"
    )
    parser.add_argument("--model", default=None, help="ONNX model (default: the shipped one)")
    parser.add_argument("--seed", default=None, help="hyperplane seed file")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")




def _jobs(paths: Sequence[str], learned: Any, batch: int) -> list[tuple[str, Callable[[], None]]]:
    """PDQ and the learned hash on decoded images, then on the files (decoding included)."""
    from scanner.hashers.pdq import PdqHasher
    from scanner.image import load_rgb

    pdq = PdqHasher()
    images = [load_rgb(p) for p in paths]
    learned.hash_many(images[:2])  # warm the session up

    def pdq_hash() -> None:
        for img in images:
            pdq.hash_rgb(img)

    def learned_hash() -> None:
        for start in range(0, len(images), batch):
            learned.hash_many(images[start : start + batch])

    def pdq_file() -> None:
        for p in paths:
            pdq.hash_rgb(load_rgb(p))

    def learned_file() -> None:
        learned.hash_files(paths, batch=batch)

    return [
        ("pdq_hash", pdq_hash),
        ("learned_hash", learned_hash),
        ("pdq_file", pdq_file),
        ("learned_file", learned_file),
    ]


def run_bench(
    paths: Sequence[str],
    *,
    repeat: int = 3,
    batch: int = 32,
    threads: int = 0,
    model: str | None = None,
    seed: str | None = None,
    progress: bool = True,
) -> dict[str, object]:
    """Time both hashers on ``paths``; return images/s figures and ratios."""
    import onnxruntime

    from scanner.hashers.onnx import OnnxHasher
    from scanner.progress import progress_bar

    learned = OnnxHasher(model=model, seed=seed, threads=threads)
    jobs = _jobs(paths, learned, batch)
    seconds: dict[str, float] = {}
    with progress_bar("benchmarking", len(jobs), quiet=not progress) as advance:
        for name, fn in jobs:
            seconds[name] = best_of(fn, repeat)
            advance()
    n = len(paths)
    rate = {k: n / v for k, v in seconds.items()}
    return {
        "images": n,
        "repeat": repeat,
        "batch": batch,
        "learned_model": learned.spec.name,
        "learned_bits": learned.bits,
        "onnxruntime": onnxruntime.__version__,
        "providers": list(learned.providers),
        "cpus": os.cpu_count(),
        "images_per_second": {k: round(v, 1) for k, v in rate.items()},
        "ratio_learned_over_pdq": {
            "hash": round(rate["learned_hash"] / rate["pdq_hash"], 2),
            "file": round(rate["learned_file"] / rate["pdq_file"], 2),
        },
    }


def _handle(args: argparse.Namespace) -> int:
    import sys

    from client.samples import SamplesMissing, sample_dir
    from scanner.discovery import expand_image_paths
    from scanner.errors import ScannerError

    try:
        folder = Path(args.folder) if args.folder else sample_dir()
        paths = list(expand_image_paths([folder]))[: max(1, args.limit)]
    except (FileNotFoundError, SamplesMissing) as exc:
        print(f"pocketscan bench learned: {exc}", file=sys.stderr)
        return 2
    if not paths:
        print(f"pocketscan bench learned: no images in {folder}", file=sys.stderr)
        return 2
    try:
        res = run_bench(
            paths,
            repeat=args.repeat,
            batch=args.batch,
            threads=args.threads,
            model=args.model,
            seed=args.seed,
            progress=not args.json,
        )
    except ScannerError as exc:
        print(f"pocketscan bench learned: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(res, indent=2))
        return 0
    ips = res["images_per_second"]
    ratio = res["ratio_learned_over_pdq"]
    assert isinstance(ips, dict) and isinstance(ratio, dict)
    print(
        f"{res['images']} images from {folder}, best of {res['repeat']}, "
        f"learned = {res['learned_model']} ({res['learned_bits']} bits, batch {res['batch']}, "
        f"onnxruntime {res['onnxruntime']})"
    )
    print(f"{'':22}{'PDQ':>10}{'learned':>10}{'learned/PDQ':>13}")
    for label, key in (("hash (decoded), img/s", "hash"), ("decode+hash, img/s", "file")):
        print(f"{label:22}{ips['pdq_' + key]:>10.1f}{ips['learned_' + key]:>10.1f}{ratio[key]:>12.2f}x")
    return 0
