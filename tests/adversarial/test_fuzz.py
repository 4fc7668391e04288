"""Property fuzzing (hypothesis) of the client's three parsers of hostile bytes: the content decoder,
the snapshot parser and the image guard. Each may accept or refuse, but only with its one typed error.

A short run is part of the suite; a longer one::

    POCKETSCAN_FUZZ_EXAMPLES=20000 python -m pytest tests/adversarial/test_fuzz.py -q -p no:randomly
"""

from __future__ import annotations

import contextlib
import io
import os
import struct
import time
from typing import Any

import cbor2
import nacl.signing
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from client.content import CONTENT_TYPES, ID_PATTERN, MAX_TEXT_BYTES, ContentInvalid, decode_content_map
from client.errors import DecryptionFailed
from client.session import Content
from scanner.errors import ImageError, SnapshotInvalid
from scanner.image import load_rgb_bytes
from scanner.matcher import Matcher
from scanner.snapshot.format import HEADER_SIZE, SIGNING_CONTEXT
from tests.adversarial.hostile import pad

EXAMPLES = int(os.environ.get("POCKETSCAN_FUZZ_EXAMPLES", "150"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))

# ----- the content decoder -------------------------------------------------------------------------

def _bignum() -> int:
    return 10**5000  # a CBOR bignum (hypothesis must not repr it: over Python's 4300-digit limit)


_scalars = st.one_of(
    st.none(), st.booleans(), st.floats(allow_nan=True), st.text(max_size=80), st.binary(max_size=80),
    st.integers(min_value=-(2**70), max_value=2**70), st.builds(_bignum), st.just("../snapshot"),
    st.just("a b"), st.just("z" * 65), st.sampled_from([*sorted(CONTENT_TYPES), "text/html", ""]),
)
_values = st.recursive(_scalars, lambda inner: st.lists(inner, max_size=4)
                       | st.dictionaries(st.text(max_size=12), inner, max_size=5), max_leaves=20)
_att_keys = st.sampled_from(["blob_id", "key", "digest", "size", "content_type", "width", "height", "x"])
_attachments = st.dictionaries(_att_keys, st.one_of(_scalars, st.binary(min_size=32, max_size=64)),
                               max_size=8)
_maps = st.fixed_dictionaries(
    {"v": st.sampled_from([1, 1, 1, 2, "1"]), "k": st.sampled_from(["text", "image", "receipt", "x"]),
     "id": st.one_of(st.from_regex(ID_PATTERN, fullmatch=True), _scalars),
     "t": st.one_of(st.floats(allow_nan=True), st.integers(min_value=-(2**70), max_value=2**70))},
    optional={"text": st.one_of(st.text(max_size=200), _scalars), "att": st.one_of(_attachments, _values),
              "rcpt": st.lists(st.one_of(st.from_regex(ID_PATTERN, fullmatch=True), _scalars), max_size=5),
              "extra": _values},
)


def _check_accepted(d: dict[str, Any]) -> None:
    assert ID_PATTERN.fullmatch(d["id"])
    if "text" in d:
        text = d["text"]
        assert isinstance(text, str) and len(text.encode("utf-8", "surrogatepass")) <= MAX_TEXT_BYTES
    if "att" in d:
        att = d["att"]
        assert att["content_type"] in CONTENT_TYPES and ID_PATTERN.fullmatch(att["blob_id"])
        for side in ("width", "height"):
            assert att.get(side) is None or 1 <= att[side] <= 65_535


@FUZZ
@given(_maps)
def test_content_decoder_structured(d: dict[str, Any]) -> None:
    raw = bytes(cbor2.dumps(d))
    try:
        accepted = decode_content_map(raw)
    except ContentInvalid:
        return
    _check_accepted(accepted)
    content = Content.from_bytes(pad(raw))
    assert content.msg_id == accepted["id"]
    repr(content)  # nothing a peer sends may make formatting raise (bignums)


@FUZZ
@given(st.binary(max_size=600))
def test_content_decoder_raw_bytes(data: bytes) -> None:
    with contextlib.suppress(DecryptionFailed):
        Content.from_bytes(data)
    with contextlib.suppress(ContentInvalid):
        _check_accepted(decode_content_map(data))


