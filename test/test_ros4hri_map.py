"""ROS4HRI mapping without ROS: expressions, ids, faces that come and go, and the hri_msgs messages
built against the test package's definitions (test/hri_msgs) in a rosbags typestore, through CDR."""
import random
from pathlib import Path

import numpy as np
import pytest
from rosbags.typesys import get_types_from_msg

from fer_ros.learning.datasets import FER2013_CLASSES, FERPLUS_CLASSES
from fer_ros.messages import hri_map
from fer_ros.types import UNCERTAIN, FaceResult

HRI_MSG_DIR = Path(__file__).resolve().parent / "hri_msgs" / "msg"


@pytest.fixture(scope="module")
def hri_store():
    from fer_ros.messages.typestore import get_typestore

    store = get_typestore()
    types = {}
    for path in sorted(HRI_MSG_DIR.glob("*.msg")):
        types.update(get_types_from_msg(path.read_text(), f"hri_msgs/msg/{path.stem}"))
    store.register(types)
    return store


def constants(store, name):
    """The string constants a message class defines (rosbags keeps them as class attributes)."""
    cls = store.types[f"hri_msgs/msg/{name}"]
    return {v for k, v in vars(cls).items() if k.isupper() and isinstance(v, str)}


def face(track_id=3, label="happy", probabilities=None, bbox=(100, 50, 200, 170), landmarks=None):
    p = np.asarray(probabilities if probabilities is not None else [0.02, 0.02, 0.02, 0.86, 0.02, 0.02, 0.04], np.float32)
    marks = np.array(landmarks if landmarks is not None else [[130, 90], [170, 90], [150, 115], [135, 140], [165, 140]],
                     np.float32)
    return FaceResult(track_id=track_id, bbox=np.array(bbox, np.float32), landmarks=marks, detection_score=0.97,
                      label=label, confidence=float(p.max()), probabilities=p, raw_label="happy", raw_probabilities=p,
                      stable=True, stable_for=1.0, detected=True, valence=0.7, arousal=0.2)


@pytest.mark.parametrize("names", [FER2013_CLASSES, FERPLUS_CLASSES], ids=["fer2013", "ferplus"])
def test_every_class_of_both_label_sets_maps_to_an_expression_constant(names, hri_store):
    allowed = constants(hri_store, "Expression")
    assert set(hri_map.EXPRESSIONS.values()) | set(hri_map.OTHER_EXPRESSIONS) == allowed
    mapped = {n: hri_map.expression_of(n) for n in names}
    assert all(v in allowed for v in mapped.values()), mapped
    assert hri_map.expression_of("fear") == "scared" and hri_map.expression_of("Happiness") == "happy"
    assert hri_map.expression_of("contempt") == "disgusted"
    assert hri_map.expression_of("bored") == "bored"  # another model's class with a constant of its own


def test_ids_are_stable_valid_topic_tokens_distinct_across_runs():
    tag = hri_map.new_run_tag(random.Random(1))
    assert len(tag) == 5 and tag.isalpha() and tag.islower()
    assert hri_map.face_id(7, tag) == hri_map.face_id(7, tag) == f"f{tag}_7"
    assert hri_map.face_id(7, tag) != hri_map.face_id(7, hri_map.new_run_tag(random.Random(2)))
    assert all(c.isalnum() or c == "_" for c in hri_map.face_id(12, tag)) and hri_map.face_id(1, tag)[0].isalpha()


def test_tracked_faces_report_who_came_and_who_left():
    faces = hri_map.TrackedFaces("abcde")
    first = faces.update([1, 2])
    assert first.ids == ["fabcde_1", "fabcde_2"] and first.appeared == first.ids and first.ended == []
    second = faces.update([2, 3])
    assert second.appeared == ["fabcde_3"] and second.ended == ["fabcde_1"]
    gone = faces.update([])
    assert gone.ids == [] and sorted(gone.ended) == ["fabcde_2", "fabcde_3"]


