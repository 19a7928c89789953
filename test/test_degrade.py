"""Training-time damage (--degrade): real faces damaged as a camera damages them, seeded, and a
training run that sees damaged faces still learns."""
import argparse

import numpy as np
import pytest
import torch
from test_training import args_for, make_folder_dataset

from fer_ros.errors import FerError
from fer_ros.learning import training
from fer_ros.learning.degrade import DAMAGE, degrade
from fer_ros.learning.epoch import faces
from fer_ros.learning.train_data import Tensors
from fer_ros.models.preprocess import Preprocessing, to_model_input
from fer_ros.perception.alignment import TEMPLATE


@pytest.fixture(scope="module")
def face_crops(astronaut):
    """The astronaut's face as 16 grey 48 px crops."""
    import cv2

    grey = cv2.cvtColor(astronaut[20:200, 150:300], cv2.COLOR_RGB2GRAY)
    return np.stack([cv2.resize(grey, (48, 48), interpolation=cv2.INTER_AREA)] * 16)


def test_probability_zero_keeps_every_face_and_one_damages_every_face(face_crops):
    gen = torch.Generator().manual_seed(0)
    assert degrade(face_crops, 0.0, gen, TEMPLATE) is face_crops
    out = degrade(face_crops, 1.0, gen, TEMPLATE)
    assert out.shape == face_crops.shape and out.dtype == np.uint8
    changed = [not np.array_equal(a, b) for a, b in zip(out, face_crops)]
    assert all(changed)
    assert np.array_equal(face_crops[0], face_crops[1])  # the input is not written to


def test_a_seed_repeats_the_damage_and_another_seed_differs(face_crops):
    a = degrade(face_crops, 0.5, torch.Generator().manual_seed(3), TEMPLATE)
    b = degrade(face_crops, 0.5, torch.Generator().manual_seed(3), TEMPLATE)
    c = degrade(face_crops, 0.5, torch.Generator().manual_seed(4), TEMPLATE)
    assert np.array_equal(a, b) and not np.array_equal(a, c)
    hit = sum(not np.array_equal(x, f) for x, f in zip(a, face_crops))
    assert 2 <= hit <= 14  # about half of 16


def test_each_kind_of_damage_changes_the_face_where_it_should(face_crops):
    face = face_crops[0]
    for name, damage, lo, hi in DAMAGE:
        out = damage(face, (lo + hi) / 2, np.random.default_rng(0), TEMPLATE)
        assert out.shape == face.shape and out.dtype == np.uint8, name
        diff = np.abs(out.astype(int) - face.astype(int))
        assert diff.mean() > 0.5, name
        if name == "sunglasses":  # the band covers the template eyes, not the chin
            eye_row = int(TEMPLATE[0, 1] * 48)
            assert diff[eye_row].mean() > diff[-3].mean()


def test_the_batch_is_damaged_before_preprocessing_only_when_asked(face_crops):
    pre = Preprocessing(input_size=48, channels=1, align_template=TEMPLATE.tolist())
    x = torch.from_numpy(to_model_input(face_crops, pre))
    idx = torch.arange(8)
    plain = Tensors(x, torch.zeros(16, dtype=torch.long), None, torch.ones(16, 3) / 3)
    args = argparse.Namespace(degrade=1.0)
    assert torch.equal(faces(plain, idx, pre, torch.Generator(), args), x[:8])
    damaged = Tensors(x, plain.y, None, plain.target, raw=face_crops)
    out = faces(damaged, idx, pre, torch.Generator().manual_seed(0), args)
    assert out.shape == x[:8].shape and not torch.allclose(out, x[:8])


def test_a_run_on_damaged_faces_still_learns_and_records_the_option(tmp_path):
    data = make_folder_dataset(tmp_path / "faces")
    result = training.main(args_for(data, tmp_path / "run", "--degrade", "0.5", "--epochs", "8"))
    losses = [h["train_loss"] for h in result["history"]]
    assert losses[-1] < losses[0] * 0.8, losses
    assert result["history"][-1]["val_accuracy"] > 0.6  # chance is 1/3
    assert torch.load(result["best"], weights_only=True)["meta"]["args"]["degrade"] == 0.5


def test_a_probability_outside_zero_to_one_is_refused(tmp_path):
    data = make_folder_dataset(tmp_path / "faces", n_per_class=4)
    with pytest.raises(FerError, match="--degrade is a probability"):
        training.main(args_for(data, tmp_path / "run", "--degrade", "1.5"))
