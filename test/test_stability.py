"""Per-shot label stability: counted from frame results, split at the cuts."""
import numpy as np
import pytest

from fer_ros.errors import FerError
from fer_ros.measure.stability import parse_cuts, shot_stability
from fer_ros.types import UNCERTAIN, FaceResult, FrameResult


def face(track, label, raw, conf):
    z = np.zeros(4, np.float32)
    return FaceResult(track, z, np.zeros((5, 2), np.float32), 0.99, label, conf, z, raw, z, False, 0.0, True)


def frame(i, faces):
    return FrameResult(i, i / 24.0, (640, 360), ["happy", "sad"], faces)


def test_flips_uncertain_share_and_confidence_per_shot():
    frames = [frame(0, [])]  # shot 0: no face
    labels = ["happy", "happy", UNCERTAIN, "happy", "sad", "sad"]
    raws = ["happy", "sad", "happy", "sad", "sad", "happy"]
    frames += [frame(1 + k, [face(1, labels[k], raws[k], 0.5 + 0.05 * k)]) for k in range(6)]
    frames += [frame(7, [face(2, "sad", "sad", 0.9)])]  # shot 2: a new person
    s0, s1, s2 = shot_stability(frames, parse_cuts("1,7"), fps=24.0)
    assert (s0.face_frames, s0.uncertain_fraction, s0.label_flips_per_minute) == (0, 0.0, 0.0)
    assert (s1.first_frame, s1.last_frame, s1.face_frames) == (1, 6, 6)
    assert s1.uncertain_fraction == pytest.approx(1 / 6)
    assert s1.mean_confidence == pytest.approx(np.mean([0.5 + 0.05 * k for k in range(6)]))
    minutes = 6 / 24 / 60
    assert s1.label_flips_per_minute == pytest.approx(3 / minutes)  # happy>unc, unc>happy, happy>sad
    assert s1.raw_flips_per_minute == pytest.approx(4 / minutes)
    assert s1.labels == {"happy": 3, UNCERTAIN: 1, "sad": 2}
    assert s2.label_flips_per_minute == 0.0 and s2.mean_confidence == pytest.approx(0.9)


def test_a_new_track_is_not_a_flip():
    frames = [frame(0, [face(1, "happy", "happy", 0.8)]), frame(1, [face(2, "sad", "sad", 0.8)])]
    assert shot_stability(frames, [], 24.0)[0].label_flips_per_minute == 0.0


@pytest.mark.parametrize("text", ["a,b", "0,5", "-3"])
def test_bad_cuts_are_refused(text):
    with pytest.raises(FerError, match="cuts"):
        parse_cuts(text)
