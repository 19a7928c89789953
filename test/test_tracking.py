"""IouTracker on synthetic box sequences: gaps, crossings, new faces, carry frames, long runs."""
import gc
import sys
import types

import numpy as np
import pytest

from fer_ros.config import TrackerConfig
from fer_ros.errors import FerError
from fer_ros.perception.tracking import IouTracker, iou, iou_matrix
from fer_ros.types import Detection


def det(x1, y1, x2, y2, score=0.99) -> Detection:
    """A detection with landmarks placed inside the box, so carried landmarks can be checked too."""
    cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
    landmarks = [[cx - 10, cy - 10], [cx + 10, cy - 10], [cx, cy], [cx - 8, cy + 10], [cx + 8, cy + 10]]
    return Detection(bbox=[x1, y1, x2, y2], landmarks=landmarks, score=score)


def square(x, y, size=60) -> Detection:
    return det(x, y, x + size, y + size)


def ids(tracks):
    return [t.track_id for t in tracks]


# ---------------------------------------------------------------- IoU

def test_iou_known_values():
    assert iou([0, 0, 10, 10], [0, 0, 10, 10]) == pytest.approx(1.0)
    assert iou([0, 0, 10, 10], [20, 20, 30, 30]) == 0.0
    assert iou([0, 0, 10, 10], [10, 0, 20, 10]) == 0.0  # touching edges share no area
    assert iou([0, 0, 10, 10], [5, 0, 15, 10]) == pytest.approx(50 / 150)
    assert iou([0, 0, 10, 10], [2, 2, 8, 8]) == pytest.approx(36 / 100)


def test_iou_matrix_matches_pairwise_loop_and_is_symmetric():
    rng = np.random.default_rng(0)
    xy = rng.uniform(0, 100, size=(9, 2))
    wh = rng.uniform(1, 60, size=(9, 2))
    boxes = np.concatenate([xy, xy + wh], axis=1)
    a, b = boxes[:4], boxes[4:]
    m = iou_matrix(a, b)
    assert m.shape == (4, 5)
    for i in range(4):
        for j in range(5):
            ix = max(0.0, min(a[i, 2], b[j, 2]) - max(a[i, 0], b[j, 0]))
            iy = max(0.0, min(a[i, 3], b[j, 3]) - max(a[i, 1], b[j, 1]))
            inter = ix * iy
            union = np.prod(a[i, 2:] - a[i, :2]) + np.prod(b[j, 2:] - b[j, :2]) - inter
            assert m[i, j] == pytest.approx(inter / union)
    np.testing.assert_allclose(iou_matrix(b, a), m.T)
    assert np.all((m >= 0) & (m <= 1))


def test_iou_matrix_empty_and_degenerate_boxes():
    assert iou_matrix(np.zeros((0, 4)), np.zeros((3, 4))).shape == (0, 3)
    assert iou_matrix(np.zeros((2, 4)), np.zeros((0, 4))).shape == (2, 0)
    point = [5, 5, 5, 5]
    m = iou_matrix([point, point], [point, [0, 0, 10, 10]])
    assert np.all(np.isfinite(m))
    np.testing.assert_array_equal(m, 0.0)


# ---------------------------------------------------------------- ids and association

def test_first_frame_ids_start_at_one_sorted_with_detection_indices():
    tracker = IouTracker(TrackerConfig())
    dets = [square(300, 0), square(0, 0), square(150, 0)]
    tracks = tracker.update(dets)
    assert ids(tracks) == [1, 2, 3]
    assert len(tracker) == 3
    for t in tracks:
        assert t.detected and t.detection_index is not None
        np.testing.assert_array_equal(t.bbox, dets[t.detection_index].bbox)
        np.testing.assert_array_equal(t.landmarks, dets[t.detection_index].landmarks)
        assert t.score == pytest.approx(dets[t.detection_index].score)
    assert sorted(t.detection_index for t in tracks) == [0, 1, 2]


def test_no_detections_no_tracks():
    tracker = IouTracker(TrackerConfig())
    assert tracker.update([]) == []
    assert tracker.carry() == []
    assert len(tracker) == 0


def test_moving_face_keeps_its_id_and_index_follows_input_order():
    tracker = IouTracker(TrackerConfig())
    tracker.update([square(0, 0), square(200, 0)])
    for k in range(1, 30):
        moved = [square(200 - 2 * k, 3 * k), square(4 * k, 0)]  # listed in the opposite order
        tracks = tracker.update(moved)
        assert ids(tracks) == [1, 2]
        assert [t.detection_index for t in tracks] == [1, 0]
        np.testing.assert_array_equal(tracks[0].bbox, moved[1].bbox)


