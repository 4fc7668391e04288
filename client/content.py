"""The one strict schema of decrypted message content: everything a peer says is checked here.

A peer is a stranger with a free account: whatever it encrypts to us is data, never a name. Every
field of a decoded :class:`~client.session.Content` map is validated against the limits below
before anything is stored or shown; a violation raises :class:`ContentInvalid` (a
``DecryptionFailed``: the envelope costs itself, acknowledged and recorded, never the inbox).

Limits (also in docs/threat-model.md):

* message id and receipt ids: 1..64 characters of ``[A-Za-z0-9_-]`` (:data:`ID_PATTERN`);
* blob id: 1..64 characters of ``[A-Za-z0-9_-]`` (the relay issues 32-character URL-safe tokens);
* content type: one of :data:`CONTENT_TYPES`;
* width and height: absent or an integer in 1..65,535;
* attachment size: 1..:data:`MAX_IMAGE_SIZE` bytes; key 64 bytes; digest 32 bytes;
* text: at most :data:`MAX_TEXT_BYTES` UTF-8 bytes;
* timestamp: a finite number in 0..:data:`MAX_TIMESTAMP`;
* receipts: at most :data:`MAX_RECEIPTS` ids;
* no unknown keys; integers outside the ranges above (CBOR bignums included) and unknown CBOR tags
  are refused.
"""

from __future__ import annotations

import math
import re
from typing import Any

import cbor2

from client.errors import DecryptionFailed

__all__ = [
    "CONTENT_TYPES",
    "ID_PATTERN",
    "MAX_IMAGE_SIZE",
    "MAX_RECEIPTS",
    "MAX_TEXT_BYTES",
    "MAX_TIMESTAMP",
    "ContentInvalid",
    "check_blob_id",
    "check_dimension",
    "check_message_id",
    "decode_content_map",
    "expected_blob_size",
    "safe_dimension",
]

ID_PATTERN = re.compile(r"[A-Za-z0-9_-]{1,64}")
"""Message ids, receipt ids and blob ids (matched whole)."""
CONTENT_TYPES = frozenset({"image/jpeg", "image/png", "image/gif", "image/webp", "image/bmp", "image/tiff"})
"""Image content types a pointer may declare (the image guard checks the bytes again before decoding)."""
MAX_IMAGE_SIZE = 20 * 1024 * 1024
"""Largest image plaintext a pointer may declare (the sender's limit,
``client.image_pipeline.MAX_IMAGE_BYTES``)."""
MAX_TEXT_BYTES = 64 * 1024
"""Largest text message, in UTF-8 bytes."""
MAX_TIMESTAMP = 2**33
"""Latest plausible send time (seconds since 1970; year 2242)."""
MAX_RECEIPTS = 256
"""Most message ids one delivery receipt may acknowledge."""
MAX_DIMENSION = 65_535
_KINDS = frozenset({"text", "image", "receipt"})
_KEYS = frozenset({"v", "k", "id", "t", "text", "att", "rcpt"})
_ATT_KEYS = frozenset({"blob_id", "key", "digest", "size", "content_type", "width", "height"})
_MAX_CONTENT = 256 * 1024
_AES_BLOCK, _IV, _MAC = 16, 16, 32


class ContentInvalid(DecryptionFailed):
    """The decrypted message does not follow the content schema; it is recorded and not shown."""


