"""ROS4HRI input of fer_node: the expressions of faces another detector publishes (thin rclpy half).

With ``ros4hri_input`` fer_node runs no face detector: it follows the ids on /humans/faces/tracked
(hri_msgs/IdsList), subscribes per id to /humans/faces/<id>/aligned (sensor_msgs/Image) and
publishes /humans/faces/<id>/expression (hri_msgs/Expression), stamped with the aligned image's
header, so it can stand in for the expression recogniser of an existing ROS4HRI stack. The
callbacks only keep each face's newest crop (``fer_ros.perception.latest.FaceInbox``); the node's processing thread
calls ``process``, which classifies the crops of one stamp as one batch
(``FramePipeline.process_aligned``). When an id leaves the list, its subscription and publisher
are destroyed and the pipeline forgets its smoothing state.
"""
from __future__ import annotations

import threading
import time
from functools import partial
from typing import Any

from rclpy.exceptions import InvalidTopicNameException
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import Image

from fer_ros.diagnostics import FrameStats
from fer_ros.errors import FerError
from fer_ros.messages import hri_map
from fer_ros.messages.convert import msg_to_rgb, stamp_to_seconds
from fer_ros.perception.latest import FaceInbox
from fer_ros.pipeline import FramePipeline
from fer_ros.types import RGBImage

ALIGNED_TOPIC = f"{hri_map.FACES_NS}/<id>/aligned"  # for the log and diagnostics
# The id list is state, and ROS4HRI detectors publish it reliable. The crops are a stream of which
# only the newest matters: best effort, which matches reliable and best-effort publishers alike.
TRACKED_QOS = QoSProfile(reliability=ReliabilityPolicy.RELIABLE, history=HistoryPolicy.KEEP_LAST, depth=1,
                         durability=DurabilityPolicy.VOLATILE)
ALIGNED_QOS = QoSProfile(reliability=ReliabilityPolicy.BEST_EFFORT, history=HistoryPolicy.KEEP_LAST, depth=1,
                         durability=DurabilityPolicy.VOLATILE)
EXPRESSION_DEPTH = 1  # keep-last 1, reliable: like the expression topics fer_node publishes with ros4hri
LOG_PERIOD = 5.0  # seconds between two log lines about the same kind of problem


class HriConsumer:
    """The /humans/faces/ subscriptions and expression publishers of one node.

    ``lock`` is the node's: it guards the pipeline and, here, the faces' subscriptions and
    publishers, which the id-list callback changes while the processing thread publishes.
    """

    def __init__(self, node: Node, pipeline: FramePipeline, lock: threading.Lock, stats: FrameStats,
                 hri_types: hri_map.HriTypes) -> None:
        self._node, self._pipeline, self._lock, self._stats, self._hri = node, pipeline, lock, stats, hri_types
        self.inbox: FaceInbox[tuple[Any, float]] = FaceInbox()  # face id -> (aligned msg, arrival)
        self._faces: dict[str, tuple[Any, Any]] = {}  # face id -> (aligned subscription, expression publisher)
        self._tracked = node.create_subscription(hri_types.IdsList, hri_map.TRACKED_TOPIC, self._on_tracked,
                                                 TRACKED_QOS)
        node.get_logger().info(f"classifying the faces on {ALIGNED_TOPIC} for the ids on {hri_map.TRACKED_TOPIC} "
                               f"(no face detection of our own; the camera parameters are not used)")

    # --- executor thread -------------------------------------------------------------------------

    def _on_tracked(self, msg: Any) -> None:
        with self._lock:
            changes = hri_map.id_changes(self._faces, msg.ids)
            for face_id in changes.ended:
                self._drop(face_id)
            for face_id in changes.appeared:
                self._add(face_id)

    def _add(self, face_id: str) -> None:
        topic = f"{hri_map.FACES_NS}/{face_id}"
        try:
            sub = self._node.create_subscription(Image, f"{topic}/aligned", partial(self._on_aligned, face_id),
                                                 ALIGNED_QOS)
        except InvalidTopicNameException:
            self._node.get_logger().warning(f"ignoring face id {face_id!r} on {hri_map.TRACKED_TOPIC}: it cannot be "
                                            "part of a topic name", throttle_duration_sec=LOG_PERIOD)
            return
        pub = self._node.create_publisher(self._hri.Expression, f"{topic}/expression", EXPRESSION_DEPTH)
        self._faces[face_id] = (sub, pub)

    def _drop(self, face_id: str) -> None:
        """The face left: its topics go, its waiting crop and its smoothing state are forgotten."""
        sub, pub = self._faces.pop(face_id)
        self._node.destroy_subscription(sub)
        self._node.destroy_publisher(pub)
        self.inbox.discard(face_id)
        self._pipeline.forget(face_id)

    def _on_aligned(self, face_id: str, msg: Any) -> None:
        """Keep the face's newest crop; one still waiting is dropped (counted)."""
        self._stats.received(replaced_unprocessed=self.inbox.put(face_id, (msg, time.monotonic())))

    # --- processing thread -----------------------------------------------------------------------

    def process(self, batch: dict[str, tuple[Any, float]]) -> None:
        """Classify the waiting crops, one batch per stamp; a crop that cannot be read is skipped."""
        by_stamp: dict[float, dict[str, tuple[RGBImage, Any, float]]] = {}
        for face_id, (msg, arrived) in batch.items():
            try:
                rgb = msg_to_rgb(msg)
            except FerError as exc:
                self._stats.bad(str(exc))
                self._node.get_logger().warning(f"skipping an aligned image of face {face_id}: {exc}",
                                                throttle_duration_sec=LOG_PERIOD)
                continue
            by_stamp.setdefault(stamp_to_seconds(msg.header.stamp), {})[face_id] = (rgb, msg, arrived)
        for stamp in sorted(by_stamp):
            self._classify(stamp, by_stamp[stamp])

    def _classify(self, stamp: float, crops: dict[str, tuple[RGBImage, Any, float]]) -> None:
        with self._lock:
            crops = {i: c for i, c in crops.items() if i in self._faces}  # an id that left meanwhile stays forgotten
            if not crops:
                return
            result = self._pipeline.process_aligned({i: rgb for i, (rgb, _, _) in crops.items()}, stamp)
            for (face_id, (_, msg, arrived)), face in zip(crops.items(), result.faces):
                self._faces[face_id][1].publish(hri_map.expression_msg(face, result.class_names, msg.header, self._hri))
                self._stats.processed((time.monotonic() - arrived) * 1000.0, len(self._faces))

    def close(self) -> None:
        """Destroy every face's subscription and publisher (the node is going away)."""
        self.inbox.close()
        with self._lock:
            for face_id in list(self._faces):
                sub, pub = self._faces.pop(face_id)
                self._node.destroy_subscription(sub)
                self._node.destroy_publisher(pub)
