"""Replay a recorded ROS 2 bag through the frame pipeline, without ROS.

Reads one image topic (sensor_msgs/Image or CompressedImage, sqlite3 or mcap storage) with
rosbags in timestamp order, runs ``FramePipeline`` on every frame, and writes a new bag with
``/emotions`` (fer_ros/msg/EmotionArray, built by fer_ros.messages.convert exactly as fer_node
builds it) and optionally the annotated images. Every output message carries its input
image's bag timestamp and header (stamp and frame_id), so the output bag plays next to the
input with `ros2 bag play` and lines up in rviz and `ros2 topic echo`.

A message that cannot be used (bad CDR, unsupported encoding, data too short, undecodable
jpeg, out of order) is skipped and counted by reason; a bag that becomes unreadable part-way
keeps the frames written so far and raises FerError.
"""
from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from typing import Any, Callable

from fer_ros.bags.bagtools import (
    COMPRESSED_IMAGE,
    IMAGE,
    IMAGE_TYPES,
    BagReadError,
    StagedBag,
    check_output_bag,
    describe_topics,
    image_topics,
    iter_messages,
    open_reader,
    storage_of,
    topic_connections,
)
from fer_ros.errors import FerError
from fer_ros.messages.convert import SUPPORTED_ENCODINGS, MessageTypes, compressed_msg_to_rgb, image_msg_to_rgb, stamp_to_seconds
from fer_ros.messages.step import FrameMessages, process_image_msg
from fer_ros.messages.typestore import EMOTION_ARRAY, get_typestore
from fer_ros.pipeline import FramePipeline
from fer_ros.types import FrameResult

EMOTIONS_TOPIC = "/emotions"  # fer_node publishes `emotions`, relative to its namespace
ANNOTATED_TOPIC = "/fer_node/annotated"  # fer_node publishes `~/annotated`


@dataclass
class ReplayOptions:
    """What to read and what to write; the pipeline settings travel in the FramePipeline."""

    image_topic: str | None = None  # None: the bag's only image topic
    out: str | None = None  # output bag; None: evaluate only
    annotated: bool = False  # also write annotated images
    storage: str | None = None  # sqlite3 | mcap; None: same as the input bag
    emotions_topic: str = EMOTIONS_TOPIC
    annotated_topic: str = ANNOTATED_TOPIC
    force: bool = False  # delete an existing output bag first
    max_frames: int = 0  # stop after this many processed frames (0 = all)
    progress: bool = True  # tqdm bar on stderr (shown only on a terminal)


@dataclass
class FaceRecord:
    """What the evaluation needs of one face in one frame."""

    track_id: int
    label: str  # published (smoothed) label, may be "uncertain"
    raw_label: str  # this frame's arg-max
    confidence: float
    area: float  # box area in pixels, to pick the main face
    detected: bool


@dataclass
class FrameRecord:
    """One processed image message."""

    index: int  # 0-based index of the message on the image topic (skipped messages count too)
    bag_ns: int  # bag (receive) time, nanoseconds
    stamp: float  # seconds given to the pipeline (header stamp, or bag time; see time_source)
    faces: list[FaceRecord]
    latency_ms: float  # decode + pipeline + conversion + writing of this frame
    timings_ms: dict[str, float]  # per pipeline stage

    @property
    def main_face(self) -> FaceRecord | None:
        """The largest face: the person a recording is usually about."""
        return max(self.faces, key=lambda f: f.area) if self.faces else None


@dataclass
class BadMessages:
    """Skipped messages, counted by reason, with the first example of each."""

    counts: dict[str, int] = field(default_factory=dict)
    examples: dict[str, str] = field(default_factory=dict)

    def add(self, reason: str, index: int, detail: str) -> None:
        self.counts[reason] = self.counts.get(reason, 0) + 1
        self.examples.setdefault(reason, f"message {index}: {detail}")

    @property
    def total(self) -> int:
        return sum(self.counts.values())


