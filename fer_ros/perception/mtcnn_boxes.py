"""The box arithmetic of MTCNN's cascade, in numpy: pyramid scales, P-Net windows, regression,
squaring, window crops and the two non-maximum suppressions.

Boxes are 1-based inclusive pixel indices, as in the original MTCNN (see ``cascade``).
"""
from __future__ import annotations

import cv2
import numpy as np

PNET_CELL = 12  # P-Net window, pixels of a pyramid level
PNET_STRIDE = 2  # P-Net output stride, pixels of a pyramid level


def pyramid_scales(height: int, width: int, min_face_size: float, factor: float) -> list[float]:
    """Scales at which a 12 px P-Net window covers faces from ``min_face_size`` up to the frame."""
    scale = PNET_CELL / float(min_face_size)
    side = min(height, width) * scale
    scales = []
    while side >= PNET_CELL:
        scales.append(scale)
        scale *= factor
        side *= factor
    return scales


def pnet_boxes(reg: np.ndarray, prob: np.ndarray, scale: float, threshold: float) -> np.ndarray:
    """P-Net maps ([4, h, w] offsets, [h, w] face probability) -> [K, 9] windows in frame pixels."""
    ys, xs = np.nonzero(prob >= threshold)
    if len(ys) == 0:
        return np.zeros((0, 9), np.float32)
    cells = np.stack([xs, ys], axis=1).astype(np.float32)
    top_left = np.floor((PNET_STRIDE * cells + 1.0) / scale)
    bottom_right = np.floor((PNET_STRIDE * cells + PNET_CELL) / scale)
    return np.concatenate([top_left, bottom_right, prob[ys, xs, None], reg[:, ys, xs].T], axis=1).astype(np.float32)


def regress(boxes: np.ndarray, reg: np.ndarray) -> np.ndarray:
    """Apply R-/O-Net box offsets (fractions of the inclusive width/height); keeps column 4."""
    out = boxes.copy()
    w = boxes[:, 2] - boxes[:, 0] + 1.0
    h = boxes[:, 3] - boxes[:, 1] + 1.0
    out[:, :4] += reg[:, :4] * np.stack([w, h, w, h], axis=1)
    return out


def square(boxes: np.ndarray) -> np.ndarray:
    """Grow each box to a square around its centre (the nets expect square windows)."""
    out = boxes.copy()
    w, h = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
    side = np.maximum(w, h)
    out[:, 0] = boxes[:, 0] + w * 0.5 - side * 0.5
    out[:, 1] = boxes[:, 1] + h * 0.5 - side * 0.5
    out[:, 2] = out[:, 0] + side
    out[:, 3] = out[:, 1] + side
    return out


def crop_windows(image: np.ndarray, boxes: np.ndarray, size: int) -> np.ndarray:
    """Cut each (1-based, inclusive) box out of ``image``, zero-padded at the edges -> uint8 [N, size, size, 3]."""
    height, width = image.shape[:2]
    out = np.zeros((len(boxes), size, size, 3), np.uint8)
    for i, box in enumerate(np.trunc(boxes[:, :4]).astype(np.int64)):
        x1, y1, x2, y2 = int(box[0]) - 1, int(box[1]) - 1, int(box[2]), int(box[3])
        if x2 <= x1 or y2 <= y1:
            continue
        inside = image[max(y1, 0):min(y2, height), max(x1, 0):min(x2, width)]
        if inside.size == 0:
            continue
        if x1 < 0 or y1 < 0 or x2 > width or y2 > height:
            inside = cv2.copyMakeBorder(inside, max(-y1, 0), max(y2 - height, 0), max(-x1, 0), max(x2 - width, 0),
                                        cv2.BORDER_CONSTANT, value=(0, 0, 0))
        out[i] = cv2.resize(inside, (size, size), interpolation=cv2.INTER_AREA)
    return out


def nms_union(boxes: np.ndarray, iou: float) -> np.ndarray:
    """Indices kept by greedy NMS on intersection over union, computed as torchvision's ``nms`` does."""
    return _greedy_nms(boxes, iou, union=True)


def nms_min(boxes: np.ndarray, overlap: float) -> np.ndarray:
    """Greedy NMS on intersection over the smaller box (drops a box nested in a better one)."""
    return _greedy_nms(boxes, overlap, union=False)


def _greedy_nms(boxes: np.ndarray, limit: float, union: bool) -> np.ndarray:
    """Keep the best box, drop every box overlapping it by more than ``limit``, repeat.

    ``union``: IoU in float32 on continuous coordinates, best first in a stable order (as
    torchvision's kernel); otherwise the original MTCNN's "Min" on inclusive pixel areas.
    """
    b = np.asarray(boxes[:, :5], np.float32 if union else None)
    x1, y1, x2, y2, score = (b[:, i] for i in range(5))
    one = b.dtype.type(0.0 if union else 1.0)
    area = (x2 - x1 + one) * (y2 - y1 + one)
    order, keep = (np.argsort(-score, kind="stable") if union else np.argsort(score)[::-1]), []
    while len(order):
        i, rest = order[0], order[1:]
        keep.append(i)
        iw = np.maximum(0.0, np.minimum(x2[i], x2[rest]) - np.maximum(x1[i], x1[rest]) + one)
        ih = np.maximum(0.0, np.minimum(y2[i], y2[rest]) - np.maximum(y1[i], y1[rest]) + one)
        inter = iw * ih
        order = rest[inter / ((area[i] + area[rest] - inter) if union else np.minimum(area[i], area[rest])) <= limit]
    return np.asarray(keep, np.int64)
