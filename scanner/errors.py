"""Errors raised by the scanner.

Exception tree::

    ScannerError            base of every scanner error
     └── ImageError         an image file (or byte string) that cannot be hashed

Each message names the file and says why, in words a person understands.
"""

from __future__ import annotations

__all__ = ["ImageError", "ScannerError"]


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
