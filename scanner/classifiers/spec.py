"""The JSON sidecar that says how to feed a classifier model and read its output (validated strictly).

A sidecar is attacker-controlled input: it is bounded in size, parsed without duplicate keys, NaN or
infinities, and every key is checked for type and range; unknown keys are refused (a typo must not silently
fall back to a default). Schema (``?`` marks optional keys, defaults in brackets)::

    {
      "name": "my-detector",                 # shown as "model" in results (1-64 chars of [A-Za-z0-9._-])
      "kind": "detector",                    # "detector" (YOLOv8-style boxes) or "classifier" (whole image)
      "input_size": [320, 320],              # [height, width], 8..2048 each (or one integer)
      "range"?: [0, 1],                      # pixel p (0..255) fed as lo + p * (hi - lo) / 255   [[0, 1]]
      "mean"?: [0.485, 0.456, 0.406],        # or (p / 255 - mean) / std per channel (instead of range)
      "std"?: [0.229, 0.224, 0.225],
      "layout"?: "NCHW",                     # or "NHWC"                                          [NCHW]
      "channels"?: "RGB",                    # or "BGR"                                           [RGB]
      "resize"?: "letterbox",                # "letterbox": pad to a square (bottom/right), then resize;
                                             # "stretch": resize the whole image to input_size  [letterbox]
      "pad_value"?: 0,                       # 0..255, the letterbox padding grey level          [0]
      "labels": ["A", "B", ...],             # one per class output, 1..1000 unique, 1-64 printable chars
      "sensitive_labels": ["A"],             # non-empty subset of labels
      "threshold": 0.5,                      # image is "sensitive" when its score >= threshold, in (0, 1]
      "min_box_score"?: 0.2,                 # detector: boxes scoring below this are dropped    [0.2]
      "nms_iou"?: 0.45,                      # detector: IoU above which the weaker box is dropped [0.45]
      "max_detections"?: 100,                # detector: boxes kept after NMS, 1..1000            [100]
      "activation"?: "none",                 # classifier: "softmax", "sigmoid" or "none" (already 0..1)
      "input_name"?: null, "output_name"?: null   # default: the model's first input and output
    }

The image ``score`` is the highest box score of a sensitive label (detector), or the probability of the
sensitive labels (classifier: their sum after ``softmax``, their maximum otherwise).
"""

from __future__ import annotations

import json
import math
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from scanner.classifiers.base import ClassifierError

__all__ = ["MAX_SIDECAR_BYTES", "ClassifierSpec", "load_classifier_sidecar", "parse_classifier_sidecar"]

MAX_SIDECAR_BYTES = 64 * 1024
MAX_LABELS = 1000
_NAME = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
_LABEL = re.compile(r"^[\x21-\x7e](?:[\x20-\x7e]{0,62}[\x21-\x7e])?$")

_KEYS = {
    "name", "kind", "input_size", "range", "mean", "std", "layout", "channels", "resize", "pad_value",
    "labels", "sensitive_labels", "threshold", "min_box_score", "nms_iou", "max_detections", "activation",
    "input_name", "output_name", "comment",
}


@dataclass(frozen=True)
class ClassifierSpec:
    """How to feed a classifier and read its output (parsed from a sidecar)."""

    name: str
    kind: Literal["detector", "classifier"]
    input_size: tuple[int, int]
    offset: tuple[float, float, float]
    channel_scale: tuple[float, float, float]
    """Pixel ``p`` (0..255) of channel ``c`` is fed as ``p * channel_scale[c] + offset[c]``."""
    labels: tuple[str, ...]
    sensitive_labels: frozenset[str]
    threshold: float
    layout: Literal["NCHW", "NHWC"] = "NCHW"
    channels: Literal["RGB", "BGR"] = "RGB"
    resize: Literal["letterbox", "stretch"] = "letterbox"
    pad_value: int = 0
    min_box_score: float = 0.2
    nms_iou: float = 0.45
    max_detections: int = 100
    activation: Literal["softmax", "sigmoid", "none"] = "none"
    input_name: str | None = None
    output_name: str | None = None

    def with_config(self, *, threshold: float | None = None,
                    sensitive_labels: frozenset[str] | None = None) -> ClassifierSpec:
        """The same spec with another threshold or sensitive-label set (validated)."""
        from dataclasses import replace

        labels = self.sensitive_labels if sensitive_labels is None else frozenset(sensitive_labels)
        new = replace(self, threshold=self.threshold if threshold is None else float(threshold),
                      sensitive_labels=labels)
        if not (0.0 < new.threshold <= 1.0) or math.isnan(new.threshold):
            raise ClassifierError(f"threshold must be in (0, 1], not {new.threshold}")
        unknown = sorted(new.sensitive_labels - set(new.labels))
        if not new.sensitive_labels or unknown:
            raise ClassifierError(f"sensitive labels must be a non-empty subset of the model's labels "
                                  f"(unknown: {', '.join(unknown) or '-'})")
        return new


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not allowed")


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise ValueError(f"duplicate key {key!r}")
        out[key] = value
    return out


