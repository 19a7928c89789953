"""Grad-CAM: maps of the crop's size that follow the evidence; `fer-ros explain` pictures; the annotate overlay."""
from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from fer_ros.cli import main
from fer_ros.config import AlignConfig, AnnotateConfig
from fer_ros.models.ams_cnn import build_model, config_for
from fer_ros.models.checkpoint import LoadedModel, load_checkpoint
from fer_ros.models.gradcam import FaceExplainer, explain_crops
from fer_ros.models.preprocess import Preprocessing, to_model_input
from fer_ros.perception.alignment import FaceAligner
from fer_ros.perception.annotate import annotate
from fer_ros.types import FaceResult, FrameResult

CHECKER = np.kron(np.indices((4, 4)).sum(0) % 2, np.ones((2, 2), int)).astype(bool)  # 8x8 black/white pattern


def synthetic_faces(rng, n: int, with_patch: np.ndarray, x: int | None = None) -> np.ndarray:
    """32x32 grey noise; where ``with_patch``, an 8x8 checkerboard (the only class evidence) at column ``x`` or anywhere."""
    images = rng.integers(90, 110, size=(n, 32, 32)).astype(np.uint8)
    for i in np.flatnonzero(with_patch):
        top, left = rng.integers(4, 20), rng.integers(2, 22) if x is None else x
        patch = images[i, top:top + 8, left:left + 8]
        patch[CHECKER], patch[~CHECKER] = 230, 20
    return images


@pytest.fixture(scope="module")
def patch_model() -> LoadedModel:
    """A tiny AMS-CNN trained a few steps to tell 'checkerboard somewhere' from 'no checkerboard'."""
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    pre = Preprocessing(input_size=32, clahe=False)
    model = build_model(config_for("tiny", num_classes=2))
    optimiser = torch.optim.Adam(model.parameters(), 3e-3)
    for _ in range(80):
        labels = rng.integers(0, 2, 32)
        x = torch.from_numpy(to_model_input(synthetic_faces(rng, 32, labels == 0), pre))
        loss = torch.nn.functional.cross_entropy(model(x).logits, torch.from_numpy(labels))
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    return LoadedModel(model.eval(), pre, ["patch", "plain"], "patch.pt", {})


def centre_x(heat: np.ndarray) -> float:
    return float((heat.sum(0) * np.arange(heat.shape[1])).sum() / heat.sum())


def test_heatmap_has_the_crop_size_is_finite_and_has_mass(patch_model):
    rng = np.random.default_rng(1)
    crop = synthetic_faces(rng, 1, np.array([True]), x=4)[0]
    big = cv2.resize(crop, (96, 96), interpolation=cv2.INTER_NEAREST)
    for face in (crop, big, np.repeat(big[..., None], 3, 2)):
        e = explain_crops(patch_model, [face])[0]
        assert e.heatmap.shape == face.shape[:2] and e.attention.shape == face.shape[:2]
        assert np.all(np.isfinite(e.heatmap)) and e.heatmap.min() >= 0 and e.heatmap.max() <= 1
        assert e.heatmap.sum() > 0
        assert e.class_index == 0 and abs(e.probabilities.sum() - 1) < 1e-5


def test_heatmap_follows_the_discriminative_patch(patch_model):
    rng = np.random.default_rng(2)
    left = explain_crops(patch_model, list(synthetic_faces(rng, 6, np.ones(6, bool), x=3)), "patch")
    right = explain_crops(patch_model, list(synthetic_faces(rng, 6, np.ones(6, bool), x=21)), "patch")
    assert all(e.probabilities[0] > 0.9 for e in left + right), "the model did not learn the patch"
    xs_left, xs_right = [centre_x(e.heatmap) for e in left], [centre_x(e.heatmap) for e in right]
    # patch centres at x = 7 and x = 25: every left map's centre lies left of every right map's, well apart
    assert max(xs_left) < 16 < min(xs_right)
    assert np.mean(xs_right) - np.mean(xs_left) > 8


