"""Classifier inference: mirror test-time augmentation averages the two views."""
import numpy as np
import torch

from fer_ros.models.checkpoint import load_checkpoint
from fer_ros.models.inference import EmotionClassifier, class_probabilities


def test_mirror_averages_face_and_its_mirror():
    model = load_checkpoint(None).model.eval()  # the bundled, trained model: views really differ
    x = torch.rand(3, 1, 48, 48, generator=torch.Generator().manual_seed(0)) * 4 - 2
    with torch.no_grad():
        plain = class_probabilities(model, x)
        flipped = class_probabilities(model, x.flip(-1))
        mirrored = class_probabilities(model, x, mirror=True)
    assert not torch.allclose(plain.probabilities, flipped.probabilities, atol=1e-4)  # asymmetric: the views disagree
    torch.testing.assert_close(mirrored.probabilities, (plain.probabilities + flipped.probabilities) / 2, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(mirrored.attention, plain.attention, atol=1e-5, rtol=1e-4)  # of the unflipped view
    torch.testing.assert_close(mirrored.fusion_weights, plain.fusion_weights, atol=1e-5, rtol=1e-4)


def test_classifier_mirrors_each_model_as_its_checkpoint_says(tmp_path):
    """classifier.mirror auto follows each checkpoint: both bundled models gained from their mirror on
    their validation faces (ferplus 0.6 points, fer2013 1.0) and run mirrored; a checkpoint that says
    no runs one pass; true / false override every model."""
    from fer_ros.models.checkpoint import read_checkpoint, resolve_weights, write_payload

    cpu = torch.device("cpu")
    assert load_checkpoint("ferplus").mirror and load_checkpoint("fer2013").mirror
    assert EmotionClassifier(["ferplus", "fer2013"], cpu, runtime="torch").mirror == [True, True]
    assert EmotionClassifier(["ferplus"], cpu, mirror="false", runtime="torch").mirror == [False]
    one_pass = str(tmp_path / "one_pass.pt")
    write_payload(one_pass, {**read_checkpoint(resolve_weights("fer2013")), "mirror": False})
    assert EmotionClassifier([one_pass, "ferplus"], cpu, runtime="torch").mirror == [False, True]
    assert EmotionClassifier([one_pass], cpu, mirror=True, runtime="torch").mirror == [True]


def test_classifier_mirror_is_symmetric_in_the_face():
    """With mirror on, a face and its mirror image get (nearly) the same probabilities (traced CPU path).

    Not exactly: CLAHE runs before the flip and its tile interpolation is not mirror-exact."""
    rng = np.random.default_rng(0)
    face = rng.integers(0, 255, (48, 48, 3), dtype=np.uint8)
    clf = EmotionClassifier(["fer2013"], torch.device("cpu"), mirror=True)
    a, b = clf.classify([face, np.ascontiguousarray(face[:, ::-1])])
    np.testing.assert_allclose(a.probabilities, b.probabilities, atol=0.01)
    plain = EmotionClassifier(["fer2013"], torch.device("cpu"), mirror=False).classify([face, np.ascontiguousarray(face[:, ::-1])])
    # one pass is not symmetric (the fer2013 model, distilled from mirrored teachers, is close: 0.03 here)
    assert np.abs(plain[0].probabilities - plain[1].probabilities).max() > 5 * np.abs(a.probabilities - b.probabilities).max()
