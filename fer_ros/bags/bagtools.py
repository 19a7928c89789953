"""ROS 2 bags without ROS: open, check and create them with rosbags; read ground-truth labels.

Used by `fer-ros replay` (evaluate a recording) and `fer-ros make-bag` (build a small bag
from the built-in sample, images or a video). Every failure is a FerError that names the bag
and the fix: a missing topic lists the topics that exist, an unreadable file says it is
truncated or corrupt, an existing output path suggests --force.

Ground truth comes from a label topic in the bag (std_msgs/String) or a CSV file. Either way
a label holds from its time (or frame) until the next one, so sparse annotations ("from 3.0 s
on: happy") work as well as one row per frame. An empty label, "none" or "-" means "no ground
truth from here on" (nobody in view, or a stretch the annotator skipped).
"""
from __future__ import annotations

import csv
import math
import os
import shutil
import sqlite3
import time
from bisect import bisect_right
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Iterator

from rosbags.rosbag2 import Reader, StoragePlugin, Writer

from fer_ros.errors import FerError
from fer_ros.music.mapping import canonical_emotion
from fer_ros.ros.convert import MessageTypes, make_header, rgb_to_compressed_msg, rgb_to_image_msg, seconds_to_ns
from fer_ros.types import RGBImage

IMAGE = "sensor_msgs/msg/Image"
COMPRESSED_IMAGE = "sensor_msgs/msg/CompressedImage"
STRING = "std_msgs/msg/String"
IMAGE_TYPES = (IMAGE, COMPRESSED_IMAGE)
STORAGES = {"sqlite3": StoragePlugin.SQLITE3, "mcap": StoragePlugin.MCAP}
# rosbag2 metadata version 8 (Iron). Humble and later read it: their parser takes each field by
# version and ignores the ones it does not know; Jazzy reads it natively.
BAG_VERSION = 8
NO_LABEL = ("", "none", "-", "n/a", "unknown")
# Files a rosbag2 folder may hold; --force deletes only folders made of these.
BAG_FILE_SUFFIXES = (".yaml", ".db3", ".mcap", ".db3-shm", ".db3-wal", ".db3-journal", ".zstd")
STAMP_TOLERANCE = 1e-4  # seconds: a CSV stamp written with a few decimals still matches its frame


# --- reading -----------------------------------------------------------------------------------

def open_reader(path: str | os.PathLike) -> Reader:
    """An open rosbags Reader for a bag folder, or a single .db3 / .mcap file."""
    bag = Path(path).expanduser()
    if not bag.exists():
        raise FerError(f"bag '{bag}' does not exist; give a rosbag2 folder (with metadata.yaml) or a .db3/.mcap file")
    try:
        reader = Reader(bag)
        reader.open()
    except Exception as exc:  # rosbags, sqlite3 and struct raise many types for a damaged file
        raise FerError(f"cannot read bag '{bag}': {_reason(exc)}. The file is truncated, corrupt or not a ROS 2 bag; "
                       "if a recording was interrupted, run `ros2 bag reindex` on it or pass the .db3/.mcap file "
                       "itself instead of the folder") from None
    return reader


def _reason(exc: BaseException) -> str:
    text = str(exc).strip().rstrip(".") or type(exc).__name__
    return f"{type(exc).__name__}: {text}" if isinstance(exc, (sqlite3.Error, EOFError, ValueError)) else text


def iter_messages(reader: Reader, connections: list, bag: str) -> Iterator[tuple[Any, int, bytes]]:
    """(connection, timestamp ns, raw CDR) in timestamp order; a read failure part-way is a FerError."""
    messages = reader.messages(connections=connections)
    count = 0
    while True:
        try:
            item = next(messages)
        except StopIteration:
            return
        except Exception as exc:  # a damaged storage file fails in whatever layer notices first
            raise BagReadError(bag, count, exc) from None
        count += 1
        yield item


