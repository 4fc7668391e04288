"""Decode image files into ``HxWx3`` uint8 RGB arrays, safely.

Two modes:

``exact``
    Full-resolution decode, then Pillow's ``convert("RGB")`` (alpha dropped, palette expanded,
    CMYK/16-bit/float converted the way Pillow does). Hashing this array gives exactly the hash the
    reference PDQ gives on the same file.
``fast`` (default)
    JPEG files are decoded at a reduced scale by libjpeg's DCT scaling (Pillow ``draft``), never below
    :data:`FAST_MIN_SIDE` pixels on the shorter side; other formats are decoded fully and then
    box-reduced by an integer factor with the same floor. The hash stays within a few bits of the
    full-resolution hash (measured by ``pocketscan bench hash``) at a fraction of the cost.

In both modes the EXIF orientation is applied (like ``ImageOps.exif_transpose``) unless
``orient=False``, and animated GIF/WebP/PNG files give their first frame.

Every failure (missing or empty file, unknown format, truncated data, a decompression bomb over
:data:`MAX_PIXELS`, which is refused from the header before any pixel is decoded, an image smaller
than :data:`MIN_SIDE`) raises :class:`~scanner.errors.ImageError` naming the file and the reason.
Pillow's global settings (``MAX_IMAGE_PIXELS``, ``LOAD_TRUNCATED_IMAGES``) are never changed.

The image guard (:func:`open_image`, :func:`decode_cost`, :func:`check_decode_cost`) is the one
door every decode goes through (the scanner, the TUI's thumbnails, research): a format allow-list
(:data:`ALLOWED_FORMATS`, passed to ``Image.open`` so no other parser ever sees the bytes), the
pixel cap, and a memory estimate from the header's dimensions and pixel mode, checked against
:data:`MAX_DECODE_BYTES` before any pixel is decoded. With it any file decodes within 512 MB peak
RSS or is refused with a clear error (measured by ``tests/adversarial/test_hostile_images.py``).
"""

from __future__ import annotations

import io
import os
import warnings
from typing import IO, Literal

import numpy as np
from PIL import Image, ImageFile

from scanner.errors import ImageError

__all__ = [
    "ALLOWED_FORMATS",
    "FAST_MIN_SIDE",
    "JPEG_MAX_PIXELS_PER_BYTE",
    "MAX_DECODE_BYTES",
    "MAX_PIXELS",
    "MIN_SIDE",
    "DecodeMode",
    "check_decode_cost",
    "decode_cost",
    "load_luma_or_rgb",
    "load_luma_or_rgb_bytes",
    "load_rgb",
    "load_rgb_bytes",
    "open_image",
]

DecodeMode = Literal["fast", "exact"]

MAX_PIXELS = 100_000_000
"""Images with more pixels than this (from the header) are refused before decoding."""
MIN_SIDE = 5
"""Images with a side shorter than this cannot be hashed meaningfully (PDQ gives all zeros)."""
JPEG_MAX_PIXELS_PER_BYTE = 4096
"""A JPEG declaring more pixels per byte of file than this (over 4 megapixels) is refused as a forged or
truncated header: even a flat, progressive, optimised JPEG needs about 1 bit per 8x8 block per component,
i.e. one byte per ~40 pixels, so this leaves a 100x margin while sparing libjpeg from padding out
megapixels of nothing."""
FAST_MIN_SIDE = 720
"""Fast mode never decodes below this many pixels on the shorter side (a 12 MP photo, 3024 or 3000 px on
its shorter side, decodes at 1/4 scale: 756 or 750 px). Measured with ``pocketscan bench hash``: with
512, fine textures of 1024 px (halved to 512) drifted 16-24 bits from the full-resolution hash."""
MAX_DECODE_BYTES = 352 * 1024 * 1024
"""Largest estimated decode memory (decoded raster, its RGB conversion and the output array) allowed."""
ALLOWED_FORMATS: tuple[str, ...] = ("JPEG", "MPO", "PNG", "GIF", "WEBP", "BMP", "TIFF", "PPM", "TGA", "ICO")
"""Pillow format plugins allowed to parse untrusted bytes (MPO is the JPEG variant many phones write)."""

