"""The transform registry: deterministic, RGB, documented; noop keeps pixels."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from research.transforms import DESCRIPTIONS, TRANSFORMS, apply_transform

REQUIRED = (
    "noop",
    "jpeg95",
    "jpeg70",
    "jpeg50",
    "resize0.5",
    "resize0.25",
    "crop0.02",
    "crop0.05",
    "crop0.1",
    "pad0.2",
    "rotate4",
    "rotate90",
    "mirror",
    "blur2",
    "noise0.05",
    "gamma2",
    "watermark",
    "caption",
    "screenshot",
    "recolour",
)


@pytest.fixture(scope="module")
def image(samples_dir: Path) -> Image.Image:
    with Image.open(samples_dir / "chelsea.jpg") as im:
        return im.convert("RGB")


def test_registry_covers_the_issue_and_is_documented() -> None:
    for name in REQUIRED:
        assert name in TRANSFORMS
    assert set(DESCRIPTIONS) == set(TRANSFORMS)


@pytest.mark.parametrize("name", list(TRANSFORMS))
def test_deterministic_rgb(name: str, image: Image.Image) -> None:
    a = TRANSFORMS[name](image, np.random.default_rng(7))
    b = TRANSFORMS[name](image, np.random.default_rng(7))
    assert a.mode == "RGB"
    assert np.array_equal(np.asarray(a), np.asarray(b))


def test_noop_and_geometry(image: Image.Image) -> None:
    w, h = image.size
    assert np.array_equal(np.asarray(apply_transform("noop", image)), np.asarray(image))
    assert apply_transform("rotate90", image).size == (h, w)
    assert apply_transform("resize0.5", image).size == (round(w / 2), round(h / 2))
    assert apply_transform("crop0.1", image).size == (w - 2 * round(0.1 * w), h - 2 * round(0.1 * h))
    assert apply_transform("pad0.2", image).size == (w, h + 2 * round(0.2 * h))
    mirrored = np.asarray(apply_transform("mirror", image))
    assert np.array_equal(mirrored[:, ::-1], np.asarray(image))


def test_unknown_transform_is_named() -> None:
    with pytest.raises(KeyError, match="unknown transform"):
        apply_transform("sepia", Image.new("RGB", (8, 8)))
