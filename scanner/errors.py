"""Errors raised by the scanner.

Exception tree::

    ScannerError            base of every scanner error
     ├── ImageError         an image file (or byte string) that cannot be hashed
     ├── BankError          the hash bank cannot be opened or changed
     │    └── BankImportError   an import was refused (every malformed line, with its line number)
     ├── AuthorityKeyError  an authority key file or public key that cannot be used
     ├── CalibrationError   no snapshot parameters fit the requested budgets
     └── SnapshotInvalid    a snapshot file refused (bad signature, truncated, expired, rolled back...)

Each message names the file and says why, in words a person understands.
"""

from __future__ import annotations

__all__ = [
    "AuthorityKeyError",
    "BankError",
    "BankImportError",
    "CalibrationError",
    "ImageError",
    "ScannerError",
    "SnapshotInvalid",
]


class ScannerError(Exception):
    """Base class of every error raised by :mod:`scanner`."""


class ImageError(ScannerError):
    """An image that cannot be decoded or hashed (empty, not an image, truncated, too large...).

    Attributes:
        name: the file path (or ``"<bytes>"``-style label) of the image.
        reason: a short human-readable reason, without the name.
    """

    def __init__(self, name: str, reason: str) -> None:
        super().__init__(f"{name}: {reason}")
        self.name = name
        self.reason = reason


class BankError(ScannerError):
    """The hash bank cannot be opened, read or changed; the bank file is left as it was."""


class BankImportError(BankError):
    """An import was refused as a whole; nothing was added.

    Attributes:
        problems: ``(source, line, reason)`` for every malformed line (line 0 names the whole source).
    """

    def __init__(self, problems: list[tuple[str, int, str]]) -> None:
        shown = "; ".join(
            f"{src}:{line}: {why}" if line else f"{src}: {why}" for src, line, why in problems[:20]
        )
        more = f" (and {len(problems) - 20} more)" if len(problems) > 20 else ""
        super().__init__(f"import refused, nothing was added: {shown}{more}")
        self.problems = problems


class AuthorityKeyError(ScannerError):
    """An authority key file or public key that cannot be read or used."""


class CalibrationError(ScannerError, ValueError):
    """No snapshot parameters satisfy the requested budgets (the message says which budget to relax)."""


class SnapshotInvalid(ScannerError):
    """A snapshot was refused: unreadable, truncated, tampered, wrongly signed, expired or rolled back.

    The matcher keeps the last snapshot it accepted.
    """


class OprfError(ScannerError):
    """An OPRF-keyed lookup could not be completed: no or an unreachable service, a refusal (rate limit,
    authentication), a malformed answer, or an evaluation whose proof does not verify against the key the
    snapshot commits to. The image is not matched (scan verdict ``error``)."""


class OprfProofInvalid(OprfError):
    """The service's evaluation does not verify against the snapshot's OPRF public key (wrong or per-user
    key): refused."""