def test_new_face_gets_new_id_and_existing_ids_are_untouched():
    tracker = IouTracker(TrackerConfig())
    tracker.update([square(0, 0)])
    tracks = tracker.update([square(400, 300), square(2, 1)])
    assert ids(tracks) == [1, 2]
    by_id = {t.track_id: t for t in tracks}
    assert by_id[1].detection_index == 1
    assert by_id[2].detection_index == 0


def test_iou_threshold_gates_association_and_applies_live():
    config = TrackerConfig(iou_threshold=0.5, max_missed=5, max_jump=0.0)  # IoU alone
    tracker = IouTracker(config)
    tracker.update([square(0, 0)])
    # Shift by 30 px of a 60 px box: IoU = 30*60 / (2*3600 - 1800) = 1/3 < 0.5 -> a new face.
    tracks = tracker.update([square(30, 0)])
    assert ids(tracks) == [1, 2]
    assert [t.detected for t in tracks] == [False, True]
    config.iou_threshold = 0.3  # live change: 1/3 now continues the track
    tracker.reset()
    tracker.update([square(0, 0)])
    tracks = tracker.update([square(30, 0)])
    assert len(tracks) == 1 and tracks[0].detected


def test_fast_face_keeps_its_id_by_centre_distance():
    """A face moving 70 px per round with a 60 px box never overlaps its last box; the distance
    stage keeps it, but not across a gap wider than max_jump or to a face of another size."""
    config = TrackerConfig(max_jump=1.5)
    tracker = IouTracker(config)
    for k in range(4):
        tracks = tracker.update([square(70 * k, 0)])
        assert ids(tracks) == [1] and tracks[0].detected
    # the velocity prediction now expects x = 280: a same-size face at 560 is 4.7 widths off
    assert ids(tracker.update([square(560, 0)])) == [1, 2]
    tracker.reset()
    tracker.update([square(0, 0)])
    assert ids(tracker.update([square(70, 0, size=120)])) == [3, 4]  # twice the size: someone else
    config.max_jump = 0.0  # live change: IoU only
    tracker.reset()
    tracker.update([square(0, 0)])
    assert ids(tracker.update([square(70, 0)])) == [5, 6]


def test_zero_threshold_still_needs_some_overlap():
    tracker = IouTracker(TrackerConfig(iou_threshold=0.0, max_jump=0.0))
    tracker.update([square(0, 0)])
    tracks = tracker.update([square(500, 500)])
    assert ids(tracks) == [1, 2]
    assert [t.detected for t in tracks] == [False, True]


def test_assignment_is_optimal_not_greedy():
    # T1 overlaps D2 most (0.667), but taking it would leave T2 without a partner; the optimum is
    # T1-D1 (0.538) + T2-D2 (0.429). A greedy matcher would end T2's continuity and start a track.
    tracker = IouTracker(TrackerConfig(iou_threshold=0.3))
    tracker.update([det(50, 0, 150, 100), det(110, 0, 210, 100)])
    d1, d2 = det(20, 0, 120, 100), det(70, 0, 170, 100)
    tracks = tracker.update([d1, d2])
    assert ids(tracks) == [1, 2]
    assert [t.detection_index for t in tracks] == [0, 1]


def test_update_rejects_non_detections():
    tracker = IouTracker(TrackerConfig())
    with pytest.raises(FerError, match="Detection"):
        tracker.update([[0, 0, 10, 10]])


# ---------------------------------------------------------------- gaps and ending

def test_short_gap_keeps_id_with_last_box():
    tracker = IouTracker(TrackerConfig(max_missed=3))
    for k in range(5):
        tracker.update([square(100, 100)])
    for missed in range(1, 4):  # three missed rounds: still alive
        tracks = tracker.update([])
        assert ids(tracks) == [1]
        t = tracks[0]
        assert not t.detected and t.detection_index is None
        np.testing.assert_array_equal(t.bbox, [100, 100, 160, 160])
        np.testing.assert_array_equal(t.landmarks, square(100, 100).landmarks)
    assert tracker.pop_ended() == []
    tracks = tracker.update([square(103, 101)])  # back within the limit: same id
    assert ids(tracks) == [1] and tracks[0].detected


