"""The classifier on ONNX Runtime gives what the PyTorch (TorchScript) classifier gives, faster."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from fer_ros.config import PipelineConfig
from fer_ros.errors import FerError
from fer_ros.models.ams_cnn import AMSOutput, build_model, config_for
from fer_ros.models.inference import EmotionClassifier, trace_for_cpu
from fer_ros.models.runtime import onnx_forward, onnxruntime_available
from fer_ros.pipeline import FramePipeline

needs_ort = pytest.mark.skipif(not onnxruntime_available(), reason="onnxruntime or onnx is not installed")


def _faces(astronaut, n):
    """The astronaut's face area and n - 1 shifted copies, as 48 px crops."""
    import cv2

    return [cv2.resize(np.ascontiguousarray(astronaut[40 + 6 * k:220 + 6 * k, 150:330]), (48, 48)) for k in range(n)]


@needs_ort
@pytest.mark.parametrize("mirror", [False, True])
def test_onnxruntime_matches_torchscript(tiny_checkpoint, astronaut, mirror):
    cpu = torch.device("cpu")
    ref = EmotionClassifier([tiny_checkpoint], cpu, mirror=mirror, runtime="torch")
    ort = EmotionClassifier([tiny_checkpoint], cpu, mirror=mirror, runtime="onnxruntime")
    assert ort.runtime == "onnxruntime"
    for n in (1, 3):
        a, b = ref.classify(_faces(astronaut, n)), ort.classify(_faces(astronaut, n))
        for x, y in zip(a, b):
            np.testing.assert_allclose(y.probabilities, x.probabilities, atol=0.02)
            assert y.probabilities.sum() == pytest.approx(1.0, abs=1e-5)
            np.testing.assert_allclose(y.fusion_weights, x.fusion_weights, atol=0.02)
            assert y.attention.shape == x.attention.shape


@pytest.mark.parametrize("runtime,tolerance", [("torchscript", 1e-5), pytest.param("onnxruntime", 0.02, marks=needs_ort)])
def test_each_runtime_returns_the_eager_models_outputs_by_name(runtime, tolerance):
    """The trace and the ONNX session hand back plain tuples; the classifier's forward calls name them again."""
    model = build_model(config_for("tiny")).eval()
    cfg = model.cfg
    x = torch.randn(3, cfg.in_chans, cfg.input_size, cfg.input_size, generator=torch.Generator().manual_seed(0))
    if runtime == "torchscript":
        forward = trace_for_cpu(model, cfg.in_chans, cfg.input_size)
        assert forward is not model  # traced, not the eager fallback
    else:
        forward = onnx_forward(model, cfg.in_chans, cfg.input_size, threads=1)
    with torch.no_grad():
        expected, got = model(x), forward(x)
    assert isinstance(got, AMSOutput)
    for name in AMSOutput._fields:
        torch.testing.assert_close(getattr(got, name), getattr(expected, name), atol=tolerance, rtol=1e-4)


@needs_ort
def test_pipeline_runs_on_onnxruntime(tiny_checkpoint, astronaut):
    config = PipelineConfig()
    config.classifier.weights = [tiny_checkpoint]
    config.classifier.runtime = "onnxruntime"
    config.detector.device = "cpu"
    (face,) = FramePipeline(config).process(astronaut, 0.0).faces
    assert face.raw_probabilities.sum() == pytest.approx(1.0, abs=1e-4)


def test_auto_takes_onnxruntime_when_installed_and_torch_on_request(tiny_checkpoint):
    cpu = torch.device("cpu")
    assert EmotionClassifier([tiny_checkpoint], cpu).runtime == ("onnxruntime" if onnxruntime_available() else "torch")
    assert EmotionClassifier([tiny_checkpoint], cpu, runtime="torch").runtime == "torch"
    assert EmotionClassifier([tiny_checkpoint], cpu, runtime="torch").describe().endswith(" on torch")


def test_unknown_runtime_is_a_clear_error(tiny_checkpoint):
    with pytest.raises(FerError, match="runtime"):
        EmotionClassifier([tiny_checkpoint], torch.device("cpu"), runtime="tensorrt")
    with pytest.raises(FerError, match="classifier.runtime"):
        PipelineConfig.from_dict({"classifier": {"runtime": "tensorrt"}})


@needs_ort
def test_mtcnn_on_onnxruntime_finds_what_torch_finds(astronaut):
    from fer_ros.config import DetectorConfig
    from fer_ros.perception.detection import FaceDetector

    two = np.concatenate([astronaut, astronaut[:, ::-1]], axis=1)
    ref, ort = (FaceDetector(DetectorConfig(device="cpu", runtime=r)) for r in ("torch", "onnxruntime"))
    assert ort._mtcnn.runtime == "onnxruntime" and ref._mtcnn.runtime == "torch"
    a, b = ref.detect(two), ort.detect(two)
    assert len(a) == len(b) == 2
    for x, y in zip(a, b):
        np.testing.assert_allclose(y.bbox, x.bbox, atol=0.05)
        np.testing.assert_allclose(y.landmarks, x.landmarks, atol=0.05)
        assert y.score == pytest.approx(x.score, abs=1e-4)
    for x, y in zip(ref.refine(two, [d.bbox for d in a]), ort.refine(two, [d.bbox for d in a])):
        np.testing.assert_allclose(y.bbox, x.bbox, atol=0.05)
