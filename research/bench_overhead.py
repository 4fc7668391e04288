"""`pocketscan bench overhead`: what on-device scanning adds to sending a photo.

A view of the one send-overhead measurement, ``research.evals.overhead`` (`pocketscan research overhead`
is the canonical tool). For each photo (default: the 12 MP phone photos in
``../shared/pdq-data/reg-test-input/exif-rotn``, else ``samples/``), in one run, against a real relay on
loopback and a snapshot of the demo's bank:

* ``scan``: decode (fast) and PDQ hash of the file's bytes (8 dihedral variants unless
  ``--no-dihedral``) plus the snapshot lookup, the pipeline's scan step;
* ``encrypt``: ``encrypt_image`` (seam check, padding, AES-256-CBC + HMAC-SHA256);
* ``upload``: uploading the encrypted blob to the relay (chunked, acknowledged);
* ``send``: the whole send (read, scan, seal the verdict, encrypt, upload, envelope).

It prints median and p95 per step and the ratio scan / (encrypt + upload): the added latency of
scanning against what sending an image costs anyway; ``statuses`` are what policy ``block`` does with
the scans. The machine is shared and the relay runs in the same process: figures are noisy; the ratio
is what to compare.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from research.command_registry import CommandRegistry
    from research.evals.overhead import OverheadConfig, SendTiming

__all__ = ["default_images", "figures", "register", "run_bench"]

#: Relative to the working directory: run from a checkout's root, next to ../shared.
PHONE_PHOTOS = Path("..") / "shared" / "pdq-data" / "reg-test-input" / "exif-rotn"


def register(registry: CommandRegistry) -> None:
    """Add ``pocketscan bench overhead``."""
    bench = registry.group("bench")
    parser = bench.command("overhead", _handle, help="added latency of scanning vs encryption and upload",
                           description=__doc__)
    parser.add_argument("images", nargs="*", type=Path, help="photos to send (default: 12 MP phone photos)")
    parser.add_argument("--rounds", type=int, default=5, help="times each photo is sent (default 5)")
    parser.add_argument("--no-dihedral", action="store_true", help="hash only the upright image")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")


def default_images() -> list[Path]:
    if PHONE_PHOTOS.is_dir():
        found = sorted(PHONE_PHOTOS.glob("*.jpg"))
        if found:
            return found
    from client.samples import sample_paths

    return [p for p in sample_paths() if p.suffix.lower() == ".jpg"]


def _stats(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    p95 = ordered[min(len(ordered) - 1, max(0, round(0.95 * len(ordered)) - 1))]
    return {"median_ms": 1000 * statistics.median(ordered), "p95_ms": 1000 * p95, "n": len(ordered)}


def _bench_config(out: Path, rounds: int, dihedral: bool, progress: bool) -> OverheadConfig:
    """The shared measurement (:mod:`research.evals.overhead`) as this benchmark runs it: the demo's bank
    (its banked samples, so that some sends match), with scanning only, ``rounds`` sends per photo."""
    from client.demo.world import DEMO_BANKED, sample_images
    from research.evals.overhead import OverheadConfig

    banked = tuple(str(p) for p in sample_images() if p.name in DEMO_BANKED)
    return OverheadConfig(photos="", out=str(out), bank_size=0, repeats=rounds, quiet=not progress,
                          dihedral=dihedral, banked=banked, without_scanning=False,
                          progress_label="sending photos")


def _status(send: SendTiming) -> str:
    """What the client does with this send under policy ``block`` (``client.policy.decide``)."""
    from client.policy import decide

    if send.scan is None:
        return "sent"
    action = decide(send.scan, "block").action
    return {"send": "sent", "block": "blocked"}.get(action, action)


def figures(sends: list[SendTiming], images: list[Path], rounds: int, dihedral: bool) -> dict[str, Any]:
    """The benchmark's figures from timed sends: steps, the scan / (encrypt + upload) ratio, statuses."""
    from PIL import Image

    from research.evals.overhead import SCAN_STAGES

    times: dict[str, list[float]] = {
        "scan": [sum(s.stages[k] for k in SCAN_STAGES) for s in sends],
        "encrypt": [s.stages["encrypt"] - s.seal for s in sends],
        "upload": [s.stages["upload"] for s in sends],
        "send": [s.total for s in sends],
    }
    with Image.open(images[0]) as im:
        megapixels = im.width * im.height / 1e6
    stats = {k: _stats(v) for k, v in times.items()}
    base = stats["encrypt"]["median_ms"] + stats["upload"]["median_ms"]
    return {
        "images": [p.name for p in images],
        "megapixels": round(megapixels, 1),
        "file_mb": round(sum(p.stat().st_size for p in images) / len(images) / 2**20, 2),
        "rounds": rounds,
        "dihedral": dihedral,
        "steps": stats,
        "scan_vs_encrypt_upload": stats["scan"]["median_ms"] / base if base else float("nan"),
        "scan_share_of_send": stats["scan"]["median_ms"] / stats["send"]["median_ms"],
        "statuses": sorted({_status(s) for s in sends}),
    }


def run_bench(images: list[Path] | None = None, *, rounds: int = 5, dihedral: bool = True,
              progress: bool = True) -> dict[str, Any]:
    """Run the benchmark on ``images`` (default: the 12 MP phone photos); return the figures."""
    from research.evals.overhead import measure_sends

    photos = images or default_images()
    with tempfile.TemporaryDirectory(prefix="pocketscan-bench-") as tmp:
        cfg = _bench_config(Path(tmp), rounds, dihedral, progress)
        session = measure_sends(cfg, [str(p) for p in photos])
    return figures(session.sends, photos, rounds, dihedral)


def _handle(args: argparse.Namespace) -> int:
    images = args.images or default_images()
    missing = [p for p in images if not p.is_file()]
    if missing:
        print(f"pocketscan bench overhead: no such image: {missing[0]}", file=sys.stderr)
        return 2
    result = run_bench(images, rounds=args.rounds, dihedral=not args.no_dihedral,
                       progress=not args.json)
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    print(f"{len(images)} photos x {args.rounds} rounds, {result['megapixels']} MP, "
          f"{result['file_mb']} MiB JPEG, dihedral {'on' if result['dihedral'] else 'off'}")
    print(f"{'step':<10}{'median ms':>12}{'p95 ms':>10}")
    for name, s in result["steps"].items():
        print(f"{name:<10}{s['median_ms']:>12.1f}{s['p95_ms']:>10.1f}")
    print(f"scan / (encrypt + upload) = {result['scan_vs_encrypt_upload']:.2f}; "
          f"scan share of a whole send = {100 * result['scan_share_of_send']:.0f} %")
    return 0
