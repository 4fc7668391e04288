"""Names -> hasher factories. Adding a hash is one class (carrying its ``algorithm`` spec, see
``scanner/hashers/spec.py``) plus one ``register_hasher`` call.

Built in: ``pdq``, ``phash``, ``dhash``, ``ahash``. Optional modules listed in :data:`PLUGIN_MODULES`
(the learned ``onnx`` hash) are imported on first use when present and call :func:`register_hasher`
themselves; they must keep heavy imports (onnxruntime) inside their hashers.
"""

from __future__ import annotations

import importlib
import importlib.util
import warnings
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from scanner.hashers.base import Hasher

__all__ = ["PLUGIN_MODULES", "get_hasher", "hasher_names", "register_hasher"]

HasherFactory = Callable[..., "Hasher"]

PLUGIN_MODULES: tuple[str, ...] = ("scanner.hashers.onnx",)
"""Optional hasher modules imported (if they exist) before the registry is first consulted."""

# Built-ins are "module:Class" strings, imported on first use so listing names stays cheap (no numpy).
_FACTORIES: dict[str, HasherFactory | str] = {
    "pdq": "scanner.hashers.pdq:PdqHasher",
    "phash": "scanner.hashers.phash:PHasher",
    "dhash": "scanner.hashers.dhash:DHasher",
    "ahash": "scanner.hashers.ahash:AHasher",
}
_plugins_loaded = False


def register_hasher(name: str, factory: HasherFactory, *, replace: bool = False) -> None:
    """Make ``get_hasher(name, **options)`` call ``factory(**options)``.

    Raises:
        ValueError: the name is taken (unless ``replace``) or is not a lowercase identifier.
    """
    if not name.isidentifier() or name != name.lower():
        raise ValueError(f"hasher name must be a lowercase identifier, not {name!r}")
    if name in _FACTORIES and not replace and _FACTORIES[name] is not factory:
        raise ValueError(f"hasher {name!r} is already registered")
    _FACTORIES[name] = factory


def _load_plugins() -> None:
    global _plugins_loaded
    if _plugins_loaded:
        return
    _plugins_loaded = True
    for module in PLUGIN_MODULES:
        try:
            if importlib.util.find_spec(module) is None:
                continue
            importlib.import_module(module)
        except Exception as exc:  # a broken optional plugin must not take the built-in hashers down
            warnings.warn(f"hasher plugin {module} failed to load: {exc}", RuntimeWarning, stacklevel=2)


def hasher_names() -> tuple[str, ...]:
    """Registered hasher names, PDQ first, then in registration order."""
    _load_plugins()
    return tuple(_FACTORIES)


def get_hasher(name: str, **options: object) -> Hasher:
    """A new hasher by name (``"pdq"``, ``"phash"``, ``"dhash"``, ``"ahash"``, ``"onnx"`` if installed).

    Raises:
        KeyError: no hasher has that name.
    """
    _load_plugins()
    try:
        factory = _FACTORIES[name]
    except KeyError:
        raise KeyError(f"unknown hasher {name!r}; choose one of {', '.join(_FACTORIES)}") from None
    if isinstance(factory, str):
        module, _, attr = factory.partition(":")
        factory = getattr(importlib.import_module(module), attr)
        _FACTORIES[name] = factory
    hasher = factory(**options)
    spec = getattr(hasher, "algorithm", None)
    if spec is None or spec.name != name or spec.bits != hasher.bits:
        raise TypeError(f"hasher {name!r} must carry its algorithm spec (name {name!r}, {hasher.bits} bits)")
    return hasher
