"""Fixtures for the scanner's hashing tests: the reference PDQ oracle and the shared data paths."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest


def _vector_hex(vector: np.ndarray) -> str:
    # pdqhash returns bit 255 first (its hash_to_vector reverses the bit order).
    return f"{int(''.join(str(int(b)) for b in vector), 2):064x}"


@pytest.fixture(scope="session")
def ref_pdq() -> Callable[[np.ndarray], tuple[str, int]]:
    """``rgb -> (hex, quality)`` from Meta's C++ PDQ through the ``pdqhash`` bindings."""
    pdqhash = pytest.importorskip("pdqhash", reason="pdqhash (the reference oracle) is in the test extra")

    def compute(rgb: np.ndarray) -> tuple[str, int]:
        vector, quality = pdqhash.compute(np.ascontiguousarray(rgb))
        return _vector_hex(vector), int(quality)

    return compute


@pytest.fixture(scope="session")
def ref_pdq_dihedral() -> Callable[[np.ndarray], tuple[list[str], int]]:
    """``rgb -> ([8 hex], quality)`` from the reference's dihedral hashing."""
    pdqhash = pytest.importorskip("pdqhash", reason="pdqhash (the reference oracle) is in the test extra")

    def compute(rgb: np.ndarray) -> tuple[list[str], int]:
        vectors, quality = pdqhash.compute_dihedral(np.ascontiguousarray(rgb))
        return [_vector_hex(v) for v in vectors], int(quality)

    return compute


def generated_image(kind: str, height: int, width: int, seed: int = 0) -> np.ndarray:
    """Deterministic test images: noise, gradient, flat, stripes, blocks."""
    rng = np.random.default_rng(seed + 7919 * height + 31 * width)
    yy, xx = np.mgrid[0:height, 0:width]
    if kind == "noise":
        return rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
    if kind == "gradient":
        r = xx * 255 // max(width - 1, 1)
        g = yy * 255 // max(height - 1, 1)
        b = (xx + 2 * yy) * 3 % 256
        return np.stack([r, g, b], axis=-1).astype(np.uint8)
    if kind == "flat":
        return np.full((height, width, 3), (37, 201, 118), dtype=np.uint8)
    if kind == "stripes":
        v = ((xx // 3 + yy // 5) % 2 * 255).astype(np.uint8)
        return np.stack([v, 255 - v, v // 2], axis=-1)
    if kind == "blocks":
        small = rng.integers(0, 256, (max(1, height // 16 + 1), max(1, width // 16 + 1), 3), dtype=np.uint8)
        return np.ascontiguousarray(small.repeat(16, 0).repeat(16, 1)[:height, :width])
    raise ValueError(kind)


@pytest.fixture(scope="session")
def make_image() -> Callable[..., np.ndarray]:
    """The :func:`generated_image` factory."""
    return generated_image

