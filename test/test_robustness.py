"""The perturbation suite: seeded, shape-keeping, identity at severity zero; `evaluate --robustness` end to end."""
from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
from conftest import FER_NPZ, needs

from fer_ros.errors import FerError
from fer_ros.learning.robustness import BY_NAME, SUITE, occlude_eyes, occlude_mouth, perturb
from fer_ros.perception.alignment import TEMPLATE

# severity that leaves a face as it is, where the perturbation has one (a JPEG round trip always loses a little)
IDENTITY = {"occlusion": 0.0, "sunglasses": 0.0, "mask": 0.0, "gamma_bright": 1.0, "gamma_dark": 1.0, "contrast": 1.0,
            "shadow": 0.0, "rotation": 0.0, "blur": 0.0, "noise": 0.0, "low_resolution": 48.0}


@pytest.fixture(scope="module")
def faces(astronaut) -> np.ndarray:
    """Real faces: the astronaut's face, grey and RGB-sized 48 px crops at a few offsets."""
    crops = [astronaut[40 + d:200 + d, 150 + d:310 + d] for d in (0, 8, 16)]
    return np.stack([cv2.cvtColor(cv2.resize(c, (48, 48), interpolation=cv2.INTER_AREA), cv2.COLOR_RGB2GRAY) for c in crops])


@pytest.mark.parametrize("name", [p.name for p in SUITE])
def test_each_perturbation_is_seeded_changes_the_face_and_keeps_its_layout(name, faces):
    rgb = np.repeat(faces[..., None], 3, 3)
    for level in range(len(BY_NAME[name].levels)):
        for batch in (faces, rgb):
            a, b = perturb(batch, name, level, seed=3), perturb(batch, name, level, seed=3)
            assert a.shape == batch.shape and a.dtype == np.uint8
            assert np.array_equal(a, b), "not reproducible for one seed"
            assert all(not np.array_equal(x, y) for x, y in zip(a, batch)), "a face came back unchanged"
        # one face's result does not depend on the others in the batch
        assert np.array_equal(perturb(faces[:1], name, level, seed=3)[0], perturb(faces, name, level, seed=3)[0])


def test_random_perturbations_differ_between_seeds(faces):
    for name in ("occlusion", "noise"):
        assert not np.array_equal(perturb(faces, name, 1, seed=0), perturb(faces, name, 1, seed=1))


@pytest.mark.parametrize("name", sorted(IDENTITY))
def test_identity_severity_is_a_no_op(name, faces):
    rng = np.random.default_rng(0)
    for face in faces:
        assert np.array_equal(BY_NAME[name].apply(face, IDENTITY[name], rng, TEMPLATE), face)


def test_occlusion_covers_the_asked_share_and_bands_sit_on_eyes_and_mouth(faces):
    face = np.full((48, 48), 128, np.uint8)
    for level, share in enumerate(BY_NAME["occlusion"].levels):
        covered = [np.mean(perturb(np.stack([face] * 20), "occlusion", level)[i] != 128) for i in range(20)]
        assert abs(np.median(covered) - share) < 0.03
    eyes_row, mouth_row = int(TEMPLATE[0, 1] * 48), int(TEMPLATE[3, 1] * 48)
    sunglasses, mask = occlude_eyes(face, 0.15, None, TEMPLATE), occlude_mouth(face, 0.15, None, TEMPLATE)
    assert np.all(sunglasses[eyes_row, 12:36] < 50) and np.all(sunglasses[mouth_row] == 128)
    assert np.all(mask[mouth_row, 14:34] > 180) and np.all(mask[eyes_row] == 128)


def test_bad_requests_are_named(faces):
    with pytest.raises(FerError, match="unknown perturbation 'fog'"):
        perturb(faces, "fog", 0)
    with pytest.raises(FerError, match="levels 0..1"):
        perturb(faces, "rotation", 2)


@needs(FER_NPZ, "FER2013 npz")
def test_evaluate_robustness_end_to_end_on_real_faces(tmp_path, capsys):
    from fer_ros.cli import main

    data = np.load(FER_NPZ)
    test_rows = np.flatnonzero(data["usage"] == "PublicTest")
    labels = data["labels"][test_rows]
    rows = np.concatenate([test_rows[labels == c][:5] for c in range(7)])  # 35 faces, every class
    small = tmp_path / "small.npz"
    np.savez(small, images=data["images"][rows], labels=data["labels"][rows], usage=data["usage"][rows],
             ferplus_votes=data["ferplus_votes"][rows])
    out = tmp_path / "out"
    assert main(["evaluate", "--data", str(small), "--robustness", "--out", str(out), "--compare", "ferplus",
                 "--labels", "fer2013"]) == 0
    printed = capsys.readouterr().out
    assert "robustness on 35 faces" in printed and "low_resolution" in printed
    report = json.loads((out / "robustness.json").read_text())
    assert report["faces"] == 35 and len(report["conditions"]) == sum(len(p.levels) for p in SUITE)
    for row in report["conditions"]:
        assert 0 <= row["accuracy"] <= 1 and abs(report["clean"]["accuracy"] - row["accuracy"] - row["accuracy_drop"]) < 1e-9
        assert 0 <= row["compare"]["p_value"] <= 1
    plot = cv2.imread(str(out / "robustness.png"))
    assert plot is not None and plot.shape[0] > 200 and plot.std() > 5
    again = tmp_path / "again"
    assert main(["evaluate", "--data", str(small), "--robustness", "--out", str(again), "--json", "--labels", "fer2013"]) == 0
    capsys.readouterr()
    second = json.loads((again / "robustness.json").read_text())
    assert [r["accuracy"] for r in second["conditions"]] == [r["accuracy"] for r in report["conditions"]]
