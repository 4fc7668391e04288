"""PDQ is bit-exact (hash and quality) with Meta's reference C++ on the same pixels."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from scanner.hashers import pdq
from scanner.hashers.pdq import pdq_float, pdq_hash
from scanner.image import load_rgb

REPO = Path(__file__).resolve().parents[2]
SAMPLES = sorted((REPO / "samples").glob("*.jpg"))
PDQ_DATA = REPO.parent / "shared" / "pdq-data"

SIZES = [
    (1, 1), (4, 4), (4, 9), (5, 5), (5, 6), (6, 5), (7, 7), (8, 8), (13, 17), (31, 64), (63, 63), (64, 64),
    (64, 65), (65, 64), (100, 100), (127, 129), (128, 128), (129, 257), (255, 256), (300, 7), (7, 300),
    (333, 517), (480, 640), (1000, 5), (5, 1000), (1024, 768), (3000, 7), (7, 3000),
]


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
@pytest.mark.parametrize("kind", ["noise", "gradient", "flat", "stripes", "blocks"])
def test_generated_images_match_reference(kind, size, make_image, ref_pdq):
    rgb = make_image(kind, *size)
    ours = pdq_hash(rgb)
    assert (ours.hex, ours.quality) == ref_pdq(rgb)


@pytest.mark.parametrize("path", SAMPLES, ids=lambda p: p.name)
def test_sample_photos_match_reference(path, ref_pdq):
    rgb = load_rgb(path, mode="exact")
    ours = pdq_hash(rgb)
    assert (ours.hex, ours.quality) == ref_pdq(rgb)


def test_float_dct_matches_reference_bits():
    """The 16x16 DCT itself equals the reference's float32 output, not just the thresholded bits."""
    pdqhash = pytest.importorskip("pdqhash")
    rng = np.random.default_rng(3)
    for shape in [(64, 64), (97, 211), (512, 384)]:
        rgb = rng.integers(0, 256, (*shape, 3), dtype=np.uint8)
        dct, quality = pdq_float(rgb)
        ref, ref_quality = pdqhash.compute_float(rgb)
        # the bindings flatten the 16x16 buffer and reverse it
        np.testing.assert_array_equal(dct.ravel()[::-1], np.asarray(ref, dtype=np.float32))
        assert quality == ref_quality


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    rgb=arrays(
        np.uint8,
        st.tuples(st.integers(1, 90), st.integers(1, 90), st.just(3)),
        elements=st.integers(0, 255),
    )
)
def test_random_small_images_match_reference(rgb, ref_pdq):
    ours = pdq_hash(rgb)
    assert (ours.hex, ours.quality) == ref_pdq(rgb)


