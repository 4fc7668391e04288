"""Named, deterministic image transforms for robustness evaluations.

Every transform is ``Callable[[PIL.Image.Image, numpy.random.Generator], PIL.Image.Image]``: it takes an
image (any mode; it is converted to RGB first) and a generator (only the noise transforms draw from it), and
returns a new RGB image. Parameters are fixed (no probabilities, no random ranges), so a transform applied to
the same image with a generator seeded the same way always gives the same pixels.

The set follows thorn's ``perception`` benchmark (``perception/benchmarking/image_transforms.py``) and is
wider. Where our parameters differ from thorn's published table, :data:`DESCRIPTIONS` says so. Two
differences matter when comparing figures: thorn saves every variant as JPEG quality 95 (OpenCV default)
after a noop resize to 256 px, and its ``jpeg95`` row is imgaug's compression *strength* 95 (PIL quality ~7).
Here, transforms return pixels; the caller decides how to store them (the research commands hash them
directly, or save them as PNG).

Usage::

    from research.transforms import TRANSFORMS, apply_transform
    rng = numpy.random.default_rng(seed)
    out = TRANSFORMS["crop0.05"](image, rng)
    out = apply_transform("jpeg70", image, seed=7)  # same thing with a per-call generator

Names: ``noop jpeg95 jpeg70 jpeg50 resize0.5 resize0.25 crop0.02 crop0.05 crop0.1 pad0.2 rotate4 rotate90
mirror blur2 noise0.05 noise0.2 gamma2 vignette watermark caption screenshot recolour``.
"""

from __future__ import annotations

import io
from collections.abc import Callable

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont, ImageOps

__all__ = [
    "DEFAULT_ROBUSTNESS_SET",
    "DESCRIPTIONS",
    "TRANSFORMS",
    "Transform",
    "apply_transform",
]

Transform = Callable[[Image.Image, np.random.Generator], Image.Image]
"""A deterministic image transform: ``(image, rng) -> new RGB image``."""


def _rgb(img: Image.Image) -> Image.Image:
    if img.mode == "RGB":
        return img
    if img.mode in ("RGBA", "LA", "P"):
        rgba = img.convert("RGBA")
        bg = Image.new("RGB", rgba.size, (255, 255, 255))
        bg.paste(rgba, mask=rgba.getchannel("A"))
        return bg
    return img.convert("RGB")


def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    """Pillow's bundled scalable font (no system fonts, so results do not depend on the machine)."""
    return ImageFont.load_default(size=max(6, int(size)))


def _noop(img: Image.Image, rng: np.random.Generator) -> Image.Image:
    return _rgb(img).copy()


def _jpeg(quality: int) -> Transform:
    def run(img: Image.Image, rng: np.random.Generator) -> Image.Image:
        buf = io.BytesIO()
        _rgb(img).save(buf, format="JPEG", quality=quality, subsampling=2 if quality < 90 else 0)
        buf.seek(0)
        with Image.open(buf) as out:
            return out.convert("RGB")

    return run


def _resize(scale: float) -> Transform:
    def run(img: Image.Image, rng: np.random.Generator) -> Image.Image:
        im = _rgb(img)
        w, h = im.size
        size = (max(1, round(w * scale)), max(1, round(h * scale)))
        return im.resize(size, Image.Resampling.LANCZOS)

    return run


def _crop(fraction: float) -> Transform:
    def run(img: Image.Image, rng: np.random.Generator) -> Image.Image:
        im = _rgb(img)
        w, h = im.size
        dx, dy = round(w * fraction), round(h * fraction)
        if w - 2 * dx < 1 or h - 2 * dy < 1:
            return im.copy()
        return im.crop((dx, dy, w - dx, h - dy))

    return run


def _pad(fraction: float) -> Transform:
    def run(img: Image.Image, rng: np.random.Generator) -> Image.Image:
        im = _rgb(img)
        w, h = im.size
        dy = round(h * fraction)
        out = Image.new("RGB", (w, h + 2 * dy), (0, 0, 0))
        out.paste(im, (0, dy))
        return out

    return run


def _rotate(degrees: float) -> Transform:
    def run(img: Image.Image, rng: np.random.Generator) -> Image.Image:
        im = _rgb(img)
        if degrees % 90 == 0:
            return im.rotate(degrees, expand=True)
        return im.rotate(degrees, resample=Image.Resampling.BILINEAR, expand=False, fillcolor=(0, 0, 0))

    return run


def _mirror(img: Image.Image, rng: np.random.Generator) -> Image.Image:
    return ImageOps.mirror(_rgb(img))


def _blur(sigma: float) -> Transform:
    def run(img: Image.Image, rng: np.random.Generator) -> Image.Image:
        return _rgb(img).filter(ImageFilter.GaussianBlur(radius=sigma))

    return run


def _noise(sd_fraction: float) -> Transform:
    def run(img: Image.Image, rng: np.random.Generator) -> Image.Image:
        arr = np.asarray(_rgb(img), dtype=np.float32)
        noise = rng.normal(0.0, sd_fraction * 255.0, size=arr.shape[:2]).astype(np.float32)
        out = np.clip(arr + noise[:, :, None], 0, 255)
        return Image.fromarray(np.rint(out).astype(np.uint8), "RGB")

    return run


