"""Image attachments, the way Signal does them, behind the scanner seam.

Each attachment gets a fresh random 64-byte key (AES-256 key || HMAC-SHA256 key). The plaintext
is zero-padded to a size bucket (Signal's: ``max(541, floor(1.05 ** ceil(log_1.05(size))))``, at
most ~5 % overhead) so the blob hides the exact size, then encrypted with AES-256-CBC (random IV)
and authenticated: ``blob = iv || ciphertext || HMAC(mac_key, iv || ciphertext)``. The blob is
uploaded as an opaque object; the message carries an :class:`AttachmentPointer` (blob id, key,
SHA-256 digest of the blob, plaintext size, content type, dimensions).

On download a digest or MAC mismatch raises :class:`~client.errors.AttachmentCorrupt`; nothing
is returned, so no half image is ever shown.

The seam: :func:`encrypt_image` is the only public way to encrypt an image and it demands the
scanner's sealed verdict for exactly those bytes (``scanner.verdict.require_verdict_for``).
"""

from __future__ import annotations

import hashlib
import hmac
import math
import os
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from client.crypto.identity import Rng
from client.errors import AttachmentCorrupt, ScanVerdictRequired
from scanner.verdict import ScanVerdict, VerdictMismatch, require_verdict_for

__all__ = [
    "MAX_ATTACHMENT_SIZE",
    "AttachmentPointer",
    "EncryptedAttachment",
    "decrypt_attachment",
    "encrypt_image",
    "padded_size",
]

MAX_ATTACHMENT_SIZE = 100 * 1024 * 1024
"""Largest attachment plaintext accepted (bytes)."""
_MAC = 32
_IV = 16


def padded_size(size: int) -> int:
    """Signal's attachment size bucket for ``size`` bytes."""
    if size <= 0:
        return 541
    bucket = math.floor(1.05 ** math.ceil(math.log(size) / math.log(1.05)))
    return max(541, size, bucket)


@dataclass(frozen=True)
class AttachmentPointer:
    """What a message carries so the recipient can fetch and open an attachment."""

    blob_id: str
    key: bytes
    digest: bytes
    size: int
    content_type: str
    width: int | None = None
    height: int | None = None

    def __repr__(self) -> str:
        return (f"AttachmentPointer(blob_id={self.blob_id!r}, size={self.size}, "
                f"content_type={self.content_type!r})")

    def to_dict(self) -> dict[str, Any]:
        """CBOR-friendly form (bytes stay bytes)."""
        return {"blob_id": self.blob_id, "key": self.key, "digest": self.digest, "size": self.size,
                "content_type": self.content_type, "width": self.width, "height": self.height}

    @classmethod
    def from_dict(cls, d: object) -> AttachmentPointer:
        """Validate and build; raise AttachmentCorrupt when malformed."""
        if not isinstance(d, dict):
            raise AttachmentCorrupt("malformed attachment pointer")
        ok = (isinstance(d.get("blob_id"), str) and isinstance(d.get("key"), bytes) and len(d["key"]) == 64
              and isinstance(d.get("digest"), bytes) and len(d["digest"]) == 32
              and isinstance(d.get("size"), int) and 0 <= d["size"] <= MAX_ATTACHMENT_SIZE
              and isinstance(d.get("content_type"), str)
              and all(d.get(k) is None or isinstance(d.get(k), int) for k in ("width", "height")))
        if not ok:
            raise AttachmentCorrupt("malformed attachment pointer")
        return cls(d["blob_id"], d["key"], d["digest"], d["size"], d["content_type"],
                   d.get("width"), d.get("height"))


@dataclass(frozen=True)
class EncryptedAttachment:
    """An encrypted blob to upload and the pointer to send in the message."""

    blob: bytes
    pointer: AttachmentPointer


def _seal(data: bytes, content_type: str, width: int | None, height: int | None, blob_id: str | None,
          rng: Rng) -> EncryptedAttachment:
    if len(data) > MAX_ATTACHMENT_SIZE:
        raise ValueError(f"attachment too large ({len(data)} bytes, limit {MAX_ATTACHMENT_SIZE})")
    key, iv = rng(64), rng(_IV)
    padded = data + bytes(padded_size(len(data)) - len(data))
    padder = padding.PKCS7(128).padder()
    enc = Cipher(algorithms.AES(key[:32]), modes.CBC(iv)).encryptor()
    ct = enc.update(padder.update(padded) + padder.finalize()) + enc.finalize()
    body = iv + ct
    blob = body + hmac.new(key[32:], body, hashlib.sha256).digest()
    pointer = AttachmentPointer(
        blob_id=blob_id or rng(16).hex(),
        key=key,
        digest=hashlib.sha256(blob).digest(),
        size=len(data),
        content_type=content_type,
        width=width,
        height=height,
    )
    return EncryptedAttachment(blob, pointer)


def encrypt_image(data: bytes, verdict: ScanVerdict, *, content_type: str, width: int | None = None,
                  height: int | None = None, blob_id: str | None = None,
                  rng: Rng = os.urandom) -> EncryptedAttachment:
    """Encrypt an image for upload. ``verdict`` must be the scanner's verdict for exactly ``data``.

    Raises:
        ScanVerdictRequired: no verdict, a forged one, or one issued for other bytes.
    """
    try:
        require_verdict_for(verdict, data)
    except VerdictMismatch as exc:
        raise ScanVerdictRequired(str(exc)) from None
    return _seal(data, content_type, width, height, blob_id, rng)


def decrypt_attachment(blob: bytes, pointer: AttachmentPointer) -> bytes:
    """Verify and decrypt a downloaded blob; raise AttachmentCorrupt on any mismatch (nothing returned)."""
    if not hmac.compare_digest(hashlib.sha256(blob).digest(), pointer.digest):
        raise AttachmentCorrupt("attachment digest mismatch: the download is damaged or was replaced")
    if len(blob) < _IV + 16 + _MAC or (len(blob) - _IV - _MAC) % 16:
        raise AttachmentCorrupt("attachment blob is truncated")
    body, tag = blob[:-_MAC], blob[-_MAC:]
    if not hmac.compare_digest(hmac.new(pointer.key[32:], body, hashlib.sha256).digest(), tag):
        raise AttachmentCorrupt("attachment authentication failed")
    dec = Cipher(algorithms.AES(pointer.key[:32]), modes.CBC(body[:_IV])).decryptor()
    unpadder = padding.PKCS7(128).unpadder()
    try:
        padded = unpadder.update(dec.update(body[_IV:]) + dec.finalize()) + unpadder.finalize()
    except ValueError:
        raise AttachmentCorrupt("attachment padding is invalid") from None
    if pointer.size > len(padded):
        raise AttachmentCorrupt("attachment is shorter than its pointer says")
    return padded[: pointer.size]
