"""`pocketscan bench snapshot` (also ``python -m research.bench_snapshot``): snapshot build and match speed.

For each bank size (default 100,000 and 1,000,000 generated random PDQ-width hashes) in one run:

* **build**: calibrated parameters for the size, then :func:`scanner.snapshot.build_snapshot` (keyed digests
  plus the vectorised numpy Bloom writer); wall time and file size. Reference: the same keys added one by one
  through ``bloom_filter2.BloomFilter.add`` with the same keyed probe, timed on a sample and extrapolated; the
  ratio is reference / pocketscan.
* **match**: the file is memory-mapped and loaded by :class:`scanner.matcher.Matcher` (signature and body
  digest checked; load time reported), then ``--queries`` queries (half bank hashes moved by 8 bits, half
  random) are matched with one variant and with 8 dihedral variants: ms per image. Reference: exact
  linear-scan matching against the raw bank (``scanner.hamming.distances_to_many``), which the device cannot
  do since it must not hold the bank; ratio reference / snapshot.

Prints the predicted false-match rate per image (dihedral on) and predicted recall at distance 16 beside the
targets (1M: <= 128 MB, <= 120 s build, <= 5 ms match with 8 variants, <= 1e-4 false matches, >= 95% recall at
d=16; 100k: <= 13 MB).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from scanner.hashers.spec import PDQ

if TYPE_CHECKING:
    from research.command_registry import CommandRegistry

__all__ = ["CORPUS_EDITS", "evaluate_corpus", "main", "register", "run_bench"]

#: Relative to the working directory: run from a checkout's root, next to ../shared.
_SHARED_CORPUS = Path("..") / "shared" / "corpus"


def register(registry: CommandRegistry) -> None:
    """Add ``pocketscan bench snapshot``."""
    bench = registry.group("bench")
    parser = bench.command(
        "snapshot", _handle, help="snapshot build time, size and match time per image", description=__doc__
    )
    _add_arguments(parser)


def _add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--sizes", default="100000,1000000", help="bank sizes, comma-separated (default: %(default)s)"
    )
    parser.add_argument("--queries", type=int, default=200, help="queries per size (default: %(default)s)")
    parser.add_argument(
        "--reference-sample",
        type=int,
        default=20000,
        help="keys added through bloom_filter2 to time the reference (default: %(default)s)",
    )
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    parser.add_argument(
        "--corpus",
        metavar="DIR",
        nargs="?",
        const=str(_SHARED_CORPUS),
        help="instead: robustness and false matches of a default snapshot of the images in DIR "
        "(default DIR: ../shared/corpus)",
    )


def _flip(rng: Any, h: bytes, d: int) -> bytes:
    import numpy as np

    bits = np.unpackbits(np.frombuffer(h, dtype=np.uint8))
    bits[rng.choice(bits.size, d, replace=False)] ^= 1
    return np.packbits(bits).tobytes()


def _reference_build_s(bank: Any, p: Any, reference_sample: int) -> float:
    """bloom_filter2's ``add()`` of the same keys one at a time, timed on a sample of ``bank`` and
    extrapolated to all of it (seconds)."""
    import numpy as np
    from bloom_filter2 import BloomFilter
    from bloom_filter2.bloom_filter import Array_backend

    from scanner.snapshot.bloom import KeyedProbe
    from scanner.snapshot.lsh import KeyDigester, hash_bits_matrix, table_positions

    sample = bank[: max(1, reference_sample // p.tables)]
    seed_bytes, salt = os.urandom(32), os.urandom(32)
    positions = table_positions(seed_bytes, p.tables, p.bits)
    ref = BloomFilter(max_elements=1, error_rate=0.5, probe_bitnoer=KeyedProbe(KeyDigester(salt, p.tables)))
    ref.num_bits_m, ref.num_probes_k = p.bloom_bits, p.bloom_hashes
    ref.backend = Array_backend(p.bloom_bits)
    t0 = time.perf_counter()
    bits = hash_bits_matrix(sample)
    for t in range(p.tables):
        keys = np.packbits(bits[:, positions[t]], axis=1, bitorder="big")
        for row in keys:
            ref.add((t, row.tobytes()))
    t_ref_sample = time.perf_counter() - t0
    ref_keys = sample.shape[0] * p.tables
    return t_ref_sample / ref_keys * (bank.shape[0] * p.tables)


def _bench_queries(bank: Any, queries: int, rng: Any) -> list[Any]:
    """Half bank hashes moved by 8 bits, half random; each with 7 random further variants."""
    from scanner.hashers.base import HashResult

    n = bank.shape[0]
    qs = []
    for i in range(queries):
        base = bank[rng.integers(0, n)].tobytes() if i % 2 == 0 else rng.bytes(32)
        variants = tuple([_flip(rng, base, 8)] + [rng.bytes(32) for _ in range(7)])
        qs.append(HashResult("pdq", 256, variants[0], 90, variants))
    return qs


def _match_figures(path: Path, key: Any, now: int, bank: Any, qs: list[Any]) -> dict[str, Any]:
    """Map and load the snapshot file; time matching ``qs`` (one and eight variants) and the exact linear
    scan of the raw bank."""
    from scanner.hamming import distances_to_many
    from scanner.hashers.base import HashResult
    from scanner.matcher import Matcher
    from scanner.snapshot import map_snapshot_file

    queries = len(qs)
    matcher = Matcher(key.public_key)
    t0 = time.perf_counter()
    matcher.load(map_snapshot_file(path), now=now)
    t_load = time.perf_counter() - t0
    single = [HashResult("pdq", 256, q.hash, 90) for q in qs]
    t0 = time.perf_counter()
    hits1 = sum(matcher.match(q).matched for q in single)
    t_one = (time.perf_counter() - t0) / queries
    t0 = time.perf_counter()
    hits8 = sum(matcher.match(q).matched for q in qs)
    t_eight = (time.perf_counter() - t0) / queries
    # Reference: exact matching against the raw bank (a server-side linear scan).
    ref_q = single[: max(1, min(queries, 20))]
    t0 = time.perf_counter()
    for q in ref_q:
        int((distances_to_many(q.hash, bank) <= PDQ.match_distance).any())
    t_exact = (time.perf_counter() - t0) / len(ref_q)
    del matcher
    return {"load": t_load, "one": t_one, "eight": t_eight, "exact": t_exact, "hits1": hits1, "hits8": hits8}


def _bench_size(n: int, rng: Any, key: Any, queries: int, reference_sample: int) -> dict[str, Any]:
    """Build, size and match a snapshot of ``n`` random hashes: one row of figures."""
    import numpy as np

    from scanner.calibration import calibrate_padded
    from scanner.snapshot import build_snapshot, write_snapshot_file

    bank = rng.integers(0, 256, size=(n, 32), dtype=np.uint8)
    t0 = time.perf_counter()
    cal = calibrate_padded(n)
    t_cal = time.perf_counter() - t0
    p = cal.params
    now = int(time.time())
    t0 = time.perf_counter()
    data = build_snapshot(bank, params=p, key=key, version=1, created=now, expires=now + 86400)
    t_build = time.perf_counter() - t0
    t_ref_build = _reference_build_s(bank, p, reference_sample)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "snap.bin"
        write_snapshot_file(path, data)
        del data
        size = path.stat().st_size
        f = _match_figures(path, key, now, bank, _bench_queries(bank, queries, rng))
    return {
        "bank_size": n,
        "params": p.build_options(),
        "calibrate_s": round(t_cal, 3),
        "build_s": round(t_build, 2),
        "reference_build_s_extrapolated": round(t_ref_build, 1),
        "build_ratio": round(t_ref_build / t_build, 1),
        "size_mb": round(size / 1e6, 2),
        "load_verify_s": round(f["load"], 2),
        "match_ms_one_variant": round(f["one"] * 1e3, 3),
        "match_ms_eight_variants": round(f["eight"] * 1e3, 3),
        "exact_linear_scan_ms": round(f["exact"] * 1e3, 2),
        "match_ratio_one_variant": round(f["exact"] / f["one"], 1),
        "hits_one_variant": f["hits1"],
        "hits_eight_variants": f["hits8"],
        "queries": queries,
        "predicted_false_match_per_image_dihedral": cal.false_match_per_image,
        "predicted_recall_d16": round(cal.recall_at(16), 4),
        "predicted_recall_d31": round(cal.recall_at(PDQ.match_distance), 4),
    }


def run_bench(
    sizes: list[int], *, queries: int = 200, reference_sample: int = 20000, seed: int = 1, log: Any = None
) -> list[dict[str, Any]]:
    """Measure every size; returns one dict of figures per size."""
    import numpy as np

    from scanner.authority import AuthorityKey

    rng = np.random.default_rng(seed)
    key = AuthorityKey.generate()
    out = []
    for n in sizes:
        if log:
            log(f"bank of {n:,} hashes: generating, calibrating, building...")
        out.append(_bench_size(n, rng, key, queries, reference_sample))
    return out


def _edit_jpeg70(img: Any) -> Any:
    import io

    from PIL import Image

    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=70)
    buf.seek(0)
    with Image.open(buf) as out:
        return out.convert("RGB")


def _edit_resize_half(img: Any) -> Any:
    from PIL import Image

    w, h = img.size
    return img.resize((max(1, w // 2), max(1, h // 2)), Image.Resampling.LANCZOS)


def _edit_crop(fraction: float) -> Any:
    def run(img: Any) -> Any:
        w, h = img.size
        dx, dy = round(w * fraction), round(h * fraction)
        return img.crop((dx, dy, w - dx, h - dy))

    return run


#: Edits of the corpus check: JPEG quality 70, half size (Lanczos), 1% and 2% cropped from every side.
CORPUS_EDITS: dict[str, Any] = {
    "jpeg70": _edit_jpeg70,
    "resize0.5": _edit_resize_half,
    "crop1%": _edit_crop(0.01),
    "crop2%": _edit_crop(0.02),
}


def _generated_images(count: int, seed: int) -> list[Any]:
    """Unrelated synthetic images: smooth random fields plus random shapes (never flat)."""
    import numpy as np
    from PIL import Image, ImageDraw

    rng = np.random.default_rng(seed)
    out = []
    for _ in range(count):
        small = rng.integers(0, 256, size=(6, 8, 3), dtype=np.uint8)
        img = Image.fromarray(small).resize((320, 240), Image.Resampling.BICUBIC)
        draw = ImageDraw.Draw(img)
        for _ in range(int(rng.integers(2, 8))):
            x0, y0 = int(rng.integers(0, 280)), int(rng.integers(0, 200))
            box = (x0, y0, x0 + int(rng.integers(10, 120)), y0 + int(rng.integers(10, 120)))
            fill = tuple(int(c) for c in rng.integers(0, 256, 3))
            (draw.ellipse if rng.random() < 0.5 else draw.rectangle)(box, fill=fill)
        out.append(img)
    return out


@dataclass
class _CorpusBank:
    """The corpus images, their PDQ hashes, those in the bank (quality passes) and a throwaway key."""

    files: list[Path]
    originals: list[Any]
    bank: list[Any]
    good: list[int]
    key: Any
    now: int

    def snapshot_of(self, indices: list[int]) -> tuple[Any, Any]:
        """A default-parameter snapshot (fresh positions and salt) of the bank hashes at ``indices``, loaded:
        (matcher, calibration)."""
        from scanner.calibration import calibrate_padded
        from scanner.matcher import Matcher
        from scanner.snapshot import build_snapshot

        cal = calibrate_padded(len(indices))
        data = build_snapshot(
            [self.bank[i].hash for i in indices],
            params=cal.params,
            key=self.key,
            version=1,
            created=self.now,
            expires=self.now + 86400,
        )
        m = Matcher(self.key.public_key)
        m.load(data, now=self.now)
        return m, cal


def _corpus_bank(corpus: Path) -> _CorpusBank:
    import numpy as np
    from PIL import Image

    from scanner.authority import AuthorityKey
    from scanner.discovery import image_paths
    from scanner.image import load_rgb

    hasher = _pdq()
    key = AuthorityKey.generate()
    files = image_paths(corpus)
    originals = [Image.fromarray(load_rgb(p, mode="exact")) for p in files]
    bank = [hasher.hash_rgb(np.asarray(img)) for img in originals]
    good = [i for i, r in enumerate(bank) if PDQ.passes_quality(r.quality)]
    return _CorpusBank(files, originals, bank, good, key, int(time.time()))


def _pdq() -> Any:
    from scanner.hashers.registry import get_hasher

    return get_hasher("pdq")


def _edit_figures(cb: _CorpusBank, edit: Any, builds: list[Any], packed: Any) -> dict[str, Any]:
    """Snapshot recall (mean, min, max over ``builds``) and exact PDQ recall of the bank images under
    ``edit``, with the distances it causes."""
    import numpy as np

    from scanner.hamming import distances_to_many

    hasher = _pdq()
    edited = [hasher.hash_rgb(np.asarray(edit(cb.originals[i]))) for i in cb.good]
    dists = [int(distances_to_many(r.hash, packed[j : j + 1])[0]) for j, r in enumerate(edited)]
    exact_hits = sum(
        int(PDQ.passes_quality(r.quality) and PDQ.is_match(int(distances_to_many(r.hash, packed).min())))
        for r in edited
    )
    per_build = [sum(int(m.match(r).matched) for r in edited) for m in builds]
    n = len(cb.good)
    mean_hits = sum(per_build) / len(per_build)
    missed_everywhere = [
        cb.files[cb.good[j]].name for j, r in enumerate(edited) if not any(m.match(r).matched for m in builds)
    ]
    return {
        "snapshot_recall": round(mean_hits / n, 4),
        "snapshot_recall_min": round(min(per_build) / n, 4),
        "snapshot_recall_max": round(max(per_build) / n, 4),
        "builds_matching_all": sum(1 for h in per_build if h == n),
        "exact_pdq_recall": round(exact_hits / n, 4),
        "gap_points": round(100 * (mean_hits - exact_hits) / n, 1),
        "median_distance": float(np.median(dists)),
        "max_distance": int(max(dists)),
        "n": n,
        "missed_by_every_build": missed_everywhere,
        "distances": sorted(dists),
    }


def _false_matches(images: list[Any], m: Any, ref: Any) -> dict[str, int]:
    """Snapshot and exact PDQ matches of unrelated ``images`` (those passing the quality gate)."""
    import numpy as np

    from scanner.hamming import distances_to_many

    hasher = _pdq()
    snap = exact = low = 0
    for img in images:
        r = hasher.hash_rgb(np.asarray(img.convert("RGB")))
        if not PDQ.passes_quality(r.quality):
            low += 1
            continue
        snap += int(m.match(r).matched)
        exact += int(PDQ.is_match(int(distances_to_many(r.hash, ref).min())))
    return {
        "images": len(images),
        "low_quality": low,
        "snapshot_matches": snap,
        "exact_pdq_matches": exact,
    }


def _leave_one_out(cb: _CorpusBank) -> dict[str, Any]:
    """Each bank image against a snapshot of the other bank images: false matches inside the corpus."""
    from scanner.hamming import distances_to_many, pack_hashes

    loo: dict[str, Any] = {"images": 0, "low_quality": 0, "snapshot_matches": 0, "exact_pdq_matches": 0}
    matched_names = []
    for i in cb.good:
        others = [j for j in cb.good if j != i]
        m, _ = cb.snapshot_of(others)
        ref = pack_hashes([cb.bank[j].hash for j in others])
        got = _false_matches([cb.originals[i]], m, ref)
        for k_, v_ in got.items():
            loo[k_] += v_
        if got["snapshot_matches"] or got["exact_pdq_matches"]:
            dmin = int(distances_to_many(cb.bank[i].hash, ref).min())
            matched_names.append(
                {
                    "image": cb.files[i].name,
                    "snapshot": got["snapshot_matches"],
                    "exact": got["exact_pdq_matches"],
                    "nearest_distance": dmin,
                }
            )
    loo["matched"] = matched_names
    return loo


def evaluate_corpus(
    corpus: Path,
    *,
    generated: int = 200,
    seed: int = 7,
    samples: Path | None = None,
    repeats: int = 10,
    log: Any = None,
) -> dict[str, Any]:
    """Robustness and false matches of a default-parameter snapshot of the images in ``corpus``.

    The snapshot's recall depends on its random positions, so it is averaged over ``repeats`` builds (min and
    max reported). Returns a dict with, per edit, snapshot recall and exact PDQ recall (distance <= 31,
    quality >= 50 on both
    sides) over bank images of quality >= 50, the median bit distance the edit causes, and false-match counts
    of unrelated images: the repo samples, generated images, and each corpus image against a snapshot of the
    other corpus images (leave one out).
    """
    from PIL import Image

    from client.samples import sample_dir
    from scanner.hamming import pack_hashes

    cb = _corpus_bank(corpus)
    matcher, cal = cb.snapshot_of(cb.good)
    builds = [matcher] + [cb.snapshot_of(cb.good)[0] for _ in range(max(0, repeats - 1))]
    packed = pack_hashes([cb.bank[i].hash for i in cb.good])
    result: dict[str, Any] = {
        "corpus": str(corpus),
        "images": len(cb.files),
        "bank_quality_ge_50": len(cb.good),
        "builds": len(builds),
        "params": {
            "tables": cal.params.tables,
            "bits": cal.params.bits,
            "min_votes": cal.params.min_votes,
            "bloom_bits": cal.params.bloom_bits,
            "bloom_hashes": cal.params.bloom_hashes,
        },
        "predicted_recall": {str(d): round(cal.recall_at(d), 4) for d in (16, 24, 28, 30, 32, 34, 38)},
        "edits": {},
    }
    for name, edit in CORPUS_EDITS.items():
        if log:
            log(f"edit {name}...")
        result["edits"][name] = _edit_figures(cb, edit, builds, packed)
    if log:
        log("unrelated images...")
    folder = samples or sample_dir()
    sample_imgs = [Image.open(p) for p in sorted(folder.glob("*.jpg"))]
    result["unrelated_samples"] = _false_matches(sample_imgs, matcher, packed)
    result["unrelated_generated"] = _false_matches(_generated_images(generated, seed), matcher, packed)
    result["leave_one_out"] = _leave_one_out(cb)
    return result


def _print_corpus(r: dict[str, Any]) -> None:
    p = r["params"]
    print(
        f"corpus {r['corpus']}: {r['images']} images, {r['bank_quality_ge_50']} of quality >= "
        f"{PDQ.min_quality} in the bank"
    )
    print(
        f"default snapshot: L={p['tables']} k={p['bits']} v={p['min_votes']} m={p['bloom_bits']} "
        f"h={p['bloom_hashes']}; predicted recall {r['predicted_recall']}"
    )
    print(f"snapshot recall: mean over {r['builds']} builds (fresh positions and salt), [min, max]")
    print(
        f"{'edit':10s} {'snapshot':>9s} {'[min, max]':>14s} {f'exact<={PDQ.match_distance}':>10s} "
        f"{'gap':>6s} {'median d':>9s} {'max d':>6s}  all matched"
    )
    for name, e in r["edits"].items():
        print(
            f"{name:10s} {e['snapshot_recall']:9.3f} "
            f"[{e['snapshot_recall_min']:.3f}, {e['snapshot_recall_max']:.3f}] "
            f"{e['exact_pdq_recall']:10.3f} {e['gap_points']:+6.1f} {e['median_distance']:9.1f} "
            f"{e['max_distance']:6d}  {e['builds_matching_all']}/{r['builds']} builds"
        )
        if e["missed_by_every_build"]:
            print(f"           missed by every build: {', '.join(e['missed_by_every_build'])}")
    for label in ("unrelated_samples", "unrelated_generated", "leave_one_out"):
        f = r[label]
        print(
            f"{label}: {f['snapshot_matches']} snapshot matches, {f['exact_pdq_matches']} exact PDQ matches "
            f"among {f['images'] - f['low_quality']} images of quality >= {PDQ.min_quality} "
            f"({f['low_quality']} low quality)"
        )
    for m in r["leave_one_out"]["matched"]:
        print(
            f"  {m['image']}: snapshot {m['snapshot']}, exact {m['exact']}, nearest other image at "
            f"{m['nearest_distance']} bits"
        )


def _handle(args: argparse.Namespace) -> int:
    from scanner.progress import progress_bar

    if args.corpus:
        corpus = Path(args.corpus)
        if not corpus.is_dir():
            print(f"pocketscan bench snapshot: {corpus}: no such folder", file=sys.stderr)
            return 2
        with progress_bar("snapshot recall on the corpus", None, quiet=args.json) as advance:
            res = evaluate_corpus(corpus, seed=args.seed, log=lambda m: advance(description=m))
        if args.json:
            print(json.dumps(res, indent=2))
        else:
            _print_corpus(res)
        return 0
    sizes = [int(s) for s in args.sizes.split(",") if s.strip()]

    with progress_bar("snapshot benchmark", None, quiet=args.json) as advance:
        rows = run_bench(
            sizes,
            queries=args.queries,
            reference_sample=args.reference_sample,
            seed=args.seed,
            log=lambda m: advance(description=m),
        )
    if args.json:
        print(json.dumps({"cores": os.cpu_count(), "results": rows}, indent=2))
        return 0
    print(f"snapshot benchmark ({os.cpu_count()} cores); queries: half bank hashes moved 8 bits, half random")
    for r in rows:
        p = r["params"]
        print(
            f"\nbank {r['bank_size']:,}: L={p['tables']} k={p['bits']} v={p['min_votes']} "
            f"m={p['bloom_bits']:,} bits h={p['bloom_hashes']}"
        )
        print(
            f"  build            {r['build_s']:8.2f} s   (bloom_filter2 add(), extrapolated: "
            f"{r['reference_build_s_extrapolated']:.0f} s; ratio {r['build_ratio']}x)   "
            f"calibrate {r['calibrate_s']} s"
        )
        print(f"  size             {r['size_mb']:8.2f} MB   load+verify {r['load_verify_s']} s")
        print(
            f"  match, 1 variant {r['match_ms_one_variant']:8.3f} ms/image   "
            "(exact linear scan of the raw bank: "
            f"{r['exact_linear_scan_ms']} ms; ratio {r['match_ratio_one_variant']}x)"
        )
        print(f"  match, 8 variants{r['match_ms_eight_variants']:8.3f} ms/image")
        print(
            "  predicted: false matches/image (dihedral) "
            f"{r['predicted_false_match_per_image_dihedral']:.3g}, "
            f"recall d=16 {r['predicted_recall_d16']}, d=31 {r['predicted_recall_d31']}"
        )
        print(
            f"  hits: {r['hits_one_variant']}/{r['queries']} (1 variant), "
            f"{r['hits_eight_variants']}/{r['queries']} "
            f"(8 variants); half the queries are near-duplicates of bank hashes"
        )
    return 0


def main(argv: list[str] | None = None) -> int:
    """Run as ``python -m research.bench_snapshot``."""
    parser = argparse.ArgumentParser(
        prog="bench_snapshot", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    _add_arguments(parser)
    return _handle(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
