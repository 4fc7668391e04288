"""`pocketscan bench hash` (also ``python -m research.bench_hash``): PDQ speed and fidelity beside Meta's C++.

Everything runs in one process, in one run, on the same inputs, alternating pocketscan and the reference
(``pdqhash``, the Python bindings of Meta's C++ PDQ) item by item so that machine load hits both alike:

(a) **arrays**: decoded RGB arrays of about 1024 px (the shared corpus, else the repo samples scaled to
    1024 px, else generated images): ``scanner.hashers.pdq.pdq_hash`` (exact) vs ``pdqhash.compute``.
    Every hash and quality must be identical; the figure is images/s and the ratio.
(b) **files**: whole 12-megapixel JPEG files, decoding included: ``scanner.hashing.hash_file`` in fast
    mode vs a full Pillow decode + ``convert("RGB")`` + ``pdqhash.compute``. Reported with the bit
    distance of each fast hash to the full-resolution reference hash (EXIF orientation applied to both).
(c) **fidelity**: fast-mode hash vs full-resolution reference hash over every image of the shared corpus
    and pdq-data, plus ``--large`` of them re-encoded at 12 MP (where fast mode really decodes at reduced
    scale): share within 10 bits among images of quality >= 50, max and percentiles.

Each timing is the best of ``--repeat`` passes per item. Both sides run single-threaded, so the primary
figure is CPU time (``time.process_time``): on a shared machine it leaves out the time spent waiting
for a core; wall-clock figures are reported beside it (``--clock wall`` makes them primary). Ratios are
reference time / pocketscan time, so higher is better for pocketscan.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import platform
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from scanner.hashers.spec import PDQ

if TYPE_CHECKING:
    import numpy as np

    from research.command_registry import CommandRegistry

__all__ = ["BenchConfig", "main", "register", "run_bench"]

#: The shared data next to a checkout, relative to the working directory (run from the checkout's root).
_SHARED = Path("..") / "shared"


@dataclass
class BenchConfig:
    """What to measure."""

    corpus: Path = _SHARED / "corpus"
    pdq_data: Path = _SHARED / "pdq-data"
    photos: Path = _SHARED / "pdq-data" / "reg-test-input" / "exif-rotn"
    repeat: int = 3
    arrays: int = 24
    """At most this many ~1024 px arrays for (a)."""
    large: int = 8
    """Corpus images re-encoded at 12 MP for the fidelity check (c) and, without photos, for (b)."""
    large_megapixels: float = 12.0
    """Size of the re-encoded images (the default is a phone photo's)."""
    clock: str = "cpu"
    """``"cpu"`` (process time) or ``"wall"`` for the primary timings."""
    progress: bool = True


@dataclass
class Results:
    """Figures of one run (``--json`` prints this)."""

    machine: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    arrays: dict[str, Any] = field(default_factory=dict)
    files: dict[str, Any] = field(default_factory=dict)
    fidelity: dict[str, Any] = field(default_factory=dict)


def register(registry: CommandRegistry) -> None:
    """Add ``pocketscan bench hash``."""
    bench = registry.group("bench")
    parser = bench.command(
        "hash", _handle, help="PDQ throughput and fidelity beside Meta's C++ reference", description=__doc__
    )
    _add_arguments(parser)


def _add_arguments(parser: argparse.ArgumentParser) -> None:
    defaults = BenchConfig()
    parser.add_argument("--corpus", type=Path, default=defaults.corpus, help="folder of ~1024 px images")
    parser.add_argument("--pdq-data", type=Path, default=defaults.pdq_data, help="ThreatExchange PDQ data")
    parser.add_argument("--photos", type=Path, default=defaults.photos, help="folder of 12 MP JPEG photos")
    parser.add_argument("--repeat", type=int, default=defaults.repeat, help="passes per item; best kept")
    parser.add_argument("--arrays", type=int, default=defaults.arrays, help="max arrays for (a)")
    parser.add_argument("--large", type=int, default=defaults.large, help="corpus images re-encoded at 12 MP")
    parser.add_argument("--clock", choices=("cpu", "wall"), default=defaults.clock,
                        help="primary timing: process CPU time (default) or wall clock")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")


def _handle(args: argparse.Namespace) -> int:
    cfg = BenchConfig(
        corpus=args.corpus,
        pdq_data=args.pdq_data,
        photos=args.photos,
        repeat=max(1, args.repeat),
        arrays=max(1, args.arrays),
        large=max(0, args.large),
        clock=args.clock,
        progress=not args.json,
    )
    results = run_bench(cfg)
    if args.json:
        print(json.dumps(asdict(results), indent=2))
    else:
        _print(results)
    return 0


# ---------------------------------------------------------------------------------------------------


def _ref_hash(rgb: np.ndarray) -> tuple[bytes, int]:
    import numpy as np
    import pdqhash

    vector, quality = pdqhash.compute(np.ascontiguousarray(rgb))
    bits = "".join("1" if int(b) else "0" for b in vector)
    return int(bits, 2).to_bytes(32, "big"), int(quality)


def _ref_file(path: Path) -> tuple[bytes, int]:
    """The reference pipeline on a file: full decode, convert('RGB'), pdqhash (timed in (b))."""
    import numpy as np
    from PIL import Image

    with Image.open(path) as im:
        rgb = np.asarray(im.convert("RGB"))
    return _ref_hash(rgb)


def _ref_file_oriented(path: Path) -> tuple[bytes, int]:
    """Full-resolution reference hash with the EXIF orientation applied (what fast mode approximates)."""
    from scanner.image import load_rgb

    return _ref_hash(load_rgb(path, mode="exact"))


def _timed(fn: Callable[[], Any], clock: str) -> tuple[float, float, Any]:
    """(primary seconds, wall seconds, value)."""
    w0, c0 = time.perf_counter(), time.process_time()
    value = fn()
    wall, cpu = time.perf_counter() - w0, time.process_time() - c0
    return (cpu if clock == "cpu" else wall), wall, value


@dataclass
class _Timing:
    ours: list[float]
    ref: list[float]
    ours_wall: list[float]
    ref_wall: list[float]
    out_ours: list[Any]
    out_ref: list[Any]

    def figures(self, unit: float = 1000.0) -> dict[str, float]:
        n = len(self.ours)
        return {
            "ours_ms": unit * sum(self.ours) / n,
            "ref_ms": unit * sum(self.ref) / n,
            "ours_per_s": n / sum(self.ours),
            "ref_per_s": n / sum(self.ref),
            "ratio": sum(self.ref) / sum(self.ours),
            "wall_ours_ms": unit * sum(self.ours_wall) / n,
            "wall_ref_ms": unit * sum(self.ref_wall) / n,
            "wall_ratio": sum(self.ref_wall) / sum(self.ours_wall),
        }


def _side_by_side(
    items: Sequence[Any], ours: Callable[[Any], Any], ref: Callable[[Any], Any], cfg: BenchConfig, label: str
) -> _Timing:
    """Best-of-``repeat`` time per item for each side, alternating sides item by item."""
    repeat, progress = cfg.repeat, cfg.progress
    best_ours = [float("inf")] * len(items)
    best_ref = [float("inf")] * len(items)
    wall_ours = [float("inf")] * len(items)
    wall_ref = [float("inf")] * len(items)
    out_ours: list[Any] = [None] * len(items)
    out_ref: list[Any] = [None] * len(items)
    with _progress(progress) as advance:
        task = advance(label, total=repeat * len(items))
        for r in range(repeat):
            for i, item in enumerate(items):
                order = (0, 1) if (i + r) % 2 == 0 else (1, 0)
                for side in order:
                    if side == 0:
                        dt, wall, out_ours[i] = _timed(functools.partial(ours, item), cfg.clock)
                        best_ours[i] = min(best_ours[i], dt)
                        wall_ours[i] = min(wall_ours[i], wall)
                    else:
                        dt, wall, out_ref[i] = _timed(functools.partial(ref, item), cfg.clock)
                        best_ref[i] = min(best_ref[i], dt)
                        wall_ref[i] = min(wall_ref[i], wall)
                task()
    return _Timing(best_ours, best_ref, wall_ours, wall_ref, out_ours, out_ref)


def _sample_photos() -> list[Path]:
    from client.samples import sample_paths

    return [p for p in sample_paths() if p.suffix.lower() == ".jpg"]


@contextmanager
def _progress(enabled: bool) -> Iterator[Callable[..., Callable[[], None]]]:
    from scanner.progress import progress_tasks

    with progress_tasks(quiet=not enabled) as add:
        yield add


def _images_under(folder: Path) -> list[Path]:
    if not folder.exists():
        return []
    from scanner.discovery import image_paths

    return image_paths(folder)


def _arrays(cfg: BenchConfig, notes: list[str]) -> list[np.ndarray]:
    import numpy as np
    from PIL import Image

    from scanner.image import load_rgb

    paths = _images_under(cfg.corpus)
    if paths:
        out = []
        for p in paths:
            rgb = load_rgb(p, mode="exact")
            if 700 <= max(rgb.shape[:2]) <= 1400:
                out.append(rgb)
            if len(out) >= cfg.arrays:
                break
        if out:
            return out
    notes.append(f"(a) {cfg.corpus} absent or without 700-1400 px images: repo samples scaled to 1024 px")
    out = []
    for p in _sample_photos()[: cfg.arrays]:
        with Image.open(p) as im:
            img = im.convert("RGB")
            scale = 1024 / max(img.size)
            img = img.resize((round(img.width * scale), round(img.height * scale)), Image.Resampling.BICUBIC)
            out.append(np.asarray(img))
    if not out:  # pragma: no cover - the repo ships samples
        rng = np.random.default_rng(0)
        out = [rng.integers(0, 256, (768, 1024, 3), dtype=np.uint8) for _ in range(4)]
    return out


def _make_large(sources: Sequence[Path], folder: Path, count: int, megapixels: float) -> list[Path]:
    """Re-encode ``count`` images at ``megapixels`` (12: 4032x3024-ish) as JPEG q90, like phone photos."""
    from PIL import Image

    out = []
    for i, src in enumerate(sources[:count]):
        with Image.open(src) as im:
            rgb = im.convert("RGB")
        scale = (megapixels * 1e6 / (rgb.width * rgb.height)) ** 0.5
        big = rgb.resize((round(rgb.width * scale), round(rgb.height * scale)), Image.Resampling.LANCZOS)
        path = folder / f"large-{i:02d}-{src.stem}.jpg"
        big.save(path, quality=90)
        out.append(path)
    return out


def _percentiles(values: Sequence[int]) -> dict[str, float]:
    import numpy as np

    if not values:
        return {}
    arr = np.asarray(values, dtype=float)
    return {
        "max": float(arr.max()),
        "p50": float(np.percentile(arr, 50)),
        "p95": float(np.percentile(arr, 95)),
        "p99": float(np.percentile(arr, 99)),
        "mean": float(arr.mean()),
    }


def _machine(cfg: BenchConfig) -> dict[str, Any]:
    import numpy as np

    return {
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "load_average": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
        "clock": cfg.clock,
    }


def _bench_arrays(cfg: BenchConfig, notes: list[str]) -> dict[str, Any]:
    """(a) decoded arrays, exact mode vs ``pdqhash.compute``."""
    import numpy as np

    from scanner.hashers.pdq import pdq_hash

    arrays = _arrays(cfg, notes)
    timing = _side_by_side(arrays, lambda a: pdq_hash(a), _ref_hash, cfg, "(a) arrays")
    identical = sum((o.hash, o.quality) == r for o, r in zip(timing.out_ours, timing.out_ref, strict=True))
    return {
        "images": len(arrays),
        "shapes": sorted({f"{a.shape[1]}x{a.shape[0]}" for a in arrays}),
        "mean_megapixels": float(np.mean([a.shape[0] * a.shape[1] for a in arrays]) / 1e6),
        **timing.figures(),
        "identical": identical,
    }


def _bench_files(cfg: BenchConfig, photos: list[Path]) -> dict[str, Any]:
    """(b) whole 12 MP JPEG files, fast mode (decode included) vs full decode + ``pdqhash``."""
    from scanner.hamming import hamming
    from scanner.hashing import hash_file

    timing = _side_by_side(photos, lambda p: hash_file(p, mode="fast"), _ref_file, cfg, "(b) 12 MP files")
    dists = []
    with _progress(cfg.progress) as advance:
        task = advance("(b) reference hashes", total=len(photos))
        for p, h in zip(photos, timing.out_ours, strict=True):
            dists.append(hamming(h.hash, _ref_file_oriented(p)[0]))
            task()
    return {
        "files": len(photos),
        "names": [p.name for p in photos],
        **timing.figures(),
        "bits_fast_vs_full": dists,
    }


def _fidelity_rows(cfg: BenchConfig, inputs: list[Path], notes: list[str]) -> list[tuple[Path, int, int]]:
    """(c) per image: (path, reference quality, bits between the fast-mode and full-resolution hashes)."""
    from scanner.hamming import hamming
    from scanner.hashing import hash_file

    rows = []
    with _progress(cfg.progress) as advance:
        task = advance("(c) fast vs full-resolution", total=len(inputs))
        for p in inputs:
            try:
                ref_hash, quality = _ref_file_oriented(p)
                fast = hash_file(p, mode="fast")
            except Exception as exc:  # unreadable inputs are reported, not fatal
                notes.append(f"(c) skipped {p.name}: {exc}")
                task()
                continue
            rows.append((p, quality, hamming(fast.hash, ref_hash)))
            task()
    return rows


def fidelity_figures(rows: list[tuple[Path, int, int]]) -> dict[str, Any]:
    """Share within 10 bits and distance percentiles among the images passing PDQ's quality gate."""
    good = [d for _, q, d in rows if PDQ.passes_quality(q)]
    return {
        "images": len(rows),
        "quality_ge_50": len(good),
        "within_10_bits": sum(d <= 10 for d in good),
        "share_within_10_bits": (sum(d <= 10 for d in good) / len(good)) if good else None,
        "bits": _percentiles(good),
        "large_12mp": _percentiles(
            [d for p, q, d in rows if p.name.startswith("large-") and PDQ.passes_quality(q)]
        ),
        "worst": sorted(((d, p.name, q) for p, q, d in rows if PDQ.passes_quality(q)), reverse=True)[:5],
    }


def run_bench(cfg: BenchConfig | None = None) -> Results:
    """Run (a), (b) and (c); return the figures."""
    cfg = cfg or BenchConfig()
    res = Results()
    res.machine = _machine(cfg)
    res.arrays = _bench_arrays(cfg, res.notes)
    with tempfile.TemporaryDirectory(prefix="pocketscan-bench-") as tmp:
        photos = [p for p in _images_under(cfg.photos) if p.suffix.lower() in (".jpg", ".jpeg")]
        sources = _images_under(cfg.corpus) or _sample_photos()
        large = _make_large(sources, Path(tmp), cfg.large, cfg.large_megapixels)
        if not photos:
            res.notes.append(f"(b) {cfg.photos} absent: corpus/sample images re-encoded at 12 MP instead")
            photos = large[: max(4, cfg.large)]
        res.files = _bench_files(cfg, photos)
        # (c) fidelity of fast mode over the shared images and the 12 MP re-encodings
        fidelity_inputs = _images_under(cfg.corpus) + _images_under(cfg.pdq_data) + large
        rows = _fidelity_rows(cfg, fidelity_inputs, res.notes)
    res.fidelity = fidelity_figures(rows)
    return res


def _print(res: Results) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console(width=max(Console().width, 130))
    m = res.machine
    console.print(f"[bold]pocketscan bench hash[/] on {m['processor']}, {m['cpus']} CPUs, {m['platform']}, "
                  f"Python {m['python']}, numpy {m['numpy']}, load {m['load_average']}; "
                  f"primary clock: {m['clock']} time")
    for note in res.notes:
        console.print(f"[yellow]note:[/] {note}")
    table = Table("benchmark", "inputs", "pocketscan", "reference", "ratio", "wall ratio", "check")
    a, b = res.arrays, res.files
    table.add_row(
        "(a) RGB arrays, exact", f"{a['images']} x {a['mean_megapixels']:.2f} MP",
        f"{a['ours_ms']:.1f} ms ({a['ours_per_s']:.1f}/s)", f"{a['ref_ms']:.1f} ms ({a['ref_per_s']:.1f}/s)",
        f"{a['ratio']:.2f}x", f"{a['wall_ratio']:.2f}x", f"identical {a['identical']}/{a['images']}",
    )
    table.add_row(
        "(b) 12 MP JPEG files, fast", f"{b['files']} files",
        f"{b['ours_ms']:.0f} ms ({b['ours_per_s']:.2f}/s)", f"{b['ref_ms']:.0f} ms ({b['ref_per_s']:.2f}/s)",
        f"{b['ratio']:.2f}x", f"{b['wall_ratio']:.2f}x", f"bits vs full-res {b['bits_fast_vs_full']}",
    )
    console.print(table)
    f = res.fidelity
    share = f["share_within_10_bits"]
    console.print(
        f"(c) fast vs full-resolution reference: {f['within_10_bits']}/{f['quality_ge_50']} images of quality"
        f" >= {PDQ.min_quality} within 10 bits ({100 * share:.1f}%); bits {f['bits']}; "
        f"12 MP re-encodings {f['large_12mp']}"
        if share is not None else "(c) no images"
    )
    if f.get("worst"):
        console.print(f"    largest distances (bits, file, quality): {f['worst']}")


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m research.bench_hash``."""
    parser = argparse.ArgumentParser(prog="python -m research.bench_hash", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    _add_arguments(parser)
    return _handle(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
