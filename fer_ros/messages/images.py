"""Images between ROS messages and ``RGBImage`` (no ROS import): the image half of the conversion layer.

Raw ``sensor_msgs/Image`` in the encodings common camera drivers publish (``ENCODINGS``: 8- and
16-bit RGB/BGR/mono, RGBA/BGRA, YUV 4:2:2 in UYVY and YUYV order, the four 8-bit Bayer mosaics;
rows may be padded, ``data`` may be bytes, array.array, list or numpy) and
``sensor_msgs/CompressedImage`` in jpeg or png become an ``RGBImage``, through OpenCV's colour
conversions; anything else raises ``FerError`` naming the problem. This is our cv_bridge: one
tested converter that needs no ROS (cv_bridge for ROS 2 is not on PyPI). Outgoing images are
built from the classes in ``fer_ros.messages.convert.MessageTypes``; import everything from
``fer_ros.messages.convert``, which re-exports this module.
"""
from __future__ import annotations

import array
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import cv2
import numpy as np

from fer_ros.errors import FerError
from fer_ros.imageio import decode_rgb, encode_rgb
from fer_ros.types import RGBImage, as_rgb_image

if TYPE_CHECKING:
    from fer_ros.messages.convert import MessageTypes


@dataclass(frozen=True)
class Encoding:
    """How one sensor_msgs/Image encoding is stored and turned into RGB."""

    channels: int  # values per pixel as stored (2 for YUV 4:2:2: one chroma and one luma byte)
    depth: int  # bytes per value: 1, or 2 for 16-bit (scaled to 8 bits by the high byte, as cv_bridge does)
    to_rgb: int | None  # cv2.cvtColor code, None when the stored values already are RGB


# The ROS names (sensor_msgs/image_encodings.hpp) -> storage and OpenCV conversion. OpenCV names a
# Bayer pattern by the second row's second and third pixels, so ROS "rggb" is OpenCV "BG".
ENCODINGS = {
    "rgb8": Encoding(3, 1, None),
    "bgr8": Encoding(3, 1, cv2.COLOR_BGR2RGB),
    "rgba8": Encoding(4, 1, cv2.COLOR_RGBA2RGB),
    "bgra8": Encoding(4, 1, cv2.COLOR_BGRA2RGB),
    "mono8": Encoding(1, 1, cv2.COLOR_GRAY2RGB),
    "mono16": Encoding(1, 2, cv2.COLOR_GRAY2RGB),
    "rgb16": Encoding(3, 2, None),
    "bgr16": Encoding(3, 2, cv2.COLOR_BGR2RGB),
    "yuv422": Encoding(2, 1, cv2.COLOR_YUV2RGB_UYVY),  # UYVY byte order
    "yuv422_yuy2": Encoding(2, 1, cv2.COLOR_YUV2RGB_YUY2),  # YUYV byte order
    "bayer_rggb8": Encoding(1, 1, cv2.COLOR_BayerBG2RGB),
    "bayer_bggr8": Encoding(1, 1, cv2.COLOR_BayerRG2RGB),
    "bayer_gbrg8": Encoding(1, 1, cv2.COLOR_BayerGR2RGB),
    "bayer_grbg8": Encoding(1, 1, cv2.COLOR_BayerGB2RGB),
}
SUPPORTED_ENCODINGS = tuple(ENCODINGS)
OUTPUT_ENCODINGS = ("rgb8", "bgr8")


def _as_uint8(data: Any) -> np.ndarray:
    """Message ``data`` (bytes, bytearray, array.array, memoryview, list or numpy) as flat uint8."""
    if isinstance(data, np.ndarray):
        return data.reshape(-1).view(np.uint8) if data.dtype.itemsize == 1 else data.astype(np.uint8).reshape(-1)
    if isinstance(data, (bytes, bytearray, memoryview, array.array)):
        return np.frombuffer(data, dtype=np.uint8)
    return np.asarray(data, dtype=np.uint8).reshape(-1)


