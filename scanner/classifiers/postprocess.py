"""Pure numpy pre- and post-processing: letterboxing, YOLOv8 output decoding, NMS, softmax.

YOLOv8 detection heads export one tensor of shape ``(1, 4 + C, N)``: for each of the ``N`` anchor points,
a box as centre x, centre y, width, height in input pixels, then ``C`` per-class scores (already sigmoid,
no separate objectness). Decoding keeps anchors whose best class score reaches ``min_box_score``, converts
the boxes to corners, runs class-agnostic non-maximum suppression (what the NudeNet package does with
OpenCV's ``NMSBoxes``) and scales the survivors back to the decoded image's pixels.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

__all__ = ["decode_yolov8", "letterbox", "nms", "softmax", "to_model_input"]


def letterbox(rgb: np.ndarray, size: tuple[int, int], *, pad_value: int = 0,
              stretch: bool = False) -> tuple[np.ndarray, float, float]:
    """Fit ``rgb`` into ``size`` = (height, width) keeping its aspect ratio: resize (Pillow bilinear,
    antialiased) so it fits, then pad at the bottom/right with ``pad_value`` (the layout NudeNet's own
    preprocessing gives: pad to a square, then resize). ``stretch`` resizes to ``size`` without padding.

    Returns the uint8 ``size`` image and the x and y factors mapping model pixels back to image pixels.
    Memory stays bounded by the model size whatever the image's aspect ratio.
    """
    h, w = rgb.shape[:2]
    th, tw = size
    if stretch:
        nh, nw = th, tw
    else:
        s = min(tw / w, th / h)
        nh, nw = min(th, max(1, round(h * s))), min(tw, max(1, round(w * s)))
    if (nh, nw) == (h, w):
        resized = np.ascontiguousarray(rgb)
    else:
        img = Image.fromarray(np.ascontiguousarray(rgb))
        resized = np.asarray(img.resize((nw, nh), Image.Resampling.BILINEAR, reducing_gap=3.0))
    if (nh, nw) == (th, tw):
        return resized, w / nw, h / nh
    canvas = np.full((th, tw, 3), pad_value, np.uint8)
    canvas[:nh, :nw] = resized
    return canvas, w / nw, h / nh


def to_model_input(images: np.ndarray, scale: tuple[float, float, float], offset: tuple[float, float, float],
                   *, layout: str = "NCHW", bgr: bool = False) -> np.ndarray:
    """``N x H x W x 3`` uint8 -> float32 in the model's layout and normalisation."""
    x = images.astype(np.float32)
    if bgr:
        x = x[..., ::-1]
    x = x * np.asarray(scale, np.float32) + np.asarray(offset, np.float32)
    if layout == "NCHW":
        x = x.transpose(0, 3, 1, 2)
    return np.ascontiguousarray(x, dtype=np.float32)


def nms(boxes: np.ndarray, scores: np.ndarray, iou: float, limit: int) -> np.ndarray:
    """Indices of the boxes kept by greedy non-maximum suppression, best first.

    ``boxes`` are ``(x0, y0, x1, y1)`` rows; a box is dropped when its IoU with a kept, higher-scoring box
    exceeds ``iou``. Ties in score keep the lower index first (stable order), so results are deterministic.
    """
    if len(boxes) == 0:
        return np.zeros(0, np.int64)
    x0, y0, x1, y1 = (boxes[:, i].astype(np.float64) for i in range(4))
    areas = np.clip(x1 - x0, 0, None) * np.clip(y1 - y0, 0, None)
    order = np.argsort(-scores, kind="stable")
    keep: list[int] = []
    while order.size and len(keep) < limit:
        i = int(order[0])
        keep.append(i)
        rest = order[1:]
        iw = np.clip(np.minimum(x1[i], x1[rest]) - np.maximum(x0[i], x0[rest]), 0, None)
        ih = np.clip(np.minimum(y1[i], y1[rest]) - np.maximum(y0[i], y0[rest]), 0, None)
        inter = iw * ih
        union = areas[i] + areas[rest] - inter
        overlap = np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)
        order = rest[overlap <= iou]
    return np.asarray(keep, np.int64)


def decode_yolov8(output: np.ndarray, num_classes: int, *, min_box_score: float, iou: float,
                  limit: int, x_factor: float, y_factor: float, image_size: tuple[int, int],
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Boxes (image pixels, ``x0 y0 x1 y1``), scores and class ids of one image's YOLOv8 output.

    ``output`` is ``(4 + C, N)`` or ``(1, 4 + C, N)``; ``image_size`` is (height, width) for clipping.

    Raises:
        ValueError: the output does not have ``4 + num_classes`` rows.
    """
    out = np.asarray(output, dtype=np.float32)
    if out.ndim == 3 and out.shape[0] == 1:
        out = out[0]
    if out.ndim != 2 or out.shape[0] != 4 + num_classes:
        raise ValueError(
            f"expected a (4 + {num_classes}) x N detector output, got shape {tuple(output.shape)}")
    rows = out.T  # N x (4 + C)
    class_scores = rows[:, 4:]
    best = class_scores.argmax(axis=1)
    best_score = class_scores[np.arange(len(rows)), best]
    mask = np.isfinite(best_score) & (best_score >= min_box_score) & np.isfinite(rows[:, :4]).all(axis=1)
    if not mask.any():
        return np.zeros((0, 4), np.float32), np.zeros(0, np.float32), np.zeros(0, np.int64)
    cx, cy, w, h = (rows[mask, i] for i in range(4))
    boxes = np.stack([(cx - w / 2) * x_factor, (cy - h / 2) * y_factor,
                      (cx + w / 2) * x_factor, (cy + h / 2) * y_factor], axis=1)
    height, width = image_size
    boxes[:, [0, 2]] = boxes[:, [0, 2]].clip(0, width)
    boxes[:, [1, 3]] = boxes[:, [1, 3]].clip(0, height)
    scores = best_score[mask]
    classes = best[mask].astype(np.int64)
    keep = nms(boxes, scores, iou, limit)
    return boxes[keep].astype(np.float32), scores[keep].astype(np.float32), classes[keep]


def softmax(x: np.ndarray) -> np.ndarray:
    """Numerically stable softmax over the last axis (float64)."""
    z = np.asarray(x, np.float64)
    z = z - z.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return np.asarray(e / e.sum(axis=-1, keepdims=True))
