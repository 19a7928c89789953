"""The one image codec: encoded bytes (jpeg, png, ...) <-> RGBImage; OpenCV's BGR stays inside."""
from __future__ import annotations

import cv2
import numpy as np

from fer_ros.errors import FerError
from fer_ros.types import RGBImage, as_rgb_image

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp")


def encode_rgb(rgb: RGBImage, fmt: str = "jpeg", quality: int = 90) -> bytes:
    """Encode an RGB image as ``fmt`` (jpeg, png, bmp; ``quality`` 0-100 for jpeg)."""
    suffix = "." + {"jpg": "jpeg"}.get(fmt.lower().lstrip("."), fmt.lower().lstrip("."))
    if suffix not in IMAGE_EXTENSIONS:
        raise FerError(f"cannot encode an image as '{fmt}'; use one of {', '.join(e.lstrip('.') for e in IMAGE_EXTENSIONS)}")
    rgb = as_rgb_image(rgb)
    params = [cv2.IMWRITE_JPEG_QUALITY, int(quality)] if suffix == ".jpeg" else []
    try:
        ok, encoded = cv2.imencode(suffix, np.ascontiguousarray(rgb[..., ::-1]), params)
    except cv2.error:
        ok = False
    if not ok:
        raise FerError(f"OpenCV could not encode a {rgb.shape[1]}x{rgb.shape[0]} image as {fmt}; try png")
    return encoded.tobytes()


def decode_rgb(data: bytes | bytearray | memoryview | np.ndarray) -> RGBImage | None:
    """Decode encoded image bytes (any format OpenCV reads; grey, colour or with alpha) to RGB; None if they are not one."""
    buffer = np.ascontiguousarray(data, np.uint8).reshape(-1) if isinstance(data, np.ndarray) else np.frombuffer(data, np.uint8)
    if buffer.size == 0:
        return None
    try:
        bgr = cv2.imdecode(buffer, cv2.IMREAD_COLOR)
    except cv2.error:  # some malformed headers raise instead of returning None
        return None
    return None if bgr is None or bgr.size == 0 else bgr_to_rgb(bgr)


def bgr_to_rgb(bgr: np.ndarray) -> RGBImage:
    """OpenCV's grey, BGR or BGRA pixels as RGB."""
    if bgr.ndim == 2:
        return cv2.cvtColor(bgr, cv2.COLOR_GRAY2RGB)
    if bgr.shape[2] == 4:
        return cv2.cvtColor(bgr, cv2.COLOR_BGRA2RGB)
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
