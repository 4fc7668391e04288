"""Sensitive-content warnings: the setting, the on-device classifier port and its result (pure rules).

A second, separate setting beside the hash policy (``pocketscan config set sensitive-content ...``):

``off`` (default)
    Nothing is classified.
``warn``
    Before an image leaves the device, the on-device classifier rates its exact bytes; a ``sensitive`` image
    needs the sender's confirmation (TUI dialog; ``pocketscan send --yes``).
``blur``
    Received images are rated after decryption; ``sensitive`` ones are shown blurred in the TUI until the
    reader reveals them (the stored file is untouched).
``both``
    ``warn`` and ``blur``.

Like Apple's Communication Safety, this never reports and never blocks: the rating stays on the device and
the person decides. It is independent of the hash policy (``off`` there does not turn it off, and it never
turns a hash ``block`` or ``report`` into anything else). A rating that cannot be made (model not installed,
undecodable image) is recorded with its reason and the image goes on as the hash policy says.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal, Protocol, get_args

__all__ = [
    "SENSITIVE_SETTINGS",
    "ImageClassifierPort",
    "LocalClassifier",
    "SensitiveResult",
    "SensitiveSetting",
    "blurs_received",
    "parse_sensitive_setting",
    "sensitive_note",
    "warns_before_sending",
]

SensitiveSetting = Literal["off", "warn", "blur", "both"]
SENSITIVE_SETTINGS: tuple[SensitiveSetting, ...] = get_args(SensitiveSetting)
MAX_MODEL_NAME = 4096


def parse_sensitive_setting(value: str) -> SensitiveSetting:
    """Validate a ``sensitive-content`` value from settings or the command line."""
    name = str(value).strip().lower()
    for setting in SENSITIVE_SETTINGS:
        if setting == name:
            return setting
    raise ValueError(
        f"unknown sensitive-content setting {value!r}: choose one of {', '.join(SENSITIVE_SETTINGS)}")


def warns_before_sending(setting: str) -> bool:
    return setting in ("warn", "both")


def blurs_received(setting: str) -> bool:
    return setting in ("blur", "both")


@dataclass(frozen=True)
class SensitiveResult:
    """The on-device classifier's rating of one image (never leaves the device).

    Attributes:
        label: ``sensitive`` or ``ok``; ``None`` when the image could not be rated (``reason`` says why).
        score: 0..1, the model's score for its sensitive labels.
        model: the classifier's name (``nudenet-320n``).
        reason: why there is no label.
    """

    label: Literal["sensitive", "ok"] | None
    score: float | None = None
    model: str | None = None
    reason: str = ""

    @property
    def flagged(self) -> bool:
        return self.label == "sensitive"

    def as_dict(self) -> dict[str, Any]:
        score = None if self.score is None else round(self.score, 4)
        out: dict[str, Any] = {"label": self.label, "score": score, "model": self.model}
        if self.reason:
            out["reason"] = self.reason
        return out

    @classmethod
    def from_dict(cls, raw: object) -> SensitiveResult | None:
        """Read a stored rating back (anything malformed reads as no rating)."""
        if not isinstance(raw, Mapping):
            return None
        label = raw.get("label")
        score = raw.get("score")
        model = raw.get("model")
        if label not in ("sensitive", "ok", None):
            return None
        if score is not None and (isinstance(score, bool) or not isinstance(score, int | float)
                                  or not 0.0 <= float(score) <= 1.0):
            return None
        model = model[:64] if isinstance(model, str) else None
        reason = raw.get("reason")
        return cls(label, None if score is None else float(score), model,
                   reason[:300] if isinstance(reason, str) else "")

    def describe(self) -> str:
        """What the sender or reader is told: 'may contain nudity (nudenet-320n, score 0.87)'."""
        if self.label is None:
            return f"could not be rated for sensitive content ({self.reason or 'no classifier'})"
        score = f", score {self.score:.2f}" if self.score is not None else ""
        if self.flagged:
            return (f"the on-device classifier rates it as possibly sensitive ({self.model}{score}; "
                    "nothing is reported)")
        return f"not rated sensitive ({self.model}{score})"


class ImageClassifierPort(Protocol):
    """What the pipeline and the core need: rate exactly these bytes."""

    def classify(self, data: bytes, *, name: str) -> SensitiveResult: ...


class LocalClassifier:
    """Rates image bytes in-process with the configured model (loaded on first use, then cached).

    Args:
        model: the classifier name or ``.onnx`` path (a callable is read at each call, so a changed
            setting takes effect without a restart).
        threads: onnxruntime intra-op threads (1: the client shares the machine with the UI).
    """

    def __init__(self, model: str | Callable[[], str] = "nudenet", *, threads: int = 1) -> None:
        self._model = model
        self.threads = threads

    @property
    def model(self) -> str:
        return self._model() if callable(self._model) else self._model

    def classify(self, data: bytes, *, name: str) -> SensitiveResult:
        """Rate ``data`` (decoded with ``scanner.image``'s guards); errors become a result with a reason."""
        from scanner.classifiers import ClassifierError, get_classifier
        from scanner.classifying import classify_bytes
        from scanner.errors import ImageError

        try:
            classifier = get_classifier(self.model, threads=self.threads)
            rating = classify_bytes(data, classifier, name=name)
        except (ClassifierError, ImageError) as exc:
            return SensitiveResult(None, reason=str(getattr(exc, "reason", None) or exc)[:300])
        return SensitiveResult(rating.label, float(rating.score), rating.model)


def sensitive_note(model: str) -> str | None:
    """None when ``model`` loads, else the one-line reason (e.g. how to install the extra)."""
    from scanner.classifiers import ClassifierError, get_classifier

    try:
        get_classifier(model, threads=1)
    except ClassifierError as exc:
        return str(exc)
    return None
