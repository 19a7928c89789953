"""Calibration: temperature scaling fixes an over-confident classifier; the temperature travels in the checkpoint."""
import numpy as np
import pytest

from fer_ros.errors import FerError
from fer_ros.models.ams_cnn import build_model, config_for
from fer_ros.models.calibration import fit_temperature, reliability, softmax
from fer_ros.models.checkpoint import BUNDLED, load_checkpoint, resolve_weights, save_checkpoint, set_temperature
from fer_ros.models.preprocess import Preprocessing


def overconfident(n=6000, c=7, seed=0):
    """Labels drawn from softmax(z) (so softmax(z) is calibrated), reported as logits 3z: over-confident."""
    rng = np.random.default_rng(seed)
    z = rng.normal(0, 1.5, (n, c))
    p = softmax(z).astype(np.float64)
    labels = np.array([rng.choice(c, p=row / row.sum()) for row in p])
    return z * 3.0, labels  # the factor 3 is the over-confidence temperature scaling must undo


def test_temperature_scaling_lowers_ece_and_keeps_accuracy():
    logits, labels = overconfident()
    before = reliability(softmax(logits), labels)
    t = fit_temperature(logits, labels)
    after = reliability(softmax(logits, t), labels)
    assert 2.5 < t < 3.5, t  # it found the over-confidence
    assert before["ece"] > 0.15 and after["ece"] < 0.03, (before["ece"], after["ece"])
    assert (softmax(logits, t).argmax(1) == softmax(logits).argmax(1)).all()
    assert sum(after["count"]) == len(labels) and after["bins"] == 15


def test_ece_is_zero_for_a_perfectly_calibrated_bin_and_one_for_a_confident_wrong_model():
    probs = np.tile([0.9, 0.1], (10, 1))
    labels = np.array([0] * 9 + [1])  # 90 % right at confidence 0.9
    assert reliability(probs, labels)["ece"] == pytest.approx(0.0, abs=1e-9)
    assert reliability(np.tile([1.0, 0.0], (5, 1)), np.ones(5, int))["ece"] == pytest.approx(1.0)


def test_fit_temperature_stays_finite_when_the_best_temperature_is_a_bound():
    """A barely trained model, sure of one class while the labels are spread: the best T is +infinity.
    The LBFGS fit returned NaN here and crashed the end of a short training run."""
    rng = np.random.default_rng(0)
    logits = np.tile([8.0, 0, 0, 0, 0, 0, 0], (60, 1)) + rng.normal(0, 0.01, (60, 7))
    labels = rng.integers(0, 7, 60)
    t = fit_temperature(logits, labels)
    assert np.isfinite(t) and t == pytest.approx(20.0, rel=1e-3)
    perfect = np.eye(7)[labels] * 10  # always right: the sharpest temperature allowed
    assert 0.05 <= fit_temperature(perfect, labels) < 0.1


def test_fit_temperature_refuses_no_faces():
    with pytest.raises(FerError, match="zero faces"):
        fit_temperature(np.zeros((0, 7)), np.zeros(0, int))


def test_checkpoint_temperature_round_trips(tmp_path):
    model = build_model(config_for("tiny", num_classes=3))
    path = str(tmp_path / "m.pt")
    save_checkpoint(path, model, Preprocessing(input_size=32), ["a", "b", "c"], {"history": []})
    assert load_checkpoint(path).temperature == 1.0
    set_temperature(path, 1.7, {"val_ece_before": 0.1, "val_ece_after": 0.02})
    loaded = load_checkpoint(path)
    assert loaded.temperature == pytest.approx(1.7)
    assert loaded.meta["calibration"]["val_ece_after"] == 0.02
    with pytest.raises(FerError, match="temperature"):
        set_temperature(path, -1.0)


def test_checkpoint_says_whether_it_runs_mirrored_and_auto_follows_it(tmp_path):
    from fer_ros.models.checkpoint import read_checkpoint, use_mirror, write_payload

    model = build_model(config_for("tiny", num_classes=3))
    path = str(tmp_path / "m.pt")
    save_checkpoint(path, model, Preprocessing(input_size=32), ["a", "b", "c"], {"history": []})
    assert load_checkpoint(path).mirror is False  # older checkpoints have no key: one pass
    set_temperature(path, 1.2, mirror=True)
    loaded = load_checkpoint(path)
    assert loaded.mirror is True and loaded.temperature == pytest.approx(1.2)
    assert [use_mirror(mode, loaded) for mode in ("auto", "true", "false", True, False)] == [True, True, False, True, False]
    with pytest.raises(FerError, match="auto, true, false"):
        use_mirror("sometimes", loaded)
    payload = read_checkpoint(path)
    payload["mirror"] = "yes"
    write_payload(path, payload)
    with pytest.raises(FerError, match="malformed header.*mirror"):
        load_checkpoint(path)


def test_temperature_changes_confidence_not_the_label(tmp_path):
    import torch

    from fer_ros.models.inference import EmotionClassifier

    model = build_model(config_for("tiny", num_classes=3))
    path = str(tmp_path / "m.pt")
    save_checkpoint(path, model, Preprocessing(input_size=32), ["a", "b", "c"], {"history": []})
    faces = [np.random.default_rng(i).integers(0, 255, (32, 32, 3), dtype=np.uint8) for i in range(4)]
    plain = EmotionClassifier([path], torch.device("cpu")).classify(faces)
    set_temperature(path, 5.0)
    hot = EmotionClassifier([path], torch.device("cpu")).classify(faces)
    for p, h in zip(plain, hot):
        assert p.probabilities.argmax() == h.probabilities.argmax()
        assert h.probabilities.max() <= p.probabilities.max() + 1e-6
        assert h.probabilities.std() < p.probabilities.std()


def test_named_weights_resolve_and_paths_pass_through(tmp_path):
    assert resolve_weights(None) == resolve_weights("ferplus")  # the default
    assert resolve_weights("fer2013").endswith(BUNDLED["fer2013"])
    assert resolve_weights(str(tmp_path / "x.pt")) == str(tmp_path / "x.pt")
    assert load_checkpoint("fer2013").class_names[3] == "happy"
