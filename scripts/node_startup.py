#!/usr/bin/env python3
"""How long fer_node takes from start to its first /emotions, and what share of a CPU it uses.

    ./scripts/test --co -q >/dev/null   # once: venv, colcon build (or source your ROS + install/)
    . .venv/bin/activate && . install/setup.bash && python scripts/node_startup.py [--rate 30] [--seconds 20]

A stand-in camera (scripts/ros_camera.py: scikit-image's astronaut, 640x480 rgb8, reliable) is
publishing before the installed fer_node starts with its defaults, as on a robot whose camera
driver is already up. Prints the seconds from starting the node's process to the first
/emotions message that reaches this process, the node's log lines with the second each
appeared, then, over ``--seconds``, the node process's CPU time per second of wall time (user +
system, from /proc; 1.0 = one core) and the /emotions rate.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import rclpy
from rclpy.executors import SingleThreadedExecutor

from fer_ros.measure import ros_graph
from fer_ros.msg import EmotionArray

HERE = Path(__file__).resolve().parent
TOPIC = "/startup_camera/image_raw"


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux /proc)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rate", type=float, default=30.0, help="camera frames per second")
    p.add_argument("--seconds", type=float, default=20.0, help="how long to measure the CPU share")
    p.add_argument("--domain", type=int, default=91, help="ROS domain id (localhost discovery)")
    args = p.parse_args(argv)
    env = ros_graph.ros_env(args.domain)
    count = int(args.rate * (args.seconds + 200))
    camera = subprocess.Popen([sys.executable, str(HERE / "ros_camera.py"), "--topic", TOPIC, "--size", "640x480",
                               "--qos", "reliable", "--rate", str(args.rate), "--count", str(count), "--wait", "0"],
                              env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    context = rclpy.Context()
    rclpy.init(context=context, domain_id=args.domain)
    probe = rclpy.create_node("startup_probe", context=context)
    arrivals: list[tuple[float, int]] = []
    probe.create_subscription(EmotionArray, "/emotions", lambda m: arrivals.append((time.monotonic(), len(m.faces))), 10)
    executor = SingleThreadedExecutor(context=context)
    executor.add_node(probe)

    def spin(seconds: float, until=lambda: False) -> None:
        end = time.monotonic() + seconds
        while time.monotonic() < end and not until():
            executor.spin_once(timeout_sec=0.05)

    spin(3.0, lambda: bool(probe.get_publishers_info_by_topic(TOPIC)))  # the camera is up before the node
    start = time.monotonic()
    node = subprocess.Popen(ros_graph.fer_node_command(f"image_topic:={TOPIC}"), env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, preexec_fn=ros_graph.default_sigint)
    lines: list[tuple[float, str]] = []
    threading.Thread(target=lambda: lines.extend((time.monotonic() - start, line.rstrip()) for line in node.stdout),
                     daemon=True).start()
    try:
        spin(ros_graph.STARTUP_TIMEOUT, lambda: bool(arrivals))
        if not arrivals:
            print(f"no /emotions within {ros_graph.STARTUP_TIMEOUT:.0f} s")
            return 1
        print(f"start -> first /emotions: {arrivals[0][0] - start:.2f} s")
        for seconds, line in list(lines):
            print(f"  {seconds:6.2f} s  {line.split('] ', 2)[-1][:140]}")
        spin(3.0)  # past the first frames
        cpu0, wall0, seen0 = cpu_seconds(node.pid), time.monotonic(), len(arrivals)
        spin(args.seconds)
        cpu1, wall1, seen1 = cpu_seconds(node.pid), time.monotonic(), len(arrivals)
        one_face = sum(n == 1 for _, n in arrivals[seen0:seen1]) / max(seen1 - seen0, 1)
        print(f"camera {args.rate:g} Hz: fer_node CPU {(cpu1 - cpu0) / (wall1 - wall0):.2f} cores, /emotions "
              f"{(seen1 - seen0) / (wall1 - wall0):.1f} Hz, {one_face:.0%} of them with one face")
    finally:
        node.terminate()
        node.wait(timeout=30)
        camera.terminate()
        camera.wait(timeout=30)
        probe.destroy_node()
        rclpy.shutdown(context=context)
    return 0


if __name__ == "__main__":
    sys.exit(main())