def test_another_detectors_tracked_list_drops_empty_and_repeated_ids_and_keeps_its_order():
    first = hri_map.id_changes([], ["b", "", "a", "b"])
    assert first.ids == ["b", "a"] and first.appeared == ["b", "a"] and first.ended == []
    second = hri_map.id_changes(first.ids, ["a", "c"])
    assert second.appeared == ["c"] and second.ended == ["b"]


def test_the_face_inbox_keeps_each_faces_newest_crop_and_counts_the_replaced_ones():
    import threading

    from fer_ros.perception.latest import FaceInbox

    inbox = FaceInbox()
    assert inbox.take(timeout=0.01) is None
    assert inbox.put("a", 1) is False and inbox.put("b", 2) is False
    assert inbox.put("a", 3) is True  # a's first crop was never taken: a drop
    assert inbox.take(timeout=0.01) == {"b": 2, "a": 3} and len(inbox) == 0
    inbox.put("c", 4)
    inbox.discard("c")  # c left the tracked list before its crop was classified
    assert inbox.take(timeout=0.01) is None
    got = []
    waiter = threading.Thread(target=lambda: got.append(inbox.take(timeout=5.0)))
    waiter.start()
    inbox.close()  # wakes a waiting take at once
    waiter.join(timeout=2.0)
    assert not waiter.is_alive() and got == [None]


def test_uncertain_faces_publish_their_top_class_with_its_low_confidence():
    p = [0.05, 0.05, 0.05, 0.20, 0.35, 0.10, 0.20]
    expression, confidence = hri_map.face_expression(face(label=UNCERTAIN, probabilities=p), FER2013_CLASSES)
    assert expression == "sad" and confidence == pytest.approx(0.35)


def test_messages_fill_every_field_and_survive_cdr(hri_store):
    from fer_ros.messages.convert import make_header
    from fer_ros.messages.typestore import message_types

    types = hri_map.HriTypes.from_typestore(hri_store)
    header = make_header(1234.5, "cam", message_types(hri_store))
    f = face(bbox=(-10, 50, 200, 500))  # partly outside a 640x480 image: clipped
    msgs = {
        "IdsList": hri_map.ids_msg(["fabcde_3"], header, types),
        "NormalizedRegionOfInterest2D": hri_map.roi_msg(f, 640, 480, header, types),
        "Expression": hri_map.expression_msg(f, FER2013_CLASSES, header, types),
        "FacialLandmarks": hri_map.landmarks_msg(f, 640, 480, header, types),
    }
    back = {n: hri_store.deserialize_cdr(hri_store.serialize_cdr(m, f"hri_msgs/msg/{n}"), f"hri_msgs/msg/{n}")
            for n, m in msgs.items()}
    assert all(m.header.stamp.sec == 1234 and m.header.stamp.nanosec == 500_000_000 and m.header.frame_id == "cam"
               for m in back.values())
    assert list(back["IdsList"].ids) == ["fabcde_3"]
    roi = back["NormalizedRegionOfInterest2D"]
    assert (roi.xmin, roi.xmax, roi.ymax) == pytest.approx((0.0, 200 / 640, 1.0)) and roi.ymin == pytest.approx(50 / 480)
    assert roi.c == pytest.approx(0.97)
    e = back["Expression"]
    assert e.expression == "happy" and e.valence == pytest.approx(0.7) and e.arousal == pytest.approx(0.2)
    assert e.confidence == pytest.approx(0.86)
    marks = back["FacialLandmarks"]
    assert len(marks.landmarks) == hri_map.LANDMARK_COUNT and (marks.width, marks.height) == (640, 480)
    filled = [i for i, p in enumerate(marks.landmarks) if p.c > 0]
    assert filled == sorted(hri_map.LANDMARK_INDEX)
    pupil = marks.landmarks[68]  # image-left eye = the subject's right pupil
    assert (pupil.x, pupil.y) == pytest.approx((130 / 640, 90 / 480))


def test_faces_without_landmarks_publish_none(hri_store):
    msg = hri_map.landmarks_msg(face(landmarks=np.full((5, 2), np.nan)), 640, 480, None,
                                hri_map.HriTypes.from_typestore(hri_store))
    assert len(msg.landmarks) == hri_map.LANDMARK_COUNT and all(p.c == 0.0 for p in msg.landmarks)
