"""annotate(): draws on a copy, marks the box, survives awkward faces and tiny frames."""
from __future__ import annotations

import numpy as np
import pytest

from fer_ros.config import AnnotateConfig
from fer_ros.perception.annotate import EMOTION_COLOURS, GREY, annotate, emotion_colour
from fer_ros.types import UNCERTAIN, FaceResult, FrameResult

CLASSES = ["neutral", "happiness", "surprise", "sadness", "anger", "disgust", "fear", "contempt"]
ALL_ON = AnnotateConfig(show_probabilities=True, show_attention=True, show_landmarks=True)


def make_face(bbox, *, label="happiness", stable=True, detected=True, attention=True) -> FaceResult:
    x1, y1, x2, y2 = bbox
    w, h = x2 - x1, y2 - y1
    landmarks = np.array([[x1 + 0.3 * w, y1 + 0.4 * h], [x1 + 0.7 * w, y1 + 0.4 * h], [x1 + 0.5 * w, y1 + 0.6 * h],
                          [x1 + 0.35 * w, y1 + 0.8 * h], [x1 + 0.65 * w, y1 + 0.8 * h]], np.float32)
    probs = np.full(len(CLASSES), 0.02, np.float32)
    probs[CLASSES.index(label) if label in CLASSES else 0] = 1.0 - 0.02 * (len(CLASSES) - 1)
    yy, xx = np.mgrid[0:6, 0:6]
    return FaceResult(
        track_id=3, bbox=np.array(bbox, np.float32), landmarks=landmarks, detection_score=0.99, label=label,
        confidence=0.82, probabilities=probs, raw_label=label, raw_probabilities=probs, stable=stable,
        stable_for=1.5, detected=detected,
        attention=(np.exp(-((xx - 2.5) ** 2 + (yy - 2.5) ** 2) / 4.0)).astype(np.float32) if attention else None,
    )


def make_result(width: int, height: int, faces) -> FrameResult:
    return FrameResult(frame_index=7, stamp=0.25, image_size=(width, height), class_names=CLASSES, faces=list(faces))


def test_draws_on_a_copy_and_marks_the_box():
    rng = np.random.default_rng(0)
    image = rng.integers(0, 255, (240, 320, 3), dtype=np.uint8)
    before = image.copy()
    out = annotate(image, make_result(320, 240, [make_face([100, 80, 180, 180])]), AnnotateConfig())
    assert out.shape == image.shape and out.dtype == np.uint8
    np.testing.assert_array_equal(image, before)
    # Every pixel of the box's left edge (below the label) shows the emotion's colour.
    edge = out[120:170, 100]
    assert np.all(np.abs(edge.astype(int) - np.array(EMOTION_COLOURS["hap"])).max(axis=1) < 40)
    assert not np.array_equal(out, image)


def test_empty_result_only_adds_the_header():
    image = np.full((240, 320, 3), 90, np.uint8)
    out = annotate(image, make_result(320, 240, []), ALL_ON)
    assert out.shape == image.shape
    # Nothing below the header line changes.
    np.testing.assert_array_equal(out[40:], image[40:])
    assert not np.array_equal(out[:20, :120], image[:20, :120])  # the header is there


def test_uncertain_and_carried_boxes_are_grey():
    assert emotion_colour(UNCERTAIN) == GREY
    assert emotion_colour("Happy") == emotion_colour("happiness")
    assert emotion_colour("zzz", ["zzz"]) not in EMOTION_COLOURS.values()
    image = np.zeros((240, 320, 3), np.uint8)
    carried = make_face([100, 80, 180, 180], detected=False, attention=False)
    out = annotate(image, make_result(320, 240, [carried]), AnnotateConfig(show_probabilities=False, show_landmarks=False))
    edge = out[120:170, 100]
    grey_px = np.all(edge == GREY, axis=1)
    assert 0 < grey_px.sum() < len(edge)  # dashed: grey pixels with gaps between them


def test_stable_box_is_thicker_than_unstable():
    image = np.zeros((480, 640, 3), np.uint8)
    config = AnnotateConfig(show_probabilities=False, show_landmarks=False)
    thick = annotate(image, make_result(640, 480, [make_face([200, 150, 360, 350], stable=True)]), config)
    thin = annotate(image, make_result(640, 480, [make_face([200, 150, 360, 350], stable=False)]), config)
    row = slice(250, 251)
    assert (thick[row, 190:215].any(axis=2)).sum() > (thin[row, 190:215].any(axis=2)).sum()


def test_probability_bars_and_attention_change_pixels():
    image = np.full((480, 640, 3), 60, np.uint8)
    face = make_face([200, 150, 360, 350])
    plain = annotate(image, make_result(640, 480, [face]), AnnotateConfig(False, False, False))
    bars = annotate(image, make_result(640, 480, [face]), AnnotateConfig(True, False, False))
    heat = annotate(image, make_result(640, 480, [face]), AnnotateConfig(False, True, False))
    assert not np.array_equal(plain[150:350, 362:], bars[150:350, 362:])  # the panel right of the box
    inside = (slice(220, 280), slice(250, 310))  # the centre of the face, where attention peaks
    assert not np.array_equal(plain[inside], heat[inside])


@pytest.mark.parametrize("size", [(64, 64), (240, 320), (720, 1280)])
@pytest.mark.parametrize("bbox", [[-30, -20, 40, 50], [0.6, 0.7, 1.3, 1.4], [5, 5, 15, 15]], ids=["corner", "right", "tiny"])
def test_all_options_survive_awkward_faces(size, bbox):
    height, width = size
    if bbox[0] < 1 and bbox[2] < 2 and isinstance(bbox[0], float):
        bbox = [bbox[0] * width, bbox[1] * height, bbox[2] * width, bbox[3] * height]  # runs off right/bottom
    image = np.full((height, width, 3), 128, np.uint8)
    faces = [make_face(bbox), make_face(bbox, label=UNCERTAIN, stable=False, detected=False)]
    out = annotate(image, make_result(width, height, faces), ALL_ON)
    assert out.shape == image.shape and out.dtype == np.uint8


def test_nan_landmarks_and_box_are_skipped():
    face = make_face([10, 10, 50, 50])
    face.landmarks[:] = np.nan
    broken = make_face([10, 10, 50, 50])
    broken.bbox = np.array([np.nan, 0, 10, 10], np.float32)
    out = annotate(np.zeros((100, 100, 3), np.uint8), make_result(100, 100, [face, broken]), ALL_ON)
    assert out.shape == (100, 100, 3)