class BagReadError(FerError):
    """The bag became unreadable part-way through (truncated or corrupt storage file)."""

    def __init__(self, bag: str, good: int, cause: BaseException) -> None:
        self.good = good
        super().__init__(f"bag '{bag}' is truncated or corrupt: reading failed after {good} messages "
                         f"({_reason(cause)}); run `ros2 bag reindex` on it, or re-record it")


def describe_topics(reader: Reader) -> str:
    """One line per topic and type: name, type and message count."""
    counts: dict[tuple[str, str], int] = {}
    for c in reader.connections:  # a topic may carry several types; reader.topics then says None
        counts[(c.topic, c.msgtype)] = counts.get((c.topic, c.msgtype), 0) + c.msgcount
    lines = [f"  {topic} ({msgtype}, {n} messages)" for (topic, msgtype), n in sorted(counts.items())]
    return "\n".join(lines) if lines else "  (no topics: the bag is empty)"


def image_topics(reader: Reader) -> list[str]:
    return sorted({c.topic for c in reader.connections if c.msgtype in IMAGE_TYPES})


def topic_connections(reader: Reader, topic: str, msgtypes: tuple[str, ...], bag: str, role: str) -> list:
    """Connections of ``topic`` whose type is one of ``msgtypes``; FerError naming what exists otherwise."""
    conns = [c for c in reader.connections if c.topic == topic]
    if not conns:
        hint = ""
        if f"{topic.rstrip('/')}/compressed" in reader.topics:
            hint = f" (did you mean {topic.rstrip('/')}/compressed?)"
        raise FerError(f"bag '{bag}' has no {role} topic '{topic}'{hint}; its topics are:\n{describe_topics(reader)}")
    good = [c for c in conns if c.msgtype in msgtypes]
    if not good:
        found = ", ".join(sorted({c.msgtype for c in conns}))
        raise FerError(f"topic '{topic}' in bag '{bag}' carries {found}, not {' or '.join(msgtypes)}; "
                       f"choose another {role} topic:\n{describe_topics(reader)}")
    return good


def storage_of(path: str | os.PathLike) -> str:
    """'mcap' or 'sqlite3': the storage of an existing bag folder or file."""
    bag = Path(path)
    files = [bag] if bag.is_file() else list(bag.iterdir()) if bag.is_dir() else []
    return "mcap" if any(f.suffix == ".mcap" for f in files) else "sqlite3"


# --- writing -----------------------------------------------------------------------------------

def prepare_output(path: str | os.PathLike, force: bool = False, inputs: Iterable[str | os.PathLike] = ()) -> Path:
    """Check that a new bag can be written at ``path``; with ``force`` delete an old bag there."""
    out = Path(path).expanduser()
    for source in inputs:
        src = Path(source).expanduser().resolve()
        if src == out.resolve() or out.resolve() in src.parents:
            raise FerError(f"output bag '{out}' is (or holds) the input bag '{source}'; write to another path")
    if not out.exists() and not out.is_symlink():
        return out
    if not force:
        raise FerError(f"output bag '{out}' already exists (bags are never overwritten); "
                       "choose another path or pass --force to delete it first")
    if out.is_dir() and not out.is_symlink():
        strangers = [p.name for p in out.iterdir() if p.is_dir() or not p.name.endswith(BAG_FILE_SUFFIXES)]
        if strangers:
            held = ", ".join(sorted(strangers)[:5])
            raise FerError(f"--force refuses to delete '{out}': it is not a bag folder (it holds {held}); "
                           "choose another output path")
        shutil.rmtree(out)
    else:
        out.unlink()
    return out


def create_writer(path: str | os.PathLike, storage: str = "sqlite3", force: bool = False,
                  inputs: Iterable[str | os.PathLike] = ()) -> Writer:
    """An open rosbags Writer for a new bag folder (sqlite3 or mcap storage)."""
    if storage not in STORAGES:
        raise FerError(f"unknown bag storage '{storage}'; use one of {', '.join(STORAGES)}")
    out = prepare_output(path, force, inputs)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        writer = Writer(out, version=BAG_VERSION, storage_plugin=STORAGES[storage])
        writer.open()
    except OSError as exc:
        raise FerError(f"cannot create bag '{out}': {exc.strerror or exc}; check the folder is writable") from None
    return writer


