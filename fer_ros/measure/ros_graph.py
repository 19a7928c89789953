"""Cross-process figures for fer_node on a real ROS 2 graph, the ROS-free half.

The cases (frame size, camera QoS, rate, raw or jpeg), their results (sent, kept, answered,
latency), the environment of each ROS domain and the node's command line. The probe that
listens to the node is ``fer_ros.ros.graph_probe``; ``scripts/ros_graph_bench.py`` prints the
figures and ``test/test_ros_graph.py`` asserts on them.
"""
from __future__ import annotations

import os
import signal
import sys
from dataclasses import dataclass, field
from pathlib import Path

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


# (Fast DDS profile of the node's process, compressed, cases, extra node parameters): a node per group.
def groups(count: int, large_frames_profile: Path | None, udp_folder: str | None = None) -> list[tuple[Path | None, bool, list[Case], tuple]]:
    raw = [Case("640x480", "reliable", 4, count), Case("1280x720", "reliable", 3, count),
           Case("640x480", "best_effort", 4, count), Case("640x480", "best_effort", 10, count),
           Case("640x480", "best_effort", 10, count, camera_profile=True)]  # the profile in the camera only
    with_profile = [Case("640x480", "best_effort", 4, count, camera_profile=False),
                    Case("640x480", "best_effort", 10, count, camera_profile=False),
                    Case("640x480", "best_effort", 4, count, camera_profile=True),
                    Case("640x480", "best_effort", 10, count, camera_profile=True),
                    Case("1280x720", "best_effort", 3, count, camera_profile=True),
                    Case("1280x720", "reliable", 3, count, camera_profile=False)]
    compressed = [Case("640x480", "reliable", 4, count, True), Case("1280x720", "best_effort", 3, count, True)]
    out = [(None, False, raw, ()), (large_frames_profile, False, with_profile, ()), (None, True, compressed, ()),
           # the node as it was before camera_qos: best effort whatever the camera offers
           (None, False, [Case("640x480", "reliable", 4, count, any_subscriber=True),
                          Case("1280x720", "reliable", 3, count, any_subscriber=True)], ("camera_qos:=best_effort",))]
    if udp_folder:  # UDP only, as between machines: default socket buffers, then 4 MB ones
        for size in (0, 4 * 1024 * 1024):
            out.append((udp_only_profile(udp_folder, size), False,
                        [Case("640x480", "best_effort", 4, count), Case("640x480", "reliable", 4, count)], ()))
    return out
