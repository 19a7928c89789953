"""Per-frame refresh of tracked faces (R-/O-Net), full detection on a schedule and on a second thread.

Real MTCNN on real faces: scikit-image's astronaut, moved over a real background by the
benchmark's scene renderer and the demo's sample sequence.
"""
from __future__ import annotations

import threading

import numpy as np
import pytest

from fer_ros import sample
from fer_ros.config import DetectorConfig, PipelineConfig, TrackerConfig, set_setting
from fer_ros.measure.frames import SceneRenderer
from fer_ros.perception.detection import FaceDetector
from fer_ros.perception.tracking import IouTracker, iou
from fer_ros.pipeline import FramePipeline
from fer_ros.types import Detection


@pytest.fixture(scope="module")
def detector():
    return FaceDetector(DetectorConfig(device="cpu"))


@pytest.fixture(scope="module")
def scene():
    return SceneRenderer(640, 480)


def _pipeline(tiny_checkpoint, settings: dict | None = None) -> FramePipeline:
    """The package defaults, the tiny checkpoint, and ``settings`` (dotted names)."""
    config = PipelineConfig()
    config.classifier.weights = [tiny_checkpoint]
    config.detector.device = "cpu"
    for name, value in (settings or {}).items():
        set_setting(config, name, value)
    return FramePipeline(config)


def _eye_distance(d: Detection) -> float:
    return float(np.linalg.norm(d.landmarks[1] - d.landmarks[0]))


# ---------------------------------------------------------------- the cascade's refinement stages

def test_refine_follows_a_moving_face_like_a_full_detection(detector, scene):
    previous = detector.detect(scene.render(1, 0))[0]
    for i in range(1, 12):
        frame = scene.render(1, i)
        (fresh,) = detector.refine(frame, [previous.bbox])
        (full,) = detector.detect(frame)
        assert fresh is not None and fresh.score > 0.9
        assert iou(fresh.bbox, full.bbox) > 0.7
        error = np.linalg.norm(fresh.landmarks - full.landmarks, axis=1).mean()
        assert error < 0.15 * _eye_distance(full), i
        previous = fresh


def test_refine_answers_none_where_the_face_is_gone_and_keeps_order(detector, scene):
    face = detector.detect(scene.render(1, 0))[0]
    empty = scene.render(0, 0)  # the background alone
    assert detector.refine(empty, [face.bbox]) == [None]
    assert detector.refine(empty, []) == []
    found = detector.refine(scene.render(1, 0), [np.array([5, 5, 60, 60], np.float32), face.bbox])
    assert found[0] is None and found[1] is not None


def test_search_finds_a_face_that_moved_too_far_for_refine(detector, astronaut):
    face = detector.detect(astronaut)[0]
    shift = int(0.6 * face.width)
    moved = np.roll(astronaut, shift, axis=1)
    hit = detector.search(moved, face.bbox)
    assert hit is not None
    assert iou(hit.bbox, face.bbox + np.array([shift, 0, shift, 0], np.float32)) > 0.7
    assert detector.search(np.full_like(astronaut, 90), face.bbox) is None


# ---------------------------------------------------------------- the tracker's refresh round

def _det(x, y, size=60, score=0.99) -> Detection:
    cx, cy = x + size / 2, y + size / 2
    return Detection([x, y, x + size, y + size], [[cx - 10, cy - 10], [cx + 10, cy - 10], [cx, cy],
                                                  [cx - 8, cy + 10], [cx + 8, cy + 10]], score)


def test_refresh_takes_fresh_boxes_counts_misses_and_ends_duplicates():
    tracker = IouTracker(TrackerConfig(max_missed=1))
    tracker.update([_det(0, 0), _det(200, 0), _det(400, 0)])
    tracks = tracker.refresh({1: _det(5, 0), 2: None, 3: _det(8, 2)})  # 3 ran onto 1's face
    assert [(t.track_id, t.detected) for t in tracks] == [(1, True), (2, False)]
    assert tracks[0].bbox[0] == 5 and tracks[1].bbox[0] == 200  # 2 keeps its last box
    assert tracker.pop_ended() == [3] and tracker.missing() == [2]
    assert tracker.predictions()[1][0] == pytest.approx(10)  # moved 5 px in one round
    tracks = tracker.refresh({1: _det(10, 0), 2: None}, new=[_det(12, 0), _det(300, 200)])
    # 2 missed twice (> max_missed) and ends; the new face on top of 1 is 1, the other starts track 4
    assert [(t.track_id, t.detected) for t in tracks] == [(1, True), (4, True)]
    assert tracker.pop_ended() == [2]


def test_match_pairs_like_update_without_changing_tracks():
    tracker = IouTracker(TrackerConfig())
    tracker.update([_det(0, 0), _det(200, 0)])
    before = tracker.predictions()
    assert tracker.match([_det(300, 300), _det(203, 0)]) == {2: 1}
    assert {k: v.tolist() for k, v in tracker.predictions().items()} == {k: v.tolist() for k, v in before.items()}