@settings(max_examples=12, deadline=None)
@given(height=st.integers(5, 700), width=st.integers(5, 700), seed=st.integers(0, 2**32 - 1))
def test_random_sizes_match_reference(height, width, seed, ref_pdq):
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 256, (height // 8 + 2, width // 8 + 2, 3), dtype=np.uint8)
    rgb = np.ascontiguousarray(base.repeat(8, 0).repeat(8, 1)[:height, :width])
    rgb ^= rng.integers(0, 16, rgb.shape, dtype=np.uint8)
    ours = pdq_hash(rgb)
    assert (ours.hex, ours.quality) == ref_pdq(rgb)


def test_luma_equals_reference_rounding_for_every_colour():
    """float32(N/1000) with N = 299R + 587G + 114B equals the bindings' float64 luma, for all 2^24 colours."""
    levels = np.arange(256, dtype=np.uint8)
    g, b = np.meshgrid(levels, levels, indexing="ij")
    for r in range(256):
        rgb = np.stack([np.full_like(g, r), g, b], axis=-1)
        expected = (rgb[:, :, 0] * 0.299 + rgb[:, :, 1] * 0.587 + rgb[:, :, 2] * 0.114).astype(np.float32)
        np.testing.assert_array_equal(pdq.luma(rgb), expected)


def test_tiny_images_hash_to_zero_with_quality_zero():
    for shape in [(1, 1), (4, 100), (100, 4)]:
        result = pdq_hash(np.zeros((*shape, 3), dtype=np.uint8))
        assert result.hash == bytes(32)
        assert result.quality == 0


def test_non_contiguous_input_is_accepted(make_image, ref_pdq):
    rgb = make_image("noise", 200, 300)
    view = rgb[::2, ::3]
    assert pdq_hash(view).hex == ref_pdq(np.ascontiguousarray(view))[0]


def test_rejects_wrong_arrays():
    with pytest.raises(ValueError):
        pdq_hash(np.zeros((10, 10), dtype=np.float32))
    with pytest.raises(ValueError):
        pdq_hash(np.zeros((10, 10, 4), dtype=np.uint8))
    with pytest.raises(ValueError):
        pdq_hash(np.zeros((10, 10, 3), dtype=np.float32))


@pytest.mark.parametrize("shape", [(64, 64), (333, 517), (4, 7)])
def test_luminance_plane_hashes_like_its_grey_rgb(shape, make_image, ref_pdq):
    grey = make_image("noise", *shape)[:, :, 0].copy()
    rgb = np.repeat(grey[:, :, None], 3, axis=2)
    assert pdq_hash(grey, dihedral=True) == pdq_hash(rgb, dihedral=True)
    assert pdq_hash(grey).hex == ref_pdq(rgb)[0]


def _expected_rows() -> list[tuple[str, str, int]]:
    path = PDQ_DATA / "expected.tsv"
    if not path.exists():
        return []
    rows = []
    with path.open() as fh:
        for row in csv.reader((line for line in fh if not line.startswith("#")), delimiter="\t"):
            if row:
                rows.append((row[0], row[1], int(row[2])))
    return rows


@pytest.mark.skipif(not (PDQ_DATA / "expected.tsv").exists(), reason="../shared/pdq-data is absent")
@pytest.mark.parametrize("rel,expected_hex,expected_quality", _expected_rows(), ids=lambda v: str(v))
def test_shared_expected_hashes_reproduce_in_exact_mode(rel, expected_hex, expected_quality):
    """Every row of pdq-data/expected.tsv: full-resolution decode, convert('RGB'), no EXIF rotation."""
    result = pdq_hash(load_rgb(PDQ_DATA / rel, mode="exact", orient=False))
    assert (result.hex, result.quality) == (expected_hex, expected_quality)


# ----- the fast evaluation (fast mode): same filter as a linear operator, not bit-exact -------------


@pytest.mark.parametrize("shape", [(5, 5), (37, 300), (300, 451), (756, 1008), (1024, 1024), (3000, 40)])
def test_fast_linear_downsample_equals_the_running_sums_up_to_rounding(shape, make_image):
    rgb = make_image("blocks", *shape)
    exact = pdq.jarosz_filter(pdq.luma(rgb)) if min(shape) >= 5 else None
    index_c, weight_c = pdq._sampled_filter_band(shape[1])
    index_r, weight_r = pdq._sampled_filter_band(shape[0])
    np.testing.assert_allclose(weight_c.sum(axis=1), 1.0, rtol=1e-5)  # averages: weights sum to 1
    y = pdq.luma(rgb)
    t = np.einsum("rjk,jk->rj", y[:, index_c], weight_c)
    linear = np.einsum("ikj,ik->ij", t[index_r], weight_r)
    assert exact is not None
    np.testing.assert_allclose(linear, exact, rtol=1e-4, atol=1e-3)


@pytest.mark.parametrize("path", SAMPLES, ids=lambda p: p.name)
def test_fast_hash_within_two_bits_of_exact_on_the_same_pixels(path):
    from scanner.hamming import hamming
    from scanner.hashers.pdq import pdq_hash_fast

    rgb = load_rgb(path, mode="exact")
    exact = pdq_hash(rgb, dihedral=True)
    fast = pdq_hash_fast(rgb, dihedral=True)
    assert fast.quality == exact.quality
    assert hamming(fast.hash, exact.hash) <= 2
    assert fast.dihedral is not None and fast.dihedral[0] == fast.hash
