#!/usr/bin/env python3
"""A camera for test/test_ros4hri.py, in its own process: a real face (scikit-image's astronaut)
until told "leave" on stdin, then the same frame without anybody; "stop" (or end of input) ends it.

Publishes sensor_msgs/Image rgb8 640x480, reliable, at --rate from the start (like a camera
that is already running when fer_node comes up). Frame k is stamped --base + k / rate seconds.

With --face-id ID it is another ROS4HRI face detector instead (test/test_ros4hri_consume.py):
per frame, /humans/faces/tracked (hri_msgs/IdsList) lists ID and /humans/faces/ID/aligned
carries the astronaut's face aligned by fer_ros's own detector and aligner, 128x128 bgr8 (every
--bad-every-th one with an encoding nobody knows); after "leave" the list is empty.
"""
from __future__ import annotations

import argparse
import array
import sys
import threading
import time
from pathlib import Path

import numpy as np
import rclpy
from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
from ros_camera import frame  # noqa: E402  (the astronaut, centred on grey)


def image_msg(rgb: np.ndarray, encoding: str, stamp_ns: int, frame_id: str, bad: bool = False) -> Image:
    pixels = rgb[..., ::-1] if encoding == "bgr8" else rgb
    height, width = rgb.shape[:2]
    msg = Image(height=height, width=width, encoding="bogus8" if bad else encoding, is_bigendian=0, step=width * 3,
                data=array.array("B", np.ascontiguousarray(pixels).tobytes()))
    msg.header.stamp.sec, msg.header.stamp.nanosec = divmod(stamp_ns, 1_000_000_000)
    msg.header.frame_id = frame_id
    return msg


def aligned_face() -> np.ndarray:
    """The astronaut's face as fer_node's ros4hri=true publishes it on /aligned: 128x128, aligned on its landmarks."""
    from fer_ros.config import PipelineConfig
    from fer_ros.messages.hri_map import ALIGNED_SIZE
    from fer_ros.perception.alignment import FaceAligner
    from fer_ros.perception.detection import FaceDetector

    config = PipelineConfig()
    config.detector.device = "cpu"
    image = frame(640, 480)
    detection = FaceDetector(config.detector).detect(image)[0]
    return FaceAligner(config.align, ALIGNED_SIZE).align(image, detection).image


class Detector:
    """The topics of a ROS4HRI face detector that sees one face, ``face_id``, while it is there."""

    def __init__(self, node, face_id: str, qos: QoSProfile) -> None:
        from hri_msgs.msg import IdsList  # on the path the test gives this process

        self.ids_list, self.face_id = IdsList, face_id
        self.tracked = node.create_publisher(IdsList, "/humans/faces/tracked", qos)
        self.aligned = node.create_publisher(Image, f"/humans/faces/{face_id}/aligned", qos)

    def publish(self, aligned: Image, here: bool) -> None:
        """The face's aligned image while it is ``here``, then the list of ids, with the image's header."""
        if here:
            self.aligned.publish(aligned)
        self.tracked.publish(self.ids_list(header=aligned.header, ids=[self.face_id] if here else []))


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--topic", required=True)
    p.add_argument("--rate", type=float, default=5.0)
    p.add_argument("--base", type=float, default=5000.0, help="stamp of the first frame, seconds")
    p.add_argument("--frame-id", default="hri_test_camera")
    p.add_argument("--face-id", default="", help="publish as a ROS4HRI face detector, with this face id")
    p.add_argument("--bad-every", type=int, default=0, help="with --face-id: every Nth aligned image is unreadable")
    args = p.parse_args()
    face = aligned_face() if args.face_id else frame(640, 480)
    empty = np.full_like(face, 110)
    state = {"mode": "face"}

    def read_commands() -> None:
        for line in sys.stdin:
            state["mode"] = line.strip()
        state["mode"] = "stop"

    threading.Thread(target=read_commands, daemon=True).start()
    rclpy.init()
    node = rclpy.create_node("hri_test_camera")
    qos = QoSProfile(reliability=ReliabilityPolicy.RELIABLE, history=HistoryPolicy.KEEP_LAST, depth=5)
    detector = Detector(node, args.face_id, qos) if args.face_id else None
    pub = None if detector else node.create_publisher(Image, args.topic, qos)
    k = 0
    try:
        while state["mode"] != "stop":
            here = state["mode"] == "face"
            stamp_ns = round(args.base * 1e9) + round(k * 1e9 / args.rate)
            if detector:
                bad = args.bad_every > 0 and k % args.bad_every == 0
                detector.publish(image_msg(face, "bgr8", stamp_ns, args.frame_id, bad), here)
            else:
                pub.publish(image_msg(face if here else empty, "rgb8", stamp_ns, args.frame_id))
            k += 1
            time.sleep(1.0 / args.rate)
    finally:
        node.destroy_node()
        rclpy.try_shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
