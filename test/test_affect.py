"""Valence and arousal from class probabilities: the published norms, both label sets, and the pipeline."""
import numpy as np
import pytest

from fer_ros.emotions import EMOTIONS, canonical_emotion
from fer_ros.learning.datasets import FER2013_CLASSES, FERPLUS_CLASSES
from fer_ros.perception.affect import NORMS, AffectEstimator, coordinates


def one_hot(names, name):
    p = np.zeros(len(names), np.float32)
    p[names.index(name)] = 1.0
    return p


def test_every_canonical_class_has_norms_on_the_circumplex_quadrant_it_belongs_to():
    assert set(NORMS) == set(EMOTIONS)
    v = {n: coordinates(n) for n in EMOTIONS}
    assert all(-1 <= a <= 1 and -1 <= b <= 1 for a, b in v.values())
    assert v["happy"][0] > 0.5 and v["happy"][1] > 0  # pleasant, aroused
    for name in ("angry", "disgust", "fear", "sad", "contempt"):
        assert v[name][0] < -0.3, name  # unpleasant
    assert v["angry"][1] > v["fear"][1] > v["sad"][1]  # anger most aroused, sadness least
    assert v["surprise"][0] > 0 and v["surprise"][1] > 0
    assert abs(v["neutral"][0]) < 0.2 and v["neutral"][1] < 0  # middling valence, calm


@pytest.mark.parametrize("names", [FER2013_CLASSES, FERPLUS_CLASSES], ids=["fer2013", "ferplus"])
def test_a_certain_class_lands_on_its_own_coordinates_whatever_the_spelling(names):
    estimate = AffectEstimator(names)
    assert estimate.unknown == []
    for name in names:
        a = estimate(one_hot(names, name))
        assert (a.valence, a.arousal) == pytest.approx(coordinates(name), abs=1e-6), name
    happy = "happy" if "happy" in names else "happiness"
    assert estimate(one_hot(names, happy)).valence == pytest.approx((8.47 - 5) / 4)


def test_mixed_probabilities_give_the_weighted_mean_and_unknown_classes_are_left_out():
    names = ["happy", "sad", "boredom"]  # a model with a class the norms do not cover
    estimate = AffectEstimator(names)
    assert estimate.unknown == ["boredom"]
    a = estimate(np.array([0.3, 0.3, 0.4]))  # boredom's share is dropped, the rest renormalised
    hv, ha = coordinates("happy")
    sv, sa = coordinates("sad")
    assert (a.valence, a.arousal) == pytest.approx(((hv + sv) / 2, (ha + sa) / 2), abs=1e-6)
    assert estimate(np.array([0.0, 0.0, 1.0])) == type(a)(0.0, 0.0)
    with pytest.raises(ValueError, match="2 probabilities for 3 classes"):
        estimate(np.array([0.5, 0.5]))


def test_the_pipeline_reports_the_estimate_of_the_smoothed_probabilities(astronaut):
    from fer_ros.config import PipelineConfig
    from fer_ros.pipeline import FramePipeline

    config = PipelineConfig()
    config.detector.device = "cpu"
    pipeline = FramePipeline(config)  # the bundled model on a real, smiling face
    for i in range(6):
        result = pipeline.process(astronaut, i * 0.2)
    face = result.faces[0]
    expected = AffectEstimator(result.class_names)(face.probabilities)
    assert (face.valence, face.arousal) == pytest.approx((expected.valence, expected.arousal), abs=1e-6)
    assert canonical_emotion(face.label) == "happy" and face.valence > 0.5
    assert face.to_json(result.class_names)["valence"] == round(face.valence, 4)