def image_msg_to_rgb(msg: Any) -> RGBImage:
    """sensor_msgs/Image -> RGBImage (a copy; the message may be reused by its owner)."""
    name = str(msg.encoding).strip()
    encoding = ENCODINGS.get(name)
    if encoding is None:
        raise FerError(f"unsupported image encoding {str(msg.encoding)!r}; supported: {', '.join(SUPPORTED_ENCODINGS)}. "
                       "Set the camera driver to one of these or republish through image_proc")
    height, width, step = int(msg.height), int(msg.width), int(msg.step)
    if height <= 0 or width <= 0:
        raise FerError(f"image is empty ({width}x{height}); check the camera driver")
    row = width * encoding.channels * encoding.depth
    if step < row:
        raise FerError(f"image step {step} is less than width*bytes_per_pixel = {row} for a {width}x{height} "
                       f"{name} image; the publisher fills the message wrongly")
    if encoding.channels == 2 and width % 2:
        raise FerError(f"{name} image has an odd width ({width}); YUV 4:2:2 pairs pixels, so the driver is wrong")
    data = _as_uint8(msg.data)
    if data.size < step * height:
        raise FerError(f"image data is {data.size} bytes, expected step*height = {step * height} "
                       f"({step}*{height}) for a {width}x{height} {name} image")
    rows = data[:step * height].reshape(height, step)[:, :row]
    if encoding.depth == 2:  # keep the high byte of each 16-bit value
        rows = rows.reshape(height, width * encoding.channels, 2)[..., 0 if msg.is_bigendian else 1]
    pixels = np.ascontiguousarray(rows).reshape(height, width, encoding.channels)
    if encoding.to_rgb is None:
        return np.array(pixels, dtype=np.uint8, order="C", copy=True)
    return np.ascontiguousarray(cv2.cvtColor(pixels, encoding.to_rgb))


def compressed_msg_to_rgb(msg: Any) -> RGBImage:
    """sensor_msgs/CompressedImage (jpeg or png; grey or colour) -> RGBImage."""
    data = _as_uint8(msg.data)
    if data.size == 0:
        raise FerError(f"compressed image (format {str(msg.format)!r}) has no data; check the publisher")
    rgb = decode_rgb(data)
    if rgb is None:
        raise FerError(f"could not decode compressed image (format {str(msg.format)!r}, {data.size} bytes): "
                       "corrupt data or not jpeg/png (compressedDepth is not supported)")
    return rgb


def msg_to_rgb(msg: Any) -> RGBImage:
    """Image or CompressedImage -> RGBImage, told apart by their fields."""
    return compressed_msg_to_rgb(msg) if hasattr(msg, "format") and not hasattr(msg, "encoding") else image_msg_to_rgb(msg)


def rgb_to_image_msg(rgb: RGBImage, header: Any, types: MessageTypes, encoding: str = "rgb8") -> Any:
    """RGBImage -> sensor_msgs/Image in rgb8 or bgr8 (no row padding)."""
    if encoding not in OUTPUT_ENCODINGS:
        raise FerError(f"cannot write image encoding '{encoding}'; use one of {', '.join(OUTPUT_ENCODINGS)}")
    rgb = as_rgb_image(rgb)
    pixels = rgb if encoding == "rgb8" else rgb[..., ::-1]
    height, width = rgb.shape[:2]
    return types.Image(header=header, height=int(height), width=int(width), encoding=encoding, is_bigendian=0,
                       step=int(width * 3), data=types.uint8_array(np.ascontiguousarray(pixels).tobytes()))


def rgb_to_compressed_msg(rgb: RGBImage, header: Any, types: MessageTypes, fmt: str = "jpeg", quality: int = 90) -> Any:
    """RGBImage -> sensor_msgs/CompressedImage, format strings as image_transport writes them."""
    rgb = as_rgb_image(rgb)
    if fmt not in ("jpeg", "png"):
        raise FerError(f"cannot compress to '{fmt}'; use jpeg or png")
    return types.CompressedImage(header=header, format=f"rgb8; {fmt} compressed bgr8",
                                 data=types.uint8_array(encode_rgb(rgb, fmt, quality)))
