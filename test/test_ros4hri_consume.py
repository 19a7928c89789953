"""fer_node with ros4hri_input:=true on a real ROS 2 graph: the faces come from another ROS4HRI detector.

Three processes: a stand-in detector (test/hri_camera.py --face-id) that lists one face on
/humans/faces/tracked and publishes its aligned crop (the astronaut, aligned by fer_ros's own
aligner) on /humans/faces/<id>/aligned, some of them unreadable; fer_node, which runs no
detector of its own; and this probe. The face's expression arrives stamped like the crop it
answers, unreadable crops are skipped with a warning, and when the id leaves the list the
expression topic leaves the graph (without hri_msgs: test_ros4hri.py).
hri_msgs is built from test/hri_msgs as in test_ros4hri.py, whose helpers this module shares.
"""
import subprocess
import sys
import tempfile

import pytest
from conftest import ros_missing
from test_ros4hri import (
    HERE,
    LEAVE_TIMEOUT,
    Probe,
    hri_env,
    hri_install,  # noqa: F401  (its fixture: test/hri_msgs built into a workspace)
    import_hri_msgs_here,
    read,
    stop,
)

MISSING = ros_missing()
pytestmark = pytest.mark.skipif(bool(MISSING), reason=MISSING)

if not MISSING:
    from fer_ros.measure import ros_graph
    from fer_ros.messages import hri_map

FACE_ID = "zqxwv"  # an id of the other detector (ROS4HRI detectors use five random letters)
FRAME_ID = "hri_test_detector"
RATE = 5.0  # crops per second
BASE = 7000.0  # stamp of crop 0, seconds
BAD_EVERY = 4  # crops 0, 4, 8, ... have an encoding nobody knows


def crop_index(stamp) -> int:
    """Which crop a stamp is (crop k is stamped BASE + k / RATE, to the nanosecond)."""
    ns = stamp.sec * 1_000_000_000 + stamp.nanosec - round(BASE * 1e9)
    k = round(ns * RATE / 1e9)
    assert ns == round(k * 1e9 / RATE), f"stamp {stamp.sec}.{stamp.nanosec:09d} is no crop's"
    return k


def test_expressions_of_the_faces_another_detector_publishes(ros_domain, request):
    prefix = request.getfixturevalue("hri_install")
    msgs = import_hri_msgs_here(prefix)
    env = hri_env(ros_domain, prefix)
    detector = subprocess.Popen([sys.executable, str(HERE / "hri_camera.py"), "--face-id", FACE_ID, "--rate", str(RATE),
                                 "--base", str(BASE), "--frame-id", FRAME_ID, "--bad-every", str(BAD_EVERY),
                                 "--topic", "unused"], env=env, stdin=subprocess.PIPE, text=True)
    probe = Probe(ros_domain)
    topic = f"{hri_map.FACES_NS}/{FACE_ID}/expression"
    probe.listen(msgs.Expression, topic)
    log = tempfile.TemporaryFile("w+")
    node = subprocess.Popen(ros_graph.fer_node_command("detector.device:=cpu", "ros4hri_input:=true"), env=env,
                            stdout=log, stderr=subprocess.STDOUT, text=True, preexec_fn=ros_graph.default_sigint)
    got = probe.received[topic]
    try:
        assert probe.spin_until(lambda: len(got) >= 3 * BAD_EVERY, ros_graph.STARTUP_TIMEOUT, node, log), \
            f"{len(got)} messages on {topic} within {ros_graph.STARTUP_TIMEOUT} s:\n{read(log)[-3000:]}"
        expressions = [m for _, m in got]
        allowed = {v for k, v in vars(msgs.Expression).items() if k.isupper() and isinstance(v, str)}
        for e in expressions:
            assert e.header.frame_id == FRAME_ID
            assert crop_index(e.header.stamp) % BAD_EVERY != 0, "an unreadable crop was answered"
            assert e.expression in allowed and -1 <= e.valence <= 1 and -1 <= e.arousal <= 1 and 0 <= e.confidence <= 1
        answered = [crop_index(e.header.stamp) for e in expressions]
        assert answered == sorted(set(answered)), "each crop answered once, in order"
        last = expressions[-1]
        assert last.expression == "happy" and last.valence > 0.5 and last.confidence > 0.5, last  # she smiles
        out = read(log)
        assert "skipping an aligned image of face " + FACE_ID in out and "bogus8" in out, out[-3000:]
        assert "classifying the faces on" in out and "listening on" not in out  # no camera subscription

        # The face leaves the other detector's list: its expression topic leaves the graph.
        detector.stdin.write("leave\n")
        detector.stdin.flush()
        assert probe.spin_until(lambda: not probe.node.get_publishers_info_by_topic(topic), LEAVE_TIMEOUT, node, log), \
            f"{topic} still has a publisher {LEAVE_TIMEOUT} s after {FACE_ID} left the tracked list"
        assert node.poll() is None, read(log)[-3000:]
    finally:
        detector.stdin.close()
        detector.wait(timeout=30)
        probe.close()
        stop(node)
    assert node.returncode == 0, read(log)[-3000:]


def test_ros4hri_and_ros4hri_input_together_are_refused(ros_domain):
    done = subprocess.run(ros_graph.fer_node_command("ros4hri:=true", "ros4hri_input:=true", "detector.device:=cpu"),
                          env=ros_graph.ros_env(ros_domain), capture_output=True, text=True,
                          timeout=ros_graph.STARTUP_TIMEOUT)
    out = done.stdout + done.stderr
    assert done.returncode == 1 and "cannot both be true" in out, out[-2000:]
