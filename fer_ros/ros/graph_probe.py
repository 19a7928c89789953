"""The listening half of the ROS graph benchmark: fer_node in a child process, a probe node here.

One ROS domain per ``Graph``: the installed fer_node runs in its own process; a camera process
(``camera``, e.g. scripts/ros_camera.py) publishes the frames of each case while the probe
listens to /emotions and /diagnostics. The cases and what is counted: ``fer_ros.measure.ros_graph``.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import rclpy
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.executors import SingleThreadedExecutor
from rclpy.qos import QoSProfile, ReliabilityPolicy

from fer_ros.measure.ros_graph import IMAGE_TOPIC, STARTUP_TIMEOUT, Case, CaseResult, default_sigint, fer_node_command, ros_env


class Graph:
    """One ROS domain: fer_node in a child process, a probe node listening in this one."""

    def __init__(self, camera: Path, domain: int, profile: str | Path | None = None, compressed: bool = False,
                 *params: str, camera_profile: str | Path | None = None) -> None:
        """``profile``: the Fast DDS profile of the node's process (and the probe's); ``camera_profile``:
        the one a case with ``camera_profile=True`` gives the camera's process (default: ``profile``)."""
        self.camera, self.domain, self.profile, self.compressed = Path(camera), domain, str(profile or ""), compressed
        self.camera_profile = str(camera_profile or profile or "")
        self.env = ros_env(domain, profile)
        if profile:  # the probe too: a participant's transports come from its own process's profile
            os.environ["FASTDDS_DEFAULT_PROFILES_FILE"] = str(profile)
        self.context = rclpy.Context()
        rclpy.init(context=self.context, domain_id=domain)
        os.environ.pop("FASTDDS_DEFAULT_PROFILES_FILE", None)
        self.probe = rclpy.create_node("bench_probe", context=self.context)
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.probe)
        from fer_ros.msg import EmotionArray  # built by colcon

        self.emotions: list[tuple[float, object]] = []
        self.dropped = 0
        reliable = QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE)
        self.probe.create_subscription(EmotionArray, "/emotions", lambda m: self.emotions.append((time.time(), m)),
                                       reliable)
        self.probe.create_subscription(DiagnosticArray, "/diagnostics", self._on_diagnostics, 10)
        command = fer_node_command(f"image_topic:={IMAGE_TOPIC}", f"compressed:={str(compressed).lower()}",
                                   "detector.device:=cpu", "publish_annotated:=false", "diagnostics_period:=0.5",
                                   *params)
        self.output = ""  # the node's log, once closed
        self._log = tempfile.TemporaryFile("w+")  # a file, not a pipe: a chatty node must never block on it
        self.node = subprocess.Popen(command, env=self.env, stdout=self._log, stderr=subprocess.STDOUT,
                                     text=True, preexec_fn=default_sigint)

    def _read_log(self) -> str:
        self._log.seek(0)
        return self._log.read()

    def _on_diagnostics(self, msg: DiagnosticArray) -> None:
        for status in msg.status:
            if status.name.startswith("fer_node"):
                values = {kv.key: kv.value for kv in status.values}
                self.dropped = int(values.get("dropped_frames", self.dropped))

    def spin_for(self, seconds: float, until=None) -> bool:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            self.executor.spin_once(timeout_sec=0.05)
            if until is not None and until():
                return True
            if self.node.poll() is not None:
                raise RuntimeError(f"fer_node exited with {self.node.returncode}:\n{self._read_log()}")
        return until is None

    def wait_ready(self, timeout: float = STARTUP_TIMEOUT) -> None:
        """Until the node subscribes to the camera topic (after model load and warm-up)."""
        topic = IMAGE_TOPIC + ("/compressed" if self.compressed else "")
        if not self.spin_for(timeout, lambda: bool(self.probe.get_subscriptions_info_by_topic(topic))):
            raise RuntimeError(f"fer_node did not subscribe to {topic} within {timeout} s")

    def run(self, case: Case, frame_id: str) -> CaseResult:
        result = CaseResult(case, self.profile)
        self.emotions.clear()
        self.spin_for(1.2)  # one diagnostics period: the dropped count before this case
        dropped_before = self.dropped
        camera = subprocess.Popen(
            [sys.executable, str(self.camera), "--topic", IMAGE_TOPIC, "--size", case.size, "--qos", case.qos,
             "--rate", str(case.rate), "--count", str(case.count), "--frame-id", frame_id]
            + (["--compressed"] if case.compressed else []) + (["--any-subscriber"] if case.any_subscriber else []),
            env=self.env if case.camera_profile is None else ros_env(self.domain, self.camera_profile if case.camera_profile
                                                                     else None),
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.spin_for(case.count / case.rate + 90.0, lambda: camera.poll() is not None)
        if camera.poll() is None:
            camera.kill()
        out, err = camera.communicate()
        self.spin_for(3.0)  # the last answers and one more diagnostics message
        try:
            report = json.loads(out.strip().splitlines()[-1])
        except (IndexError, json.JSONDecodeError):
            result.error = f"camera failed (exit {camera.returncode}): {err.strip()[-500:]}"
            return result
        if "error" in report:
            result.error = report["error"]
            return result
        sent = {tuple(s): s[0] + s[1] * 1e-9 for s in report["stamps"]}
        result.sent, result.bytes = report["sent"], report["bytes"]
        result.dropped_by_node = self.dropped - dropped_before
        seen, detected = set(), {}
        for arrived, msg in self.emotions:
            key = (msg.header.stamp.sec, msg.header.stamp.nanosec)
            if key not in sent or msg.header.frame_id != frame_id or key in seen:
                continue
            seen.add(key)
            result.answered += 1
            detected[key] = sum(f.detected for f in msg.faces)
            result.one_face += detected[key] == 1
            result.class_names_set += len(msg.class_names) > 0 and all(
                len(f.probabilities) == len(msg.class_names) for f in msg.faces)
            result.latencies_ms.append((arrived - sent[key]) * 1000.0)
        result.detected_faces = [detected[k] for k in sorted(detected)]
        return result

    def close(self) -> int:
        """SIGTERM the node, as a launch system or systemd does; its exit code."""
        if self.node.poll() is None:
            self.node.send_signal(signal.SIGTERM)
        try:
            self.node.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.node.kill()
            self.node.wait()
        self.output = self._read_log()
        self.executor.shutdown()
        self.probe.destroy_node()
        rclpy.try_shutdown(context=self.context)
        return self.node.returncode
