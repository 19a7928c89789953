#!/usr/bin/env python3
"""A camera for test/test_ros4hri.py, in its own process: a real face (scikit-image's astronaut)
until told "leave" on stdin, then the same frame without anybody; "stop" (or end of input) ends it.

Publishes sensor_msgs/Image rgb8 640x480, reliable, at --rate from the start (like a camera
that is already running when fer_node comes up). Frame k is stamped --base + k / rate seconds.
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


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--topic", required=True)
    p.add_argument("--rate", type=float, default=5.0)
    p.add_argument("--base", type=float, default=5000.0, help="stamp of the first frame, seconds")
    p.add_argument("--frame-id", default="hri_test_camera")
    args = p.parse_args()
    face = frame(640, 480)
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
    pub = node.create_publisher(Image, args.topic, qos)
    k = 0
    try:
        while state["mode"] != "stop":
            pixels = face if state["mode"] == "face" else empty
            stamp_ns = round(args.base * 1e9) + round(k * 1e9 / args.rate)
            msg = Image(height=480, width=640, encoding="rgb8", is_bigendian=0, step=640 * 3, data=array.array("B", pixels.tobytes()))
            msg.header.stamp.sec, msg.header.stamp.nanosec = divmod(stamp_ns, 1_000_000_000)
            msg.header.frame_id = args.frame_id
            pub.publish(msg)
            k += 1
            time.sleep(1.0 / args.rate)
    finally:
        node.destroy_node()
        rclpy.try_shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
