"""aHash, dHash and pHash agree bit-for-bit with the imagehash package on the same pixels."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from scanner.hashers import get_hasher, hasher_names
from scanner.image import load_rgb

imagehash = pytest.importorskip("imagehash", reason="imagehash is in the test extra")

REPO = Path(__file__).resolve().parents[2]
SAMPLES = sorted((REPO / "samples").glob("*.jpg"))
REFERENCE = {"ahash": imagehash.average_hash, "dhash": imagehash.dhash, "phash": imagehash.phash}


def _images(make_image):
    yield from (load_rgb(p, mode="exact") for p in SAMPLES)
    for kind in ("noise", "gradient", "stripes", "blocks", "flat"):
        for shape in ((40, 50), (333, 517), (9, 8)):
            yield make_image(kind, *shape)


@pytest.mark.parametrize("algo", sorted(REFERENCE))
def test_baseline_equals_imagehash(algo, make_image):
    hasher = get_hasher(algo)
    assert hasher.bits == 64
    for rgb in _images(make_image):
        result = hasher.hash_rgb(rgb)
        assert result.algo == algo and result.bits == 64 and result.quality == 100
        assert result.hex == str(REFERENCE[algo](Image.fromarray(rgb)))


@pytest.mark.parametrize("algo", sorted(REFERENCE))
def test_baseline_dihedral_variants_hash_transformed_pixels(algo):
    rgb = load_rgb(SAMPLES[0], mode="exact")
    result = get_hasher(algo).hash_rgb(rgb, dihedral=True)
    assert result.dihedral is not None and len(result.dihedral) == 8
    rot90 = np.ascontiguousarray(np.rot90(rgb))
    assert result.dihedral[1] == get_hasher(algo).hash_rgb(rot90).hash


def test_registry_lists_builtins_pdq_first():
    names = hasher_names()
    assert names[:4] == ("pdq", "phash", "dhash", "ahash")
    with pytest.raises(KeyError):
        get_hasher("nope")
