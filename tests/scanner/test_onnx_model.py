"""The shipped learned hash (pocketscan-embed): files, determinism, registry/CLI, recall against PDQ."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("onnxruntime")

from scanner.hashers.onnx import (
    DEFAULT_MODEL,
    ONNX_MATCH_DISTANCE,
    OnnxHasher,
    default_model_path,
    flatness_quality,
)

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = sorted((ROOT / "samples").glob("*.jpg"))


def _generated(n: int, seed: int = 99, size: int = 256) -> list[Image.Image]:
    """Procedural test images (held-out seed, not a training seed)."""
    from research.train_embedding import ImageGenerator

    photos = [Image.open(p).convert("RGB") for p in SAMPLES]
    gen = ImageGenerator(np.random.default_rng(seed), photos, size=size)
    return [gen.image() for _ in range(n)]


@pytest.fixture(scope="module")
def hasher() -> OnnxHasher:
    return OnnxHasher()


def test_shipped_files_are_small_and_consistent(hasher: OnnxHasher) -> None:
    model = default_model_path()
    assert model.name == f"{DEFAULT_MODEL}.onnx"
    assert model.stat().st_size < 5 * 1024 * 1024
    assert (model.parent / "MODEL.md").is_file()
    sidecar = json.loads(model.with_suffix(".json").read_text())
    assert hasher.bits == sidecar["bits"] and 64 <= hasher.bits <= 256
    assert hasher.match_distance == sidecar["match_distance"] == ONNX_MATCH_DISTANCE
    assert hasher.planes.shape == (hasher.bits, hasher.dim)


def test_hashes_deterministic_across_batch_sizes_and_order(hasher: OnnxHasher) -> None:
    imgs = [np.asarray(Image.open(p).convert("RGB")) for p in SAMPLES]
    imgs += [np.asarray(im) for im in _generated(13)]
    together = [r.hash for r in hasher.hash_many(imgs)]
    one_by_one = [hasher.hash_rgb(im).hash for im in imgs]
    in_threes = [r.hash for s in range(0, len(imgs), 3) for r in hasher.hash_many(imgs[s : s + 3])]
    reversed_ = [r.hash for r in hasher.hash_many(imgs[::-1])][::-1]
    assert together == one_by_one == in_threes == reversed_
    assert len(set(together)) == len(together)
    fresh = OnnxHasher(threads=1)  # another thread count, same session cache key space
    assert [r.hash for r in fresh.hash_many(imgs)] == together


def test_hashes_deterministic_across_processes(hasher: OnnxHasher) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "client.cli.main", "hash", "--algo", "onnx", *map(str, SAMPLES)],
        capture_output=True, text=True, cwd=ROOT, timeout=120, check=True,
    )
    got = [json.loads(line) for line in out.stdout.splitlines()]
    from scanner.image import load_rgb

    want = [hasher.hash_rgb(load_rgb(p)) for p in SAMPLES]
    assert [g["hash"] for g in got] == [w.hex for w in want]
    assert [g["quality"] for g in got] == [w.quality for w in want]
    assert all(g["algo"] == "onnx" and len(g["hash"]) == hasher.bits // 4 for g in got)


def test_registry_and_dihedral(hasher: OnnxHasher) -> None:
    from scanner.hashers.registry import get_hasher, hasher_names

    assert "onnx" in hasher_names()
    h = get_hasher("onnx")
    assert h is get_hasher("onnx")  # one hasher (one session) per process and options
    img = np.asarray(Image.open(SAMPLES[0]).convert("RGB"))
    res = h.hash_rgb(img, dihedral=True)
    assert res.dihedral is not None and len(res.dihedral) == 8 and res.dihedral[0] == res.hash
    assert res.dihedral[5] == h.hash_rgb(np.ascontiguousarray(img[:, ::-1])).hash  # flipY = mirror


def test_quality_gates_flat_images(hasher: OnnxHasher) -> None:
    flat = np.full((120, 200, 3), 87, np.uint8)
    assert hasher.hash_rgb(flat).quality == 0
    assert flatness_quality(np.asarray(Image.open(SAMPLES[0]).convert("RGB"))) >= 50


def test_recall_under_transforms_vs_pdq_on_generated_corpus() -> None:
    """Learned vs PDQ at equal false-match rate on a generated corpus; prints both."""
    from research.eval_learned import compare, markdown_table

    images = [(f"g{i}", im) for i, im in enumerate(_generated(28, seed=1234, size=320))]
    images += [(p.name, Image.open(p).convert("RGB")) for p in SAMPLES]
    transforms = ["noop", "jpeg70", "resize0.5", "crop0.02", "crop0.05", "crop0.1", "blur2", "rotate4",
                  "gamma2", "watermark"]
    c = compare(images, transforms)
    print("\n" + markdown_table(c))
    assert c.pairs >= 200
    assert c.learned_false_matches <= c.pdq_false_matches
    r = c.recall
    assert r["noop"]["learned"] == 1.0 and r["noop"]["pdq"] == 1.0
    for name in ("crop0.05", "crop0.1"):
        assert r[name]["learned"] > r[name]["pdq"], name
    assert r["jpeg70"]["learned"] >= 0.9
    assert r["resize0.5"]["learned"] >= 0.9


def test_bench_learned_prints_both_side_by_side(capsys: pytest.CaptureFixture[str]) -> None:
    from client.cli.main import main

    assert main(["bench", "learned", str(ROOT / "samples"), "--limit", "4", "--repeat", "1", "--json"]) == 0
    res = json.loads(capsys.readouterr().out)
    ips = res["images_per_second"]
    assert res["images"] == 4 and set(ips) == {"pdq_hash", "learned_hash", "pdq_file", "learned_file"}
    assert all(v > 0 for v in ips.values())
    ratio = res["ratio_learned_over_pdq"]["hash"]
    assert ratio == pytest.approx(ips["learned_hash"] / ips["pdq_hash"], rel=0.05)


def test_cli_rejects_misused_or_broken_model_options(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from client.cli.main import main

    assert main(["hash", "--algo", "pdq", "--model", "x.onnx", str(SAMPLES[0])]) == 2
    assert "--algo onnx only" in capsys.readouterr().err
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not onnx")
    (tmp_path / "bad.json").write_text('{"input_size": 64}')
    assert main(["hash", "--algo", "onnx", "--model", str(bad), str(SAMPLES[0])]) == 2
    err = capsys.readouterr().err
    assert "bad.onnx" in err and "cannot load" in err