def test_track_ends_after_max_missed_and_pop_ended_reports_once():
    tracker = IouTracker(TrackerConfig(max_missed=2))
    tracker.update([square(0, 0), square(300, 0)])
    tracker.update([square(300, 0)])  # face 1 missed once
    tracker.update([square(300, 0)])  # twice: still kept
    assert ids(tracker.carry()) == [1, 2]
    assert tracker.pop_ended() == []
    tracks = tracker.update([square(300, 0)])  # third miss > max_missed: ends
    assert ids(tracks) == [2]
    assert len(tracker) == 1
    assert tracker.pop_ended() == [1]
    assert tracker.pop_ended() == []


def test_max_missed_zero_ends_on_first_miss_and_applies_live():
    config = TrackerConfig(max_missed=10)
    tracker = IouTracker(config)
    tracker.update([square(0, 0)])
    tracker.update([])
    config.max_missed = 0
    assert tracker.update([]) == []
    assert tracker.pop_ended() == [1]


def test_ids_are_never_reused_even_after_reset():
    tracker = IouTracker(TrackerConfig(max_missed=0))
    seen = []
    for k in range(6):
        seen += ids(tracker.update([square(0, 0)]))
        tracker.update([])  # ends it
    assert seen == [1, 2, 3, 4, 5, 6]
    assert tracker.pop_ended() == [1, 2, 3, 4, 5, 6]
    tracker.update([square(0, 0), square(200, 0)])
    tracker.reset()
    assert len(tracker) == 0 and tracker.carry() == []
    assert tracker.pop_ended() == [7, 8]
    assert ids(tracker.update([square(0, 0)])) == [9]


def test_carry_does_not_age_tracks():
    tracker = IouTracker(TrackerConfig(max_missed=1))
    tracker.update([square(10, 20)])
    for _ in range(100):  # detect-every-N frames in between: no misses counted
        tracks = tracker.carry()
        assert ids(tracks) == [1]
        assert not tracks[0].detected and tracks[0].detection_index is None
        np.testing.assert_array_equal(tracks[0].bbox, [10, 20, 70, 80])
    assert ids(tracker.update([])) == [1]  # first real miss: kept (1 <= max_missed)
    for _ in range(10):
        tracker.carry()
    assert tracker.update([]) == []  # second real miss ends it
    assert tracker.pop_ended() == [1]


def test_returned_tracks_are_copies():
    tracker = IouTracker(TrackerConfig())
    tracks = tracker.update([square(0, 0)])
    tracks[0].bbox[:] = 999
    np.testing.assert_array_equal(tracker.carry()[0].bbox, [0, 0, 60, 60])


# ---------------------------------------------------------------- crossings

def _crossing(tracker, steps, step, occlude_below=None):
    """Face A walks right, face B walks left on the same row; they pass each other.

    With ``occlude_below`` B is hidden behind A (not detected) while their x distance is smaller.
    Detections are given in alternating order so index order cannot carry the identity.
    Returns the id seen for A and B at every frame where each was detected.
    """
    seen_a, seen_b = set(), set()
    for k in range(steps):
        xa, xb = step * k, 303 - step * k  # 1-3 px apart at the closest, never exactly on top
        a, b = square(xa, 100), square(xb, 100)
        dets = [a] if occlude_below is not None and abs(xa - xb) < occlude_below else [a, b]
        if k % 2:
            dets = dets[::-1]
        for t in tracker.update(dets):
            if t.detected:
                (seen_a if dets[t.detection_index] is a else seen_b).add(t.track_id)
    return seen_a, seen_b


def test_two_faces_crossing_keep_their_ids():
    tracker = IouTracker(TrackerConfig(iou_threshold=0.3, max_missed=3))
    seen_a, seen_b = _crossing(tracker, steps=40, step=8)
    assert seen_a == {1} and seen_b == {2}
    assert tracker.pop_ended() == []


def test_face_passing_behind_another_gets_its_id_back():
    # B is hidden for the frames where the boxes are within 40 px; it reappears on the far side
    # where its constant-velocity prediction expects it.
    tracker = IouTracker(TrackerConfig(iou_threshold=0.3, max_missed=10))
    seen_a, seen_b = _crossing(tracker, steps=50, step=6, occlude_below=40)
    assert seen_a == {1} and seen_b == {2}
    assert len(tracker) == 2


