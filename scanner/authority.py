"""Authority keys: the Ed25519 key pair that signs hash-bank snapshots.

The private key file holds ``pocketscan-authority-v1`` on its first line and the 32-byte Ed25519 seed as
hex on
the second; it is created with mode 0600 and never overwritten unless asked. Devices pin the public key
(64 hex characters); a snapshot header carries its key id, the first 8 bytes of SHA-256 over the public key,
so a device can tell "signed by another authority" from "tampered".
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from nacl.exceptions import BadSignatureError
from nacl.signing import SigningKey, VerifyKey

from scanner.errors import AuthorityKeyError

__all__ = [
    "KEY_FILE_MAGIC",
    "AuthorityKey",
    "key_id",
    "parse_public_key",
    "verify_signature",
]

KEY_FILE_MAGIC = "pocketscan-authority-v1"


def key_id(public_key: bytes) -> bytes:
    """The 8-byte id of an authority public key (first 8 bytes of its SHA-256)."""
    return hashlib.sha256(public_key).digest()[:8]


def parse_public_key(text: str) -> bytes:
    """Parse a pinned public key given as 64 hex characters.

    Raises:
        AuthorityKeyError: not 64 hex characters.
    """
    cleaned = text.strip().lower()
    if len(cleaned) != 64:
        raise AuthorityKeyError(f"an authority public key is 64 hex characters, got {len(cleaned)}")
    try:
        return bytes.fromhex(cleaned)
    except ValueError:
        raise AuthorityKeyError("an authority public key must be hexadecimal") from None


def verify_signature(public_key: bytes, message: bytes, signature: bytes) -> bool:
    """True if ``signature`` is a valid Ed25519 signature of ``message`` under ``public_key``."""
    try:
        VerifyKey(public_key).verify(message, signature)
    except (BadSignatureError, ValueError, TypeError):
        return False
    return True


class AuthorityKey:
    """An Ed25519 signing key of the bank authority."""

    def __init__(self, seed: bytes) -> None:
        if len(seed) != 32:
            raise AuthorityKeyError("an authority private key is a 32-byte Ed25519 seed")
        self._signing = SigningKey(seed)

    @classmethod
    def generate(cls) -> AuthorityKey:
        """A fresh random key."""
        return cls(bytes(SigningKey.generate()))

    @property
    def public_key(self) -> bytes:
        """The 32-byte public key."""
        return bytes(self._signing.verify_key)

    @property
    def public_hex(self) -> str:
        """The public key as 64 lowercase hex characters (what devices pin)."""
        return self.public_key.hex()

    @property
    def seed(self) -> bytes:
        """The 32-byte private seed (the authority's relay account and sealed-box key derive from it)."""
        return bytes(self._signing)

    @property
    def key_id(self) -> bytes:
        """The 8-byte key id written into snapshot headers."""
        return key_id(self.public_key)

    def sign(self, message: bytes) -> bytes:
        """A detached 64-byte Ed25519 signature of ``message``."""
        return bytes(self._signing.sign(message).signature)

    def save(self, path: str | os.PathLike[str], *, force: bool = False) -> None:
        """Write the key file with mode 0600; refuse to replace an existing file unless ``force``.

        Raises:
            AuthorityKeyError: the file exists (without ``force``) or cannot be written.
        """
        target = Path(path)
        text = f"{KEY_FILE_MAGIC}\n{bytes(self._signing).hex()}\n".encode()
        tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except OSError as exc:
            raise AuthorityKeyError(f"{target}: cannot create the key file ({exc.strerror})") from None
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(text)
                fh.flush()
                os.fsync(fh.fileno())
            os.chmod(tmp, 0o600)
            if force:
                os.replace(tmp, target)
            else:
                try:
                    os.link(tmp, target)
                except FileExistsError:
                    raise AuthorityKeyError(
                        f"{target}: already exists; refusing to overwrite an authority key (use --force)"
                    ) from None
                except OSError as exc:
                    raise AuthorityKeyError(f"{target}: cannot write the key file ({exc.strerror})") from None
        finally:
            if tmp.exists():
                tmp.unlink()

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> AuthorityKey:
        """Read a key file written by :meth:`save`.

        Raises:
            AuthorityKeyError: missing, unreadable, or not an authority key file.
        """
        target = Path(path)
        try:
            if target.stat().st_size > 4096:
                raise AuthorityKeyError(f"{target}: too large to be an authority key file")
            lines = target.read_text(encoding="ascii").split()
        except FileNotFoundError:
            raise AuthorityKeyError(f"{target}: no such key file") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise AuthorityKeyError(f"{target}: cannot read the key file ({exc})") from None
        if len(lines) != 2 or lines[0] != KEY_FILE_MAGIC:
            raise AuthorityKeyError(f"{target}: not a pocketscan authority key file")
        try:
            seed = bytes.fromhex(lines[1])
        except ValueError:
            raise AuthorityKeyError(f"{target}: the key is not hexadecimal") from None
        return cls(seed)
