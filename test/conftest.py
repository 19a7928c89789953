"""Shared fixtures: real faces, a tiny checkpoint, paths to optional shared data."""
from __future__ import annotations

import os
import sys

import numpy as np
import pytest


def pytest_collection_finish(session):
    """One torch thread (CI boxes have 2 cores; one avoids oversubscription), where the tests use torch.

    torch is not imported here, so the numpy-only tests run without it.
    """
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(1)

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED_DATA = os.path.join(REPO, "..", "shared", "data")
FER_NPZ = os.path.join(SHARED_DATA, "fer2013", "fer2013_train_val.npz")
VIDEO = os.path.join(SHARED_DATA, "video", "clip_01_tears_of_steel.mp4")


@pytest.fixture(scope="session")
def astronaut() -> np.ndarray:
    from skimage import data

    return np.ascontiguousarray(data.astronaut())


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory) -> str:
    """An untrained 'tiny' AMS-CNN checkpoint (7 FER2013 classes) for plumbing tests."""
    import torch

    from fer_ros.learning.datasets import FER2013_CLASSES
    from fer_ros.models.ams_cnn import build_model, config_for
    from fer_ros.models.checkpoint import save_checkpoint
    from fer_ros.models.preprocess import Preprocessing

    torch.manual_seed(0)
    model = build_model(config_for("tiny", input_size=48))
    path = str(tmp_path_factory.mktemp("ckpt") / "tiny.pt")
    save_checkpoint(path, model, Preprocessing(input_size=48, channels=1), FER2013_CLASSES)
    return path


def needs(path: str, what: str):
    return pytest.mark.skipif(not os.path.exists(path), reason=f"{what} not found at {path} (../shared/data is optional)")


@pytest.fixture(scope="session")
def store():
    """A rosbags typestore with fer_ros/msg/* registered from our own .msg files."""
    from fer_ros.messages.typestore import get_typestore

    return get_typestore()


def read_topic(path, store, topic: str) -> list:
    """Every (timestamp ns, deserialized message) of ``topic`` in the bag at ``path``."""
    from fer_ros.bags.bagtools import iter_messages, open_reader

    reader = open_reader(str(path))
    try:
        conns = [c for c in reader.connections if c.topic == topic]
        return [(ns, store.deserialize_cdr(raw, c.msgtype)) for c, ns, raw in iter_messages(reader, conns, str(path))]
    finally:
        reader.close()


# --- ROS 2 ---------------------------------------------------------------------------------------
# ./scripts/test sets FER_ROS_REQUIRE_ROS=1: there a missing rclpy or unbuilt fer_ros.msg is an
# error, so CI cannot pass with the ROS tests skipped. Elsewhere those tests skip with the reason.
REQUIRE_ROS = os.environ.get("FER_ROS_REQUIRE_ROS") == "1"
os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")  # never talk to other machines


def ros_missing() -> str:
    """Why the ROS tests cannot run here ('' when rclpy and the built fer_ros.msg import)."""
    try:
        import rclpy  # noqa: F401

        import fer_ros.msg  # noqa: F401
    except ImportError as exc:
        reason = (f"ROS 2 or the built fer_ros messages missing ({exc}): run ./scripts/test, or source ROS 2, "
                  "colcon build and source install/setup.bash")
        if REQUIRE_ROS:
            raise ImportError(f"FER_ROS_REQUIRE_ROS=1 but {reason}") from exc
        return reason
    return ""


_domains = iter(range(10 + os.getpid() % 40, 10_000))


@pytest.fixture
def ros_domain() -> int:
    """A ROS domain id of this test's own (localhost discovery), 10..89; test_ros_node.py uses 90..99."""
    return 10 + (next(_domains) - 10) % 80


def pytest_configure(config):
    # launch_testing's plugin registers it where launch_testing is installed; declared here for the rest
    config.addinivalue_line("markers", "launch_test: a launch_testing test description (test/test_launch.py)")
