"""Frames in at the door: image files, video files and cameras; RGB inside, BGR outside.

OpenCV reads BGR; everything the sources yield is RGB, converted here once (the codec lives in
fer_ros.codec, the writers in fer_ros.framewriter; both are importable from here too). Every
failure is a FerError that says what was wrong with which path and what to do, with what the
decoder said folded into that one line instead of printed before it.
"""
from __future__ import annotations

import logging
import os
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import cv2
import numpy as np

from fer_ros.codec import IMAGE_EXTENSIONS, bgr_to_rgb, decode_rgb, encode_rgb
from fer_ros.errors import FerError
from fer_ros.framewriter import VIDEO_FOURCC, FrameWriter, write_image
from fer_ros.nativelog import NativeOutput, captured_native_stderr
from fer_ros.types import RGBImage

__all__ = ["IMAGE_EXTENSIONS", "VIDEO_FOURCC", "Frame", "FrameSource", "FrameWriter", "ImageSource", "VideoSource",
           "CameraSource", "decode_rgb", "encode_rgb", "open_source", "read_image", "write_image"]
MAX_CAMERA_INDEX = 255  # V4L2 numbers devices /dev/video0../dev/video255
# ffmpeg prints a line per damaged packet while decoding; we say it once, in our words, instead
# (AV_LOG_QUIET; a user who sets OPENCV_FFMPEG_LOGLEVEL keeps theirs).
QUIET_FFMPEG = ("OPENCV_FFMPEG_LOGLEVEL", "-8")
TRUNCATED_SHARE = 0.95  # decoding that stops before this share of the declared frames is reported
log = logging.getLogger(__name__)


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
                self._check_complete()
                return
            stamp = self._stamp(self._index)
            self._last_stamp = stamp
            yield Frame(index=self._index, stamp=stamp, image=bgr_to_rgb(bgr))
            self._index += 1

    def _check_complete(self) -> None:
        """Say so when decoding stopped well before the frame count the container declares: the
        decoder's own lines are silenced (``QUIET_FFMPEG``), and results cover only what was read."""
        declared = self._capture.get(cv2.CAP_PROP_FRAME_COUNT) if self._capture is not None else 0.0
        if np.isfinite(declared) and self._index < declared * TRUNCATED_SHARE:
            log.warning("video '%s' could be decoded only up to frame %d of the %d it declares (a damaged or "
                        "truncated file?); the results cover frames 0-%d; re-encode or re-record it for the rest",
                        self.name, self._index, int(declared), self._index - 1)

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
    if not spec:
        raise FerError("no input given (an empty path); give an image or video file, or a camera index such as 0")
    if spec.isdigit():
        return _open_camera(int(spec))
    path = Path(spec).expanduser()
    _check_readable(path)
    if path.suffix.lower() in IMAGE_EXTENSIONS or _looks_like_image(path):
        return ImageSource(str(path), read_image(path))
    os.environ.setdefault(*QUIET_FFMPEG)  # read by OpenCV when it first opens a video
    with captured_native_stderr() as said:  # ffmpeg's "moov atom not found" becomes part of our one line
        capture = cv2.VideoCapture(str(path))
        opened = capture.isOpened()
        ok, first = capture.read() if opened else (False, None)
    if ok and first is not None:
        return VideoSource(str(path), capture, first)
    capture.release()
    if opened:
        raise FerError(f"video '{path}' has no frames that can be decoded{_because(said)}; the file may be empty "
                       "or truncated, re-encode or re-record it")
    raise FerError(f"cannot decode '{path}'{_because(said)}: not an image or video OpenCV can read (wrong format, or an "
                   f"empty or truncated file?); use an image ({', '.join(IMAGE_EXTENSIONS)}) or a video such as .mp4 or .avi")


def _because(said: NativeOutput) -> str:
    return f" (decoder: {said.first_line})" if said.first_line else ""


def _looks_like_image(path: Path) -> bool:
    """True when OpenCV recognises an image signature (e.g. .tif, .webp); reads only the header."""
    try:
        with captured_native_stderr():
            return bool(cv2.haveImageReader(str(path)))
    except cv2.error:
        return False


def _open_camera(index: int) -> CameraSource:
    if index > MAX_CAMERA_INDEX:
        raise FerError(f"'{index}' is not a camera index (cameras are 0..{MAX_CAMERA_INDEX}); "
                       "give a camera index such as 0, or an image or video path")
    with captured_native_stderr():  # V4L2 / ffmpeg warnings for a missing device: our line says it
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


def read_image(path: str | os.PathLike) -> RGBImage:
    """Read a still image file as an RGB uint8 array; a damaged file or an animation is a FerError."""
    path = Path(path).expanduser()
    _check_readable(path)
    try:
        data = np.fromfile(str(path), dtype=np.uint8)
    except OSError as exc:
        raise FerError(f"cannot read '{path}': {exc.strerror}; check the path and its permissions") from None
    with captured_native_stderr() as said:  # libjpeg / libpng name the damage; we say it in one line
        image = decode_rgb(data)
        frames = _frame_count(path) if image is not None else 1
    if image is None:
        raise FerError(f"cannot decode '{path}'{_because(said)}: not an image OpenCV can read (is it truncated or "
                       f"another format?); use {', '.join(IMAGE_EXTENSIONS)}")
    if said.damaged:
        raise FerError(f"image '{path}' is damaged (decoder: {said.first_line}); part of it would be made up, "
                       "so it is refused; copy or export it again")
    if frames > 1:
        raise FerError(f"'{path}' is an animation of {frames} frames; only still images and videos are read: convert "
                       f"it to a video (e.g. ffmpeg -i {path.name} {path.stem}.mp4) or save the one frame you want")
    return image


def _frame_count(path: Path) -> int:
    """Pages or frames in an image file (animated GIF/PNG/WebP, multi-page TIFF); 1 when OpenCV cannot tell."""
    try:
        return int(cv2.imcount(str(path)))
    except (cv2.error, AttributeError):
        return 1
