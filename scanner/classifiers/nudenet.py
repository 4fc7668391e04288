"""The default classifier: NudeNet's detector (``320n.onnx``) read from the installed ``nudenet`` package.

The weights are not part of pocketscan: ``pip install 'pocketscan[sensitive]'`` installs the ``nudenet``
wheel, and this module only reads the ``.onnx`` file it ships, found through the package metadata, so the
``nudenet`` Python module (which imports OpenCV) is never imported. Licence: the wheel's metadata says MIT,
while the LICENSE file it ships and the model's own ONNX metadata say AGPL-3.0 (Ultralytics YOLOv8); see
docs/sensitive.md.

Which labels count as sensitive, the threshold and the rest of the feeding recipe are in ``nudenet.json``
beside this module (the same sidecar schema as user models, :mod:`scanner.classifiers.spec`).
"""

from __future__ import annotations

import re
from pathlib import Path

from scanner.classifiers.base import ClassifierError, ClassifierUnavailable
from scanner.classifiers.onnx import OnnxClassifier
from scanner.classifiers.spec import ClassifierSpec, load_classifier_sidecar

__all__ = ["INSTALL_HINT", "NUDENET_SIDECAR", "nudenet_classifier", "nudenet_model_path", "nudenet_spec"]

INSTALL_HINT = "pip install 'pocketscan[sensitive]'"
NUDENET_SIDECAR = Path(__file__).resolve().with_name("nudenet.json")
_MODEL_IN_WHEEL = "nudenet/320n.onnx"


def nudenet_model_path() -> Path:
    """Where the installed ``nudenet`` wheel keeps ``320n.onnx``.

    Raises:
        ClassifierUnavailable: the package (or its model file) is not installed.
    """
    from importlib import metadata

    try:
        dist = metadata.distribution("nudenet")
    except metadata.PackageNotFoundError:
        raise ClassifierUnavailable(
            f"the default sensitive-content model (NudeNet) is not installed: {INSTALL_HINT}") from None
    path = Path(str(dist.locate_file(_MODEL_IN_WHEEL)))
    if not path.is_file():
        raise ClassifierUnavailable(
            f"the nudenet package {dist.version} has no {_MODEL_IN_WHEEL}: {INSTALL_HINT}")
    return path


def nudenet_spec() -> ClassifierSpec:
    """The shipped configuration (labels, sensitive labels, threshold) of the NudeNet detector."""
    return load_classifier_sidecar(NUDENET_SIDECAR)


def nudenet_classifier(*, threshold: float | None = None, sensitive_labels: frozenset[str] | None = None,
                       threads: int = 0) -> OnnxClassifier:
    """The NudeNet detector with the shipped configuration (optionally another threshold or label set).

    Raises:
        ClassifierUnavailable: ``nudenet`` is not installed.
        ClassifierError: the installed model does not have the labels the configuration names.
    """
    spec = nudenet_spec().with_config(threshold=threshold, sensitive_labels=sensitive_labels)
    classifier = OnnxClassifier(nudenet_model_path(), spec, threads=threads)
    names = _model_label_names(classifier)
    if names and tuple(names) != spec.labels:
        raise ClassifierError(
            f"{classifier.model_path}: the installed model's labels ({len(names)}) are not the ones "
            f"{NUDENET_SIDECAR.name} expects; this nudenet version is not supported")
    return classifier


def _model_label_names(classifier: OnnxClassifier) -> list[str]:
    """The class names in the model's Ultralytics metadata (``{0: 'A', 1: 'B'}``), in index order."""
    from scanner.hashers.onnx import _session

    sess = _session(classifier.model_path, ("CPUExecutionProvider",), classifier.threads)
    text = sess.get_modelmeta().custom_metadata_map.get("names", "")
    pairs = re.findall(r"(\d+)\s*:\s*'([^']*)'", text[:10_000])
    return [name for _, name in sorted(pairs, key=lambda p: int(p[0]))]
