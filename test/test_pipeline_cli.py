"""The whole pipeline and the `fer-ros detect` / `demo` commands on real faces."""
import json
import os

import cv2
import numpy as np
import pytest
from conftest import VIDEO, needs

from fer_ros.cli import main as cli
from fer_ros.config import PipelineConfig
from fer_ros.emotions import canonical_emotion
from fer_ros.errors import FerError
from fer_ros.models.checkpoint import default_weights_path
from fer_ros.pipeline import FramePipeline

bundled = pytest.mark.skipif(not os.path.exists(default_weights_path()), reason="bundled weights not built yet")


@pytest.fixture(scope="module")
def pipeline(tiny_checkpoint):
    config = PipelineConfig()
    config.classifier.weights = [tiny_checkpoint]
    config.detector.device = "cpu"
    return FramePipeline(config)


def test_pipeline_finds_tracks_and_classifies_the_astronaut(pipeline, astronaut):
    pipeline.reset()
    results = [pipeline.process(astronaut, stamp=i / 10) for i in range(4)]
    for r in results:
        assert len(r.faces) == 1
        face = r.faces[0]
        assert face.track_id == results[0].faces[0].track_id
        assert face.raw_probabilities.sum() == pytest.approx(1.0, abs=1e-4)
        assert face.label in pipeline.class_names + ["uncertain"]
        assert set(r.timings_ms) >= {"align", "classify", "track"}
        assert {"detect", "refine"} & set(r.timings_ms)  # the full detector, or the refresh of the tracked face
    blank = pipeline.process(np.zeros((120, 160, 3), np.uint8), 5.0)
    assert blank.faces and not any(f.detected for f in blank.faces)  # nothing detected; the track is carried
    for i in range(pipeline.config.tracker.max_missed + 1):
        blank = pipeline.process(np.zeros((120, 160, 3), np.uint8), 6.0 + i)
    assert blank.faces == []  # ... until it has missed too many detections


def test_detect_every_n_carries_boxes(tiny_checkpoint, astronaut):
    config = PipelineConfig()
    config.classifier.weights = [tiny_checkpoint]
    config.detect_every = 3
    config.tracker.refine = False  # carry the boxes (with refine they are refreshed every frame: test_finder.py)
    p = FramePipeline(config)
    flags = [p.process(astronaut, i / 30).ran_detection for i in range(6)]
    assert flags == [True, False, False, True, False, False]
    assert p.process(astronaut, 0.2).faces[0].detected is True  # frame 6: a detection frame
    assert p.process(astronaut, 0.233).faces[0].detected is False


def test_pipeline_rejects_bad_images(pipeline):
    with pytest.raises(FerError, match="RGB uint8"):
        pipeline.process(np.zeros((10, 10), np.float32))
    with pytest.raises(FerError, match="empty"):
        pipeline.process(np.zeros((0, 10, 3), np.uint8))


def test_detect_json_on_a_real_image(tmp_path, capsys, astronaut, tiny_checkpoint):
    img = tmp_path / "astronaut.png"
    cv2.imwrite(str(img), cv2.cvtColor(astronaut, cv2.COLOR_RGB2BGR))
    out = tmp_path / "annotated.png"
    assert cli(["detect", str(img), "--weights", tiny_checkpoint, "--annotate", str(out)]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert len(lines) == 1 and lines[0]["frame"] == 0 and lines[0]["stamp"] == 0.0
    (face,) = lines[0]["faces"]
    x1, y1, x2, y2 = face["bbox"]
    assert 150 < x1 < x2 < 300 and 50 < y1 < y2 < 230
    assert len(face["landmarks"]) == 5 and all(x1 <= x <= x2 and y1 <= y <= y2 for x, y in face["landmarks"])
    assert set(face) >= {"id", "bbox", "landmarks", "label", "confidence", "probabilities", "stable"}
    assert sum(face["probabilities"].values()) == pytest.approx(1.0, abs=1e-3)
    assert cv2.imread(str(out)).shape == (512, 512, 3)


@pytest.mark.parametrize("content,needle", [(None, "does not exist"), (b"", "cannot"), (b"hello, not an image", "cannot")])
def test_detect_bad_inputs_give_one_line_errors(tmp_path, capsys, content, needle, tiny_checkpoint):
    path = tmp_path / "input.png"
    if content is not None:
        path.write_bytes(content)
    assert cli(["detect", str(path), "--weights", tiny_checkpoint]) != 0
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if "error:" in line]
    assert len(errors) == 1 and needle in errors[0] and "Traceback" not in err


def test_bad_settings_and_weights_are_clear(capsys, tmp_path, astronaut):
    img = tmp_path / "a.png"
    cv2.imwrite(str(img), astronaut)
    assert cli(["detect", str(img), "--set", "tracker.iou_threshold=7"]) == 2
    assert "must be in [0.0, 1.0]" in capsys.readouterr().err
    assert cli(["detect", str(img), "--weights", str(tmp_path / "missing.pt")]) == 2
    assert "not found" in capsys.readouterr().err
    assert cli(["detect", str(img), "--device", "tpu"]) == 2
    assert "unknown device" in capsys.readouterr().err


@bundled
def test_bundled_model_sees_the_astronaut_smile(astronaut):
    """Eileen Collins smiles broadly in this NASA portrait: the shipped model must say happy."""
    p = FramePipeline()
    assert p.is_trained
    (face,) = p.process(astronaut, 0.0).faces
    assert canonical_emotion(face.raw_label) == "happy", dict(zip(p.class_names, face.raw_probabilities.round(2)))


@bundled
def test_demo_runs_end_to_end(tmp_path, capsys):
    out = tmp_path / "demo.mp4"
    assert cli(["demo", "--frames", "12", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "frame  11" in text and "UNTRAINED" not in text
    cap = cv2.VideoCapture(str(out))
    assert int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == 12


@needs(VIDEO, "the CC-BY test clip")
def test_real_video_tracks_and_cuts(tmp_path, capsys, tiny_checkpoint):
    """Frames 65-184 show one man's face: one dominant track there; the robot shot (0-20) has none."""
    assert cli(["detect", VIDEO, "--weights", tiny_checkpoint, "--detect-every", "2"]) == 0
    frames = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert len(frames) == 240
    assert sum(len(f["faces"]) for f in frames[:21]) <= 2
    ids = [face["id"] for f in frames[70:180] for face in f["faces"]]
    dominant = max(set(ids), key=ids.count)
    assert ids.count(dominant) > 0.8 * 110
    stamps = [f["stamp"] for f in frames]
    assert stamps == sorted(stamps) and stamps[-1] == pytest.approx(239 / 24, abs=0.05)
