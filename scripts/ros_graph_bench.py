#!/usr/bin/env python3
"""Cross-process figures for fer_node on a real ROS 2 graph: frames sent and answered, latency.

    ./scripts/test --co -q >/dev/null   # once: venv, colcon build (or source your ROS + install/)
    . .venv/bin/activate && . install/setup.bash && python scripts/ros_graph_bench.py [--count 40] [--json]

Each group starts the installed fer_node in its own process and ROS domain (localhost
discovery); for each case a camera process (scripts/ros_camera.py) publishes a real face at a
fixed rate, reliable or best effort, raw rgb8 or jpeg, while this process listens to /emotions
and /diagnostics. "kept" is sent minus the frames the node itself replaced by a newer one
(newest-frame-wins, reported as dropped_frames on /diagnostics); "answered" counts /emotions
messages that carry a sent frame's stamp and frame_id. Latency is from the camera's stamp to
the EmotionArray's arrival here (same machine clock). test/test_ros_graph.py runs the same
cases with fewer frames and asserts on them.
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import rclpy
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.executors import SingleThreadedExecutor
from rclpy.qos import QoSProfile, ReliabilityPolicy

HERE = Path(__file__).resolve().parent
CAMERA = HERE / "ros_camera.py"
LARGE_FRAMES_PROFILE = HERE.parent / "config" / "fastdds_large_frames.xml"
IMAGE_TOPIC = "/bench_camera/image_raw"
STARTUP_TIMEOUT = 240.0  # seconds: model load and warm-up on a busy 2-core CPU


@dataclass(frozen=True)
class Case:
    size: str  # WIDTHxHEIGHT
    qos: str  # reliable | best_effort (the camera's)
    rate: float  # frames per second
    count: int
    compressed: bool = False
    camera_profile: bool | None = None  # the profile in the camera's process too; None: as the node
    any_subscriber: bool = False  # a reliable camera starts without waiting for a reliable subscriber

    @property
    def name(self) -> str:
        where = {None: "", True: ", camera with profile", False: ", camera without profile"}[self.camera_profile]
        return f"{self.size} {'jpeg' if self.compressed else 'rgb8'} {self.qos} {self.rate:g} Hz{where}"


@dataclass
class CaseResult:
    case: Case
    profile: str  # the Fast DDS profile of the node's process ('' = default transports)
    sent: int = 0
    bytes: int = 0
    answered: int = 0
    dropped_by_node: int = 0
    one_face: int = 0  # answers with exactly one detected face (a box carried over from before may join it)
    class_names_set: int = 0
    latencies_ms: list[float] = field(default_factory=list)
    detected_faces: list[int] = field(default_factory=list)  # per answer, in the order the frames were sent
    error: str = ""

    @property
    def kept(self) -> int:
        return max(self.sent - self.dropped_by_node, 0)

    def percentile(self, q: float) -> float:
        values = sorted(self.latencies_ms)
        if not values:
            return float("nan")
        return values[min(len(values) - 1, round(q / 100 * (len(values) - 1)))]

    def summary(self) -> dict:
        return {"case": self.case.name, "fastdds_profile": Path(self.profile).name if self.profile else "",
                "frame_bytes": self.bytes,
                "sent": self.sent, "dropped_by_node": self.dropped_by_node, "kept": self.kept,
                "answered": self.answered, "one_face": self.one_face,
                "latency_p50_ms": round(self.percentile(50), 1), "latency_p95_ms": round(self.percentile(95), 1),
                "error": self.error}


def ros_env(domain: int, profile: str | Path | None = None) -> dict[str, str]:
    env = dict(os.environ, ROS_DOMAIN_ID=str(domain), ROS_AUTOMATIC_DISCOVERY_RANGE="LOCALHOST")
    env.pop("FASTDDS_DEFAULT_PROFILES_FILE", None)
    if profile:
        env["FASTDDS_DEFAULT_PROFILES_FILE"] = str(profile)
    return env


def udp_only_profile(folder: str, buffer_bytes: int = 0) -> Path:
    """A Fast DDS profile with UDP as the only transport (as between two machines), with socket
    buffers of ``buffer_bytes`` (0: Fast DDS's default, the system's default size)."""
    sizes = (f"<sendBufferSize>{buffer_bytes}</sendBufferSize><receiveBufferSize>{buffer_bytes}</receiveBufferSize>"
             if buffer_bytes else "")
    path = Path(folder) / f"udp_only_{buffer_bytes}.xml"
    path.write_text(f"""<?xml version="1.0" encoding="UTF-8"?>
<dds xmlns="http://www.eprosima.com"><profiles>
 <transport_descriptors><transport_descriptor><transport_id>udp</transport_id><type>UDPv4</type>{sizes}
 </transport_descriptor></transport_descriptors>
 <participant profile_name="udp_only" is_default_profile="true"><rtps>
  <userTransports><transport_id>udp</transport_id></userTransports><useBuiltinTransports>false</useBuiltinTransports>
 </rtps></participant>