def test_named_class_is_explained_and_an_unknown_one_is_refused(patch_model):
    from fer_ros.errors import FerError

    crop = synthetic_faces(np.random.default_rng(3), 1, np.array([True]), x=10)[0]
    assert explain_crops(patch_model, [crop], "PLAIN")[0].class_index == 1
    with pytest.raises(FerError, match="patch, plain"):
        explain_crops(patch_model, [crop], "angry")


def test_explain_command_writes_one_decodable_png_per_face_and_model(astronaut, tmp_path, capsys):
    path = tmp_path / "astronaut.png"
    cv2.imwrite(str(path), cv2.cvtColor(astronaut, cv2.COLOR_RGB2BGR))
    out = tmp_path / "out"
    assert main(["explain", str(path), "--out", str(out), "--weights", "fer2013", "--weights", "ferplus"]) == 0
    pngs = sorted(out.glob("*.png"))
    assert [p.name for p in pngs] == ["astronaut_f00000_face0.png"]
    picture = cv2.imread(str(pngs[0]))
    assert picture is not None and picture.shape[0] > picture.shape[1] / 3  # two rows: one per model
    rows = np.array_split(picture, 2, axis=0)
    assert all(r.std() > 10 for r in rows)
    assert main(["explain", str(path), "--out", str(out), "--class", "grumpy"]) == 2
    assert "unknown class 'grumpy'" in capsys.readouterr().err


def synthetic_frame_face(rng) -> tuple[np.ndarray, FaceResult]:
    frame = rng.integers(0, 255, (240, 320, 3), dtype=np.uint8)
    landmarks = np.array([[130, 110], [170, 110], [150, 130], [135, 150], [165, 150]], np.float32)
    probs = np.full(7, 1 / 7, np.float32)
    face = FaceResult(track_id=1, bbox=np.array([110, 80, 190, 180], np.float32), landmarks=landmarks,
                      detection_score=0.99, label="uncertain", confidence=0.2, probabilities=probs, raw_label="Happy",
                      raw_probabilities=probs, stable=False, stable_for=0.0, detected=True)
    return frame, face


def test_annotate_overlay_is_drawn_only_when_asked_and_only_on_the_face(tiny_checkpoint):
    rng = np.random.default_rng(4)
    frame, face = synthetic_frame_face(rng)
    result = FrameResult(0, 0.0, (320, 240), load_checkpoint(tiny_checkpoint).class_names, [face])
    loaded = load_checkpoint(tiny_checkpoint)
    explainer = FaceExplainer([loaded], FaceAligner(AlignConfig(), 48))
    calls = []

    def counting(image, faces):
        calls.append(len(faces))
        return explainer(image, faces)

    off = annotate(frame, result, AnnotateConfig(), counting)
    assert calls == []  # off by default: not even called
    on = annotate(frame, result, AnnotateConfig(explain=True), counting)
    assert calls == [1]
    changed = np.argwhere(np.any(on != off, axis=2))
    assert len(changed) > 500
    (y1, x1), (y2, x2) = changed.min(0), changed.max(0)
    assert 60 <= x1 and x2 <= 240 and 40 <= y1 and y2 <= 210  # inside the aligned crop's footprint around the face


def test_explainer_for_the_pipeline_classifier(tiny_checkpoint):
    from fer_ros.models.inference import EmotionClassifier

    classifier = EmotionClassifier([tiny_checkpoint], torch.device("cpu"))
    explainer = FaceExplainer.for_classifier(classifier, FaceAligner(AlignConfig(), classifier.input_size))
    frame, face = synthetic_frame_face(np.random.default_rng(5))
    [(heat, matrix)] = explainer(frame, [face])
    assert heat.shape == (48, 48) and np.isfinite(heat).all() and matrix.shape == (2, 3)
    assert FaceExplainer.for_classifier(object(), None) is None  # another runtime: no Grad-CAM, no error