# ----- the snapshot parser ---------------------------------------------------------------------------

@pytest.fixture(scope="module")
def snapshot() -> tuple[bytes, bytes]:
    from client.demo.world import AuthorityIdentity, build_snapshot, sample_images

    authority = AuthorityIdentity.generate()
    return authority.seed, build_snapshot(sample_images()[:2], authority, version=3)


def _resign(seed: bytes, data: bytes) -> bytes:
    """Re-sign a (mutated) header, so the fuzzed fields get past the signature to the parser behind it."""
    header = data[:HEADER_SIZE]
    signature = nacl.signing.SigningKey(seed).sign(SIGNING_CONTEXT + header).signature
    return data[:-len(signature)] + signature


@FUZZ
@given(st.lists(st.tuples(st.integers(min_value=0), st.integers(min_value=0, max_value=255)), max_size=6),
       st.booleans(), st.integers(min_value=-64, max_value=64))
def test_snapshot_parser(snapshot: tuple[bytes, bytes], flips: list[tuple[int, int]], resign: bool,
                         cut: int) -> None:
    seed, good = snapshot
    data = bytearray(good)
    for pos, value in flips:
        data[pos % HEADER_SIZE if resign else pos % len(data)] = value
    blob = bytes(data)
    if resign:
        blob = _resign(seed, blob)
    if cut:
        blob = blob[:cut] if cut < 0 else blob + bytes(cut)
    public = bytes(nacl.signing.SigningKey(seed).verify_key)
    with contextlib.suppress(SnapshotInvalid):
        Matcher(public).load(blob, now=time.time())


# ----- the image guard -------------------------------------------------------------------------------

def _small(fmt: str, mode: str = "RGB") -> bytes:
    buf = io.BytesIO()
    Image.new(mode, (40, 30), (10, 200, 30) if mode == "RGB" else 100).save(buf, fmt)
    return buf.getvalue()


_SEEDS = {"PNG": _small("PNG"), "JPEG": _small("JPEG"), "GIF": _small("GIF", "L"), "BMP": _small("BMP"),
          "WEBP": _small("WEBP"), "TIFF": _small("TIFF")}


def _with_dimensions(data: bytes, fmt: str, width: int, height: int) -> bytes:
    """Rewrite the header's dimensions (a lying header: the decompression-bomb shape)."""
    b = bytearray(data)
    if fmt == "PNG":
        b[16:24] = struct.pack(">II", width, height)
    elif fmt == "JPEG":
        sof = b.find(b"\xff\xc0")
        if sof > 0:
            b[sof + 5:sof + 9] = struct.pack(">HH", height & 0xFFFF, width & 0xFFFF)
    elif fmt == "GIF":
        b[6:10] = struct.pack("<HH", width & 0xFFFF, height & 0xFFFF)
    elif fmt == "BMP":
        b[18:26] = struct.pack("<ii", width & 0x7FFFFFFF, height & 0x7FFFFFFF)
    return bytes(b)


@FUZZ
@given(st.sampled_from(sorted(_SEEDS)), st.integers(min_value=0, max_value=70_000),
       st.integers(min_value=0, max_value=70_000),
       st.lists(st.tuples(st.integers(min_value=0), st.integers(min_value=0, max_value=255)), max_size=4),
       st.sampled_from(["fast", "exact"]))
def test_image_guard(fmt: str, width: int, height: int, flips: list[tuple[int, int]], mode: str) -> None:
    data = bytearray(_with_dimensions(_SEEDS[fmt], fmt, width, height))
    for pos, value in flips:
        data[pos % len(data)] = value
    try:
        arr = load_rgb_bytes(bytes(data), name="fuzz", mode=mode)  # type: ignore[arg-type]
    except ImageError:
        return
    assert arr.dtype.name == "uint8" and arr.shape[0] * arr.shape[1] <= 100_000_000


@FUZZ
@given(st.binary(max_size=400))
def test_image_guard_raw_bytes(data: bytes) -> None:
    with contextlib.suppress(ImageError):
        load_rgb_bytes(data, name="fuzz")