def _int(value: object, lo: int, hi: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and lo <= value <= hi


def check_message_id(value: object, what: str = "message id") -> str:
    """``value`` if it is a well-formed id, else :class:`ContentInvalid`."""
    if not isinstance(value, str) or ID_PATTERN.fullmatch(value) is None:
        raise ContentInvalid(f"malformed {what}")
    return value


def check_blob_id(value: object) -> str:
    """``value`` if it is a well-formed blob id (checked before any ``blob.get``)."""
    return check_message_id(value, "blob id")


def check_dimension(value: object) -> int | None:
    """A width or height: None or an integer in 1..65,535."""
    if value is None:
        return None
    if not _int(value, 1, MAX_DIMENSION):
        raise ContentInvalid("image width or height out of range (1..65535)")
    assert isinstance(value, int)
    return value


def safe_dimension(value: object) -> int | None:
    """A stored width or height for display: the value when in range, else None (never raises)."""
    return value if _int(value, 1, MAX_DIMENSION) else None  # type: ignore[return-value]


def expected_blob_size(size: int) -> int:
    """Exact size of the encrypted blob of a ``size``-byte attachment (padding bucket, PKCS#7, IV, MAC)."""
    from client.crypto.attachments import padded_size

    padded = padded_size(size)
    return _IV + (padded // _AES_BLOCK + 1) * _AES_BLOCK + _MAC


def _refuse_tag(decoder: Any, tag: Any) -> Any:
    raise ContentInvalid("CBOR tags are not part of message content")


def _attachment(d: object) -> dict[str, Any]:
    if not isinstance(d, dict) or not set(d) <= _ATT_KEYS:
        raise ContentInvalid("malformed attachment pointer")
    check_blob_id(d.get("blob_id"))
    key, digest = d.get("key"), d.get("digest")
    if not (isinstance(key, bytes) and len(key) == 64 and isinstance(digest, bytes) and len(digest) == 32):
        raise ContentInvalid("malformed attachment key or digest")
    if not _int(d.get("size"), 1, MAX_IMAGE_SIZE):
        raise ContentInvalid(f"attachment size out of range (1..{MAX_IMAGE_SIZE} bytes)")
    if d.get("content_type") not in CONTENT_TYPES:
        raise ContentInvalid("attachment content type is not an allowed image type")
    check_dimension(d.get("width"))
    check_dimension(d.get("height"))
    return d


def decode_content_map(raw: bytes) -> dict[str, Any]:
    """Decode the CBOR content map (padding already stripped) and validate every field.

    Returns the map with only known keys. Raises :class:`ContentInvalid` (never anything else).
    """
    if len(raw) > _MAX_CONTENT:
        raise ContentInvalid("message content is too large")
    try:
        d = cbor2.loads(raw, tag_hook=_refuse_tag)
    except ContentInvalid:
        raise
    except Exception:
        raise ContentInvalid("message content is not valid CBOR") from None
    if not isinstance(d, dict) or not all(isinstance(k, str) for k in d) or not set(d) <= _KEYS:
        raise ContentInvalid("message content has unknown fields")
    if d.get("v") != 1 or d.get("k") not in _KINDS:
        raise ContentInvalid("unknown message content version or kind")
    check_message_id(d.get("id"))
    t = d.get("t")
    if isinstance(t, bool) or not isinstance(t, int | float):
        raise ContentInvalid("malformed timestamp")
    if isinstance(t, int) and not _int(t, 0, MAX_TIMESTAMP):
        raise ContentInvalid("timestamp out of range")
    if not (math.isfinite(t) and 0 <= t <= MAX_TIMESTAMP):
        raise ContentInvalid("timestamp out of range")
    text = d.get("text")
    if text is not None and (not isinstance(text, str) or len(text) > MAX_TEXT_BYTES
                             or len(text.encode("utf-8", "surrogatepass")) > MAX_TEXT_BYTES):
        raise ContentInvalid(f"text missing its type or over {MAX_TEXT_BYTES // 1024} KiB")
    if "att" in d:
        _attachment(d["att"])
    rcpt = d.get("rcpt", [])
    if not isinstance(rcpt, list) or len(rcpt) > MAX_RECEIPTS:
        raise ContentInvalid("malformed receipt list")
    for rid in rcpt:
        check_message_id(rid, "receipt id")
    kind = d["k"]
    if kind == "text" and (text is None or "att" in d):
        raise ContentInvalid("a text message needs a text and no attachment")
    if kind == "image" and "att" not in d:
        raise ContentInvalid("an image message needs an attachment pointer")
    if kind == "receipt" and not rcpt:
        raise ContentInvalid("a receipt needs message ids")
    return d
