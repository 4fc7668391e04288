"""Skin-tone-heavy synthetic images: the benign inputs most likely to fool a nudity classifier.

Abstract pictures only (no people): large fields, overlapping soft ellipses and rounded contours in skin
tones, shaded and blurred, on plain or contrasting backgrounds. Three families by tone (``light``,
``medium``, ``dark``), so a false-positive rate can be broken down by tone. Image ``i`` is drawn with
``numpy.random.default_rng([seed, i, 7])`` and saved as PNG: the same seed and count give the same bytes.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

__all__ = ["SKIN_TONES", "generate_skin", "skin_image"]

SKIN_TONES: dict[str, tuple[tuple[int, int, int], ...]] = {
    "light": ((255, 224, 196), (241, 194, 167), (234, 192, 160), (250, 210, 180)),
    "medium": ((224, 172, 105), (198, 134, 66), (189, 140, 110), (205, 150, 120)),
    "dark": ((141, 85, 36), (110, 68, 45), (90, 56, 37), (70, 45, 30)),
}
"""Approximate sRGB skin tones, lightest to darkest within each group."""

_KINDS = ("field", "blobs", "contours")


def _jitter(rng: np.random.Generator, colour: tuple[int, int, int], amount: int = 14) -> tuple[int, int, int]:
    r, g, b = (int(np.clip(c + rng.integers(-amount, amount + 1), 0, 255)) for c in colour)
    return r, g, b


def skin_image(index: int, tone: str, seed: int) -> Image.Image:
    """Image ``index`` of skin tone group ``tone`` (pure and deterministic)."""
    rng = np.random.default_rng([seed, index, 7])
    palette = SKIN_TONES[tone]
    w, h = (int(rng.integers(480, 961)), int(rng.integers(480, 961)))
    kind = _KINDS[index % len(_KINDS)]
    base = _jitter(rng, palette[int(rng.integers(len(palette)))])
    bg: tuple[int, ...]
    if kind == "field":
        bg = base
    else:
        bg = tuple(int(v) for v in rng.integers(20, 236, 3)) if rng.random() < 0.5 else (235, 235, 230)
    img = Image.new("RGB", (w, h), bg)
    draw = ImageDraw.Draw(img)
    if kind == "blobs":
        for _ in range(int(rng.integers(3, 8))):
            cx, cy = rng.integers(0, w), rng.integers(0, h)
            rx, ry = rng.integers(w // 8, w // 2), rng.integers(h // 8, h // 2)
            tone_rgb = _jitter(rng, palette[int(rng.integers(len(palette)))])
            draw.ellipse([int(cx - rx), int(cy - ry), int(cx + rx), int(cy + ry)], fill=tone_rgb)
    elif kind == "contours":
        # two large rounded shapes side by side with a shadowed gap between them
        gap = int(rng.integers(w // 40, w // 12))
        for left in (True, False):
            x0 = -w // 6 if left else w // 2 + gap
            x1 = w // 2 - gap if left else w + w // 6
            draw.ellipse([x0, int(h * rng.uniform(0.05, 0.3)), x1, int(h * rng.uniform(0.9, 1.3))],
                         fill=_jitter(rng, base, 8))
    # soft shading: a vertical light-to-shadow gradient multiplied in
    shade = np.linspace(float(rng.uniform(1.0, 1.12)), float(rng.uniform(0.7, 0.9)), h)[:, None, None]
    arr = np.clip(np.asarray(img, np.float32) * shade, 0, 255)
    arr += rng.normal(0, 3.0, arr.shape)  # sensor-like noise
    img = Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8))
    return img.filter(ImageFilter.GaussianBlur(float(rng.uniform(2, 8))))


def generate_skin(out: str | Path, count: int, seed: int) -> Iterator[str]:
    """Write ``count`` images under ``out/<tone>/`` (tones in turn) and yield each path."""
    tones = tuple(SKIN_TONES)
    for i in range(count):
        tone = tones[i % len(tones)]
        path = Path(out) / tone / f"skin_{tone}_{i:05d}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        skin_image(i, tone, seed).save(path, format="PNG")
        yield str(path)
