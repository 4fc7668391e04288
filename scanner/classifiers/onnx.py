"""Run a classifier model (ONNX detector or whole-image classifier) described by a sidecar spec.

One :class:`OnnxClassifier` per model file and spec; the onnxruntime session is shared with the learned
hasher's session cache (``scanner.hashers.onnx``), created once per process. Pre- and post-processing are
ours (numpy and Pillow, :mod:`scanner.classifiers.postprocess`); OpenCV is never imported.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from scanner.classifiers.base import Classification, ClassifierError, Detection, Label
from scanner.classifiers.postprocess import decode_yolov8, letterbox, softmax, to_model_input
from scanner.classifiers.spec import ClassifierSpec, load_classifier_sidecar, sidecar_for
from scanner.hashers.base import check_rgb

__all__ = ["OnnxClassifier"]


class OnnxClassifier:
    """Rate images with an ONNX model and its :class:`~scanner.classifiers.spec.ClassifierSpec`.

    Args:
        model: the ``.onnx`` file.
        spec: the parsed sidecar (default: ``model.json`` or ``model.onnx.json`` beside the model).
        threads: onnxruntime intra-op threads (0 = onnxruntime's default).

    Raises:
        ClassifierError: the model cannot be loaded or does not fit its sidecar.
    """

    def __init__(self, model: str | os.PathLike[str], spec: ClassifierSpec | None = None, *,
                 threads: int = 0) -> None:
        from scanner.hashers.onnx import ModelError, _session

        self.model_path = Path(model)
        if not self.model_path.is_file():
            raise ClassifierError(f"{self.model_path}: model file not found")
        self.spec = spec if spec is not None else load_classifier_sidecar(sidecar_for(self.model_path))
        self.name = self.spec.name
        self.threads = int(threads)
        self._providers = ("CPUExecutionProvider",)
        try:
            sess = _session(self.model_path, self._providers, self.threads)
        except ModelError as exc:
            raise ClassifierError(str(exc)) from None
        inputs, outputs = sess.get_inputs(), sess.get_outputs()
        names_in, names_out = [i.name for i in inputs], [o.name for o in outputs]
        self.input_name = self.spec.input_name or names_in[0]
        self.output_name = self.spec.output_name or names_out[0]
        if self.input_name not in names_in:
            raise ClassifierError(
                f"{self.model_path}: no input named {self.input_name!r} (inputs: {names_in})")
        if self.output_name not in names_out:
            raise ClassifierError(
                f"{self.model_path}: no output named {self.output_name!r} (outputs: {names_out})")
        self._check_input(next(i.shape for i in inputs if i.name == self.input_name))
        self._check_output(next(o.shape for o in outputs if o.name == self.output_name))

    # -- setup checks ------------------------------------------------------------------------------
    def _check_input(self, shape: Sequence[Any]) -> None:
        if len(shape) != 4:
            raise ClassifierError(f"{self.model_path}: input has rank {len(shape)}, expected 4 (N, C, H, W)")
        h, w = self.spec.input_size
        nchw = self.spec.layout == "NCHW"
        spatial = (shape[2], shape[3]) if nchw else (shape[1], shape[2])
        chans = shape[1] if nchw else shape[3]
        for got, want in zip(spatial, (h, w), strict=True):
            if isinstance(got, int) and got > 0 and got != want:
                raise ClassifierError(f"{self.model_path}: input is {tuple(shape)} but the sidecar says "
                                      f"input_size {h}x{w} ({self.spec.layout})")
        if isinstance(chans, int) and chans != 3:
            raise ClassifierError(f"{self.model_path}: input has {chans} channels, expected 3")

    def _check_output(self, shape: Sequence[Any]) -> None:
        n = len(self.spec.labels)
        if self.spec.kind == "detector":
            rows = shape[1] if len(shape) == 3 else None
            if len(shape) != 3 or (isinstance(rows, int) and rows != 4 + n):
                raise ClassifierError(
                    f"{self.model_path}: a detector's output must be (N, 4 + {n} labels, anchors), "
                    f"got {tuple(shape)}")
        else:
            last = shape[-1] if shape else None
            if len(shape) != 2 or (isinstance(last, int) and last != n):
                raise ClassifierError(
                    f"{self.model_path}: a classifier's output must be (N, {n} labels), got {tuple(shape)}")

    # -- core ---------------------------------------------------------------------------------------
    def _run(self, x: np.ndarray) -> np.ndarray:
        from scanner.hashers.onnx import ModelError, _session

        try:
            sess = _session(self.model_path, self._providers, self.threads)
            y = sess.run([self.output_name], {self.input_name: x})[0]
        except ModelError as exc:
            raise ClassifierError(str(exc)) from None
        except Exception as exc:  # onnxruntime's own exception types
            raise ClassifierError(f"{self.model_path}: inference failed ({str(exc).strip()[:300]})") from None
        y = np.asarray(y)
        if not np.issubdtype(y.dtype, np.floating) or not np.isfinite(y).all():
            raise ClassifierError(
                f"{self.model_path}: the model produced non-numeric, NaN or infinite values")
        return y

    def classify_rgb(self, rgb: np.ndarray) -> Classification:
        """Rate one decoded image (``HxWx3`` uint8)."""
        spec = self.spec
        rgb = check_rgb(rgb)
        fitted, fx, fy = letterbox(rgb, spec.input_size, pad_value=spec.pad_value,
                                   stretch=spec.resize == "stretch")
        x = to_model_input(fitted[None], spec.channel_scale, spec.offset, layout=spec.layout,
                           bgr=spec.channels == "BGR")
        y = self._run(x)
        if spec.kind == "detector":
            return self._from_detections(y, fx, fy, rgb.shape[:2])
        return self._from_scores(y)

    def _from_detections(self, y: np.ndarray, fx: float, fy: float, size: tuple[int, int]) -> Classification:
        spec = self.spec
        try:
            boxes, scores, classes = decode_yolov8(
                y[:1], len(spec.labels), min_box_score=spec.min_box_score, iou=spec.nms_iou,
                limit=spec.max_detections, x_factor=fx, y_factor=fy, image_size=size)
        except ValueError as exc:
            raise ClassifierError(f"{self.model_path}: {exc}") from None
        detections = tuple(
            Detection(spec.labels[int(c)], float(s), (float(b[0]), float(b[1]), float(b[2]), float(b[3])))
            for b, s, c in zip(boxes, scores, classes, strict=True))
        score = max((d.score for d in detections if d.label in spec.sensitive_labels), default=0.0)
        return self._result(score, detections)

    def _from_scores(self, y: np.ndarray) -> Classification:
        spec = self.spec
        row = np.asarray(y, np.float64).reshape(y.shape[0], -1)[0]
        if row.shape[0] != len(spec.labels):
            raise ClassifierError(f"{self.model_path}: output has {row.shape[0]} scores for "
                                  f"{len(spec.labels)} labels")
        idx = [i for i, label in enumerate(spec.labels) if label in spec.sensitive_labels]
        if spec.activation == "softmax":
            score = float(softmax(row)[idx].sum())
        else:
            probs = 1.0 / (1.0 + np.exp(-row)) if spec.activation == "sigmoid" else row
            score = float(np.max(probs[idx]))
        return self._result(min(1.0, max(0.0, score)), ())

    def _result(self, score: float, detections: tuple[Detection, ...]) -> Classification:
        label: Label = "sensitive" if score >= self.spec.threshold else "ok"
        return Classification(label, float(score), self.name, self.spec.threshold, detections)

    def __repr__(self) -> str:
        return f"OnnxClassifier(model={self.model_path.name!r}, name={self.name!r}, kind={self.spec.kind!r})"
