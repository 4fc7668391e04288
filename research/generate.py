"""A deterministic generator of benign images that perceptual hashes confuse.

Families (one sub-folder each, so `fpr` can break results down by family):

* ``chat``: screenshots of a messaging app (bubbles of text on a plain background);
* ``text``: screenshots of plain text (a note or terminal);
* ``chart``: bar and line charts on white with axes;
* ``flat``: a single flat colour, sometimes with a thin border (PDQ quality is ~0: the quality gate's job);
* ``gradient``: linear and radial two-colour gradients;
* ``document``: a scanned-looking page of paragraphs with a heading;
* ``meme``: a blocky synthetic picture with top and bottom captions.

Image ``i`` is drawn with ``numpy.random.default_rng([seed, i])`` and saved as PNG, so the same ``--seed``
and ``--count`` always produce byte-identical files whatever the number of workers. Any single image can be
drawn on its own (:func:`generate_image`), so a streaming run of any size draws image ``i`` where it is
hashed and never stores it. ``scale`` shrinks every size and font (``1.0``: sides of 360-760 px; ``0.35``:
about 130-360 px, several times cheaper to draw). A scaled image is the same kind of drawing made at
that size, not a resample of the native one.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from functools import lru_cache
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont

__all__ = ["FAMILIES", "generate_corpus", "generate_image", "plan"]

_SYLLABLES = (
    "ka",
    "lo",
    "mi",
    "ne",
    "ra",
    "tu",
    "so",
    "vi",
    "pe",
    "da",
    "xo",
    "li",
    "ba",
    "re",
    "mo",
    "sa",
    "ti",
    "gu",
    "fe",
    "no",
    "wa",
    "zi",
    "ho",
    "ce",
)


def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    return _font_of_size(max(6, int(size)))


@lru_cache(maxsize=64)
def _font_of_size(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    """Loading the default font parses it each time: one font object per size and process."""
    return ImageFont.load_default(size=size)


def _word(rng: np.random.Generator) -> str:
    return "".join(_SYLLABLES[int(i)] for i in rng.integers(0, len(_SYLLABLES), int(rng.integers(1, 4))))


def _sentence(rng: np.random.Generator, words: int) -> str:
    return " ".join(_word(rng) for _ in range(words))


def _colour(rng: np.random.Generator, lo: int = 0, hi: int = 256) -> tuple[int, int, int]:
    c = rng.integers(lo, hi, 3)
    return (int(c[0]), int(c[1]), int(c[2]))


def _px(value: float, scale: float) -> int:
    """A length of the native drawing scaled by ``scale`` (unchanged at 1.0), at least 1 px."""
    return int(value) if scale == 1.0 else max(1, round(value * scale))


def _size(rng: np.random.Generator, portrait: bool, scale: float = 1.0) -> tuple[int, int]:
    short = int(rng.integers(360, 521))
    long = int(short * rng.uniform(1.3, 2.0))
    short, long = _px(short, scale), _px(long, scale)
    return (short, long) if portrait else (long, short)


def _chat(rng: np.random.Generator, scale: float = 1.0) -> Image.Image:
    w, h = _size(rng, portrait=True, scale=scale)
    dark = bool(rng.random() < 0.3)
    bg = (18, 18, 20) if dark else (242, 242, 247)
    im = Image.new("RGB", (w, h), bg)
    d = ImageDraw.Draw(im)
    bar = h // 12
    d.rectangle((0, 0, w, bar), fill=(30, 30, 34) if dark else (250, 250, 250))
    title_col = (230, 230, 230) if dark else (0, 0, 0)
    d.text((w // 4, bar // 4), _word(rng).title(), fill=title_col, font=_font(bar // 2))
    font = _font(_px(int(rng.integers(14, 20)), scale))
    y: float = bar + _px(10, scale)
    mine_col = _colour(rng, 0, 120) if rng.random() < 0.5 else (0, 122, 255)
    while y < h - _px(60, scale):
        mine = bool(rng.random() < 0.5)
        text = _sentence(rng, int(rng.integers(1, 7)))
        box = d.textbbox((0, 0), text, font=font)
        tw, th = box[2] - box[0], box[3] - box[1]
        pad = _px(8, scale)
        x0 = w - tw - 3 * pad if mine else 2 * pad
        fill = mine_col if mine else ((50, 50, 55) if dark else (229, 229, 234))
        d.rounded_rectangle((x0 - pad, y, x0 + tw + pad, y + th + 2 * pad), radius=_px(12, scale), fill=fill)
        tc = (255, 255, 255) if mine or dark else (0, 0, 0)
        d.text((x0 - box[0], y + pad - box[1]), text, fill=tc, font=font)
        y += th + 2 * pad + _px(int(rng.integers(6, 18)), scale)
    d.rectangle((0, h - _px(50, scale), w, h), fill=(30, 30, 34) if dark else (250, 250, 250))
    return im


def _text(rng: np.random.Generator, scale: float = 1.0) -> Image.Image:
    w, h = _size(rng, portrait=bool(rng.random() < 0.5), scale=scale)
    terminal = bool(rng.random() < 0.4)
    bg = (12, 12, 12) if terminal else (255, 255, 255)
    fg = (200, 200, 200) if terminal else (20, 20, 20)
    im = Image.new("RGB", (w, h), bg)
    d = ImageDraw.Draw(im)
    size = _px(int(rng.integers(11, 17)), scale)
    font = _font(size)
    y = _px(10, scale)
    while y < h - size:
        line = ("$ " if terminal and rng.random() < 0.3 else "") + _sentence(rng, int(rng.integers(2, 12)))
        d.text((_px(10, scale), y), line, fill=fg, font=font)
        y += max(1, int(size * 1.4))
    return im


def _chart(rng: np.random.Generator, scale: float = 1.0) -> Image.Image:
    w, h = _size(rng, portrait=False, scale=scale)
    im = Image.new("RGB", (w, h), (255, 255, 255))
    d = ImageDraw.Draw(im)
    left, bottom, top, right = _px(50, scale), h - _px(40, scale), _px(40, scale), w - _px(20, scale)
    d.line((left, top, left, bottom), fill=(0, 0, 0), width=_px(2, scale))
    d.line((left, bottom, right, bottom), fill=(0, 0, 0), width=_px(2, scale))
    for i in range(5):
        y = bottom - (bottom - top) * i / 4
        d.line((left, y, right, y), fill=(220, 220, 220))
        d.text((_px(8, scale), y - _px(6, scale)), str(25 * i), fill=(0, 0, 0), font=_font(_px(11, scale)))
    d.text((left, _px(8, scale)), _sentence(rng, 3).title(), fill=(0, 0, 0), font=_font(_px(18, scale)))
    n = int(rng.integers(4, 12))
    vals = rng.uniform(0.1, 1.0, n)
    col = _colour(rng, 0, 200)
    step = (right - left) / n
    if rng.random() < 0.5:
        for i, v in enumerate(vals):
            x0 = left + i * step + step * 0.15
            d.rectangle((x0, bottom - v * (bottom - top), x0 + step * 0.7, bottom), fill=col)
    else:
        pts = [(left + (i + 0.5) * step, bottom - v * (bottom - top)) for i, v in enumerate(vals)]
        d.line(pts, fill=col, width=_px(3, scale))
        r = _px(4, scale)
        for x, y in pts:
            d.ellipse((x - r, y - r, x + r, y + r), fill=col)
    return im


def _flat(rng: np.random.Generator, scale: float = 1.0) -> Image.Image:
    w, h = _size(rng, portrait=bool(rng.random() < 0.5), scale=scale)
    im = Image.new("RGB", (w, h), _colour(rng))
    if rng.random() < 0.3:
        border = _px(int(rng.integers(1, 6)), scale)
        ImageDraw.Draw(im).rectangle((0, 0, w - 1, h - 1), outline=_colour(rng), width=border)
    return im


def _gradient(rng: np.random.Generator, scale: float = 1.0) -> Image.Image:
    w, h = _size(rng, portrait=bool(rng.random() < 0.5), scale=scale)
    a = np.array(_colour(rng), dtype=np.float32)
    b = np.array(_colour(rng), dtype=np.float32)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    if rng.random() < 0.5:
        ang = rng.uniform(0, 2 * np.pi)
        t = xx * np.cos(ang) + yy * np.sin(ang)
    else:
        cx, cy = rng.uniform(0, w), rng.uniform(0, h)
        t = np.hypot(xx - cx, yy - cy)
    t = (t - t.min()) / max(1e-6, float(t.max() - t.min()))
    arr = a[None, None, :] * (1 - t[:, :, None]) + b[None, None, :] * t[:, :, None]
    return Image.fromarray(np.clip(np.rint(arr), 0, 255).astype(np.uint8), "RGB")


def _fit_words(d: ImageDraw.ImageDraw, line: str, font: ImageFont.FreeTypeFont | ImageFont.ImageFont,
               length: float) -> str:
    """The longest prefix of whole words of ``line`` at most ``length`` wide (at least its first word).

    A binary search over the word count: a prefix only grows wider with more words, so this is the same
    line as dropping the last word until it fits, with about 4 measurements instead of up to 13.
    """
    words = line.split(" ")
    lo, hi = 1, len(words)  # invariant: the answer is in [lo, hi]
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if d.textlength(" ".join(words[:mid]), font=font) > length:
            hi = mid - 1
        else:
            lo = mid
    return " ".join(words[:lo])


def _document(rng: np.random.Generator, scale: float = 1.0) -> Image.Image:
    h = _px(int(rng.integers(560, 760)), scale)
    w = int(h / 1.414)
    paper = (int(rng.integers(235, 256)),) * 3
    im = Image.new("RGB", (w, h), paper)
    d = ImageDraw.Draw(im)
    margin = w // 10
    d.text((margin, margin), _sentence(rng, 4).title(), fill=(0, 0, 0), font=_font(_px(22, scale)))
    y = margin + _px(40, scale)
    font = _font(_px(11, scale))
    while y < h - margin:
        for _ in range(int(rng.integers(3, 8))):
            if y >= h - margin:
                break
            length = rng.uniform(0.6, 1.0) * (w - 2 * margin)
            line = _fit_words(d, _sentence(rng, 14), font, length)
            d.text((margin, y), line, fill=(30, 30, 30), font=font)
            y += _px(15, scale)
        y += _px(12, scale)
    if rng.random() < 0.5:  # a light scan blur
        im = im.filter(ImageFilter.GaussianBlur(0.6 * scale))
    return im


def _meme(rng: np.random.Generator, scale: float = 1.0) -> Image.Image:
    w, h = _size(rng, portrait=False, scale=scale)
    im = Image.new("RGB", (w, h), _colour(rng))
    d = ImageDraw.Draw(im)
    for _ in range(int(rng.integers(3, 9))):
        x0, y0 = int(rng.integers(0, w)), int(rng.integers(0, h))
        lo = _px(20, scale)
        x1 = x0 + int(rng.integers(lo, max(lo + 1, w // 2)))
        y1 = y0 + int(rng.integers(lo, max(lo + 1, h // 2)))
        if rng.random() < 0.5:
            d.ellipse((x0, y0, x1, y1), fill=_colour(rng))
        else:
            d.rectangle((x0, y0, x1, y1), fill=_colour(rng))
    im = im.filter(ImageFilter.GaussianBlur(2 * scale))
    d = ImageDraw.Draw(im)
    font = _font(h // 9)
    stroke = _px(3, scale)
    for top in (True, False):
        text = _sentence(rng, int(rng.integers(2, 4))).upper()
        box = d.textbbox((0, 0), text, font=font, stroke_width=stroke)
        x = (w - (box[2] - box[0])) // 2 - box[0]
        y = (h // 30 - box[1]) if top else (h - (box[3] - box[1]) - h // 30 - box[1])
        d.text((x, y), text, fill=(255, 255, 255), font=font, stroke_width=stroke, stroke_fill=(0, 0, 0))
    return im


FAMILIES: dict[str, Callable[[np.random.Generator, float], Image.Image]] = {
    "chat": _chat,
    "text": _text,
    "chart": _chart,
    "flat": _flat,
    "gradient": _gradient,
    "document": _document,
    "meme": _meme,
}
"""Family name -> drawing function ((rng, scale) -> RGB image)."""


def plan(count: int, families: tuple[str, ...] | None = None) -> list[tuple[int, str]]:
    """(index, family) for each image: families in turn, so every family gets count/len(families)."""
    fams = families or tuple(FAMILIES)
    unknown = [f for f in fams if f not in FAMILIES]
    if unknown:
        raise ValueError(f"unknown families {unknown}; known: {', '.join(FAMILIES)}")
    return [(i, fams[i % len(fams)]) for i in range(count)]


def generate_image(index: int, family: str, seed: int, scale: float = 1.0) -> Image.Image:
    """Image ``index`` of ``family`` for ``seed`` at ``scale`` (pure and deterministic)."""
    if not 0.05 <= scale <= 4.0:
        raise ValueError(f"scale must be within [0.05, 4], got {scale}")
    return FAMILIES[family](np.random.default_rng([seed, index]), scale)


def _write(job: tuple[str, int, str, int, float]) -> str:
    out, index, family, seed, scale = job
    path = Path(out) / family / f"{family}_{index:05d}.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    generate_image(index, family, seed, scale).save(path, format="PNG", optimize=False)
    return str(path)


def generate_corpus(
    out: str | os.PathLike[str],
    count: int,
    seed: int,
    *,
    workers: int = 1,
    families: tuple[str, ...] | None = None,
    scale: float = 1.0,
) -> Iterator[str]:
    """Write ``count`` images under ``out/<family>/`` and yield each path as it is written."""
    from research.parallel import imap

    if not 0.05 <= scale <= 4.0:
        raise ValueError(f"--scale must be within [0.05, 4], got {scale}")
    jobs = [(str(out), i, fam, seed, scale) for i, fam in plan(count, families)]
    yield from imap(_write, jobs, workers=workers)
