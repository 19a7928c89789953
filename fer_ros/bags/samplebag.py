"""Small bags of camera images for demos and tests: what `fer-ros make-bag` writes.

The source is checked before anything is created (``source_frames`` opens it eagerly), and the
bag is written aside and moved into place only when complete: a failed run leaves no bag behind.
"""
from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Iterator

from fer_ros.bags.output import StagedBag
from fer_ros.errors import FerError
from fer_ros.messages.convert import MessageTypes, make_header, rgb_to_compressed_msg, rgb_to_image_msg, seconds_to_ns
from fer_ros.types import RGBImage

if TYPE_CHECKING:
    from fer_ros.bags.bagtools import Labels

IMAGE = "sensor_msgs/msg/Image"
COMPRESSED_IMAGE = "sensor_msgs/msg/CompressedImage"
STRING = "std_msgs/msg/String"


@dataclass
class SampleBagSpec:
    """What `fer-ros make-bag` writes: one image topic and optionally a label topic."""

    topic: str = "/camera/image_raw"
    compressed: bool = False  # sensor_msgs/CompressedImage (jpeg) instead of sensor_msgs/Image
    encoding: str = "rgb8"  # raw images: rgb8 or bgr8
    frame_id: str = "camera"
    storage: str = "sqlite3"
    label_topic: str = "/emotion_label"


def write_frames_bag(path: str | os.PathLike, frames: Iterable[tuple[float, RGBImage]], store: Any,
                     spec: SampleBagSpec, labels: "Labels | None" = None, force: bool = False) -> dict:
    """Write (stamp seconds, RGB image) frames as a bag, each stamped like a camera driver would.

    With ``labels``, a std_msgs/String goes on ``spec.label_topic`` at every frame where the label
    changes (an empty string where the ground truth stops). Returns message counts per topic.
    Any failure, or no frames at all, leaves no bag at ``path``.
    """
    types = MessageTypes.from_typestore(store)
    msgtype = COMPRESSED_IMAGE if spec.compressed else IMAGE
    counts = {spec.topic: 0}
    bag = StagedBag(path, spec.storage, force)
    writer = bag.writer
    try:
        image_conn = writer.add_connection(spec.topic, msgtype, typestore=store)
        label_conn = writer.add_connection(spec.label_topic, STRING, typestore=store) if labels else None
        first, previous = None, object()
        for index, (stamp, rgb) in enumerate(frames):
            header = make_header(stamp, spec.frame_id, types)
            msg = (rgb_to_compressed_msg(rgb, header, types) if spec.compressed
                   else rgb_to_image_msg(rgb, header, types, spec.encoding))
            ns = seconds_to_ns(stamp)
            first = stamp if first is None else first
            if label_conn is not None:
                label = labels.at(index, stamp, first)
                if label != previous:
                    text = store.types[STRING](data=label or "")
                    writer.write(label_conn, ns, store.serialize_cdr(text, STRING))
                    counts[spec.label_topic] = counts.get(spec.label_topic, 0) + 1
                    previous = label
            writer.write(image_conn, ns, store.serialize_cdr(msg, msgtype))
            counts[spec.topic] += 1
        if counts[spec.topic] == 0:
            raise FerError(f"no frames to write to '{path}'; the source gave no images")
    except BaseException:
        bag.discard()  # a half-made bag would only block the corrected re-run
        raise
    bag.commit()
    return counts


def source_frames(source: str, fps: float, max_frames: int = 0,
                  start: float | None = None) -> Iterator[tuple[float, RGBImage]]:
    """(stamp, RGB) frames from 'sample', a folder of images, an image file or a video.

    Stamps start at ``start`` (default: now, like a fresh recording) and advance by 1/fps, or by
    the container's timestamps for a video. The source is checked and opened now, so a bad one
    fails before any output exists.
    """
    from fer_ros import sample
    from fer_ros.imageio import IMAGE_EXTENSIONS, open_source, read_image

    if not (math.isfinite(fps) and fps > 0):
        raise FerError(f"--fps must be a positive number, got {fps}")
    if max_frames < 0:
        raise FerError(f"--frames must be 0 (all) or positive, got {max_frames}")
    if start is not None and not (math.isfinite(start) and start >= 0):
        raise FerError(f"--start must be a time in seconds (0 or more), got {start}")
    t0 = time.time() if start is None else float(start)
    limit = max_frames if max_frames > 0 else None
    if source == "sample":
        return ((t0 + i / fps, rgb) for i, rgb in enumerate(sample.sample_frames(limit or 60)))
    path = Path(source).expanduser()
    if not str(source).strip() or not path.exists():
        raise FerError(f"--from '{source}' does not exist; give 'sample', a folder of images, an image or a video")
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS)
        if not files:
            raise FerError(f"folder '{path}' holds no images ({', '.join(IMAGE_EXTENSIONS)}); "
                           "give images, a video or 'sample'")
        return ((t0 + i / fps, read_image(f)) for i, f in enumerate(files[:limit]))
    return _timed(open_source(str(path)), t0, fps, limit)


def _timed(frames: Any, t0: float, fps: float, limit: int | None) -> Iterator[tuple[float, RGBImage]]:
    with frames:
        for frame in frames:
            if limit is not None and frame.index >= limit:
                return
            offset = frame.stamp if frames.is_video else frame.index / fps
            yield t0 + offset, frame.image
