"""Names (or model paths) -> classifiers, like :mod:`scanner.hashers.registry` for hashers.

Built in: ``nudenet`` (the default; needs ``pocketscan[sensitive]``). Anything else that names an existing
``.onnx`` file is loaded with the JSON sidecar beside it (``model.json`` or ``model.onnx.json``). Classifiers
are cached per process (one onnxruntime session per model file).
"""

from __future__ import annotations

import importlib
import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from scanner.classifiers.base import Classifier, ClassifierError

__all__ = ["DEFAULT_CLASSIFIER", "classifier_names", "clear_classifier_cache", "get_classifier",
           "register_classifier"]

DEFAULT_CLASSIFIER = "nudenet"

ClassifierFactory = Callable[..., Classifier]

_FACTORIES: dict[str, ClassifierFactory | str] = {
    "nudenet": "scanner.classifiers.nudenet:nudenet_classifier",
}
_CACHE: dict[tuple[Any, ...], Classifier] = {}
_LOCK = threading.Lock()


def register_classifier(name: str, factory: ClassifierFactory, *, replace: bool = False) -> None:
    """Make ``get_classifier(name, **options)`` call ``factory(**options)``.

    Raises:
        ValueError: the name is taken (unless ``replace``) or is not a lowercase identifier.
    """
    if not name.isidentifier() or name != name.lower():
        raise ValueError(f"classifier name must be a lowercase identifier, not {name!r}")
    if name in _FACTORIES and not replace:
        raise ValueError(f"classifier {name!r} is already registered")
    _FACTORIES[name] = factory
    clear_classifier_cache()


def classifier_names() -> tuple[str, ...]:
    """Registered classifier names, the default first."""
    return tuple(_FACTORIES)


def clear_classifier_cache() -> None:
    """Forget every cached classifier (tests; a model file replaced on disk is reloaded anyway)."""
    with _LOCK:
        _CACHE.clear()


def _looks_like_path(name: str) -> bool:
    return name.endswith(".onnx") or os.sep in name or (os.altsep or os.sep) in name


def get_classifier(name: str = DEFAULT_CLASSIFIER, **options: Any) -> Classifier:
    """A classifier by registered name, or by the path of an ``.onnx`` model with its JSON sidecar.

    ``options`` go to the factory: ``threshold`` and ``sensitive_labels`` override the configuration,
    ``threads`` sets onnxruntime's intra-op threads.

    Raises:
        ClassifierUnavailable: the default model's package is not installed (says how to install it).
        ClassifierError: unknown name, missing file, or a model/sidecar that cannot be used.
    """
    if name in _FACTORIES:
        key: tuple[Any, ...] = ("name", name, tuple(sorted((k, repr(v)) for k, v in options.items())))
    elif _looks_like_path(name) or Path(name).is_file():
        path = Path(name)
        try:
            st = path.stat()
        except OSError:
            raise ClassifierError(f"{name}: model file not found") from None
        key = ("path", str(path.resolve()), st.st_mtime_ns, st.st_size,
               tuple(sorted((k, repr(v)) for k, v in options.items())))
    else:
        raise ClassifierError(f"unknown classifier {name!r}: choose {', '.join(_FACTORIES)} or give the path "
                              "of an .onnx model with its JSON sidecar")
    with _LOCK:
        cached = _CACHE.get(key)
    if cached is not None:
        return cached
    classifier = _build(name, options)
    with _LOCK:
        _CACHE[key] = classifier
    return classifier


def _build(name: str, options: dict[str, Any]) -> Classifier:
    factory = _FACTORIES.get(name)
    if factory is None:
        from scanner.classifiers.onnx import OnnxClassifier
        from scanner.classifiers.spec import load_classifier_sidecar, sidecar_for

        path = Path(name)
        spec = load_classifier_sidecar(sidecar_for(path))
        threshold, labels = options.get("threshold"), options.get("sensitive_labels")
        if threshold is not None or labels is not None:
            spec = spec.with_config(threshold=threshold, sensitive_labels=labels)
        return OnnxClassifier(path, spec, threads=int(options.get("threads", 0)))
    if isinstance(factory, str):
        module, _, attr = factory.partition(":")
        factory = getattr(importlib.import_module(module), attr)
        _FACTORIES[name] = factory
    return factory(**options)
