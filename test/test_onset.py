"""Onset sequences (neutral -> expression, held), their replay through the smoother, and
ensembles whose members were trained on different label sets."""
import json

import numpy as np
import pytest
import torch
from conftest import FER_NPZ, needs

from fer_ros.cli import main
from fer_ros.config import SmootherConfig
from fer_ros.errors import FerError
from fer_ros.learning.datasets import FER2013_CLASSES, FaceDataset
from fer_ros.learning.onset import OnsetTiming, make_sequences, replay
from fer_ros.models.inference import EmotionClassifier, to_classes

NEUTRAL = FER2013_CLASSES.index("neutral")


def faces_dataset(per_class: int = 4) -> FaceDataset:
    """Flat grey faces whose brightness encodes the class: class k is 30 * k + 20."""
    labels = np.repeat(np.arange(7), per_class)
    images = np.stack([np.full((48, 48), 30 * k + 20, np.uint8) for k in labels])
    return FaceDataset(images, labels, list(FER2013_CLASSES), source="synthetic")


def oracle(onset) -> np.ndarray:
    """Probabilities a perfect classifier would give: the share of the expression in the cross-fade."""
    n_neutral, n_ramp, n_hold = onset.timing.frames()
    s, t = onset.frames.shape[:2]
    w = np.concatenate([np.zeros(n_neutral), np.arange(1, n_ramp + 1) / (n_ramp + 1), np.ones(n_hold)])
    probs = np.zeros((s, t, 7))
    probs[:, :, NEUTRAL] = 1 - w
    probs[np.arange(s), :, onset.targets] += w
    return probs


def test_sequences_fade_from_neutral_into_the_expression_and_repeat_for_a_seed():
    ds = faces_dataset()
    timing = OnsetTiming(fps=10, neutral_s=1.0, ramp_s=0.3, hold_s=2.0, jitter_px=0.0, noise=0.0)
    onset = make_sequences(ds, per_class=2, timing=timing, seed=3)
    assert onset.frames.shape == (12, 10 + 3 + 20, 48, 48)  # 6 expressive classes x 2
    assert NEUTRAL not in onset.targets and sorted(set(onset.targets)) == [0, 1, 2, 3, 4, 5]
    first, last = onset.frames[:, 0, 24, 24], onset.frames[:, -1, 24, 24]
    assert np.all(first == 30 * NEUTRAL + 20)
    assert np.array_equal(last, 30 * onset.targets + 20)
    assert np.array_equal(make_sequences(ds, 2, timing, seed=3).frames, onset.frames)
    jittered = make_sequences(ds, 2, OnsetTiming(fps=10, hold_s=2.0), seed=3).frames
    assert not np.array_equal(jittered, onset.frames)


def test_a_data_set_without_neutral_faces_is_refused():
    ds = faces_dataset()
    keep = ds.labels != NEUTRAL
    with pytest.raises(FerError, match="neutral"):
        make_sequences(FaceDataset(ds.images[keep], ds.labels[keep], ["a", "b", "c", "d", "e", "f", "g"]), 2, OnsetTiming())


def test_replay_rewards_a_quick_smoother_and_exposes_a_slow_one():
    onset = make_sequences(faces_dataset(), 2, OnsetTiming(fps=30, hold_s=3.0))
    probs = oracle(onset)
    quick = replay(probs, onset, SmootherConfig(window=0.2, hysteresis=0.2, confidence_threshold=0.4), FER2013_CLASSES)
    assert quick.right_at_1s == 1.0 and quick.right_at_end == 1.0 and quick.false_alarms == 0.0
    assert quick.median_delay_s < 0.5 and quick.raw_right_at_peak == 1.0
    slow = replay(probs, onset, SmootherConfig(window=2.0, hysteresis=1.0, confidence_threshold=0.6), FER2013_CLASSES)
    assert slow.right_at_1s < 0.5 and slow.median_delay_s > 1.0
    assert slow.right_at_end == 1.0  # it gets there, late


def test_members_with_different_label_sets_vote_in_the_first_members_classes(astronaut):
    both = EmotionClassifier(["ferplus", "fer2013"], torch.device("cpu"), mirror="false")
    assert len(both.class_names) == 8
    crop = np.ascontiguousarray(np.resize(astronaut[40:200, 150:310], (64, 64, 3)))
    p = both.classify([crop])[0].probabilities
    assert p.shape == (8,) and abs(float(p.sum()) - 1.0) < 1e-5
    # FER2013 probabilities seen in FER+ order: contempt gets no vote from that member.
    mapping = both._maps[1]
    seven = np.array([[0.1, 0.1, 0.1, 0.4, 0.1, 0.1, 0.1]], np.float32)
    eight = to_classes(seven, mapping, 8)[0]
    assert eight[both.class_names.index("contempt")] == 0.0
    assert eight[both.class_names.index("happiness")] == pytest.approx(0.4)


@needs(FER_NPZ, "FER2013 npz")
def test_onset_command_on_real_faces_with_the_bundled_model(capsys):
    assert main(["onset", "--data", FER_NPZ, "--split", "PublicTest", "--per-class", "2", "--hold", "1",
                 "--set", "smoother.window=0.2", "--set", "smoother.hysteresis=0.2", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["sequences"] == 12 and report["smoother"]["window"] == 0.2
    for key in ("right_at_1s", "uncertain_at_1s", "right_at_end", "false_alarms", "raw_right_at_peak"):
        assert 0.0 <= report[key] <= 1.0
    assert report["labels"] == "fer2013" and "in 8 bits" in report["classifier"]
    # the FER+ majority picks the faces: 8 classes, so contempt sequences too
    assert main(["onset", "--data", FER_NPZ, "--split", "PublicTest", "--labels", "ferplus", "--per-class", "2",
                 "--hold", "1", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["sequences"] == 14 and report["labels"] == "ferplus" and "contempt" in report["per_class_right_at_1s"]
    assert main(["onset", "--data", FER_NPZ, "--per-class", "0"]) == 2