def _number(raw: dict[str, Any], key: str, default: float, lo: float, hi: float, where: str, *,
            lo_open: bool = False) -> float:
    value = raw.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ClassifierError(f"{where}: '{key}' must be a number")
    if value > hi or value < lo or (lo_open and value <= lo):
        left = "(" if lo_open else "["
        raise ClassifierError(f"{where}: '{key}' must be in {left}{lo:g}, {hi:g}], not {value}")
    return float(value)


def _floats3(value: Any, key: str, where: str) -> tuple[float, float, float]:
    if isinstance(value, int | float) and not isinstance(value, bool):
        value = [value] * 3
    if (not isinstance(value, list) or len(value) != 3
            or not all(isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)
                       and abs(v) <= 1e6 for v in value)):
        raise ClassifierError(f"{where}: '{key}' must be a number or a list of 3 numbers")
    return float(value[0]), float(value[1]), float(value[2])


def _choice(raw: dict[str, Any], key: str, default: str, allowed: tuple[str, ...], where: str) -> Any:
    value = raw.get(key, default)
    if not isinstance(value, str) or value not in allowed:
        raise ClassifierError(f"{where}: '{key}' must be one of {', '.join(allowed)}")
    return value


def _labels(value: Any, key: str, where: str, *, limit: int = MAX_LABELS) -> list[str]:
    if not isinstance(value, list) or not 1 <= len(value) <= limit:
        raise ClassifierError(f"{where}: '{key}' must be a list of 1 to {limit} label strings")
    for label in value:
        if not isinstance(label, str) or not _LABEL.match(label):
            raise ClassifierError(
                f"{where}: '{key}' holds {str(label)[:40]!r}: labels are 1-64 printable ASCII characters")
    if len(set(value)) != len(value):
        raise ClassifierError(f"{where}: '{key}' has duplicate labels")
    return list(value)


def _load_object(text: str | bytes, where: str) -> dict[str, Any]:
    """The sidecar's JSON object: bounded in size, no duplicate keys, NaN or infinities, no unknown keys."""
    if len(text) > MAX_SIDECAR_BYTES:
        raise ClassifierError(f"{where}: sidecar larger than {MAX_SIDECAR_BYTES} bytes")
    try:
        raw = json.loads(text, object_pairs_hook=_no_duplicates, parse_constant=_refuse_constant)
    except (ValueError, RecursionError) as exc:  # JSONDecodeError is a ValueError
        raise ClassifierError(f"{where}: sidecar is not valid JSON ({str(exc)[:200]})") from None
    if not isinstance(raw, dict):
        raise ClassifierError(f"{where}: sidecar must be a JSON object")
    unknown = sorted(set(raw) - _KEYS)
    if unknown:
        shown = ", ".join(repr(k[:40]) for k in unknown[:5])
        raise ClassifierError(f"{where}: unknown key(s) {shown}; known: {', '.join(sorted(_KEYS))}")
    return raw


def _model_name(raw: dict[str, Any], where: str) -> str:
    """The required ``name``: 1-64 characters of ``[A-Za-z0-9._-]``."""
    name = raw.get("name")
    if not isinstance(name, str) or not _NAME.match(name):
        raise ClassifierError(f"{where}: 'name' must be 1-64 characters of letters, digits, '.', '_' or '-'")
    return name


def _input_size(raw: dict[str, Any], where: str) -> tuple[int, int]:
    """The required ``input_size`` as (height, width), one integer meaning a square; sides 8..2048."""
    size = raw.get("input_size")
    if isinstance(size, int) and not isinstance(size, bool):
        size = [size, size]
    if (not isinstance(size, list) or len(size) != 2
            or not all(isinstance(v, int) and not isinstance(v, bool) and 8 <= v <= 2048 for v in size)):
        raise ClassifierError(f"{where}: 'input_size' must be [height, width] with sides of 8..2048 pixels")
    return int(size[0]), int(size[1])


def _pixel_transform(
    raw: dict[str, Any], where: str
) -> tuple[tuple[float, float, float], tuple[float, float, float]]:
    """(offset, channel_scale) from either ``mean``/``std`` or ``range`` (default ``[0, 1]``)."""
    if "range" in raw and ("mean" in raw or "std" in raw):
        raise ClassifierError(f"{where}: give either 'range' or 'mean'/'std', not both")
    if "mean" in raw or "std" in raw:
        mean = _floats3(raw.get("mean", 0.0), "mean", where)
        std = _floats3(raw.get("std", 1.0), "std", where)
        if any(abs(s) < 1e-6 for s in std):
            raise ClassifierError(f"{where}: 'std' must not contain zero")
        scale = (1 / (255 * std[0]), 1 / (255 * std[1]), 1 / (255 * std[2]))
        return (-mean[0] / std[0], -mean[1] / std[1], -mean[2] / std[2]), scale
    rng = raw.get("range", [0, 1])
    if (not isinstance(rng, list) or len(rng) != 2
            or not all(isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)
                       and abs(v) <= 1e6 for v in rng) or rng[0] == rng[1]):
        raise ClassifierError(f"{where}: 'range' must be [low, high], two different numbers")
    lo, hi = float(rng[0]), float(rng[1])
    return (lo, lo, lo), ((hi - lo) / 255, (hi - lo) / 255, (hi - lo) / 255)


