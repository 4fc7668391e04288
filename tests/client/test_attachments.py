"""Attachments: round trip, size padding, digest/MAC checks that never return partial data."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from client.crypto.attachments import (
    AttachmentPointer,
    decrypt_attachment,
    encrypt_image,
    padded_size,
)
from client.errors import AttachmentCorrupt
from scanner.verdict import issue_verdict

SAMPLES = sorted((Path(__file__).resolve().parents[2] / "samples").glob("*.jpg"))


def _encrypt(data: bytes):  # type: ignore[no-untyped-def]
    return encrypt_image(data, issue_verdict(data, "no_match"), content_type="image/jpeg", width=4, height=3)


def test_round_trip_real_photo() -> None:
    data = SAMPLES[0].read_bytes()
    enc = _encrypt(data)
    assert data not in enc.blob
    assert len(enc.blob) >= padded_size(len(data))
    p = enc.pointer
    assert (p.size, p.content_type, p.width, p.height) == (len(data), "image/jpeg", 4, 3)
    assert decrypt_attachment(enc.blob, p) == data
    assert AttachmentPointer.from_dict(p.to_dict()) == p


def test_padding_hides_exact_size() -> None:
    assert padded_size(1) == 541
    top = padded_size(100_000)
    assert padded_size(top - 4000) == top
    sizes = {len(_encrypt(b"\x01" * n).blob) for n in range(top - 4000, top + 1, 61)}
    assert len(sizes) == 1  # ~65 different sizes, one blob size
    for n in (541, 1000, 123_457, 5_000_000):
        assert n <= padded_size(n) <= n * 1.05 + 1


@pytest.mark.parametrize("where", ["first", "middle", "last"])
def test_tampered_blob_raises_and_returns_nothing(where: str) -> None:
    enc = _encrypt(b"image bytes" * 100)
    i = {"first": 0, "middle": len(enc.blob) // 2, "last": len(enc.blob) - 1}[where]
    bad = enc.blob[:i] + bytes([enc.blob[i] ^ 1]) + enc.blob[i + 1:]
    with pytest.raises(AttachmentCorrupt):
        decrypt_attachment(bad, enc.pointer)
    # Even if the attacker also fixes the digest, the MAC catches it.
    import hashlib

    forged = dataclasses.replace(enc.pointer, digest=hashlib.sha256(bad).digest())
    with pytest.raises(AttachmentCorrupt):
        decrypt_attachment(bad, forged)


def test_truncated_or_wrong_key() -> None:
    enc = _encrypt(b"x" * 5000)
    with pytest.raises(AttachmentCorrupt):
        decrypt_attachment(enc.blob[:-16], enc.pointer)
    other = _encrypt(b"x" * 5000)
    with pytest.raises(AttachmentCorrupt):
        decrypt_attachment(enc.blob, dataclasses.replace(other.pointer, digest=enc.pointer.digest))


def test_malformed_pointer() -> None:
    p = _encrypt(b"abc").pointer.to_dict()
    for bad in ({**p, "key": b"short"}, {**p, "size": -1}, {**p, "width": "4"}, "nope"):
        with pytest.raises(AttachmentCorrupt):
            AttachmentPointer.from_dict(bad)


def test_each_attachment_gets_a_fresh_key() -> None:
    a, b = _encrypt(b"same"), _encrypt(b"same")
    assert a.pointer.key != b.pointer.key and a.blob != b.blob


from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402


@settings(max_examples=60, deadline=None)
@given(data=st.binary(max_size=3000), flip=st.integers(0, 10**6), mask=st.integers(1, 255))
def test_any_size_round_trips_and_any_flip_is_caught(data: bytes, flip: int, mask: int) -> None:
    enc = _encrypt(data)
    assert decrypt_attachment(enc.blob, enc.pointer) == data
    i = flip % len(enc.blob)
    bad = enc.blob[:i] + bytes([enc.blob[i] ^ mask]) + enc.blob[i + 1:]
    with pytest.raises(AttachmentCorrupt):
        decrypt_attachment(bad, enc.pointer)
    with pytest.raises(AttachmentCorrupt):
        decrypt_attachment(enc.blob[:i], enc.pointer)