# ---------------------------------------------------------------- long runs

def _random_run(tracker, frames, rng, detect_every=3, max_faces=5, pop=True):
    """Faces appear, drift with jitter, vanish for a while and come back or leave for good."""
    faces = {}  # name -> [x, y, vx, vy, visible]
    next_name = 0
    ended, created, max_live = [], set(), 0
    recent_detection_counts = []
    for frame in range(frames):
        if len(faces) < max_faces and rng.random() < 0.05:
            faces[next_name] = [rng.uniform(0, 1200), rng.uniform(0, 600), rng.normal(0, 2), rng.normal(0, 2), True]
            next_name += 1
        for name in list(faces):
            f = faces[name]
            f[0] += f[2] + rng.normal(0, 1)
            f[1] += f[3] + rng.normal(0, 1)
            if rng.random() < 0.02:
                f[4] = not f[4]
            if rng.random() < 0.01 or not (-100 < f[0] < 1400 and -100 < f[1] < 800):
                del faces[name]
        if frame % detect_every:
            tracks = tracker.carry()
        else:
            dets = [square(f[0], f[1], size=80) for f in faces.values() if f[4] and rng.random() > 0.1]
            tracks = tracker.update(dets)
            recent_detection_counts.append(len(dets))
            # A live track was detected within the last max_missed + 1 rounds.
            window = recent_detection_counts[-(tracker.config.max_missed + 1):]
            if len(window) == tracker.config.max_missed + 1:  # (a second run on the same tracker)
                assert len(tracker) <= sum(window)
        assert ids(tracks) == sorted(set(ids(tracks)))
        created.update(ids(tracks))
        max_live = max(max_live, len(tracker))
        if pop:
            ended += tracker.pop_ended()
    return created, ended, max_live


def _deep_size(root, skip) -> int:
    """Bytes reachable from ``root`` (not counting classes, modules, functions or ``skip``)."""
    seen, stack, total = {id(o) for o in skip}, [root], 0
    while stack:
        obj = stack.pop()
        if id(obj) in seen or isinstance(obj, (type, types.ModuleType, types.FunctionType)):
            continue
        seen.add(id(obj))
        total += sys.getsizeof(obj)
        stack.extend(gc.get_referents(obj))
    return total


def test_ten_thousand_frames_keep_a_bounded_number_of_tracks_and_flat_memory():
    rng = np.random.default_rng(1)
    config = TrackerConfig(iou_threshold=0.3, max_missed=4)
    tracker = IouTracker(config)
    empty = _deep_size(tracker, [config])
    created, ended, sizes = set(), [], []
    for _ in range(10):  # 10 x 1,000 frames, memory sampled in between
        c, e, max_live = _random_run(tracker, 1_000, rng)
        created |= c
        ended += e
        assert max_live <= 5 * (config.max_missed + 1)
        sizes.append((_deep_size(tracker, [config]), len(tracker)))
    assert len(created) > 50  # the run really churned through many faces
    assert len(ended) == len(set(ended))  # each id ends once
    assert set(ended) | {t.track_id for t in tracker.carry()} == created  # every id is live or ended
    assert max(created) == len(created)  # ids 1..N, no gaps, none reused
    for size, live in sizes:  # what the tracker holds depends on the live tracks only
        assert size <= empty + 2048 * live, sizes


def test_ended_ids_stay_bounded_when_nobody_pops():
    tracker = IouTracker(TrackerConfig(max_missed=0))
    for _ in range(3000):
        tracker.update([square(0, 0)])
        tracker.update([])
    assert len(tracker) == 0
    pending = tracker.pop_ended()
    assert len(pending) == 1024
    assert pending[-1] == 3000  # the newest are kept


def test_prediction_is_for_matching_only_reported_boxes_are_last_detections():
    tracker = IouTracker(TrackerConfig(max_missed=3))
    for k in range(5):
        tracker.update([square(20 * k, 0)])
    tracks = tracker.update([])
    np.testing.assert_array_equal(tracks[0].bbox, [80, 0, 140, 60])
    np.testing.assert_array_equal(tracker.carry()[0].bbox, [80, 0, 140, 60])
    # Two rounds after its last detection the face is 40 px further on: IoU 0.2 with the last box,
    # below the 0.3 threshold, but exactly where the constant-velocity prediction expects it.
    tracks = tracker.update([square(120, 0)])
    assert ids(tracks) == [1] and tracks[0].detected
