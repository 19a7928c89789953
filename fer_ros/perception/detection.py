"""Face detection: MTCNN behind a small typed wrapper.

MTCNN's raw output (object arrays, ``None`` or ``[None]`` when there is no face) stops here;
the rest of the pipeline sees a sorted ``list[Detection]`` in full-frame pixels, empty for no face.
The MTCNN weights ship inside the facenet-pytorch wheel, so nothing is ever downloaded. The
cascade itself runs in ``fer_ros.perception.cascade`` (OpenCV resampling, several times faster on a small
CPU than facenet-pytorch's own ``detect_face``, same networks and thresholds).
"""
from __future__ import annotations

import cv2
import numpy as np
import torch

from fer_ros.config import DetectorConfig
from fer_ros.device import resolve_device
from fer_ros.errors import FerError
from fer_ros.perception.cascade import MtcnnCascade
from fer_ros.types import Detection, RGBImage, as_rgb_image

# P-Net looks at 12x12 windows; asking MTCNN for smaller faces makes it upsample the frame,
# which would undo the point of ``downscale``. So the face size on the shrunk frame is floored here.
PNET_WINDOW_PX = 12


class FaceDetector:
    """Find faces with MTCNN; returns boxes, 5 landmarks and scores in full-frame pixels."""

    def __init__(self, config: DetectorConfig) -> None:
        if len(config.thresholds) != 3:
            raise FerError(f"detector.thresholds must be three numbers in [0, 1], got {config.thresholds}")
        self.config = config
        self.device: torch.device = resolve_device(config.device)
        self._mtcnn = MtcnnCascade(
            min_face_size=self._net_min_face_size(),
            thresholds=[float(t) for t in config.thresholds],
            factor=float(config.scale_factor),
            device=self.device,
            runtime=config.runtime,
        )

    def _net_min_face_size(self) -> float:
        """The minimum face size MTCNN must look for on the shrunk frame."""
        return max(PNET_WINDOW_PX, self.config.min_face_size / max(self.config.downscale, 1.0))

    def detect(self, image: RGBImage, known: list[np.ndarray] = ()) -> list[Detection]:
        """Detect faces in an RGB frame; sorted by score, best first; ``[]`` when none.

        ``known``: full-frame boxes of faces the caller follows already; the cascade spends no
        R-Net or O-Net work on them, so they are usually not in the answer (``MtcnnCascade.run``).
        """
        image = as_rgb_image(image)
        height, width = image.shape[:2]
        small, sx, sy = self._shrink(image)
        min_size = self._net_min_face_size()
        # min_face_size and scale_factor may have been changed on the config since construction.
        self._mtcnn.min_face_size = min_size
        self._mtcnn.factor = float(self.config.scale_factor)
        if min(small.shape[:2]) < min_size:
            return []  # MTCNN's image pyramid would be empty (and it crashes on that)
        scale = np.array([sx, sy, sx, sy], np.float32)
        known_small = np.asarray(known, np.float32).reshape(-1, 4) / scale if len(known) else None
        boxes, probs, points = self._mtcnn.detect(small, landmarks=True, known=known_small)
        if boxes is None or len(boxes) == 0 or probs is None or probs[0] is None:
            return []
        boxes = np.asarray(boxes, dtype=np.float32).reshape(-1, 4) * scale
        probs = np.asarray(probs, dtype=np.float32).reshape(-1)
        if points is None:
            points = np.full((len(boxes), 5, 2), np.nan, np.float32)
        points = np.asarray(points, dtype=np.float32).reshape(-1, 5, 2) * np.array([sx, sy], np.float32)
        detections = []
        for box, score, landmarks in zip(boxes, probs, points):
            if not np.isfinite(score) or score < self.config.min_score:
                continue
            clipped = _clip_box(box, width, height)
            if clipped is not None:
                detections.append(Detection(bbox=clipped, landmarks=landmarks, score=float(score)))
        detections.sort(key=lambda d: d.score, reverse=True)
        return detections

    def refine(self, image: RGBImage, boxes: list[np.ndarray]) -> list[Detection | None]:
        """Find each known face again near its box with R-Net and O-Net only (no pyramid).

        One entry per box, in order: a fresh ``Detection`` (box, landmarks, score) or ``None``
        when the cascade no longer sees a face there (score below the R-/O-Net thresholds or
        ``min_score``). Works on the full-size frame whatever ``downscale`` is: it only cuts
        small windows, so the full resolution costs nothing here.
        """
        image = as_rgb_image(image)
        if not len(boxes):
            return []
        height, width = image.shape[:2]
        found, scores, points = self._mtcnn.refine(image, np.stack([np.asarray(b, np.float32) for b in boxes]))
        out: list[Detection | None] = []
        for box, score, landmarks in zip(found, scores, points):
            clipped = _clip_box(box, width, height) if score >= max(self.config.min_score, 1e-6) else None
            out.append(None if clipped is None else Detection(bbox=clipped, landmarks=landmarks, score=float(score)))
        return out

    def search(self, image: RGBImage, box: np.ndarray) -> Detection | None:
        """Look for a face of about ``box``'s size near it with the whole cascade on that
        neighbourhood only (for a face that moved too far for ``refine``); None when there is none."""
        image = as_rgb_image(image)
        hit = self._mtcnn.search(image, np.asarray(box, np.float32))
        if hit is None or hit[1] < self.config.min_score:
            return None
        clipped = _clip_box(hit[0], image.shape[1], image.shape[0])
        return None if clipped is None else Detection(bbox=clipped, landmarks=hit[2], score=hit[1])

    def _shrink(self, image: RGBImage) -> tuple[RGBImage, float, float]:
        """Resize by 1/downscale (INTER_AREA) and return the x/y factors back to full frame."""
        factor = float(self.config.downscale)
        height, width = image.shape[:2]
        if factor <= 1.0:
            return image, 1.0, 1.0
        new_w, new_h = max(1, round(width / factor)), max(1, round(height / factor))
        small = cv2.resize(image, (new_w, new_h), interpolation=cv2.INTER_AREA)
        return small, width / new_w, height / new_h


def _clip_box(box: np.ndarray, width: int, height: int) -> np.ndarray | None:
    """Clip a box to the image; None when nothing of it is left inside."""
    if not np.all(np.isfinite(box)):
        return None
    x1, y1, x2, y2 = box
    clipped = np.array([np.clip(x1, 0, width), np.clip(y1, 0, height),
                        np.clip(x2, 0, width), np.clip(y2, 0, height)], dtype=np.float32)
    if clipped[2] - clipped[0] < 1.0 or clipped[3] - clipped[1] < 1.0:
        return None
    return clipped
