"""`pocketscan bench overhead`: what on-device scanning adds to sending a photo.

For each photo (default: the 12 MP phone photos in ``../shared/pdq-data/reg-test-input/exif-rotn``,
else ``samples/``), in one run, through the real client against a real relay on loopback:

* ``scan``: PDQ hash of the file's bytes (fast decode, 8 dihedral variants unless
  ``--no-dihedral``) plus the snapshot lookup, exactly the pipeline's scan step;
* ``encrypt``: ``encrypt_image`` (seam check, padding, AES-256-CBC + HMAC-SHA256);
* ``upload``: uploading the encrypted blob to the relay (chunked, acknowledged);
* ``send``: the whole ``Core.sender.send_image`` (read, scan, policy, encrypt, upload, envelope).

It prints median and p95 per step and the ratio scan / (encrypt + upload): the added latency of
scanning against what sending an image costs anyway. The machine is shared and the relay runs
in the same process: figures are noisy; the ratio is what to compare.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from research.command_registry import CommandRegistry

__all__ = ["default_images", "register", "run_bench"]

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


async def _run(images: list[Path], rounds: int, dihedral: bool, progress: bool) -> dict[str, Any]:
    from client.crypto.attachments import encrypt_image
    from client.demo.world import (
        DEMO_BANKED,
        AuthorityIdentity,
        build_snapshot,
        make_profile,
        sample_images,
        start_relay,
    )
    from client.net import publish_snapshot
    from scanner.progress import progress_bar

    tmp = Path(tempfile.mkdtemp(prefix="pocketscan-bench-"))
    authority = AuthorityIdentity.generate()
    relay = await start_relay(tmp / "relay.sqlite", authorities=[authority.public_key])
    banked = [p for p in sample_images() if p.name in DEMO_BANKED]
    snapshot = build_snapshot(banked, authority, version=1, work_dir=tmp)
    await publish_snapshot(relay.url, authority.seed, snapshot, 1)
    alice = make_profile(tmp, "alice", relay=relay.url, authority=authority, policy="block")
    bob = make_profile(tmp, "bob", relay=relay.url, authority=authority, policy="block")
    await alice.contacts.add(bob.account_id, "bob")
    await bob.publish_now()
    await alice.publish_now()
    while alice.snapshot.slot.current is None:
        await asyncio.sleep(0.05)
    if not dihedral:
        from dataclasses import replace

        alice.settings = replace(alice.settings, dihedral=False)
    times: dict[str, list[float]] = {"scan": [], "encrypt": [], "upload": [], "send": []}
    outcomes: list[str] = []
    try:
        with progress_bar("sending photos", rounds * len(images), quiet=not progress) as advance:
            for _ in range(rounds):
                for path in images:
                    data = path.read_bytes()
                    t0 = time.perf_counter()
                    hashed = alice.scanner.hash(data, name=path.name, dihedral=dihedral)
                    scan = alice.scanner.match(hashed)
                    t1 = time.perf_counter()
                    verdict = alice.scanner.verdict(data, scan)
                    t2 = time.perf_counter()
                    enc = encrypt_image(data, verdict, content_type="image/jpeg")
                    t3 = time.perf_counter()
                    await alice.net.upload_blob(enc.blob)
                    t4 = time.perf_counter()
                    out = await alice.sender.send_image(bob.account_id, path)
                    t5 = time.perf_counter()
                    outcomes.append(out.status)
                    times["scan"].append(t1 - t0)
                    times["encrypt"].append(t3 - t2)
                    times["upload"].append(t4 - t3)
                    times["send"].append(t5 - t4)
                    advance()
    finally:
        await alice.stop()
        await bob.stop()
        await relay.stop()
    from PIL import Image

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
        "statuses": sorted(set(outcomes)),
    }


def run_bench(images: list[Path] | None = None, *, rounds: int = 5, dihedral: bool = True,
              progress: bool = True) -> dict[str, Any]:
    """Run the benchmark on ``images`` (default: the 12 MP phone photos); return the figures."""
    return asyncio.run(_run(images or default_images(), rounds, dihedral, progress))


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