def stamp_ns(seconds: float) -> int:
    """Seconds -> integer nanoseconds without float rounding at epoch-sized stamps (as headers round)."""
    return seconds_to_ns(seconds)


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
    """
    types = MessageTypes.from_typestore(store)
    msgtype = COMPRESSED_IMAGE if spec.compressed else IMAGE
    counts = {spec.topic: 0}
    writer = create_writer(path, spec.storage, force)
    try:
        image_conn = writer.add_connection(spec.topic, msgtype, typestore=store)
        label_conn = writer.add_connection(spec.label_topic, STRING, typestore=store) if labels else None
        first, previous = None, object()
        for index, (stamp, rgb) in enumerate(frames):
            header = make_header(stamp, spec.frame_id, types)
            msg = (rgb_to_compressed_msg(rgb, header, types) if spec.compressed
                   else rgb_to_image_msg(rgb, header, types, spec.encoding))
            ns = stamp_ns(stamp)
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
    except BaseException:
        writer.close()  # keep what was written readable; the caller reports the error
        raise
    writer.close()
    if counts[spec.topic] == 0:
        shutil.rmtree(writer.path, ignore_errors=True)
        raise FerError(f"no frames to write to '{path}'; the source gave no images")
    return counts


def source_frames(source: str, fps: float, max_frames: int = 0,
                  start: float | None = None) -> Iterator[tuple[float, RGBImage]]:
    """(stamp, RGB) frames from 'sample', a folder of images, an image file or a video.

    Stamps start at ``start`` (default: now, like a fresh recording) and advance by 1/fps, or by
    the container's timestamps for a video.
    """
    from fer_ros import sample
    from fer_ros.imageio import IMAGE_EXTENSIONS, open_source, read_image

    if not (math.isfinite(fps) and fps > 0):
        raise FerError(f"--fps must be a positive number, got {fps}")
    t0 = time.time() if start is None else float(start)
    limit = max_frames if max_frames > 0 else None
    if source == "sample":
        for i, rgb in enumerate(sample.sample_frames(limit or 60)):
            yield t0 + i / fps, rgb
        return
    path = Path(source).expanduser()
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS)
        if not files:
            raise FerError(f"folder '{path}' holds no images ({', '.join(IMAGE_EXTENSIONS)}); "
                           "give images, a video or 'sample'")
        for i, f in enumerate(files[:limit]):
            yield t0 + i / fps, read_image(f)
        return
    with open_source(str(path)) as frames:
        for frame in frames:
            if limit is not None and frame.index >= limit:
                return
            offset = frame.stamp if frames.is_video else frame.index / fps
            yield t0 + offset, frame.image


# --- ground truth ------------------------------------------------------------------------------

@dataclass
class Labels:
    """Ground truth as a step function: ``labels[i]`` holds from ``keys[i]`` until ``keys[i + 1]``.

    kind: 'frame' (0-based index of the image message on the topic), 'stamp' (seconds, the clock
    of the image header stamps), 'time' (seconds since the first image) or 'bag_ns' (bag receive
    time in nanoseconds, for a label topic recorded alongside the images).
    """

    kind: str
    keys: list[float]
    labels: list[str | None]  # canonical names (see canonical_emotion); None = no ground truth
    source: str = ""
    raw_names: dict[str, str] = field(default_factory=dict)  # canonical -> as written, for messages

    def at(self, index: int, stamp: float, first_stamp: float, bag_ns: int | None = None) -> str | None:
        """The label of one frame, or None when it has none."""
        if self.kind == "frame":
            key = float(index)
        elif self.kind == "stamp":
            key = stamp + STAMP_TOLERANCE
        elif self.kind == "time":
            key = stamp - first_stamp + STAMP_TOLERANCE
        else:
            if bag_ns is None:
                raise FerError("labels from a bag topic need each frame's bag time")
            key = float(bag_ns)
        i = bisect_right(self.keys, key) - 1
        return self.labels[i] if i >= 0 else None


def canonical_label(text: str) -> str | None:
    """A label as written -> canonical lower-case emotion name, None for 'no label'."""
    name = str(text).strip()
    return None if name.lower() in NO_LABEL else canonical_emotion(name)


KEY_COLUMNS = {"frame": "frame", "index": "frame", "stamp": "stamp", "time": "time", "t": "time", "seconds": "time"}
LABEL_COLUMNS = ("label", "emotion", "expression", "class")


def read_label_csv(path: str | os.PathLike) -> Labels:
    """A CSV with a header: one key column (frame | stamp | time) and one label column."""
    p = Path(path).expanduser()
    try:
        with open(p, newline="", encoding="utf-8") as fh:
            rows = [r for r in csv.reader(fh) if r and not r[0].lstrip().startswith("#")]
    except OSError as exc:
        raise FerError(f"cannot read label file '{p}': {exc.strerror or exc}") from None
    except (UnicodeDecodeError, csv.Error) as exc:
        raise FerError(f"label file '{p}' is not a UTF-8 CSV text file ({' '.join(str(exc).split())[:120]})") from None
    example = ("frame,label\\n0,neutral\\n45,happy  (or stamp,label with header stamps in seconds, "
               "or time,label with seconds since the first frame)")
    if len(rows) < 2:
        raise FerError(f"label file '{p}' needs a header and at least one row, e.g. {example}")
    header = [h.strip().lower() for h in rows[0]]
    key_col = next((i for i, h in enumerate(header) if h in KEY_COLUMNS), None)
    label_col = next((i for i, h in enumerate(header) if h in LABEL_COLUMNS), None)
    if key_col is None or label_col is None:
        raise FerError(f"label file '{p}' has columns {rows[0]}; it needs a frame, stamp or time column and a "
                       f"label column, e.g. {example}")
    kind = KEY_COLUMNS[header[key_col]]
    entries: list[tuple[float, str | None]] = []
    raw_names: dict[str, str] = {}
    for line, row in enumerate(rows[1:], start=2):
        try:
            key = float(row[key_col])
            text = row[label_col] if label_col < len(row) else ""
        except (ValueError, IndexError):
            raise FerError(f"label file '{p}', row {line}: expected a number in column '{rows[0][key_col]}', "
                           f"got {row}") from None
        if not math.isfinite(key):
            raise FerError(f"label file '{p}', row {line}: {row[key_col]!r} is not a finite number")
        label = canonical_label(text)
        if label is not None:
            raw_names.setdefault(label, text.strip())
        entries.append((key, label))
    entries.sort(key=lambda e: e[0])  # stable: rows with equal keys keep file order, the last wins
    return Labels(kind, [k for k, _ in entries], [lab for _, lab in entries], str(p), raw_names)


def read_label_topic(reader: Reader, topic: str, store: Any, bag: str) -> Labels:
    """Labels from a std_msgs/String topic recorded in the bag (keyed by bag time)."""
    conns = topic_connections(reader, topic, (STRING,), bag, "label")
    keys: list[float] = []
    labels: list[str | None] = []
    raw_names: dict[str, str] = {}
    for conn, ns, raw in iter_messages(reader, conns, bag):
        try:
            text = store.deserialize_cdr(raw, conn.msgtype).data
        except Exception:  # a damaged label message: the previous label simply holds on
            continue
        label = canonical_label(text)
        if label is not None:
            raw_names.setdefault(label, str(text).strip())
        keys.append(float(ns))
        labels.append(label)
    return Labels("bag_ns", keys, labels, f"{bag}:{topic}", raw_names)
