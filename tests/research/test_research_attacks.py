"""PDQ's linear model matches the real hasher; the attacks succeed, judged after a PNG reload."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from research.attacks import (
    collide_whitebox,
    distortion,
    evade_blackbox,
    evade_whitebox,
    hamming_bytes,
    png_roundtrip,
)
from research.pdq_linear import PdqLinear, bits_from_hash, hash_from_bits
from scanner.hashers.registry import get_hasher


def _load(path: Path) -> np.ndarray:
    with Image.open(path) as im:
        return np.asarray(im.convert("RGB"))


@pytest.fixture(scope="module")
def oracle():  # type: ignore[no-untyped-def]
    hasher = get_hasher("pdq")

    def call(x: np.ndarray) -> tuple[bytes, int]:
        r = hasher.hash_rgb(x)
        return r.hash, int(r.quality)

    return call


@pytest.mark.parametrize("name", ["chelsea.jpg", "coffee.jpg", "camera.jpg"])
def test_linear_model_gives_the_real_pdq_bits(samples_dir: Path, name: str) -> None:
    rgb = _load(samples_dir / name)
    real = get_hasher("pdq").hash_rgb(rgb).hash
    model_bits = PdqLinear(*rgb.shape[:2]).bits(rgb)
    assert hamming_bytes(hash_from_bits(model_bits), real) <= 2  # float32 vs float64 ties only
    assert np.array_equal(bits_from_hash(hash_from_bits(model_bits)), model_bits)


def test_whitebox_evasion_is_imperceptible(samples_dir: Path, oracle) -> None:  # type: ignore[no-untyped-def]
    rgb = _load(samples_dir / "chelsea.jpg")
    res = evade_whitebox(rgb, oracle, threshold=31)
    assert res.success, res.note
    _png, back = png_roundtrip(res.image)
    h0, _ = oracle(rgb)
    h1, q1 = oracle(back)
    assert hamming_bytes(h0, h1) > 31 and q1 >= 50
    assert res.metrics["psnr"] >= 30.0
    print(f"evasion: d={res.distance_after} PSNR={res.metrics['psnr']:.1f} queries={res.queries}")


def test_whitebox_collision(samples_dir: Path, oracle) -> None:  # type: ignore[no-untyped-def]
    src = _load(samples_dir / "chelsea.jpg")
    target, _ = oracle(_load(samples_dir / "coffee.jpg"))
    res = collide_whitebox(src, target, oracle, threshold=31)
    assert res.success, res.note
    assert res.distance_before > 90 and res.distance_after <= 31 and res.quality_after >= 50
    print(f"collision: {res.distance_before} -> {res.distance_after}, PSNR {res.metrics['psnr']:.1f}")


def test_blackbox_evasion_of_a_baseline_hash(samples_dir: Path) -> None:
    hasher = get_hasher("ahash")

    def call(x: np.ndarray) -> tuple[bytes, int]:
        r = hasher.hash_rgb(x)
        return r.hash, int(r.quality)

    rgb = _load(samples_dir / "chelsea.jpg")[::2, ::2].copy()
    res = evade_blackbox(rgb, call, threshold=4, max_queries=200, seed=1)
    assert res.queries <= 201
    assert res.success == (res.distance_after > 4)
    print(f"blackbox ahash: success={res.success} d={res.distance_after} queries={res.queries}")


def test_distortion_metrics() -> None:
    a = np.full((32, 32, 3), 100, np.uint8)
    m = distortion(a, a)
    assert m["psnr"] == float("inf") and m["ssim"] == pytest.approx(1.0) and m["l2"] == 0.0
    b = a.copy()
    b[0, 0, 0] = 110
    assert distortion(a, b)["linf"] == 10.0
