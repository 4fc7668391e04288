"""Tiny stand-in ONNX models for the sensitive-content pipeline, built with the ``onnx`` helper API.

No weights and no real images of people are needed: the models look at the image's mean colour.

* Detector (YOLOv8 layout, output ``(1, 4 + 3, 4)``), labels ``EXPOSED``, ``COVERED``, ``FACE``:
  ``EXPOSED`` scores ``sigmoid(12 (R - B) - 2)`` on anchors 0 and 1 (two overlapping boxes, so NMS must keep
  one), ``COVERED`` ``sigmoid(12 (B - R) - 2)`` on anchor 2, ``FACE`` ``sigmoid(12 G - 8)`` on anchor 3.
  A red image is "sensitive" (score ~1), a blue or grey one "ok".
* Classifier (output ``(1, 2)`` logits, softmax), labels ``nsfw``, ``sfw``: ``nsfw`` logit ``10 (R - B)``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

SIZE = 32
LABELS = ["EXPOSED", "COVERED", "FACE"]
ANCHORS = 4
# centre x, centre y, width, height in model pixels, one column per anchor
BOXES = np.array([[8, 9, 24, 24], [8, 9, 24, 8], [10, 10, 8, 6], [10, 10, 8, 6]], np.float32)


def detector_sidecar(**overrides: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "name": "standin-detector", "kind": "detector", "input_size": [SIZE, SIZE], "range": [0, 1],
        "labels": LABELS, "sensitive_labels": ["EXPOSED"], "threshold": 0.5, "min_box_score": 0.2,
        "nms_iou": 0.45,
    }
    spec.update(overrides)
    return spec


def build_standin_detector(folder: Path, *, name: str = "standin.onnx", **overrides: Any) -> Path:
    """Write ``folder/name`` and its sidecar ``folder/<stem>.json``; return the model path."""
    from onnx import TensorProto, helper, numpy_helper, save

    c = len(LABELS)
    w = np.zeros((3, c * ANCHORS), np.float32)
    b = np.full(c * ANCHORS, -30.0, np.float32)  # unused (class, anchor) cells score ~0
    for anchor, bias in ((0, -2.0), (1, -2.5)):
        w[0, 0 * ANCHORS + anchor], w[2, 0 * ANCHORS + anchor], b[0 * ANCHORS + anchor] = 12, -12, bias
    w[2, 1 * ANCHORS + 2], w[0, 1 * ANCHORS + 2], b[1 * ANCHORS + 2] = 12, -12, -2.0
    w[1, 2 * ANCHORS + 3], b[2 * ANCHORS + 3] = 12, -8.0
    nodes = [
        helper.make_node("GlobalAveragePool", ["images"], ["g"]),
        helper.make_node("Flatten", ["g"], ["f"], axis=1),
        helper.make_node("MatMul", ["f", "w"], ["m"]),
        helper.make_node("Add", ["m", "b"], ["l"]),
        helper.make_node("Sigmoid", ["l"], ["s"]),
        helper.make_node("Reshape", ["s", "shape"], ["scores"]),
        helper.make_node("Concat", ["boxes", "scores"], ["output0"], axis=1),
    ]
    inits = [
        numpy_helper.from_array(w, "w"),
        numpy_helper.from_array(b, "b"),
        numpy_helper.from_array(np.array([1, c, ANCHORS], np.int64), "shape"),
        numpy_helper.from_array(BOXES[None], "boxes"),
    ]
    graph = helper.make_graph(
        nodes, "standin_detector",
        [helper.make_tensor_value_info("images", TensorProto.FLOAT, [1, 3, SIZE, SIZE])],
        [helper.make_tensor_value_info("output0", TensorProto.FLOAT, [1, 4 + c, ANCHORS])],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    save(model, str(path))
    path.with_suffix(".json").write_text(json.dumps(detector_sidecar(**overrides)))
    return path


def build_standin_classifier(folder: Path, *, name: str = "standin-cls.onnx") -> Path:
    """A whole-image classifier (``nsfw``/``sfw`` logits) with its sidecar; return the model path."""
    from onnx import TensorProto, helper, numpy_helper, save

    w = np.array([[10, 0], [0, 0], [-10, 0]], np.float32)
    nodes = [
        helper.make_node("GlobalAveragePool", ["input"], ["g"]),
        helper.make_node("Flatten", ["g"], ["f"], axis=1),
        helper.make_node("MatMul", ["f", "w"], ["logits"]),
    ]
    graph = helper.make_graph(
        nodes, "standin_classifier",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 3, SIZE, SIZE])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [1, 2])],
        [numpy_helper.from_array(w, "w")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    save(model, str(path))
    path.with_suffix(".json").write_text(json.dumps({
        "name": "standin-classifier", "kind": "classifier", "input_size": SIZE, "resize": "stretch",
        "labels": ["nsfw", "sfw"], "sensitive_labels": ["nsfw"], "threshold": 0.5, "activation": "softmax",
    }))
    return path


def solid_png(path: Path, colour: tuple[int, int, int], size: tuple[int, int] = (64, 48)) -> Path:
    """A flat-colour PNG test image."""
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, colour).save(path)
    return path
