"""Decoding real-world files: orientation, modes, animation, fast vs exact, and every bad input."""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageFile, ImageOps

from scanner.errors import ImageError, ScannerError
from scanner.hamming import hamming
from scanner.hashers.pdq import pdq_hash
from scanner.hashing import hash_bytes, hash_file
from scanner.image import FAST_MIN_SIDE, load_rgb, load_rgb_bytes

REPO = Path(__file__).resolve().parents[2]
SAMPLE = REPO / "samples" / "chelsea.jpg"
MODES = REPO.parent / "shared" / "pdq-data" / "misc-images" / "modes"


@pytest.fixture(scope="module")
def upright() -> Image.Image:
    return Image.open(SAMPLE).convert("RGB")


def _save(im: Image.Image, path: Path, **kw: object) -> Path:
    im.save(path, **kw)
    return path


# ----- orientation ---------------------------------------------------------------------------------


@pytest.mark.parametrize("orientation", [2, 3, 4, 5, 6, 7, 8])
def test_exif_orientation_applied_like_exif_transpose(orientation, upright, tmp_path):
    exif = Image.Exif()
    exif[0x0112] = orientation
    path = _save(upright, tmp_path / "o.png", exif=exif)
    expected = np.asarray(ImageOps.exif_transpose(Image.open(path)).convert("RGB"))
    for mode in ("fast", "exact"):
        np.testing.assert_array_equal(load_rgb(path, mode=mode), expected)
    assert load_rgb(path, orient=False).shape == np.asarray(upright).shape


def test_phone_photo_with_orientation_6_hashes_like_its_upright_twin(upright, tmp_path):
    # A camera stores the pixels sideways and says "rotate 90 clockwise to display" (orientation 6).
    stored = upright.transpose(Image.Transpose.ROTATE_90)
    exif = Image.Exif()
    exif[0x0112] = 6
    sideways = _save(stored, tmp_path / "phone.jpg", exif=exif, quality=95)
    twin = _save(upright, tmp_path / "twin.jpg", quality=95)
    for mode in ("fast", "exact"):
        a = hash_file(sideways, mode=mode)
        b = hash_file(twin, mode=mode)
        assert hamming(a.hash, b.hash) <= 10
    assert hamming(hash_file(sideways, mode="exact").hash, pdq_hash(np.asarray(stored)).hash) > 40


# ----- modes and animation -------------------------------------------------------------------------

PIL_MODES = ["1", "L", "LA", "P", "PA", "RGBA", "CMYK", "I;16", "I", "F", "YCbCr", "RGB"]


@pytest.mark.parametrize("pil_mode", PIL_MODES)
def test_every_mode_decodes_like_pillow_convert_rgb(pil_mode, upright, tmp_path):
    im = upright.convert(pil_mode) if pil_mode not in ("I;16", "PA") else None
    if pil_mode == "I;16":
        im = Image.fromarray(np.asarray(upright.convert("L")).astype(np.uint16) * 3)
    if pil_mode == "PA":
        im = upright.convert("P")
        im = im.convert("PA")
    assert im is not None
    ext = {"CMYK": "tiff", "I": "tiff", "F": "tiff", "YCbCr": "tiff", "PA": "webp"}.get(pil_mode, "png")
    path = _save(im, tmp_path / f"m.{ext}", **({"lossless": True} if ext == "webp" else {}))
    rgb = load_rgb(path, mode="exact")
    assert rgb.dtype == np.uint8 and rgb.shape == (*upright.size[::-1], 3)
    np.testing.assert_array_equal(rgb, np.asarray(Image.open(path).convert("RGB")))
    assert len(hash_file(path).hash) == 32


@pytest.mark.skipif(not MODES.exists(), reason="../shared/pdq-data is absent")
def test_shared_mode_files_decode():
    files = sorted(MODES.iterdir())
    assert files
    for path in files:
        result = hash_file(path)
        assert result.quality >= 50, path.name


@pytest.mark.parametrize("fmt", ["GIF", "WEBP", "PNG"])
def test_animated_images_use_the_first_frame(fmt, tmp_path):
    rng = np.random.default_rng(1)
    frames = [Image.fromarray(rng.integers(0, 256, (64, 96, 3), dtype=np.uint8).repeat(4, 0).repeat(4, 1))
              for _ in range(3)]
    path = tmp_path / f"anim.{fmt.lower()}"
    kw: dict[str, object] = {"lossless": True} if fmt == "WEBP" else {}
    frames[0].save(path, format=fmt, save_all=True, append_images=frames[1:], duration=100, loop=0, **kw)
    first = Image.open(path)
    assert getattr(first, "n_frames", 1) == 3
    expected = pdq_hash(np.asarray(first.convert("RGB"))).hash
    assert hash_file(path, mode="exact").hash == expected
    others = [pdq_hash(np.asarray(f)).hash for f in frames[1:]]
    assert expected not in others


# ----- fast mode -----------------------------------------------------------------------------------


