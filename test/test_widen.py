"""Growing a trained AMS-CNN wider keeps its function: the bundled model widened gives the same
logits, attention and fusion weights on a real face, and a warm restart with wider --widths
starts from exactly the checkpoint's answers."""
from dataclasses import replace

import cv2
import numpy as np
import pytest
import torch
from skimage import data
from test_training import args_for, make_folder_dataset

from fer_ros.errors import FerError
from fer_ros.learning import training
from fer_ros.learning.datasets import load_dataset
from fer_ros.models.ams_cnn import build_model
from fer_ros.models.checkpoint import load_checkpoint
from fer_ros.models.preprocess import to_model_input
from fer_ros.models.widen import widened_state


def test_the_bundled_model_grown_wider_answers_as_before_on_a_real_face():
    loaded = load_checkpoint("ferplus")
    face = cv2.cvtColor(data.astronaut()[30:230, 140:340], cv2.COLOR_RGB2GRAY)  # the astronaut's face
    x = torch.from_numpy(to_model_input(np.stack([face, face[:, ::-1].copy()]), loaded.preprocessing))
    wider = build_model(replace(loaded.model.cfg, widths=tuple(w * 3 // 2 for w in loaded.model.cfg.widths)))
    wider.load_state_dict(widened_state(loaded.model, wider))
    with torch.no_grad():
        before, after = loaded.model.eval()(x), wider.eval()(x)
    assert sum(p.numel() for p in wider.parameters()) > 2 * sum(p.numel() for p in loaded.model.parameters())
    for a, b in zip(before, after):  # logits, attention map, fusion weights
        assert torch.allclose(a, b, atol=1e-4)
    narrower = build_model(replace(loaded.model.cfg, widths=(16, 64, 128)))
    with pytest.raises(FerError, match="only wider widths"):
        widened_state(loaded.model, narrower)


def test_a_warm_restart_with_wider_widths_starts_from_the_checkpoints_answers(tmp_path):
    faces = make_folder_dataset(tmp_path / "faces", n_per_class=12)
    small = training.main(args_for(faces, tmp_path / "small", "--epochs", "2"))["best"]  # tiny: widths 8, 16
    args = args_for(faces, tmp_path / "wide", "--init", small, "--widths", "12,24")
    old = load_checkpoint(small)
    model = build_model(replace(old.model.cfg, widths=(12, 24)))
    training.init_weights(model, small, old.class_names, args)
    x = torch.from_numpy(to_model_input(load_dataset(str(faces)).images[:6], old.preprocessing))
    with torch.no_grad():
        assert torch.allclose(model.eval()(x).logits, old.model.eval()(x).logits, atol=1e-4)
    wide = training.main(args_for(faces, tmp_path / "wide", "--init", small, "--widths", "12,24", "--epochs", "1"))
    assert load_checkpoint(wide["best"]).model.cfg.widths == (12, 24)
    with pytest.raises(FerError, match="different model"):
        training.main(args_for(faces, tmp_path / "other", "--init", small, "--widths", "12,24,48"))