@dataclass
class ReplayResult:
    bag: str
    image_topic: str
    out: str | None
    class_names: list[str]
    time_source: str  # "header" (image header stamps) or "bag" (bag receive time; headers were zero)
    frames: list[FrameRecord]
    messages: int  # image messages read (processed + skipped)
    bad: BadMessages
    written: dict[str, int]  # output topic -> messages written
    wall_s: float
    weights: str
    device: str


class _Skip(Exception):
    """A message that is counted and skipped."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason


class _Output:
    """The output bag: connections and counts (absent when only evaluating); written aside, moved in when closed."""

    def __init__(self, options: ReplayOptions, bag: str, store: Any) -> None:
        storage = options.storage or storage_of(bag)
        self.store = store
        self.staged = StagedBag(options.out, storage, options.force, inputs=[bag])
        self.writer = self.staged.writer
        self.emotions = self.writer.add_connection(options.emotions_topic, EMOTION_ARRAY, typestore=store)
        self.annotated = (self.writer.add_connection(options.annotated_topic, IMAGE, typestore=store)
                          if options.annotated else None)
        self.written = {options.emotions_topic: 0}
        if options.annotated:
            self.written[options.annotated_topic] = 0

    def write(self, conn: Any, topic: str, bag_ns: int, msg: Any, msgtype: str) -> None:
        self.writer.write(conn, bag_ns, self.store.serialize_cdr(msg, msgtype))
        self.written[topic] += 1

    def close(self) -> None:
        self.staged.commit()  # even after an error: the frames processed so far stay playable


def pick_image_topic(reader: Any, requested: str | None, bag: str) -> str:
    if requested:
        return requested
    topics = image_topics(reader)
    if len(topics) == 1:
        return topics[0]
    what = "no image topics" if not topics else f"several image topics ({', '.join(topics)})"
    raise FerError(f"bag '{bag}' has {what}; choose one with --image-topic. Its topics are:\n{describe_topics(reader)}")


def check_bag(bag: str, options: ReplayOptions) -> str:
    """Fail fast, before the model loads: the bag opens, has the image topic, the output is free.

    Returns the image topic that will be read.
    """
    reader = open_reader(bag)
    try:
        topic = pick_image_topic(reader, options.image_topic, bag)
        topic_connections(reader, topic, IMAGE_TYPES, bag, "image")
    finally:
        reader.close()
    if options.out:
        check_output_bag(options.out, options.force, inputs=[bag])
    return topic


def decode_image(store: Any, conn: Any, raw: bytes) -> tuple[Any, Any]:
    """(message, RGBImage) of one raw image message, or _Skip naming why not."""
    try:
        msg = store.deserialize_cdr(raw, conn.msgtype)
    except Exception as exc:  # rosbags raises struct/index/unicode errors on bad CDR
        raise _Skip("corrupt_message", f"cannot deserialize {conn.msgtype}: {type(exc).__name__}: {exc}") from None
    if conn.msgtype == IMAGE and str(msg.encoding).strip() not in SUPPORTED_ENCODINGS:
        raise _Skip("unsupported_encoding", f"encoding '{msg.encoding}' (supported: {', '.join(SUPPORTED_ENCODINGS)})")
    try:
        rgb = compressed_msg_to_rgb(msg) if conn.msgtype == COMPRESSED_IMAGE else image_msg_to_rgb(msg)
    except FerError as exc:
        raise _Skip("bad_image", str(exc)) from None
    return msg, rgb


def frame_record(index: int, bag_ns: int, result: FrameResult, latency_ms: float) -> FrameRecord:
    faces = [FaceRecord(int(f.track_id), str(f.label), str(f.raw_label), float(f.confidence),
                        float(max(f.bbox[2] - f.bbox[0], 0) * max(f.bbox[3] - f.bbox[1], 0)), bool(f.detected))
             for f in result.faces]
    return FrameRecord(index, int(bag_ns), float(result.stamp), faces, latency_ms, dict(result.timings_ms))


def replay_bag(bag: str, pipeline: FramePipeline, options: ReplayOptions, store: Any = None,
               on_frame: Callable[[FrameRecord], None] | None = None) -> ReplayResult:
    """Run ``pipeline`` on every image of ``options.image_topic``; write the output bag if asked."""
    store = store or get_typestore()
    types = MessageTypes.from_typestore(store)
    reader = open_reader(bag)
    output = None
    try:
        topic = pick_image_topic(reader, options.image_topic, bag)
        conns = topic_connections(reader, topic, IMAGE_TYPES, bag, "image")
        output = _Output(options, bag, store) if options.out else None
        result = ReplayResult(bag=str(bag), image_topic=topic, out=options.out, class_names=list(pipeline.class_names),
                              time_source="", frames=[], messages=0, bad=BadMessages(), written={}, wall_s=0.0,
                              weights=str(pipeline.weights_info), device=str(pipeline.device))
        pipeline.reset()
        start = time.perf_counter()
        try:
            _run(reader, conns, bag, pipeline, options, store, types, output, result, on_frame)
        except BagReadError as exc:
            kept = f"; the {len(result.frames)} frames before it were written to '{options.out}'" if output else ""
            raise FerError(f"{exc}{kept}") from None
        finally:
            result.wall_s = time.perf_counter() - start
            if output is not None:
                output.close()  # a finished bag even after an error: what was processed stays playable
                result.written = dict(output.written)
    finally:
        reader.close()
    return result


def _run(reader: Any, conns: list, bag: str, pipeline: FramePipeline, options: ReplayOptions, store: Any,
         types: MessageTypes, output: _Output | None, result: ReplayResult,
         on_frame: Callable[[FrameRecord], None] | None) -> None:
    from tqdm import tqdm

    total = sum(c.msgcount for c in conns)
    if options.max_frames > 0:
        total = min(total, options.max_frames)
    last_ns = None
    with tqdm(total=total, unit="frame", desc="replay", file=sys.stderr, disable=None if options.progress else True,
              dynamic_ncols=True) as bar:
        for index, (conn, bag_ns, raw) in enumerate(iter_messages(reader, conns, bag)):
            if options.max_frames and len(result.frames) >= options.max_frames:
                break
            result.messages += 1
            started = time.perf_counter()
            try:
                if last_ns is not None and bag_ns < last_ns:
                    raise _Skip("out_of_order", f"bag time {bag_ns} ns is before the previous frame's {last_ns} ns")
                msg, rgb = decode_image(store, conn, raw)
                stamp = _stamp(result, msg, bag_ns)
                try:  # fer_node's own step, so the output bag holds what the node would publish
                    out = process_image_msg(pipeline, msg, types, rgb=rgb, stamp=stamp,
                                            annotate=output is not None and output.annotated is not None)
                except FerError as exc:
                    raise _Skip("pipeline_error", str(exc)) from None
                frame = out.result
            except _Skip as skip:
                result.bad.add(skip.reason, index, str(skip))
                bar.update(1)
                continue
            last_ns = bag_ns
            if output is not None:
                _write(output, options, out, bag_ns)
            record = frame_record(index, bag_ns, frame, (time.perf_counter() - started) * 1000.0)
            result.frames.append(record)
            if on_frame is not None:
                on_frame(record)
            bar.update(1)


def _stamp(result: ReplayResult, msg: Any, bag_ns: int) -> float:
    """Header stamp in seconds, like fer_node; bag time when the first header stamp was zero."""
    header = stamp_to_seconds(msg.header.stamp)
    if not result.time_source:
        result.time_source = "header" if header > 0 else "bag"
    return header if result.time_source == "header" else bag_ns * 1e-9


def _write(output: _Output, options: ReplayOptions, out: FrameMessages, bag_ns: int) -> None:
    """The node's outputs for one frame, at the input's bag time (headers are the input's)."""
    output.write(output.emotions, options.emotions_topic, bag_ns, out.emotions, EMOTION_ARRAY)
    if output.annotated is not None and out.annotated is not None:
        output.write(output.annotated, options.annotated_topic, bag_ns, out.annotated, IMAGE)