# EXIF orientation tag value -> Pillow transpose, the same table as ImageOps.exif_transpose.
_ORIENT = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}
_EXIF_ORIENTATION = 0x0112


def load_rgb(
    path: str | os.PathLike[str], *, mode: DecodeMode = "fast", orient: bool = True
) -> np.ndarray:
    """Decode an image file to an ``HxWx3`` uint8 RGB array.

    Args:
        path: the image file.
        mode: ``"fast"`` (reduced-scale decode) or ``"exact"`` (full resolution).
        orient: apply the EXIF orientation (default); ``False`` keeps the stored pixel layout.

    Raises:
        ImageError: the file cannot be read or decoded, or is too large or too small.
    """
    return _load_path(path, mode, orient, luma_ok=False)


def load_luma_or_rgb(
    path: str | os.PathLike[str], *, mode: DecodeMode = "fast", orient: bool = True
) -> np.ndarray:
    """Like :func:`load_rgb`, but a JPEG decoded at reduced scale in fast mode comes back as its ``HxW``
    uint8 luminance plane (libjpeg then skips chroma and colour conversion, about 25% faster).

    For hashers that only look at luminance (PDQ): the JPEG's Y is ``0.299 R + 0.587 G + 0.114 B``, the
    same weights PDQ uses. Everything else returns ``HxWx3`` RGB exactly as :func:`load_rgb`.
    """
    return _load_path(path, mode, orient, luma_ok=True)


def load_luma_or_rgb_bytes(
    data: bytes, *, name: str = "<bytes>", mode: DecodeMode = "fast", orient: bool = True
) -> np.ndarray:
    """:func:`load_luma_or_rgb` for an encoded image held in memory."""
    _check_mode(mode)
    if not data:
        raise ImageError(name, "empty file (0 bytes)")
    return _decode(io.BytesIO(data), name, mode, orient, len(data), luma_ok=True)


def _load_path(path: str | os.PathLike[str], mode: DecodeMode, orient: bool, *, luma_ok: bool) -> np.ndarray:
    name = os.fspath(path)
    _check_mode(mode)
    try:
        size = os.path.getsize(name)
    except FileNotFoundError:
        raise ImageError(name, "no such file") from None
    except OSError as exc:
        raise ImageError(name, f"cannot read file ({exc.strerror or exc})") from None
    if os.path.isdir(name):
        raise ImageError(name, "is a directory, not an image file")
    if size == 0:
        raise ImageError(name, "empty file (0 bytes)")
    try:
        with open(name, "rb") as fp:
            return _decode(fp, name, mode, orient, size, luma_ok=luma_ok)
    except OSError as exc:
        if isinstance(exc, ImageError):  # pragma: no cover - ImageError is not an OSError
            raise
        raise ImageError(name, f"cannot read file ({exc.strerror or exc})") from None


def load_rgb_bytes(
    data: bytes, *, name: str = "<bytes>", mode: DecodeMode = "fast", orient: bool = True
) -> np.ndarray:
    """Decode an encoded image held in memory; same behaviour and errors as :func:`load_rgb`."""
    _check_mode(mode)
    if not data:
        raise ImageError(name, "empty file (0 bytes)")
    return _decode(io.BytesIO(data), name, mode, orient, len(data))


def _check_mode(mode: str) -> None:
    if mode not in ("fast", "exact"):
        raise ValueError(f"mode must be 'fast' or 'exact', not {mode!r}")


_ALPHA_MODES = frozenset({"RGBA", "LA", "PA", "RGBa", "La"})
_BYTES_PER_PIXEL = {"1": 1, "L": 1, "P": 1, "I;16": 2, "I;16L": 2, "I;16B": 2, "I;16N": 2}
"""Pillow's in-memory bytes per pixel for one-band modes; every other mode is stored in 4 bytes."""