</profiles></dds>
""")
    return path


def fer_node_command(*params: str) -> list[str]:
    """The installed executable (what `ros2 run fer_ros fer_node` runs), with -p NAME:=VALUE each."""
    from ament_index_python.packages import get_package_prefix

    exe = os.path.join(get_package_prefix("fer_ros"), "lib", "fer_ros", "fer_node")
    args = [sys.executable, exe, "--ros-args"]
    for p in params:
        args += ["-p", p]
    return args


def default_sigint() -> None:
    """Child processes get SIGINT's default action back (a background shell leaves it ignored)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


class Graph:
    """One ROS domain: fer_node in a child process, a probe node listening in this one."""

    def __init__(self, domain: int, profile: str | Path | None = None, compressed: bool = False, *params: str) -> None:
        self.domain, self.profile, self.compressed = domain, str(profile or ""), compressed
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
            [sys.executable, str(CAMERA), "--topic", IMAGE_TOPIC, "--size", case.size, "--qos", case.qos,
             "--rate", str(case.rate), "--count", str(case.count), "--frame-id", frame_id]
            + (["--compressed"] if case.compressed else []) + (["--any-subscriber"] if case.any_subscriber else []),
            env=self.env if case.camera_profile is None else ros_env(self.domain, self.profile if case.camera_profile
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


# (Fast DDS profile of the node's process, compressed, cases, extra node parameters): a node per group.
def groups(count: int, udp_folder: str | None = None) -> list[tuple[Path | None, bool, list[Case], tuple]]:
    raw = [Case("640x480", "reliable", 4, count), Case("1280x720", "reliable", 3, count),
           Case("640x480", "best_effort", 4, count)]
    with_profile = [Case("640x480", "best_effort", 4, count, camera_profile=False),
                    Case("640x480", "best_effort", 4, count, camera_profile=True),
                    Case("1280x720", "best_effort", 3, count, camera_profile=True),
                    Case("1280x720", "reliable", 3, count, camera_profile=False)]
    compressed = [Case("640x480", "reliable", 4, count, True), Case("1280x720", "best_effort", 3, count, True)]
    out = [(None, False, raw, ()), (LARGE_FRAMES_PROFILE, False, with_profile, ()), (None, True, compressed, ()),
           # the node as it was before camera_qos: best effort whatever the camera offers
           (None, False, [Case("640x480", "reliable", 4, count, any_subscriber=True),
                          Case("1280x720", "reliable", 3, count, any_subscriber=True)], ("camera_qos:=best_effort",))]
    if udp_folder:  # UDP only, as between machines: default socket buffers, then 4 MB ones
        for size in (0, 4 * 1024 * 1024):
            out.append((udp_only_profile(udp_folder, size), False,
                        [Case("640x480", "best_effort", 4, count), Case("640x480", "reliable", 4, count)], ()))
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--count", type=int, default=40, help="frames per case")
    p.add_argument("--domain", type=int, default=77, help="first ROS domain id (one per group)")
    p.add_argument("--json", action="store_true")
    p.add_argument("--groups", default="", help="comma-separated group numbers to run (default: all)")
    p.add_argument("--udp", action="store_true", help="also UDP-only transports (as between two machines), "
                                                       "default and 4 MB socket buffers (capped by net.core.rmem_max)")
    args = p.parse_args(argv)
    results = []
    udp_folder = tempfile.mkdtemp(prefix="fer_bench_") if args.udp else None
    chosen = {int(g) for g in args.groups.split(",") if g.strip()}
    for i, (profile, compressed, cases, params) in enumerate(groups(args.count, udp_folder)):
        if chosen and i not in chosen:
            continue
        graph = Graph(args.domain + i, profile, compressed, *params)
        if params and not args.json:
            print(f"  fer_node with {' '.join(params)}", flush=True)
        try:
            graph.wait_ready()
            for j, case in enumerate(cases):
                r = graph.run(case, f"bench_{i}_{j}")
                results.append(r.summary())
                if not args.json:
                    s = r.summary()
                    print(f"{s['case']:<54} profile={s['fastdds_profile'] or '-':<26} sent {s['sent']:>3} "
                          f"kept {s['kept']:>3} answered {s['answered']:>3} one-face {s['one_face']:>3} "
                          f"p50 {s['latency_p50_ms']:>7} ms p95 {s['latency_p95_ms']:>7} ms {s['error']}", flush=True)
        finally:
            code = graph.close()
            if not args.json:
                print(f"  fer_node exit code after SIGTERM: {code}", flush=True)
    if args.json:
        print(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