# ---------------------------------------------------------------- the pipeline with refresh

def test_moving_face_has_a_fresh_box_every_frame_and_one_id(tiny_checkpoint, scene):
    p = _pipeline(tiny_checkpoint, {"detect_every": 5, "detector.background_lag": 0})
    results = [p.process(scene.render(1, i), i / 30) for i in range(16)]
    assert [r.ran_detection for r in results] == [i % 5 == 0 for i in range(16)]
    assert all(len(r.faces) == 1 and r.faces[0].detected for r in results)
    assert {r.faces[0].track_id for r in results} == {results[0].faces[0].track_id}
    assert all("refine" in r.timings_ms for r in results[1:5])
    assert not any("detect" in r.timings_ms for r in results[1:5])  # no pyramid between the scheduled runs


def test_background_detection_is_repeatable_and_finds_people_who_enter(tiny_checkpoint, scene):
    """Three faces appear at frame 10; detect_every 4, lag 3: the scheduled run at frame 12 has
    them, and they join at frame 15. Two runs give the same boxes, to the bit."""
    frames = [scene.render(1 if i < 10 else 3, i) for i in range(20)]

    def run():
        with _pipeline(tiny_checkpoint, {"detect_every": 4, "detector.background_lag": 3}) as p:
            return [p.process(f, i / 30) for i, f in enumerate(frames)]

    first, second = run(), run()
    counts = [len(r.faces) for r in first]
    assert counts == [1] * 15 + [3] * 5
    assert "detect_background" in first[15].timings_ms
    for a, b in zip(first, second):
        assert [f.track_id for f in a.faces] == [f.track_id for f in b.faces]
        for fa, fb in zip(a.faces, b.faces):
            np.testing.assert_array_equal(fa.bbox, fb.bbox)


def _detection_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("fer-detect") and t.is_alive()]


def test_close_stops_the_background_detection_thread(tiny_checkpoint, scene):
    """close() waits for the detection in flight, then the worker thread is gone; the pipeline
    still works (that detection joins on its frame, the thread starts again when needed) and
    closing twice is harmless."""
    before = set(_detection_threads())
    with _pipeline(tiny_checkpoint, {"detect_every": 4, "detector.background_lag": 3}) as p:
        results = [p.process(scene.render(1, i), i / 30) for i in range(6)]  # frame 4 starts one in the background
        assert set(_detection_threads()) - before, "the background detection never started a thread"
    assert not set(_detection_threads()) - before
    results += [p.process(scene.render(1, i), i / 30) for i in range(6, 10)]  # frame 7 joins, frame 8 starts another
    assert "detect_background" in results[7].timings_ms
    assert all(len(r.faces) == 1 for r in results) and len({r.faces[0].track_id for r in results}) == 1
    p.close()
    p.close()
    assert not set(_detection_threads()) - before


def test_face_that_leaves_ends_and_the_next_frame_looks_at_the_whole_frame(tiny_checkpoint, scene):
    p = _pipeline(tiny_checkpoint, {"detect_every": 50, "detector.background_lag": 0, "tracker.max_missed": 2})
    for i in range(3):
        assert len(p.process(scene.render(1, i), i / 30).faces) == 1
    gone = [p.process(scene.render(0, 0), (3 + i) / 30) for i in range(4)]
    assert [len(r.faces) for r in gone] == [1, 1, 0, 0]  # carried while missed (max_missed 2), then ended
    assert not any(f.detected for r in gone for f in r.faces)
    assert gone[1].ran_detection and not gone[0].ran_detection  # lost on frame 3: whole frame on frame 4


def test_demo_sequence_keeps_one_id_per_person(tiny_checkpoint):
    """The demo's astronaut pans, zooms, dims and leaves for a few frames; a mirrored one enters."""
    p = _pipeline(tiny_checkpoint)
    results = [p.process(f, i / sample.FPS) for i, f in enumerate(sample.sample_frames(60))]
    ids = {f.track_id for r in results for f in r.faces}
    assert ids == {1, 2}
    assert all(len(r.faces) == 2 for r in results[-5:])
    fresh = sum(f.detected for r in results for f in r.faces) / sum(len(r.faces) for r in results)
    assert fresh > 0.9  # boxes refreshed on the frame, not carried


def test_refine_off_carries_boxes_between_detections(tiny_checkpoint, astronaut):
    p = _pipeline(tiny_checkpoint, {"detect_every": 3, "tracker.refine": False})
    results = [p.process(astronaut, i / 30) for i in range(6)]
    assert [r.ran_detection for r in results] == [True, False, False, True, False, False]
    assert [r.faces[0].detected for r in results] == [True, False, False, True, False, False]