def decode_cost(width: int, height: int, mode: str, *, out_bands: int = 3, reduce: int = 1) -> int:
    """Estimated peak bytes to decode a ``width`` x ``height`` image of Pillow ``mode`` into an array.

    The decoded raster (Pillow keeps 1, 2 or 4 bytes per pixel), plus a full-size premultiplied copy
    for modes with alpha (Pillow makes one to reduce or resize them), plus the RGB conversion when
    the mode is not RGB or L (4 bytes per pixel) and the ``out_bands``-byte output, both after an
    integer ``reduce``.
    """
    pixels = width * height
    raster = pixels * _BYTES_PER_PIXEL.get(mode, 4)
    premultiplied = pixels * 4 if mode in _ALPHA_MODES else 0  # Pillow's reduce/resize copy alpha images
    after = pixels // max(1, reduce) ** 2
    convert = 0 if mode in ("RGB", "L") else after * 4
    return raster + premultiplied + convert + after * out_bands


def check_decode_cost(im: Image.Image, name: str, *, out_bands: int = 3, reduce: int = 1) -> None:
    """Refuse (ImageError) an opened image whose decode would need more than :data:`MAX_DECODE_BYTES`."""
    width, height = im.size
    cost = decode_cost(width, height, im.mode, out_bands=out_bands, reduce=reduce)
    if cost > MAX_DECODE_BYTES:
        raise ImageError(
            name,
            f"{width}x{height} {im.mode} would need about {cost / 2**20:.0f} MiB to decode, over the "
            f"{MAX_DECODE_BYTES // 2**20} MiB memory limit; refused before decoding",
        )


def open_image(fp: IO[bytes] | str | os.PathLike[str], name: str) -> Image.Image:
    """The guard's door: open untrusted image bytes with the format allow-list and the pixel cap.

    Only the header is read. The caller closes the image, and calls :func:`check_decode_cost`
    (after any ``draft``) before loading pixels. Raises ImageError.
    """
    with warnings.catch_warnings():
        # Our own limit (MAX_PIXELS) replaces Pillow's warning; Pillow's hard error still applies.
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        warnings.simplefilter("ignore", UserWarning)
        Image.init()  # register every plugin so that the allow-list's names resolve
        formats = [f for f in ALLOWED_FORMATS if f in Image.OPEN]
        try:
            im: Image.Image = Image.open(fp, formats=formats)
        except Image.DecompressionBombError as exc:
            raise ImageError(name, f"decompression bomb refused before decoding ({exc})") from None
        except Image.UnidentifiedImageError:
            raise ImageError(
                name, "not an image Pillow can read (unknown or corrupt format, or a format not allowed: "
                f"{', '.join(ALLOWED_FORMATS)})") from None
        except Exception as exc:
            raise ImageError(name, f"cannot read the image header ({_describe(exc)})") from None
    width, height = im.size
    if width * height > MAX_PIXELS:
        im.close()
        raise ImageError(
            name,
            f"{width}x{height} is {width * height / 1e6:.0f} megapixels, over the "
            f"{MAX_PIXELS // 1_000_000} megapixel limit (decompression bomb guard); refused "
            "before decoding",
        )
    return im


