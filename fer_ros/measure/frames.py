"""Camera-like benchmark frames made from real faces, deterministic so runs are comparable.

scikit-image's ``astronaut`` head (a NASA photograph in the public domain) pasted 1, 3 or 6
times over a cluttered real background (scikit-image's ``coffee``), at face sizes of a person
1-2 m from a robot's camera, moving a little every frame so the tracker has work. Every frame is
stored JPEG-compressed, to be decoded inside the timed loop as a node on a compressed camera
topic must do.
"""
from __future__ import annotations

import cv2
import numpy as np

from fer_ros.errors import FerError
from fer_ros.imageio import decode_rgb, encode_rgb
from fer_ros.types import RGBImage

CAMERA_FPS = 30.0  # stamps of the synthetic frames
JPEG_QUALITY = 90
HEAD_BOX = (134, 26, 314, 206)  # x1 y1 x2 y2 of the astronaut's head in the 512x512 image
FACE_OF_HEAD = 0.62  # MTCNN's face box is about 0.62 of that head patch tall
# Face box height as a fraction of the frame height: one person at about 1 m, three at about
# 1.5 m, six at about 2 m from a ~60 degree camera (115, 86 and 67 px tall at 640x480).
FACE_HEIGHT = {1: 0.24, 3: 0.18, 6: 0.14}
SOAK_SCHEDULE = ((50, 1), (30, 0), (70, 3), (30, 0), (70, 6), (50, 2))  # (frames, faces): people come and go


class SceneRenderer:
    """Renders frame ``i`` of a scene with ``n`` faces; deterministic, so runs are comparable."""

    def __init__(self, width: int, height: int) -> None:
        from skimage import data

        self.width, self.height = int(width), int(height)
        x1, y1, x2, y2 = HEAD_BOX
        head = np.ascontiguousarray(data.astronaut()[y1:y2, x1:x2])
        # Four looks of the same head (mirrored, dimmer) so the faces of one frame differ a little.
        self.heads = [head, head[:, ::-1], _dim(head, 0.8), _dim(head[:, ::-1], 0.9)]
        self.background = cv2.resize(data.coffee(), (self.width, self.height), interpolation=cv2.INTER_AREA)

    def render(self, n: int, i: int) -> RGBImage:
        frame = self.background.copy()
        if n == 0:
            return frame
        side = FACE_HEIGHT.get(n, FACE_HEIGHT[6]) * self.height / FACE_OF_HEAD  # head patch, pixels
        cols = min(n, 3)
        rows = (n + cols - 1) // cols
        for k in range(n):
            phase = 2.0 * np.pi * (i / (3.0 * CAMERA_FPS) + k / 7.0)  # one slow sway every 3 s
            cx = self.width * (k % cols + 0.5) / cols + 0.04 * self.width * np.sin(phase)
            cy = self.height * (k // cols + 0.5) / rows + 0.02 * self.height * np.cos(phase)
            size = int(side * (1.0 + 0.05 * np.sin(phase / 2.0)))
            _paste(frame, self.heads[k % len(self.heads)], int(cx - size / 2), int(cy - size / 2), size)
        return frame


def _dim(image: RGBImage, factor: float) -> RGBImage:
    return np.ascontiguousarray(np.clip(image.astype(np.float32) * factor, 0, 255).astype(np.uint8))


def _paste(canvas: RGBImage, patch: RGBImage, x: int, y: int, size: int) -> None:
    patch = cv2.resize(patch, (size, size), interpolation=cv2.INTER_AREA)
    h, w = canvas.shape[:2]
    x0, y0, x1, y1 = max(x, 0), max(y, 0), min(x + size, w), min(y + size, h)
    if x1 > x0 and y1 > y0:
        canvas[y0:y1, x0:x1] = patch[y0 - y:y1 - y, x0 - x:x1 - x]


def encode_jpeg(rgb: RGBImage) -> bytes:
    return encode_rgb(rgb, "jpeg", JPEG_QUALITY)


def decode_jpeg(data: bytes) -> RGBImage:
    rgb = decode_rgb(data)
    if rgb is None:
        raise FerError(f"could not decode a {len(data)}-byte benchmark frame as JPEG; check the OpenCV installation")
    return rgb


def scene_frames(width: int, height: int, faces: int, n: int) -> list[bytes]:
    """``n`` JPEG frames of ``faces`` swaying faces."""
    renderer = SceneRenderer(width, height)
    return [encode_jpeg(renderer.render(faces, i)) for i in range(n)]


def soak_frames(width: int = 640, height: int = 480) -> list[bytes]:
    """One cycle of SOAK_SCHEDULE: faces enter and leave, so tracks keep starting and ending."""
    renderer = SceneRenderer(width, height)
    counts = [faces for frames, faces in SOAK_SCHEDULE for _ in range(frames)]
    return [encode_jpeg(renderer.render(n, i)) for i, n in enumerate(counts)]