def test_fast_mode_keeps_fast_min_side_and_stays_close(upright, tmp_path):
    big = upright.resize((upright.width * 5, upright.height * 5), Image.Resampling.BICUBIC)
    path = _save(big, tmp_path / "big.jpg", quality=92)
    fast = load_rgb(path, mode="fast")
    exact = load_rgb(path, mode="exact")
    assert exact.shape[:2] == (big.height, big.width)
    assert min(fast.shape[:2]) >= FAST_MIN_SIDE
    assert fast.shape[0] < exact.shape[0]
    assert hamming(pdq_hash(fast).hash, pdq_hash(exact).hash) <= 10
    png = _save(big, tmp_path / "big.png")
    assert min(load_rgb(png, mode="fast").shape[:2]) >= FAST_MIN_SIDE
    assert hamming(hash_file(png).hash, hash_file(png, mode="exact").hash) <= 10


def test_small_files_are_identical_in_both_modes():
    assert np.array_equal(load_rgb(SAMPLE, mode="fast"), load_rgb(SAMPLE, mode="exact"))


def test_bytes_and_file_agree(tmp_path):
    data = SAMPLE.read_bytes()
    assert hash_bytes(data, mode="exact") == hash_file(SAMPLE, mode="exact")
    np.testing.assert_array_equal(load_rgb_bytes(data), load_rgb(SAMPLE))


# ----- bad input -----------------------------------------------------------------------------------


def _png_with_size(width: int, height: int, idat: bytes | None = None) -> bytes:
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    body = idat if idat is not None else zlib.compress(b"\x00" * 64)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", body) + chunk(b"IEND", b"")


def _jpeg_with_size(width: int, height: int) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (16, 16), (10, 20, 30)).save(buf, "JPEG")
    data = bytearray(buf.getvalue())
    sof = data.index(b"\xff\xc0")
    data[sof + 5 : sof + 9] = struct.pack(">HH", height, width)
    return bytes(data)


def _truncated(path: Path, fmt: str) -> bytes:
    buf = io.BytesIO()
    Image.open(path).convert("RGB").save(buf, fmt)
    data = buf.getvalue()
    return data[: len(data) // 2]


BAD_INPUTS = {
    "empty": (lambda: b"", "empty file"),
    "not-an-image": (lambda: b"hello, this is text and not a picture\n" * 20, "not an image"),
    "truncated-jpeg": (lambda: _truncated(SAMPLE, "JPEG"), "truncated"),
    "truncated-png": (lambda: _truncated(SAMPLE, "PNG"), "truncated"),
    "bomb-png-400mp": (lambda: _png_with_size(20_000, 20_000), "decompression bomb"),
    "bomb-png-120mp": (lambda: _png_with_size(12_000, 10_000), "megapixel limit"),
    "bomb-jpeg-900mp": (lambda: _jpeg_with_size(30_000, 30_000), "decompression bomb"),
    "bomb-png-huge-width": (lambda: _png_with_size(2**31 - 1, 1), "decompression bomb"),
    "one-pixel": (lambda: _png_with_size(1, 1, zlib.compress(b"\x00\x01\x02\x03")), "too small"),
    "huge-header-tiny-data": (lambda: _png_with_size(6_000, 6_000), "truncated"),
    "huge-jpeg-header-tiny-data": (lambda: _jpeg_with_size(9_000, 9_000), "too small for"),
}


@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
@pytest.mark.parametrize("mode", ["fast", "exact"])
def test_bad_input_raises_one_typed_error_naming_the_file(case, mode, tmp_path):
    make, words = BAD_INPUTS[case]
    path = tmp_path / f"{case}.img"
    path.write_bytes(make())
    max_pixels = Image.MAX_IMAGE_PIXELS
    with pytest.raises(ImageError) as info:
        hash_file(path, mode=mode)
    assert isinstance(info.value, ScannerError)
    assert str(path) in str(info.value)
    assert words in str(info.value)
    assert info.value.name == str(path)
    with pytest.raises(ImageError):
        load_rgb_bytes(path.read_bytes(), name="upload.bin", mode=mode)
    # Pillow's globals stay as they were
    assert max_pixels == Image.MAX_IMAGE_PIXELS
    assert ImageFile.LOAD_TRUNCATED_IMAGES is False


def test_missing_file_and_directory(tmp_path):
    with pytest.raises(ImageError, match="no such file"):
        load_rgb(tmp_path / "nope.jpg")
    with pytest.raises(ImageError, match="directory"):
        load_rgb(tmp_path)


def test_refuses_to_decode_when_someone_enabled_truncated_loading(tmp_path, monkeypatch):
    path = tmp_path / "t.jpg"
    path.write_bytes(_truncated(SAMPLE, "JPEG"))
    monkeypatch.setattr(ImageFile, "LOAD_TRUNCATED_IMAGES", True)
    with pytest.raises(ImageError):
        load_rgb(path)


def test_bad_mode_argument():
    with pytest.raises(ValueError):
        load_rgb(SAMPLE, mode="slow")  # type: ignore[arg-type]
