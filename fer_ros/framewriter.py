"""Frames out: RGB images and videos written whole, checked before the first frame.

The path is checked when the writer is made (extension, folder, permissions, not an input), so
a command makes its writer before loading models. A video grows under a hidden name beside the
target and takes its real name when closed, so two runs writing one path never leave a mixed,
undecodable file, and an interrupted run still leaves the frames it wrote.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable

import cv2
import numpy as np

from fer_ros.codec import IMAGE_EXTENSIONS, encode_rgb
from fer_ros.errors import FerError
from fer_ros.outputs import check_output_file, discard, publish, staged_path, write_bytes_whole
from fer_ros.types import RGBImage, as_rgb_image

VIDEO_FOURCC = {".mp4": "mp4v", ".avi": "MJPG"}


def write_image(path: str | os.PathLike, image: RGBImage) -> None:
    """Write an RGB image; the format follows the extension. Parent folders are created."""
    path = Path(path).expanduser()
    suffix = path.suffix.lower()
    if suffix not in IMAGE_EXTENSIONS:
        raise FerError(f"cannot write an image to '{path}': unknown extension '{suffix}'; "
                       f"use one of {', '.join(IMAGE_EXTENSIONS)}")
    write_bytes_whole(path, encode_rgb(image, suffix, quality=95))


class FrameWriter:
    """Write RGB frames to a video (.mp4 mp4v, .avi MJPG) or to image files.

    To an image path, one frame goes to the path itself; from the second frame on, the frames go to
    numbered files ``name_000000.png``, ``name_000001.png``... (numbered by frame, from 0) and the
    first one is moved there too. ``paths`` lists what was written. ``inputs`` are files being
    read: writing onto one of them is refused.
    """

    def __init__(self, path: str | os.PathLike, fps: float = 30.0, option: str = "output",
                 inputs: Iterable[str | os.PathLike] = ()) -> None:
        self.path = check_output_file(path, option, IMAGE_EXTENSIONS + tuple(VIDEO_FOURCC), inputs)
        if not (np.isfinite(fps) and fps > 0):
            raise FerError(f"output fps must be a positive number, got {fps}")
        self.fps = float(fps)
        self.is_video = self.path.suffix.lower() in VIDEO_FOURCC
        self.size: tuple[int, int] | None = None  # (width, height), from the first frame
        self.count = 0
        self.paths: list[Path] = []
        self._writer: cv2.VideoWriter | None = None
        self._staged: Path | None = None

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
        self._staged = staged_path(self.path)
        fourcc = cv2.VideoWriter_fourcc(*VIDEO_FOURCC[self.path.suffix.lower()])
        writer = cv2.VideoWriter(str(self._staged), fourcc, self.fps, self.size)
        if not writer.isOpened():
            discard(self._staged)
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
        """Finish the video file and give it its name; safe to call twice."""
        if self._writer is not None:
            self._writer.release()
            self._writer = None
            publish(self._staged, self.path)
            self.paths = [self.path]

    def __enter__(self) -> "FrameWriter":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
