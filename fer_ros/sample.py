"""A built-in sample sequence so `fer-ros demo` runs with no camera, no ROS and no data.

The face is scikit-image's ``astronaut`` (Eileen Collins, a NASA photograph in the public
domain) shipped inside scikit-image. The sequence pans, zooms, dims the light, adds a second
(mirrored) face and leaves the frame for a moment, so detection, tracking and smoothing all
have something to do.
"""
from __future__ import annotations

import cv2
import numpy as np

from fer_ros.types import RGBImage

SIZE = (640, 480)  # width, height
FPS = 12.0


def astronaut() -> RGBImage:
    from skimage import data

    return np.ascontiguousarray(data.astronaut())  # uint8 512x512x3 RGB


def _place(canvas: np.ndarray, face: np.ndarray, x: int, y: int, size: int) -> None:
    patch = cv2.resize(face, (size, size), interpolation=cv2.INTER_AREA)
    h, w = canvas.shape[:2]
    x0, y0, x1, y1 = max(x, 0), max(y, 0), min(x + size, w), min(y + size, h)
    if x1 > x0 and y1 > y0:
        canvas[y0:y1, x0:x1] = patch[y0 - y:y1 - y, x0 - x:x1 - x]


def sample_frames(n: int = 60) -> list[RGBImage]:
    """``n`` frames of 640x480 RGB (at ``FPS``); stamps are index / FPS."""
    face = astronaut()
    frames = []
    for i in range(n):
        t = i / max(n - 1, 1)  # 0 .. 1 over the sequence
        canvas = np.full((SIZE[1], SIZE[0], 3), 40, np.uint8)
        if not 0.45 <= t < 0.52:  # a short gap with nobody in view
            size = int(300 + 120 * np.sin(np.pi * t))
            _place(canvas, face, int(20 + 260 * t), int(60 - 40 * t), size)
        if t >= 0.7:  # a second person enters from the right
            _place(canvas, face[:, ::-1], int(SIZE[0] - 250 * (t - 0.6) / 0.4), 200, 260)
        if 0.25 <= t < 0.4:  # the lights dim
            canvas = (canvas * 0.55).astype(np.uint8)
        frames.append(canvas)
    return frames
