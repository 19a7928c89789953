"""FramePipeline.process_aligned: faces another detector already aligned, keyed by its ids.

The bundled model on real faces aligned by fer_ros's own aligner (how a ROS4HRI detector hands
them over): the astronaut (smiling) and the cameraman (scikit-image, both public domain). Each id
keeps its own smoothing state, exactly as if it were alone, and a forgotten id starts afresh.
"""
import numpy as np
import pytest
from skimage import data

from fer_ros.config import PipelineConfig
from fer_ros.perception.alignment import FaceAligner
from fer_ros.pipeline import FramePipeline

STEP = 0.1  # seconds between two crops of a face


@pytest.fixture(scope="module")
def pipelines():
    """Two pipelines with the bundled model: one for the case under test, one as the reference."""
    config = PipelineConfig()
    config.detector.device = "cpu"
    config.detector.min_face_size = 20  # the cameraman's face is about 55 px wide
    with FramePipeline(config) as under_test, FramePipeline(config) as reference:
        yield under_test, reference


@pytest.fixture(scope="module")
def crops(pipelines):
    """{'astronaut': 128x128 crop, 'cameraman': 96x96 crop}: aligned like fer_ros's own ROS4HRI /aligned output."""
    pipeline = pipelines[0]
    out = {}
    for name, image, size in (("astronaut", data.astronaut(), 128),
                              ("cameraman", np.repeat(data.camera()[..., None], 3, axis=2), 96)):
        detections = pipeline.detector.detect(np.ascontiguousarray(image))
        assert len(detections) == 1, name
        out[name] = FaceAligner(pipeline.config.align, size).align(image, detections[0]).image
    return out


@pytest.fixture
def fresh(pipelines):
    for p in pipelines:
        p.reset()
    return pipelines


def no_detection(*_args, **_kwargs):
    raise AssertionError("process_aligned must not run the face detector")


def test_aligned_faces_are_classified_without_detection_in_the_order_given(fresh, crops, monkeypatch):
    pipeline, _ = fresh
    monkeypatch.setattr(pipeline.detector, "detect", no_detection)
    result = pipeline.process_aligned({"fqkzt": crops["astronaut"], "abcde": crops["cameraman"]}, 12.5)
    assert result.stamp == 12.5 and not result.ran_detection and result.class_names == pipeline.class_names
    assert {"align", "classify", "smooth"} <= set(result.timings_ms) and "detect" not in result.timings_ms
    smiling, other = result.faces
    assert smiling.track_id != other.track_id
    assert smiling.label == "happiness" and smiling.confidence > 0.9 and smiling.valence > 0.5
    assert other.label == "neutral"
    size = pipeline.classifier.input_size
    assert smiling.bbox.tolist() == [0, 0, size, size] and np.isnan(smiling.landmarks).all()
    assert result.image_size == (size, size) and smiling.detected and smiling.detection_score == 1.0


def test_each_id_keeps_its_own_smoothing_state(fresh, crops):
    pipeline, reference = fresh
    a, b = crops["astronaut"], crops["cameraman"]
    for k in range(6):  # "a" alternates between the two faces while "b" keeps one
        mixed = pipeline.process_aligned({"a": a if k % 2 == 0 else b, "b": b}, k * STEP)
        alone = reference.process_aligned({"a": a if k % 2 == 0 else b}, k * STEP)
        np.testing.assert_allclose(mixed.faces[0].probabilities, alone.faces[0].probabilities, atol=1e-5)
        assert mixed.faces[0].label == alone.faces[0].label
    # "a" is smoothed over both faces, "b" only over its own: their smoothed states differ.
    assert not np.allclose(mixed.faces[0].probabilities, mixed.faces[1].probabilities, atol=1e-3)
    assert mixed.faces[1].label == "neutral" and mixed.faces[1].stable
    assert len(pipeline.smoother) == 2


def test_a_forgotten_id_starts_afresh(fresh, crops):
    pipeline, _ = fresh
    a, b = crops["astronaut"], crops["cameraman"]
    for k in range(5):
        held = pipeline.process_aligned({"a": a, "b": a}, k * STEP)
    assert held.faces[0].label == "happiness" and held.faces[0].stable
    pipeline.forget("a")
    pipeline.forget("never-seen")  # unknown ids are ignored
    after = pipeline.process_aligned({"a": b, "b": b}, 5 * STEP)
    restarted, kept = after.faces
    # "a" has no memory of the smile: its smoothed probabilities are this crop's own, its label new.
    np.testing.assert_allclose(restarted.probabilities, restarted.raw_probabilities, atol=1e-6)
    assert restarted.label == "neutral" and not restarted.stable and restarted.stable_for == 0.0
    old_a, old_b = (f.track_id for f in held.faces)
    assert restarted.track_id > max(old_a, old_b)  # a new track of ours (ids are never reused)
    # "b" saw the same crop, but still remembers the smile.
    assert kept.track_id == old_b and kept.label == "happiness"
    assert not np.allclose(kept.probabilities, kept.raw_probabilities, atol=1e-3)
