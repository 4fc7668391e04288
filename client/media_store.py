"""Sealed media: sent and received images at rest, encrypted under a key derived from the store's data key.

Every image file in the profile's ``media/`` folder is ``nonce(24) || XChaCha20-Poly1305(image)``
with the file's own reference as associated data (a file renamed onto another reference fails to
open). References are local random names (32 hex digits); nothing a peer sends becomes a file
name. Images are decrypted in memory to be shown, scanned or forwarded; nothing is written in clear.

:meth:`MediaStore.adopt_plaintext` seals a clear image left by an older pocketscan (migration).
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import TypeGuard

import nacl.bindings
import nacl.exceptions
import nacl.utils

from client.content import MAX_IMAGE_SIZE
from client.errors import StoreError

__all__ = ["MAX_SEALED_FILE", "MediaError", "MediaStore", "is_media_ref"]

_REF = re.compile(r"[0-9a-f]{32}")
_SUFFIX = ".sealed"
_NONCE = 24
_TAG = 16
MAX_SEALED_FILE = MAX_IMAGE_SIZE + _NONCE + _TAG
"""Largest sealed media file read back (larger files are refused unread)."""


class MediaError(StoreError):
    """A sealed image is missing, too large or fails authentication (tampered with on disk)."""


def is_media_ref(value: object) -> TypeGuard[str]:
    """True if ``value`` is a sealed-media reference (as stored in a message's ``local_path``)."""
    return isinstance(value, str) and _REF.fullmatch(value) is not None


class MediaStore:
    """The profile's sealed image files."""

    def __init__(self, root: Path, key: bytes) -> None:
        if len(key) != 32:
            raise ValueError("the media key has 32 bytes")
        self.root = root
        self._key = key

    def path(self, ref: str) -> Path:
        """The file holding ``ref`` (``ref`` must be a reference made by :meth:`put`)."""
        if not is_media_ref(ref):
            raise MediaError("not a sealed media reference")
        return self.root / f"{ref}{_SUFFIX}"

    def put(self, data: bytes) -> str:
        """Seal ``data`` into a new file with a random name; return its reference."""
        if len(data) > MAX_IMAGE_SIZE:
            raise MediaError(f"image over the {MAX_IMAGE_SIZE // 2**20} MiB limit")
        self.root.mkdir(parents=True, exist_ok=True, mode=0o700)
        ref = os.urandom(16).hex()
        target = self.path(ref)
        nonce = nacl.utils.random(_NONCE)
        sealed = nonce + bytes(nacl.bindings.crypto_aead_xchacha20poly1305_ietf_encrypt(
            data, ref.encode(), nonce, self._key))
        tmp = target.with_name(target.name + ".part")
        fd = os.open(tmp, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(sealed)
            os.replace(tmp, target)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        return ref

    def get(self, ref: str) -> bytes:
        """Decrypt the image ``ref`` in memory."""
        target = self.path(ref)
        try:
            with target.open("rb") as fh:
                sealed = fh.read(MAX_SEALED_FILE + 1)
        except OSError as exc:
            raise MediaError(f"the image file is unreadable ({exc.strerror or exc})") from None
        if len(sealed) > MAX_SEALED_FILE or len(sealed) < _NONCE + _TAG:
            raise MediaError("the image file has an impossible size (damaged or replaced)")
        try:
            return bytes(nacl.bindings.crypto_aead_xchacha20poly1305_ietf_decrypt(
                sealed[_NONCE:], ref.encode(), sealed[:_NONCE], self._key))
        except (nacl.exceptions.CryptoError, ValueError, TypeError):
            raise MediaError("the image file failed authentication (tampered with on disk)") from None

    def delete(self, ref: str) -> None:
        self.path(ref).unlink(missing_ok=True)

    def adopt_plaintext(self, legacy: Path) -> str | None:
        """Seal a clear image written by an older version (only files directly in ``root``); delete it.

        Returns the new reference, or None when ``legacy`` is not a regular file inside ``root``.
        """
        try:
            resolved = legacy.resolve(strict=True)
        except (OSError, RuntimeError):
            return None
        if resolved.parent != self.root.resolve() or not resolved.is_file() or resolved.is_symlink():
            return None
        if resolved.stat().st_size > MAX_IMAGE_SIZE:
            return None
        ref = self.put(resolved.read_bytes())
        resolved.unlink()
        return ref