def _decode(
    fp: IO[bytes], name: str, mode: DecodeMode, orient: bool, nbytes: int, *, luma_ok: bool = False
) -> np.ndarray:
    im = open_image(fp, name)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        warnings.simplefilter("ignore", UserWarning)
        try:
            width, height = im.size
            if min(width, height) < MIN_SIDE:
                raise ImageError(
                    name, f"image is {width}x{height} px, too small to hash (each side needs >= {MIN_SIDE})"
                )
            pixels = width * height
            if im.format == "JPEG" and pixels > 4_000_000 and pixels > JPEG_MAX_PIXELS_PER_BYTE * nbytes:
                raise ImageError(
                    name,
                    f"JPEG data ({nbytes} bytes) is far too small for its declared {width}x{height} "
                    "size (forged or truncated header)",
                )
            if mode == "fast" and im.format == "JPEG" and min(width, height) >= 2 * FAST_MIN_SIDE:
                # libjpeg's DCT scaling by 1/2, 1/4 or 1/8: the largest keeping >= FAST_MIN_SIDE
                im.draft("L" if luma_ok and im.mode == "RGB" else "RGB", (FAST_MIN_SIDE, FAST_MIN_SIDE))
            luma_plane = luma_ok and mode == "fast" and im.format == "JPEG" and im.mode == "L"
            reduce = min(im.size) // FAST_MIN_SIDE if mode == "fast" and im.format != "JPEG" else 1
            check_decode_cost(im, name, out_bands=1 if luma_plane else 3, reduce=max(1, reduce))
            if ImageFile.LOAD_TRUNCATED_IMAGES:  # someone flipped Pillow's global: still refuse truncation
                raise ImageError(name, "Pillow's LOAD_TRUNCATED_IMAGES is set; refusing to decode")
            im.load()
            if mode == "fast":
                im = _reduce(im)
            if orient:
                im = _apply_orientation(im)
            # the luminance plane of a (reduced-scale or grey) JPEG, else RGB
            arr = _to_array(im if luma_plane or im.mode == "RGB" else im.convert("RGB"))
        except ImageError:
            raise
        except MemoryError:
            raise ImageError(name, "not enough memory to decode this image") from None
        except Exception as exc:
            raise ImageError(name, f"cannot decode image data ({_describe(exc)})") from None
        finally:
            im.close()
    shape_ok = arr.ndim == 2 or (arr.ndim == 3 and arr.shape[2] == 3)
    if arr.dtype != np.uint8 or not shape_ok:  # pragma: no cover - Pillow's convert("RGB") gives HxWx3
        raise ImageError(name, f"decoded to an unexpected array {arr.shape} {arr.dtype}")
    return arr


_STRIP_PIXELS = 4_000_000


def _to_array(im: Image.Image) -> np.ndarray:
    """``np.asarray(im)`` in horizontal strips: Pillow's array export copies the whole image twice
    (``tobytes`` joins its chunks), strips keep the transient to a few megabytes."""
    width, height = im.size
    bands = len(im.getbands())
    shape = (height, width) if bands == 1 else (height, width, bands)
    if width * height <= _STRIP_PIXELS:
        return np.asarray(im)
    out = np.empty(shape, dtype=np.uint8)
    rows = max(1, _STRIP_PIXELS // width)
    for top in range(0, height, rows):
        n = min(rows, height - top)
        strip = np.frombuffer(im.crop((0, top, width, top + n)).tobytes(), dtype=np.uint8)
        out[top:top + n] = strip.reshape((n, width) if bands == 1 else (n, width, bands))
    return out


def _reduce(im: Image.Image) -> Image.Image:
    """Box-reduce by an integer factor keeping the shorter side >= FAST_MIN_SIDE (fast mode)."""
    factor = min(im.size) // FAST_MIN_SIDE
    if factor < 2 or im.mode not in ("RGB", "L", "RGBA", "LA", "CMYK", "I", "F"):
        return im
    return im.reduce(factor)


def _apply_orientation(im: Image.Image) -> Image.Image:
    try:
        orientation = im.getexif().get(_EXIF_ORIENTATION, 1)
    except Exception:  # unreadable EXIF: keep the stored layout
        return im
    method = _ORIENT.get(orientation) if isinstance(orientation, int) else None
    return im if method is None else im.transpose(method)


def _describe(exc: BaseException) -> str:
    text = str(exc).strip()
    if "truncated" in text.lower() or isinstance(exc, EOFError):
        return f"truncated or incomplete file: {text or type(exc).__name__}"
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
