"""Frames in and out at the door: image files, video files and cameras; RGB inside, BGR outside.

OpenCV reads and writes BGR; everything the sources yield and the writers take is RGB, converted
here once. Every failure is a FerError that says what was wrong with which path and what to do.
"""
from __future__ import annotations

import os
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import cv2
import numpy as np

from fer_ros.errors import FerError
from fer_ros.types import RGBImage, as_rgb_image

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp")
VIDEO_FOURCC = {".mp4": "mp4v", ".avi": "MJPG"}


@dataclass
class Frame:
    """One frame from a source: its 0-based index, time in seconds, and the RGB pixels."""

    index: int
    stamp: float
    image: RGBImage


class FrameSource(ABC):
    """Iterable over ``Frame`` objects; ``open_source`` picks the kind. Close it, or use ``with``."""

    fps: float | None = None
    size: tuple[int, int] = (0, 0)  # (width, height)
    is_video: bool = False

    @abstractmethod
    def __iter__(self) -> Iterator[Frame]:
        """Yield the frames in order."""

    def close(self) -> None:
        """Release the file or device; safe to call twice."""

    def __enter__(self) -> "FrameSource":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class ImageSource(FrameSource):
    """A single image file: one frame, stamp 0.0."""

    def __init__(self, path: str, image: RGBImage) -> None:
        self.path = path
        self._image = image
        self.size = (image.shape[1], image.shape[0])

    def __iter__(self) -> Iterator[Frame]:
        yield Frame(index=0, stamp=0.0, image=self._image)


class VideoSource(FrameSource):
    """A video file read with cv2.VideoCapture; stamps come from the container's timestamps."""

    is_video = True

    def __init__(self, name: str, capture: cv2.VideoCapture, first: np.ndarray) -> None:
        self.name = name
        self._capture = capture
        self._first: np.ndarray | None = first  # already read while probing the file
        fps = capture.get(cv2.CAP_PROP_FPS)
        self.fps = float(fps) if np.isfinite(fps) and fps > 0 else None
        self.size = (first.shape[1], first.shape[0])
        self._index = 0
        self._last_stamp = -1.0

    def _read(self) -> np.ndarray | None:
        if self._first is not None:
            frame, self._first = self._first, None
            return frame
        if self._capture is None:
            return None
        ok, frame = self._capture.read()
        return frame if ok and frame is not None else None

    def _stamp(self, index: int) -> float:
        """Container time of the frame just read; index/fps when that is missing or not increasing."""
        msec = self._capture.get(cv2.CAP_PROP_POS_MSEC) if self._capture is not None else -1.0
        stamp = msec / 1000.0 if np.isfinite(msec) and msec >= 0 else -1.0
        if stamp <= self._last_stamp:
            stamp = index / self.fps if self.fps else float(index)
        if stamp <= self._last_stamp:
            stamp = self._last_stamp + 1e-6
        return stamp

    def __iter__(self) -> Iterator[Frame]:
        while True:
            bgr = self._read()
            if bgr is None:
                return
            stamp = self._stamp(self._index)
            self._last_stamp = stamp
            yield Frame(index=self._index, stamp=stamp, image=_to_rgb(bgr))
            self._index += 1

    def close(self) -> None:
        if self._capture is not None:
            self._capture.release()
            self._capture = None


class CameraSource(VideoSource):
    """A live camera; stamps are seconds of time.monotonic() since the camera was opened."""

    def __init__(self, name: str, capture: cv2.VideoCapture, first: np.ndarray) -> None:
        self._opened_at = time.monotonic()
        super().__init__(name, capture, first)

    def _stamp(self, index: int) -> float:
        return time.monotonic() - self._opened_at


def open_source(spec: str) -> FrameSource:
    """Open an image file, a video file, or a camera given by its index ("0", "1", ...)."""
    spec = str(spec).strip()
    if spec.isdigit():
        return _open_camera(int(spec))
    path = Path(spec).expanduser()
    _check_readable(path)
    if path.suffix.lower() in IMAGE_EXTENSIONS or _looks_like_image(path):
        return ImageSource(str(path), read_image(path))
    capture = cv2.VideoCapture(str(path))
    if capture.isOpened():
        ok, first = capture.read()
        if ok and first is not None:
            return VideoSource(str(path), capture, first)
        capture.release()
        raise FerError(f"video '{path}' has no frames that can be decoded; the file may be empty or truncated, "
                       "re-encode or re-record it")
    raise FerError(f"cannot decode '{path}': not an image or video OpenCV can read (wrong format, or an "
                   f"empty or truncated file?); use an image ({', '.join(IMAGE_EXTENSIONS)}) or a video such as .mp4 or .avi")


def _looks_like_image(path: Path) -> bool:
    """True when OpenCV recognises an image signature (e.g. .tif, .webp); reads only the header."""
    try:
        return bool(cv2.haveImageReader(str(path)))
    except cv2.error:
        return False


def _open_camera(index: int) -> CameraSource:
    capture = cv2.VideoCapture(index)
    ok, frame = (capture.read() if capture.isOpened() else (False, None))
    if not ok or frame is None:
        capture.release()
        raise FerError(f"cannot open camera {index}: no such device or it gave no frame; check that it is "
                       "connected and not used by another program (on Linux: ls /dev/video*)")
    return CameraSource(f"camera {index}", capture, frame)


