"""On-device image classifiers (sensitive-content detection) behind one interface, beside the hashers.

``get_classifier("nudenet")`` (the default, from ``pocketscan[sensitive]``) or
``get_classifier("path/model.onnx")`` (any ONNX detector or classifier with a JSON sidecar) returns a
:class:`Classifier`; ``classify_rgb(rgb)`` gives a :class:`Classification` (``label``, ``score``, ``model``).
"""

from __future__ import annotations

from scanner.classifiers.base import (
    Classification,
    Classifier,
    ClassifierError,
    ClassifierUnavailable,
    Detection,
)
from scanner.classifiers.registry import (
    DEFAULT_CLASSIFIER,
    classifier_names,
    get_classifier,
    register_classifier,
)

__all__ = [
    "DEFAULT_CLASSIFIER",
    "Classification",
    "Classifier",
    "ClassifierError",
    "ClassifierUnavailable",
    "Detection",
    "classifier_names",
    "get_classifier",
    "register_classifier",
]
