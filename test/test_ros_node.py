"""fer_node in-process with rclpy: a real face in, an EmotionArray with one face out.

Needs a sourced ROS 2 and a built fer_ros (./scripts/test does both); skipped otherwise, except
under ./scripts/test, where that is an error. Runs on CPU so it needs no GPU.
"""
import os
import time

import numpy as np
import pytest
from conftest import ros_missing

MISSING = ros_missing()
pytestmark = pytest.mark.skipif(bool(MISSING), reason=MISSING)

if not MISSING:
    import rclpy
    from diagnostic_msgs.msg import DiagnosticArray
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.parameter import Parameter
    from sensor_msgs.msg import Image
    from skimage import data as skimage_data

    from fer_ros.messages.convert import MessageTypes, make_header, rgb_to_image_msg
    from fer_ros.msg import EmotionArray
    from fer_ros.ros.fer_node import FerNode

TOPIC = "/fer_test/image_raw"
TIMEOUT = 120.0  # seconds; CPU inference on a 512x512 frame takes well under one


@pytest.fixture(scope="module")
def ros():
    rclpy.init(domain_id=90 + os.getpid() % 10)  # a domain of its own (the per-test ones are 10..99)
    node = FerNode(parameter_overrides=[Parameter("image_topic", value=TOPIC),
                                        Parameter("detector.device", value="cpu"),
                                        Parameter("diagnostics_period", value=0.5)])
    probe = rclpy.create_node("fer_test_probe")
    executor = SingleThreadedExecutor()
    executor.add_node(node)
    executor.add_node(probe)
    yield node, probe, executor
    executor.shutdown()
    node.destroy_node()
    probe.destroy_node()
    rclpy.try_shutdown()


@pytest.fixture(scope="module")
def types():
    return MessageTypes.from_rclpy()


class Camera:
    """Publishes one image repeatedly with increasing stamps, remembering them."""

    def __init__(self, probe, types, rgb, frame_id, encoding="bgr8"):
        self.pub = probe.create_publisher(Image, TOPIC, 10)
        self.types, self.rgb, self.frame_id, self.encoding = types, rgb, frame_id, encoding
        self.stamps = set()
        self.t = 1000.0 + 100.0 * len(frame_id)

    def __call__(self):
        self.t += 0.05
        header = make_header(self.t, self.frame_id, self.types)
        self.stamps.add((header.stamp.sec, header.stamp.nanosec))
        self.pub.publish(rgb_to_image_msg(self.rgb, header, self.types, encoding=self.encoding))


def spin_until(executor, done, tick=None, timeout=TIMEOUT):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if tick is not None:
            tick()
        executor.spin_once(timeout_sec=0.05)
        if done():
            return True
    return False


def test_a_real_face_gives_one_emotion(ros, types):
    node, probe, executor = ros
    received = []
    probe.create_subscription(EmotionArray, "/emotions", received.append, 10)
    camera = Camera(probe, types, skimage_data.astronaut(), "astronaut_camera")
    assert spin_until(executor, lambda: len(received) >= 3, camera), "no EmotionArray on /emotions"
    msg = received[-1]
    assert msg.header.frame_id == "astronaut_camera"
    assert (msg.header.stamp.sec, msg.header.stamp.nanosec) in camera.stamps  # the source image's stamp
    assert len(msg.faces) == 1
    face = msg.faces[0]
    cx, cy = face.roi.x_offset + face.roi.width / 2, face.roi.y_offset + face.roi.height / 2
    assert 180 < cx < 270 and 60 < cy < 175, "box not on the astronaut's face (about x 180-268, y 61-172)"
    assert 50 < face.roi.width < 140
    assert len(msg.class_names) > 0 and len(face.probabilities) == len(msg.class_names)
    assert abs(sum(face.probabilities) - 1.0) < 1e-3
    assert face.label in list(msg.class_names) + ["uncertain"]
    assert face.detection_score > 0.9


def test_nobody_gives_an_empty_faces_array(ros, types):
    node, probe, executor = ros
    received = []
    probe.create_subscription(EmotionArray, "/emotions", received.append, 10)
    camera = Camera(probe, types, np.full((240, 320, 3), 128, np.uint8), "empty_room")
    # the tracker may carry the last face for a few frames before it ends
    assert spin_until(executor, lambda: any(m.header.frame_id == "empty_room" and len(m.faces) == 0 for m in received),
                      camera)


def test_annotated_image_for_a_subscriber(ros, types):
    node, probe, executor = ros
    annotated = []
    probe.create_subscription(Image, "/fer_node/annotated", annotated.append, 1)
    camera = Camera(probe, types, skimage_data.astronaut(), "annotated_camera")
    assert spin_until(executor, lambda: any(m.header.frame_id == "annotated_camera" for m in annotated), camera)
    msg = next(m for m in annotated if m.header.frame_id == "annotated_camera")
    assert (msg.width, msg.height, msg.encoding, msg.step) == (512, 512, "rgb8", 512 * 3)


def test_bad_frames_are_skipped_counted_and_survived(ros, types):
    node, probe, executor = ros
    received, diagnostics = [], []
    probe.create_subscription(EmotionArray, "/emotions", received.append, 10)
    probe.create_subscription(DiagnosticArray, "/diagnostics", diagnostics.append, 10)
    bad_pub = probe.create_publisher(Image, TOPIC, 10)
    header = make_header(5000.0, "bad_camera", types)
    bad_pub.publish(Image(header=header, height=4, width=4, encoding="32FC1", step=16, data=bytes(64)))

    def bad_counted():
        return any(int(dict((kv.key, kv.value) for kv in s.values).get("bad_frames", "0")) >= 1
                   for d in diagnostics for s in d.status if s.name.startswith("fer_node"))
    assert spin_until(executor, bad_counted), "bad frame not reported on /diagnostics"
    assert not any(m.header.frame_id == "bad_camera" for m in received)
    camera = Camera(probe, types, skimage_data.astronaut(), "after_bad_frame")
    assert spin_until(executor, lambda: any(m.header.frame_id == "after_bad_frame" for m in received), camera)


def test_live_and_read_only_parameters(ros):
    node, _, _ = ros
    assert node.set_parameters([Parameter("smoother.hysteresis", value=1.0)])[0].successful
    assert node.get_parameter("smoother.hysteresis").value == 1.0
    assert not node.set_parameters([Parameter("smoother.hysteresis", value=100.0)])[0].successful  # out of range
    result = node.set_parameters([Parameter("smoother.method", value="median")])[0]
    assert not result.successful and "ema, window" in result.reason
    assert node.get_parameter("smoother.method").value == "ema"
    assert not node.set_parameters([Parameter("detector.device", value="cuda")])[0].successful  # start-up only