def _check_readable(path: Path) -> None:
    if not path.exists():
        raise FerError(f"'{path}' does not exist; give an image or video file path, or a camera index such as 0")
    if path.is_dir():
        raise FerError(f"'{path}' is a directory; give an image or video file inside it")
    if path.stat().st_size == 0:
        raise FerError(f"cannot decode '{path}': the file is empty, not an image or video OpenCV can read")


# --- the one image codec: encoded bytes (jpeg, png, ...) <-> RGBImage ----------------------------

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
    return None if bgr is None or bgr.size == 0 else _to_rgb(bgr)


def _decode_image(path: Path) -> RGBImage | None:
    """Decode an image file (via bytes, so non-ASCII paths work everywhere); None if not an image."""
    try:
        data = np.fromfile(str(path), dtype=np.uint8)
    except OSError as exc:
        raise FerError(f"cannot read '{path}': {exc.strerror}; check the path and its permissions") from None
    return decode_rgb(data)


def _to_rgb(bgr: np.ndarray) -> RGBImage:
    if bgr.ndim == 2:
        return cv2.cvtColor(bgr, cv2.COLOR_GRAY2RGB)
    if bgr.shape[2] == 4:
        return cv2.cvtColor(bgr, cv2.COLOR_BGRA2RGB)
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def read_image(path: str | os.PathLike) -> RGBImage:
    """Read an image file as an RGB uint8 array."""
    path = Path(path).expanduser()
    _check_readable(path)
    image = _decode_image(path)
    if image is None:
        raise FerError(f"cannot decode '{path}': not an image OpenCV can read (is it truncated or another format?); "
                       f"use {', '.join(IMAGE_EXTENSIONS)}")
    return image


def write_image(path: str | os.PathLike, image: RGBImage) -> None:
    """Write an RGB image; the format follows the extension. Parent folders are created."""
    path = Path(path).expanduser()
    suffix = path.suffix.lower()
    if suffix not in IMAGE_EXTENSIONS:
        raise FerError(f"cannot write an image to '{path}': unknown extension '{suffix}'; "
                       f"use one of {', '.join(IMAGE_EXTENSIONS)}")
    encoded = encode_rgb(image, suffix, quality=95)
    _make_parent(path)
    try:
        path.write_bytes(encoded)
    except OSError as exc:
        raise FerError(f"cannot write '{path}': {exc.strerror}; check the folder exists and is writable") from None


def _make_parent(path: Path) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise FerError(f"cannot create folder '{path.parent}': {exc.strerror}") from None


class FrameWriter:
    """Write RGB frames to a video (.mp4 mp4v, .avi MJPG) or to image files.

    To an image path, one frame goes to the path itself; from the second frame on, the frames go to
    numbered files ``name_000000.png``, ``name_000001.png``... (numbered by frame, from 0) and the
    first one is moved there too. ``paths`` lists what was written.
    """

    def __init__(self, path: str | os.PathLike, fps: float = 30.0) -> None:
        self.path = Path(path).expanduser()
        suffix = self.path.suffix.lower()
        if suffix not in IMAGE_EXTENSIONS and suffix not in VIDEO_FOURCC:
            allowed = ", ".join(IMAGE_EXTENSIONS + tuple(VIDEO_FOURCC))
            raise FerError(f"cannot write to '{self.path}': unknown extension '{suffix}'; use one of {allowed}")
        if not (np.isfinite(fps) and fps > 0):
            raise FerError(f"output fps must be a positive number, got {fps}")
        self.fps = float(fps)
        self.is_video = suffix in VIDEO_FOURCC
        self.size: tuple[int, int] | None = None  # (width, height), from the first frame
        self.count = 0
        self.paths: list[Path] = []
        self._writer: cv2.VideoWriter | None = None

    def write(self, image: RGBImage) -> None:
        """Append one RGB frame; every frame must have the first frame's size."""
        image = as_rgb_image(image)
        size = (image.shape[1], image.shape[0])
        if self.size is None:
            self.size = size
            if self.is_video:
                self._open_video()
        elif size != self.size:
            raise FerError(f"frame {self.count} is {size[0]}x{size[1]} but '{self.path}' was started at "
                           f"{self.size[0]}x{self.size[1]}; resize frames before writing")
        if self.is_video:
            if self._writer is None:
                raise FerError(f"'{self.path}' is closed; open a new FrameWriter")
            self._writer.write(cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
        else:
            self._write_image_frame(image)
        self.count += 1

    def _open_video(self) -> None:
        _make_parent(self.path)
        fourcc = cv2.VideoWriter_fourcc(*VIDEO_FOURCC[self.path.suffix.lower()])
        writer = cv2.VideoWriter(str(self.path), fourcc, self.fps, self.size)
        if not writer.isOpened():
            raise FerError(f"OpenCV cannot open a video writer for '{self.path}' ({self.size[0]}x{self.size[1]}, "
                           f"{self.fps} fps); check the folder is writable or try .avi")
        self._writer = writer

    def _numbered(self, index: int) -> Path:
        return self.path.with_name(f"{self.path.stem}_{index:06d}{self.path.suffix}")

    def _write_image_frame(self, image: RGBImage) -> None:
        if self.count == 0:
            write_image(self.path, image)
            self.paths = [self.path]
            return
        if self.count == 1:  # a sequence after all: the first frame becomes number 0
            first = self._numbered(0)
            os.replace(self.path, first)
            self.paths = [first]
        target = self._numbered(self.count)
        write_image(target, image)
        self.paths.append(target)

    def close(self) -> None:
        """Finish the video file; safe to call twice."""
        if self._writer is not None:
            self._writer.release()
            self._writer = None

    def __enter__(self) -> "FrameWriter":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
