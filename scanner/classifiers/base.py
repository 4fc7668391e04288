"""The classifier interface: a decoded image in, ``sensitive`` or ``ok`` with a score out.

A classifier never reports and never blocks; it only rates. What a client does with the rating (warn before
sending, blur on receipt) is the client's setting, kept apart from the hash-matching policy.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, runtime_checkable

import numpy as np

from scanner.errors import ScannerError

__all__ = [
    "Classification",
    "Classifier",
    "ClassifierError",
    "ClassifierUnavailable",
    "Detection",
    "Label",
]

Label = Literal["sensitive", "ok"]


class ClassifierError(ScannerError):
    """A classifier model or its sidecar cannot be used (missing, malformed, mismatched shapes)."""


class ClassifierUnavailable(ClassifierError):
    """The default model's package is not installed; the message says how to install it."""


@dataclass(frozen=True)
class Detection:
    """One detector box (pixel coordinates of the decoded image) with its label and score."""

    label: str
    score: float
    box: tuple[float, float, float, float]
    """``(x0, y0, x1, y1)``."""


@dataclass(frozen=True)
class Classification:
    """What a classifier concluded about one image.

    Attributes:
        label: ``"sensitive"`` when ``score >= threshold``, else ``"ok"``.
        score: the highest score among the sensitive labels (0.0 when none was seen), 0..1.
        model: the model's name (``nudenet-320n``, or a user sidecar's ``name``).
        threshold: the threshold the label was decided with.
        detections: the detector's boxes after NMS (empty for whole-image classifiers).
    """

    label: Label
    score: float
    model: str
    threshold: float
    detections: tuple[Detection, ...] = field(default=(), repr=False)

    @property
    def sensitive(self) -> bool:
        return self.label == "sensitive"

    def as_dict(self) -> dict[str, Any]:
        """The ``classify`` contract's fields: ``label``, ``score``, ``model``."""
        return {"label": self.label, "score": round(float(self.score), 6), "model": self.model}


@runtime_checkable
class Classifier(Protocol):
    """Anything that rates an ``HxWx3`` uint8 RGB array."""

    name: str

    def classify_rgb(self, rgb: np.ndarray) -> Classification:
        """Rate one decoded image."""
        ...
