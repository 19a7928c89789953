#!/usr/bin/env python3
"""A stand-in camera in its own process: publishes a real face (scikit-image's astronaut) as
sensor_msgs/Image rgb8 or CompressedImage jpeg, reliable or best effort, at a fixed rate.

    python scripts/ros_camera.py --topic /cam/image_raw --size 640x480 --qos reliable --rate 2 --count 20

Stamps are this machine's wall clock at publishing, so a subscriber on the same machine can
measure latency from them. Before the first frame it waits for a matching subscriber (for a
reliable camera: a reliable one, so a subscriber that adapts its QoS has done so), then prints
one JSON line: the frames sent with their stamps. Uses only rclpy, the ROS message packages,
OpenCV, numpy and scikit-image (no fer_ros), so it behaves like any camera driver.
"""
from __future__ import annotations

import argparse
import array
import json
import sys
import time

import cv2
import numpy as np
import rclpy
from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import CompressedImage, Image
from skimage import data

from fer_ros.imageio import encode_rgb


def frame(width: int, height: int) -> np.ndarray:
    """The astronaut scaled to the frame's height, centred on grey: one face, about 1/6 of the height."""
    face = cv2.resize(data.astronaut(), (height, height), interpolation=cv2.INTER_AREA)
    out = np.full((height, width, 3), 110, np.uint8)
    x0 = max((width - height) // 2, 0)
    out[:, x0:x0 + min(height, width)] = face[:, :min(height, width)]
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--topic", required=True, help="raw image topic; --compressed publishes on <topic>/compressed")
    p.add_argument("--size", default="640x480", help="WIDTHxHEIGHT")
    p.add_argument("--qos", choices=("reliable", "best_effort"), default="reliable")
    p.add_argument("--rate", type=float, default=2.0, help="frames per second")
    p.add_argument("--count", type=int, default=20)
    p.add_argument("--compressed", action="store_true", help="sensor_msgs/CompressedImage, jpeg quality 90")
    p.add_argument("--frame-id", default="test_camera")
    p.add_argument("--wait", type=float, default=60.0,
                   help="seconds to wait for a matching subscriber (0: publish at once, as a camera driver does)")
    p.add_argument("--any-subscriber", action="store_true",
                   help="a reliable camera starts for a best-effort subscriber too (default: waits for a reliable one)")
    args = p.parse_args(argv)
    width, height = (int(v) for v in args.size.lower().split("x"))

    rclpy.init()
    node = rclpy.create_node("test_camera")
    reliability = ReliabilityPolicy.RELIABLE if args.qos == "reliable" else ReliabilityPolicy.BEST_EFFORT
    qos = QoSProfile(reliability=reliability, history=HistoryPolicy.KEEP_LAST, depth=5)
    topic = args.topic.rstrip("/") + "/compressed" if args.compressed else args.topic
    pub = node.create_publisher(CompressedImage if args.compressed else Image, topic, qos)
    rgb = frame(width, height)
    if args.compressed:
        payload = array.array("B", encode_rgb(rgb, "jpeg", 90))  # rclpy takes array.array without a per-byte check
    else:
        payload = array.array("B", rgb.tobytes())

    def matched() -> bool:
        subs = node.get_subscriptions_info_by_topic(topic)
        if args.qos == "reliable" and not args.any_subscriber:
            return any(s.qos_profile.reliability == ReliabilityPolicy.RELIABLE for s in subs)
        return bool(subs)

    deadline = time.monotonic() + args.wait
    while args.wait > 0 and not matched():
        if time.monotonic() > deadline:
            print(json.dumps({"error": f"no matching subscriber on {topic} within {args.wait} s"}), flush=True)
            return 1
        rclpy.spin_once(node, timeout_sec=0.1)
    if args.wait > 0:
        time.sleep(1.5)  # let discovery finish on the subscriber's side too (a first frame sent earlier can be lost)

    stamps = []
    period = 1.0 / args.rate
    next_t = time.monotonic()
    for _ in range(args.count):
        now = time.time()
        if args.compressed:
            msg = CompressedImage(format="rgb8; jpeg compressed bgr8", data=payload)
        else:
            msg = Image(height=height, width=width, encoding="rgb8", is_bigendian=0, step=width * 3, data=payload)
        msg.header.stamp.sec, msg.header.stamp.nanosec = int(now), int((now - int(now)) * 1e9)
        msg.header.frame_id = args.frame_id
        pub.publish(msg)
        stamps.append([msg.header.stamp.sec, msg.header.stamp.nanosec])
        next_t += period
        time.sleep(max(0.0, next_t - time.monotonic()))
    time.sleep(0.5)  # a reliable writer may still be sending the last frame
    print(json.dumps({"topic": topic, "sent": len(stamps), "stamps": stamps, "bytes": len(payload)}), flush=True)
    node.destroy_node()
    rclpy.try_shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
