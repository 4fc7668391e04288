"""One-call classification of files and encoded bytes (the CLI, the client pipeline and research).

Decoding is :mod:`scanner.image`'s (fast mode: large JPEGs at reduced scale, never below 720 px on the
shorter side, far above any classifier's input), so the classifier sees the same pixels the hash scan does
and inherits the same guards against hostile files.
"""

from __future__ import annotations

import os

from scanner.classifiers.base import Classification, Classifier
from scanner.image import load_rgb, load_rgb_bytes

__all__ = ["classify_bytes", "classify_file"]


def classify_file(path: str | os.PathLike[str], classifier: Classifier) -> Classification:
    """Decode ``path`` (EXIF orientation applied) and rate it.

    Raises:
        ImageError: the file cannot be decoded.
        ClassifierError: the model failed.
    """
    return classifier.classify_rgb(load_rgb(path, mode="fast"))


def classify_bytes(data: bytes, classifier: Classifier, *, name: str = "<bytes>") -> Classification:
    """Rate an encoded image held in memory; same behaviour and errors as :func:`classify_file`."""
    return classifier.classify_rgb(load_rgb_bytes(data, name=name, mode="fast"))