def _label_sets(raw: dict[str, Any], where: str) -> tuple[list[str], list[str]]:
    """The required ``labels`` and ``sensitive_labels``, the second a subset of the first."""
    labels = _labels(raw.get("labels"), "labels", where)
    sensitive = _labels(raw.get("sensitive_labels"), "sensitive_labels", where)
    missing = [s for s in sensitive if s not in labels]
    if missing:
        raise ClassifierError(f"{where}: 'sensitive_labels' not in 'labels': {', '.join(missing[:5])}")
    return labels, sensitive


def _integer(raw: dict[str, Any], key: str, default: int, lo: int, hi: int, where: str) -> int:
    """An optional integer key (booleans refused) in ``lo..hi``."""
    value = raw.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise ClassifierError(f"{where}: '{key}' must be an integer {lo}..{hi}")
    return value


def _check_optional_strings(raw: dict[str, Any], where: str) -> None:
    """``input_name``, ``output_name`` (up to 256 characters) and ``comment`` (2000): strings or null."""
    for key in ("input_name", "output_name", "comment"):
        value = raw.get(key)
        longest = 2000 if key == "comment" else 256
        if value is not None and (not isinstance(value, str) or len(value) > longest):
            raise ClassifierError(f"{where}: '{key}' must be a string (or null)")


def _threshold(raw: dict[str, Any], where: str) -> float:
    """The required ``threshold``, in (0, 1]."""
    if "threshold" not in raw:
        raise ClassifierError(f"{where}: 'threshold' is required")
    return _number(raw, "threshold", math.nan, 0.0, 1.0, where, lo_open=True)


def parse_classifier_sidecar(text: str | bytes, *, where: str = "<sidecar>") -> ClassifierSpec:
    """Parse and validate sidecar JSON text (see the module docstring for the schema).

    Raises:
        ClassifierError: one message naming ``where`` and the first problem found.
    """
    raw = _load_object(text, where)
    name = _model_name(raw, where)
    kind = _choice(raw, "kind", "", ("detector", "classifier"), where)
    input_size = _input_size(raw, where)
    offset, scale = _pixel_transform(raw, where)
    labels, sensitive = _label_sets(raw, where)
    pad = _integer(raw, "pad_value", 0, 0, 255, where)
    max_det = _integer(raw, "max_detections", 100, 1, 1000, where)
    _check_optional_strings(raw, where)
    return ClassifierSpec(
        name=name,
        kind=kind,
        input_size=input_size,
        offset=offset,
        channel_scale=scale,
        labels=tuple(labels),
        sensitive_labels=frozenset(sensitive),
        threshold=_threshold(raw, where),
        layout=_choice(raw, "layout", "NCHW", ("NCHW", "NHWC"), where),
        channels=_choice(raw, "channels", "RGB", ("RGB", "BGR"), where),
        resize=_choice(raw, "resize", "letterbox", ("letterbox", "stretch"), where),
        pad_value=pad,
        min_box_score=_number(raw, "min_box_score", 0.2, 0.0, 1.0, where),
        nms_iou=_number(raw, "nms_iou", 0.45, 0.0, 1.0, where, lo_open=True),
        max_detections=max_det,
        activation=_choice(raw, "activation", "none", ("softmax", "sigmoid", "none"), where),
        input_name=raw.get("input_name"),
        output_name=raw.get("output_name"),
    )


def load_classifier_sidecar(path: str | os.PathLike[str]) -> ClassifierSpec:
    """Read and validate a sidecar file (bounded read).

    Raises:
        ClassifierError: unreadable, too large, not JSON, or invalid values.
    """
    p = Path(path)
    try:
        with p.open("rb") as fh:
            data = fh.read(MAX_SIDECAR_BYTES + 1)
    except OSError as exc:
        raise ClassifierError(f"{p}: cannot read sidecar ({exc.strerror or exc})") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise ClassifierError(f"{p}: sidecar is not UTF-8 text") from None
    return parse_classifier_sidecar(text, where=str(p))


def sidecar_for(model: Path) -> Path:
    """``model.json`` or ``model.onnx.json`` beside ``model``."""
    for cand in (model.with_suffix(".json"), model.with_name(model.name + ".json")):
        if cand.is_file():
            return cand
    raise ClassifierError(
        f"{model}: no JSON sidecar found (expected {model.with_suffix('.json').name} or {model.name}.json "
        "beside the model, giving name, kind, input_size, labels, sensitive_labels and threshold)"
    )
