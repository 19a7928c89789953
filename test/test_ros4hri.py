"""ROS4HRI on a real ROS 2 graph: fer_node with ros4hri:=true, a camera and this probe in three processes.

hri_msgs is not on PyPI, so the test builds test/hri_msgs (the messages fer_node publishes, with
the package, message and field names of ROS4HRI's) into a temporary colcon workspace and puts
it on the paths of the node and of this process. A face appears (the bundled model on the
astronaut), its expression arrives with the camera's stamp, and when the camera shows nobody
the id leaves /humans/faces/tracked and the face's topics go. Without hri_msgs, ros4hri:=true
stops the node at once with the fix named.
"""
import ctypes
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
from conftest import ros_missing

MISSING = ros_missing()
pytestmark = pytest.mark.skipif(bool(MISSING), reason=MISSING)

if not MISSING:
    import rclpy
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.qos import QoSProfile, ReliabilityPolicy
    from sensor_msgs.msg import Image

    from fer_ros.measure import ros_graph
    from fer_ros.messages import hri_map
    from fer_ros.msg import EmotionArray

HERE = Path(__file__).resolve().parent
CAMERA_TOPIC = "/hri_test/image_raw"
CAMERA_FRAME = "hri_test_camera"
RATE = 5.0  # camera frames per second
LEAVE_TIMEOUT = 60.0  # seconds for a face that left the image to leave the tracked list and its topics to go


@pytest.fixture(scope="module")
def hri_install(tmp_path_factory):
    """test/hri_msgs colcon-built into a temporary workspace (merged install); its prefix."""
    ws = tmp_path_factory.mktemp("hri_ws")
    shutil.copytree(HERE / "hri_msgs", ws / "src" / "hri_msgs", ignore=shutil.ignore_patterns("COLCON_IGNORE"))
    env = dict(os.environ)
    env.setdefault("AMENT_PREFIX_PATH", sys.prefix)
    command = [shutil.which("colcon") or "colcon", "--log-level", "warning", "build", "--base-paths", "src",
               "--merge-install", "--event-handlers", "console_direct-", "--cmake-args", "-DBUILD_TESTING=OFF"]
    numpy_include = Path(sys.prefix) / ".fer_ros_cmake_patched"  # where ./scripts/test keeps numpy's headers for CMake
    if numpy_include.is_file():
        command.append(f"-DPython3_NumPy_INCLUDE_DIR={numpy_include.read_text().strip()}")
    done = subprocess.run(command, cwd=ws, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, f"building test/hri_msgs failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return ws / "install"


def site_packages(prefix: Path) -> Path:
    return next((prefix / "lib").glob("python3*/site-packages"))


def hri_env(domain: int, prefix: Path) -> dict:
    """The environment of a process that sees hri_msgs (what sourcing its setup.bash would add)."""
    env = ros_graph.ros_env(domain)
    for var, path in (("PYTHONPATH", site_packages(prefix)), ("LD_LIBRARY_PATH", prefix / "lib"),
                      ("AMENT_PREFIX_PATH", prefix)):
        env[var] = os.pathsep.join([str(path)] + ([env[var]] if env.get(var) else []))
    return env


def import_hri_msgs_here(prefix: Path):
    """Make hri_msgs importable in this running process: its libraries loaded by path (the loader
    read LD_LIBRARY_PATH at start-up), then the Python package from the workspace."""
    pending = sorted((prefix / "lib").glob("libhri_msgs__*.so"))
    for _ in range(len(pending)):  # they depend on each other: load until none is left
        for lib in list(pending):
            try:
                ctypes.CDLL(str(lib), mode=ctypes.RTLD_GLOBAL)
                pending.remove(lib)
            except OSError:
                pass
    assert not pending, f"could not load {pending}"
    sys.path.insert(0, str(site_packages(prefix)))
    import hri_msgs.msg

    return hri_msgs.msg


class Probe:
    """This process's node in the test's domain; keeps everything it receives, with arrival times."""

    def __init__(self, domain):
        self.context = rclpy.Context()
        rclpy.init(context=self.context, domain_id=domain)
        self.node = rclpy.create_node("hri_probe", context=self.context)
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)
        self.received: dict[str, list] = {}

    def listen(self, msg_type, topic, depth=100):
        self.received.setdefault(topic, [])
        qos = QoSProfile(depth=depth, reliability=ReliabilityPolicy.RELIABLE)
        self.node.create_subscription(msg_type, topic, lambda m: self.received[topic].append((time.monotonic(), m)),
                                      qos)

    def spin_until(self, condition, timeout, node_proc=None, log=None):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.executor.spin_once(timeout_sec=0.05)
            if condition():
                return True
            if node_proc is not None and node_proc.poll() is not None:
                pytest.fail(f"fer_node exited with {node_proc.returncode}:\n{read(log)[-3000:]}")
        return False

    def close(self):
        self.executor.shutdown()
        self.node.destroy_node()
        rclpy.try_shutdown(context=self.context)