def _gamma(gamma: float) -> Transform:
    lut = [round(255.0 * (i / 255.0) ** gamma) for i in range(256)]

    def run(img: Image.Image, rng: np.random.Generator) -> Image.Image:
        return _rgb(img).point(lut * 3)

    return run


def _vignette(img: Image.Image, rng: np.random.Generator) -> Image.Image:
    arr = np.asarray(_rgb(img), dtype=np.float32)
    h, w = arr.shape[:2]
    ys = np.exp(-((np.arange(h) - (h - 1) / 2) ** 2) / (2 * (h / 2) ** 2))
    xs = np.exp(-((np.arange(w) - (w - 1) / 2) ** 2) / (2 * (w / 2) ** 2))
    mask = np.outer(ys, xs)
    mask /= mask.max()
    out = np.clip(arr * mask[:, :, None], 0, 255)
    return Image.fromarray(np.rint(out).astype(np.uint8), "RGB")


def _watermark(img: Image.Image, rng: np.random.Generator) -> Image.Image:
    """Thorn's watermark: "TEST", 20% of the width, bottom-left, black at alpha 200/255."""
    im = _rgb(img).convert("RGBA")
    w, h = im.size
    target = max(8, int(0.2 * w))
    probe = 100
    box = _font(probe).getbbox("TEST")
    font = _font(max(6, int(probe * target / max(1, box[2] - box[0]))))
    box = font.getbbox("TEST")
    layer = Image.new("RGBA", im.size, (0, 0, 0, 0))
    draw = ImageDraw.Draw(layer)
    margin = max(2, w // 50)
    y = h - margin - box[3]
    draw.text(
        (margin - box[0], y),
        "TEST",
        fill=(0, 0, 0, 200),
        font=font,
        stroke_width=max(1, target // 40),
        stroke_fill=(0, 0, 0, 200),
    )
    return Image.alpha_composite(im, layer).convert("RGB")


def _caption(img: Image.Image, rng: np.random.Generator) -> Image.Image:
    """Meme-style text overlay: white words with a black outline at the top and the bottom."""
    im = _rgb(img).copy()
    w, h = im.size
    draw = ImageDraw.Draw(im)
    font = _font(max(8, h // 9))
    stroke = max(1, h // 150)
    for text, top in (("WHEN THE SCANNER", True), ("SEES YOUR CAT", False)):
        box = draw.textbbox((0, 0), text, font=font, stroke_width=stroke)
        tw, th = box[2] - box[0], box[3] - box[1]
        x = (w - tw) // 2 - box[0]
        y = (h // 30 - box[1]) if top else (h - th - h // 30 - box[1])
        draw.text((x, y), text, fill=(255, 255, 255), font=font, stroke_width=stroke, stroke_fill=(0, 0, 0))
    return im


def _screenshot(img: Image.Image, rng: np.random.Generator) -> Image.Image:
    """The image as seen in a screenshot of a phone chat: scaled to 80% width inside app chrome."""
    im = _rgb(img)
    w, h = im.size
    canvas_w = max(w, 64)
    inner_w = int(canvas_w * 0.8)
    inner_h = max(1, round(h * inner_w / w))
    status, title, footer = canvas_w // 16, canvas_w // 8, canvas_w // 6
    gap = canvas_w // 10
    canvas_h = status + title + gap + inner_h + gap + footer
    out = Image.new("RGB", (canvas_w, canvas_h), (242, 242, 247))
    draw = ImageDraw.Draw(out)
    draw.rectangle((0, 0, canvas_w, status), fill=(20, 20, 20))
    small = _font(max(6, status * 2 // 3))
    draw.text((canvas_w // 30, status // 6), "09:41", fill=(255, 255, 255), font=small)
    draw.rectangle(
        (canvas_w - canvas_w // 8, status // 4, canvas_w - canvas_w // 30, status * 3 // 4),
        outline=(255, 255, 255),
        width=max(1, status // 12),
    )
    draw.rectangle((0, status, canvas_w, status + title), fill=(250, 250, 250))
    thin = max(1, canvas_w // 400)
    draw.line((0, status + title, canvas_w, status + title), fill=(200, 200, 200), width=thin)
    draw.text((canvas_w // 5, status + title // 4), "Alex", fill=(0, 0, 0), font=_font(max(6, title // 2)))
    avatar = (canvas_w // 30, status + title // 6, canvas_w // 30 + title * 2 // 3, status + title * 5 // 6)
    draw.ellipse(avatar, fill=(120, 160, 220))
    x0 = canvas_w - inner_w - canvas_w // 20
    y0 = status + title + gap
    bubble = max(2, canvas_w // 60)
    draw.rounded_rectangle(
        (x0 - bubble, y0 - bubble, x0 + inner_w + bubble, y0 + inner_h + bubble),
        radius=bubble * 3,
        fill=(0, 122, 255),
    )
    out.paste(im.resize((inner_w, inner_h), Image.Resampling.LANCZOS), (x0, y0))
    fy = canvas_h - footer
    draw.rectangle((0, fy, canvas_w, canvas_h), fill=(250, 250, 250))
    draw.rounded_rectangle(
        (canvas_w // 20, fy + footer // 4, canvas_w * 4 // 5, fy + footer * 3 // 4),
        radius=footer // 4,
        outline=(190, 190, 190),
        width=thin,
    )
    hint = _font(max(6, footer // 4))
    draw.text((canvas_w // 12, fy + footer // 3), "Message", fill=(150, 150, 150), font=hint)
    return out


def _recolour(img: Image.Image, rng: np.random.Generator) -> Image.Image:
    """Rotate every hue by a quarter turn (saturation and value kept), like themed recolours."""
    hsv = np.array(_rgb(img).convert("HSV"), dtype=np.uint16)
    hsv[:, :, 0] = (hsv[:, :, 0] + 64) % 256
    return Image.fromarray(hsv.astype(np.uint8), "HSV").convert("RGB")


TRANSFORMS: dict[str, Transform] = {
    "noop": _noop,
    "jpeg95": _jpeg(95),
    "jpeg70": _jpeg(70),
    "jpeg50": _jpeg(50),
    "resize0.5": _resize(0.5),
    "resize0.25": _resize(0.25),
    "crop0.02": _crop(0.02),
    "crop0.05": _crop(0.05),
    "crop0.1": _crop(0.10),
    "pad0.2": _pad(0.2),
    "rotate4": _rotate(4.0),
    "rotate90": _rotate(90.0),
    "mirror": _mirror,
    "blur2": _blur(2.0),
    "noise0.05": _noise(0.05),
    "noise0.2": _noise(0.2),
    "gamma2": _gamma(2.0),
    "vignette": _vignette,
    "watermark": _watermark,
    "caption": _caption,
    "screenshot": _screenshot,
    "recolour": _recolour,
}
"""Every named transform, in report order."""

DESCRIPTIONS: dict[str, str] = {
    "noop": "unchanged pixels (thorn 2020 resized to 256 px first; we do not)",
    "jpeg95": (
        "PIL JPEG quality 95, 4:4:4 (thorn's 'jpeg95' was imgaug strength 95 = quality ~7: not comparable)"
    ),
    "jpeg70": "PIL JPEG quality 70, 4:2:0",
    "jpeg50": "PIL JPEG quality 50, 4:2:0",
    "resize0.5": "downscale to 50% per side, Lanczos",
    "resize0.25": "downscale to 25% per side, Lanczos",
    "crop0.02": "remove 2% of width/height from every side, no resize back",
    "crop0.05": "remove 5% from every side, no resize back (as thorn/imgaug crop0.05)",
    "crop0.1": "remove 10% from every side, no resize back",
    "pad0.2": "add black bands of 20% height at top and bottom, canvas grows (as thorn/imgaug pad0.2)",
    "rotate4": "rotate 4 degrees about the centre, same canvas, black corners, bilinear (as thorn rotate4)",
    "rotate90": "rotate 90 degrees counter-clockwise (lossless); dihedral matching should recover it",
    "mirror": "horizontal flip (lossless); dihedral matching should recover it",
    "blur2": "Gaussian blur, PIL radius 2 (thorn: imgaug sigma 2)",
    "noise0.05": "additive Gaussian noise, sd 0.05*255, same on all channels, from the seeded generator",
    "noise0.2": "additive Gaussian noise, sd 0.2*255 = 51, same on all channels (as thorn/imgaug noise0.2)",
    "gamma2": "gamma 2: out = 255*(in/255)^2 (as thorn/imgaug gamma2)",
    "vignette": "multiply by Gaussian kernels, sigma H/2 and W/2, peak 1 (as thorn vignette)",
    "watermark": "'TEST' at 20% of width, bottom-left, black at alpha 200/255 (thorn's watermark, PIL font)",
    "caption": "meme-style white outlined captions at top and bottom, 1/9 of the height",
    "screenshot": "the image at 80% width in a phone chat screenshot (status bar, title, bubble, input bar)",
    "recolour": "hue rotated by a quarter turn in HSV, saturation and value kept",
}
"""One line per transform: what it does and how it relates to thorn's published set."""

DEFAULT_ROBUSTNESS_SET: tuple[str, ...] = tuple(TRANSFORMS)
"""The transforms `pocketscan research robustness` applies when none are named."""


def apply_transform(name: str, img: Image.Image, *, seed: int = 0) -> Image.Image:
    """Apply transform ``name`` with a fresh generator seeded by ``seed``.

    Raises:
        KeyError: ``name`` is not a known transform (the message lists the known names).
    """
    try:
        fn = TRANSFORMS[name]
    except KeyError:
        raise KeyError(f"unknown transform {name!r}; known: {', '.join(TRANSFORMS)}") from None
    return fn(img, np.random.default_rng(seed))
