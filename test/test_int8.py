"""8-bit inference: the bundled models carry activation ranges, run in 8 bits by default on ONNX
Runtime, and label real faces as their float selves do; ranges that do not fit are refused."""
from __future__ import annotations

import json
import logging

import cv2
import numpy as np
import pytest
import torch
from conftest import FER_NPZ

from fer_ros.errors import FerError
from fer_ros.models.checkpoint import load_checkpoint, read_checkpoint, set_int8, write_payload
from fer_ros.models.inference import EmotionClassifier, fold_batchnorm
from fer_ros.models.int8 import IncompatibleRanges, calibrate_ranges, float_layers, int8_available, quantised_graph
from fer_ros.models.preprocess import to_model_input
from fer_ros.models.runtime import export_onnx

pytestmark = pytest.mark.skipif(not int8_available(), reason="ONNX Runtime's quantiser (onnxruntime, onnx) is not installed")
CPU = torch.device("cpu")


def _real_faces(astronaut) -> list[np.ndarray]:
    """Crops of the astronaut's face, shifted and scaled; with the shared FER2013 data, 400 PublicTest faces too."""
    faces = [cv2.resize(np.ascontiguousarray(astronaut[40 + 6 * k:220 + 6 * k, 150 - 4 * k:330 + 4 * k]), (48, 48))
             for k in range(8)]
    try:
        data = np.load(FER_NPZ)
    except OSError:
        return faces
    test = np.flatnonzero(data["usage"] == "PublicTest")[:400]
    return faces + [np.repeat(f[..., None], 3, axis=2) for f in data["images"][test]]


@pytest.mark.parametrize("name", ["ferplus", "fer2013"])
def test_bundled_model_runs_in_8_bits_and_labels_faces_as_in_float(name, astronaut):
    faces = _real_faces(astronaut)
    fast = EmotionClassifier([name], CPU)  # the package default: precision auto
    exact = EmotionClassifier([name], CPU, precision="fp32")
    assert fast.quantised == [True] and "in 8 bits" in fast.describe()
    assert exact.quantised == [False] and "8 bits" not in exact.describe()
    a = np.stack([c.probabilities for c in fast.classify(faces)])
    b = np.stack([c.probabilities for c in exact.classify(faces)])
    assert np.allclose(a.sum(1), 1, atol=1e-5)
    assert (a.argmax(1) == b.argmax(1)).mean() >= 0.95  # measured: 99.5 % of FER+ PublicTest labels unchanged
    assert np.abs(a - b).max(1).mean() < 0.05


def test_calibrated_ranges_quantise_every_layer_and_keep_the_logits(astronaut):
    loaded = load_checkpoint("ferplus")
    model = fold_batchnorm(loaded.model)
    graph = export_onnx(model, model.cfg.in_chans, model.cfg.input_size)
    x = to_model_input(np.stack(_real_faces(astronaut)[:8]), loaded.preprocessing)
    int8 = calibrate_ranges(graph, [np.concatenate([x, x[..., ::-1]])])
    assert int8["method"] == "minmax" and json.loads(int8["ranges"])["data"]
    import onnx
    import onnxruntime as ort

    quantised = quantised_graph(graph, int8)
    assert not float_layers(onnx.load_from_string(quantised))
    assert float_layers(onnx.load_from_string(graph))  # the float graph has them all in float
    got = ort.InferenceSession(quantised, providers=["CPUExecutionProvider"]).run(["logits"], {"faces": x})[0]
    want = model(torch.from_numpy(x)).logits.detach().numpy()
    assert (got.argmax(1) == want.argmax(1)).all()
    assert np.abs(got - want).max() < 0.25 * np.abs(want).max()


def _renamed(path: str, tmp_path) -> str:
    """The checkpoint with its ranges keyed by tensor names some other exporter might write."""
    payload = read_checkpoint(path)
    ranges = json.loads(payload["int8"]["ranges"])
    ranges["data"] = {k.replace("pathways", "branch"): v for k, v in ranges["data"].items()}
    payload["int8"] = {**payload["int8"], "ranges": json.dumps(ranges)}
    out = str(tmp_path / "renamed.pt")
    write_payload(out, payload)
    return out


def test_ranges_of_another_export_are_refused_not_half_applied(tmp_path, caplog):
    path = _renamed(str(load_checkpoint("ferplus").path), tmp_path)
    loaded = load_checkpoint(path)
    model = fold_batchnorm(loaded.model)
    with pytest.raises(IncompatibleRanges, match="recalibrate|do not fit"):
        quantised_graph(export_onnx(model, 1, model.cfg.input_size), loaded.int8)
    with caplog.at_level(logging.WARNING):
        auto = EmotionClassifier([path], CPU)  # precision auto: the model still runs, in float
    assert auto.quantised == [False] and "running it in float" in caplog.text
    with pytest.raises(FerError, match="precision=fp32"):
        EmotionClassifier([path], CPU, precision="int8")


def test_int8_asks_for_ranges_and_onnxruntime(tiny_checkpoint, tmp_path):
    plain = str(tmp_path / "plain.pt")
    payload = read_checkpoint(tiny_checkpoint)
    payload.pop("int8", None)
    write_payload(plain, payload)
    assert EmotionClassifier([plain], CPU).quantised == [False]  # auto: nothing to run in 8 bits
    with pytest.raises(FerError, match="no INT8 ranges.*fer-ros calibrate"):
        EmotionClassifier([plain], CPU, precision="int8")
    with pytest.raises(FerError, match="ONNX Runtime"):
        EmotionClassifier(["ferplus"], CPU, runtime="torch", precision="int8")
    with pytest.raises(FerError, match="unknown classifier precision"):
        EmotionClassifier(["ferplus"], CPU, precision="int4")


def test_malformed_ranges_are_a_malformed_checkpoint(tmp_path):
    path = str(tmp_path / "bad.pt")
    write_payload(path, read_checkpoint(load_checkpoint("ferplus").path))
    set_int8(path, {"method": "minmax", "ranges": 42})
    with pytest.raises(FerError, match="malformed header.*int8"):
        load_checkpoint(path)
