"""The scanner seam: no image is encrypted without the scanner's verdict for exactly its bytes."""

from __future__ import annotations

import dataclasses
import hashlib
from pathlib import Path

import pytest

from client.crypto import attachments
from client.crypto.attachments import encrypt_image
from client.errors import ScanVerdictRequired
from scanner.verdict import ScanVerdict, issue_verdict

PHOTO = sorted((Path(__file__).resolve().parents[2] / "samples").glob("*.jpg"))[0].read_bytes()


def test_genuine_verdict_for_these_bytes_is_accepted() -> None:
    enc = encrypt_image(PHOTO, issue_verdict(PHOTO, "no_match"), content_type="image/jpeg")
    assert enc.pointer.size == len(PHOTO)


def test_missing_verdict_is_refused() -> None:
    with pytest.raises(ScanVerdictRequired):
        encrypt_image(PHOTO, None, content_type="image/jpeg")  # type: ignore[arg-type]


def test_verdict_for_other_bytes_is_refused() -> None:
    other = PHOTO[:-1] + bytes([PHOTO[-1] ^ 1])
    with pytest.raises(ScanVerdictRequired):
        encrypt_image(PHOTO, issue_verdict(other, "no_match"), content_type="image/jpeg")


def test_hand_built_verdict_is_refused() -> None:
    forged = ScanVerdict(content_digest=hashlib.sha256(PHOTO).digest(), outcome="no_match")
    with pytest.raises(ScanVerdictRequired):
        encrypt_image(PHOTO, forged, content_type="image/jpeg")


def test_altered_genuine_verdict_is_refused() -> None:
    genuine = issue_verdict(PHOTO, "match", votes=3)
    laundered = dataclasses.replace(genuine, outcome="no_match", votes=0)
    with pytest.raises(ScanVerdictRequired):
        encrypt_image(PHOTO, laundered, content_type="image/jpeg")


def test_duck_typed_verdict_is_refused() -> None:
    class Fake:
        content_digest = hashlib.sha256(PHOTO).digest()

        def is_bound_to(self, data: bytes) -> bool:
            return True

    with pytest.raises(ScanVerdictRequired):
        encrypt_image(PHOTO, Fake(), content_type="image/jpeg")  # type: ignore[arg-type]


def test_encrypt_image_is_the_only_public_image_encryptor() -> None:
    public = {name for name in attachments.__all__ if callable(getattr(attachments, name))}
    encryptors = {n for n in public if "encrypt" in n}
    assert encryptors == {"encrypt_image"}
