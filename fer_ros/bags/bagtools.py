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
import sqlite3
from bisect import bisect_right
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

from rosbags.rosbag2 import Reader

# Writing lives in bags.output (new bags, staged) and bags.samplebag (make-bag); re-exported here.
from fer_ros.bags.output import (  # noqa: F401
    BAG_FILE_SUFFIXES,
    BAG_VERSION,
    STORAGES,
    StagedBag,
    check_output_bag,
    create_writer,
    prepare_output,
)
from fer_ros.bags.samplebag import COMPRESSED_IMAGE, IMAGE, STRING, SampleBagSpec, source_frames, write_frames_bag  # noqa: F401
from fer_ros.emotions import canonical_emotion
from fer_ros.errors import FerError
from fer_ros.messages.convert import seconds_to_ns, stamp_to_seconds

IMAGE_TYPES = (IMAGE, COMPRESSED_IMAGE)
NO_LABEL = ("", "none", "-", "n/a", "unknown")
STAMP_TOLERANCE = 1e-4  # seconds: a CSV stamp written with a few decimals still matches its frame


def stamp_ns(seconds: float) -> int:
    """Seconds -> integer nanoseconds without float rounding at epoch-sized stamps (as headers round)."""
    return seconds_to_ns(seconds)


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
        if bag.is_dir():
            storage = sorted(p.name for p in bag.iterdir() if p.suffix in (".db3", ".mcap"))
            fix = (f"; if a recording was interrupted, run `ros2 bag reindex` on it, or pass its storage file "
                   f"'{bag / storage[0]}' instead of the folder" if storage else "; it holds no .db3 or .mcap file")
            reason = ("its metadata.yaml is damaged (not valid YAML)" if "yaml" in str(exc).lower()
                      and (bag / "metadata.yaml").exists() else _reason(exc))
            raise FerError(f"cannot read bag folder '{bag}': {reason}{fix}") from None
        raise FerError(f"cannot read bag file '{bag}': {_reason(exc)}; it is truncated, corrupt or not a ROS 2 bag "
                       "storage file: copy it again or re-record it") from None
    return reader


def _reason(exc: BaseException) -> str:
    """The exception as one short line (a YAML parser's message spans several)."""
    text = " ".join(str(exc).split()).rstrip(".") or type(exc).__name__
    text = text if len(text) <= 200 else text[:200] + "..."
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


def stamp_span(reader: Reader, topic: str, store: Any, bag: str) -> tuple[float, float] | None:
    """(first, last) frame time in seconds on the clock replay uses: header stamps, or bag time where
    the first header stamp is zero. From the first message and the bag's duration; None if unreadable."""
    conns = [c for c in reader.connections if c.topic == topic and c.msgtype in IMAGE_TYPES]
    try:
        for conn, ns, raw in iter_messages(reader, conns, bag):
            header = stamp_to_seconds(store.deserialize_cdr(raw, conn.msgtype).header.stamp)
            first = header if header > 0 else ns * 1e-9
            return first, first + max(reader.end_time - ns, 0) * 1e-9
    except Exception:  # a damaged first message: the replay itself will count and name it
        return None
    return None


def storage_of(path: str | os.PathLike) -> str:
    """'mcap' or 'sqlite3': the storage of an existing bag folder or file."""
    bag = Path(path)
    files = [bag] if bag.is_file() else list(bag.iterdir()) if bag.is_dir() else []
    return "mcap" if any(f.suffix == ".mcap" for f in files) else "sqlite3"


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

    def check_clock(self, first: float, last: float) -> None:
        """FerError when 'stamp' labels cannot be on the frames' clock: none falls inside the frames'
        time span, so every frame would get one label (or none), e.g. stamps counted from 0 against
        a recording stamped in epoch seconds."""
        if self.kind != "stamp" or not self.keys:
            return
        inside = any(first - 1.0 <= k <= last + 1.0 for k in self.keys)
        if inside or (len(set(self.keys)) == 1 and self.keys[0] <= first):
            return
        raise FerError(f"label stamps in '{self.source}' run {self.keys[0]:.3f} .. {self.keys[-1]:.3f} s but the bag's "
                       f"frames are stamped {first:.3f} .. {last:.3f} s: another clock; use a 'time,label' header "
                       "(seconds since the first frame) or 'frame,label', or stamps taken from the bag")


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