def read(log) -> str:
    log.seek(0)
    return log.read()


def test_faces_expressions_and_their_end_on_the_ros4hri_topics(ros_domain, hri_install):
    msgs = import_hri_msgs_here(hri_install)
    env = hri_env(ros_domain, hri_install)
    camera = subprocess.Popen([sys.executable, str(HERE / "hri_camera.py"), "--topic", CAMERA_TOPIC, "--rate", str(RATE),
                               "--frame-id", CAMERA_FRAME], env=env, stdin=subprocess.PIPE, text=True)
    probe = Probe(ros_domain)
    probe.listen(msgs.IdsList, hri_map.TRACKED_TOPIC)
    probe.listen(EmotionArray, "/emotions")
    log = tempfile.TemporaryFile("w+")
    started = time.monotonic()
    node = subprocess.Popen(ros_graph.fer_node_command(f"image_topic:={CAMERA_TOPIC}", "detector.device:=cpu",
                                                   "publish_annotated:=false", "ros4hri:=true"),
                            env=env, stdout=log, stderr=subprocess.STDOUT, text=True, preexec_fn=ros_graph.default_sigint)
    tracked, emotions = probe.received[hri_map.TRACKED_TOPIC], probe.received["/emotions"]
    try:
        assert probe.spin_until(lambda: any(m.ids for _, m in tracked), ros_graph.STARTUP_TIMEOUT, node, log), \
            f"no face on {hri_map.TRACKED_TOPIC} within {ros_graph.STARTUP_TIMEOUT} s:\n{read(log)[-3000:]}"
        first_emotions = emotions[0][0] - started if emotions else float("nan")
        face_id = next(m.ids for _, m in tracked if m.ids)[0]
        topic = f"{hri_map.FACES_NS}/{face_id}"
        for leaf, msg_type in (("expression", msgs.Expression), ("roi", msgs.NormalizedRegionOfInterest2D),
                               ("landmarks", msgs.FacialLandmarks), ("aligned", Image)):
            probe.listen(msg_type, f"{topic}/{leaf}", depth=10)
        got = probe.received
        assert probe.spin_until(lambda: len(got[f"{topic}/expression"]) >= 3 and got[f"{topic}/aligned"], 60.0, node,
                                log), f"too little on {topic}/*: { {k: len(v) for k, v in got.items()} }"

        # Every message of the face carries the stamp and frame of a camera image fer_node answered.
        probe.spin_until(lambda: False, 0.5)  # /emotions of the last frames
        answered = {(m.header.stamp.sec, m.header.stamp.nanosec) for _, m in emotions if m.faces}
        for leaf in ("expression", "roi", "landmarks", "aligned"):
            for _, m in got[f"{topic}/{leaf}"]:
                assert m.header.frame_id == CAMERA_FRAME, leaf
                assert (m.header.stamp.sec, m.header.stamp.nanosec) in answered, leaf
        expressions = [m for _, m in got[f"{topic}/expression"]]
        allowed = {v for k, v in vars(msgs.Expression).items() if k.isupper() and isinstance(v, str)}
        assert all(e.expression in allowed and -1 <= e.valence <= 1 and -1 <= e.arousal <= 1
                   and 0 <= e.confidence <= 1 for e in expressions)
        last = expressions[-1]
        assert last.expression == "happy" and last.valence > 0.5 and last.confidence > 0.5, last  # she smiles
        emotion = next(f for _, m in reversed(emotions) for f in m.faces)
        assert last.valence == pytest.approx(emotion.valence, abs=0.05)  # the same estimate as on /emotions
        roi = got[f"{topic}/roi"][-1][1]
        assert 0 <= roi.xmin < roi.xmax <= 1 and 0 <= roi.ymin < roi.ymax <= 1 and roi.c > 0.5
        assert 0.28 < (roi.xmin + roi.xmax) / 2 < 0.72, "box not on the face in the middle of the frame"
        marks = got[f"{topic}/landmarks"][-1][1]
        assert len(marks.landmarks) == hri_map.LANDMARK_COUNT and (marks.width, marks.height) == (640, 480)
        assert sorted(i for i, p in enumerate(marks.landmarks) if p.c > 0) == sorted(hri_map.LANDMARK_INDEX)
        aligned = got[f"{topic}/aligned"][-1][1]
        assert (aligned.width, aligned.height, aligned.encoding) == (hri_map.ALIGNED_SIZE, hri_map.ALIGNED_SIZE, "bgr8")

        # The face leaves the image: its id leaves the tracked list and its publishers go.
        camera.stdin.write("leave\n")
        camera.stdin.flush()
        left_at = len(tracked)
        assert probe.spin_until(lambda: any(face_id not in m.ids for _, m in tracked[left_at:]), LEAVE_TIMEOUT,
                                node, log), f"{face_id} still tracked {LEAVE_TIMEOUT} s after leaving the image"
        assert probe.spin_until(lambda: not probe.node.get_publishers_info_by_topic(f"{topic}/expression"),
                                10.0), f"{topic}/expression still has a publisher after the face left"
        first_subscription = next(line for line in read(log).splitlines() if "subscribed to" in line)
        print(json.dumps({"launch_to_first_emotions_s": round(first_emotions, 1), "first_subscription":
                          first_subscription.split("]: ")[-1]}))
        # The camera was publishing before the node came up: its first subscription already matches it.
        assert "reliable" in first_subscription and "best effort" not in first_subscription, first_subscription
    finally:
        camera.stdin.close()
        camera.wait(timeout=30)
        probe.close()
        stop(node)
    assert node.returncode == 0, read(log)[-3000:]


def stop(process) -> None:
    """SIGTERM (what systemd and docker send), then kill after 30 s."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@pytest.mark.parametrize("parameter", ["ros4hri", "ros4hri_input"])
def test_ros4hri_without_hri_msgs_stops_at_once_naming_the_fix(ros_domain, parameter):
    env = ros_graph.ros_env(ros_domain)
    if subprocess.run([sys.executable, "-c", "import hri_msgs.msg"], env=env, capture_output=True).returncode == 0:
        pytest.skip("hri_msgs is installed in this ROS environment")
    done = subprocess.run(ros_graph.fer_node_command(f"{parameter}:=true", "detector.device:=cpu"), env=env,
                          capture_output=True, text=True, timeout=ros_graph.STARTUP_TIMEOUT)
    out = done.stdout + done.stderr
    assert done.returncode == 1, out[-2000:]
    lines = [line for line in out.splitlines() if "cannot start" in line]
    assert len(lines) == 1 and "hri_msgs" in lines[0] and f"{parameter}:=false" in lines[0], out[-2000:]
    assert "loading the model" not in out  # checked before the model is loaded
