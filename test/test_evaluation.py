"""Evaluation metrics on fixtures with known answers, and `fer-ros evaluate --json`."""
import json
import os

import cv2
import numpy as np
import pytest
from conftest import FER_NPZ, REPO, needs
from test_training import make_folder_dataset

from fer_ros.cli import main as cli
from fer_ros.errors import FerError
from fer_ros.learning.datasets import FER2013_TO_FERPLUS
from fer_ros.learning.evaluation import classification_metrics, mcnemar, stratified_folds

MODEL_CARD_FLOOR = 0.62  # the bundled model scores 67 % or more at the default; FER2013 chance (always happy) is 25 %
FERPLUS_CARD_FLOOR = 0.80  # the bundled FER+ model scores 83 % at the default (one pass); always neutral is 37.6 %


def test_metrics_match_hand_computed_values():
    y_true = np.array([0, 0, 0, 1, 1, 2])
    y_pred = np.array([0, 0, 1, 1, 2, 2])
    m = classification_metrics(y_true, y_pred, ["a", "b", "c"])
    assert m["accuracy"] == pytest.approx(4 / 6)
    assert m["confusion_matrix"] == [[2, 1, 0], [0, 1, 1], [0, 0, 1]]
    assert m["per_class"]["a"] == pytest.approx({"precision": 1.0, "recall": 2 / 3, "f1": 0.8, "support": 3})
    assert m["per_class"]["b"]["precision"] == pytest.approx(0.5)
    assert m["macro_f1"] == pytest.approx((0.8 + 0.5 + 2 / 3) / 3)


def test_mcnemar_and_folds():
    a = np.array([True] * 10 + [False] * 10)
    assert mcnemar(a, a)["p_value"] == 1.0
    r = mcnemar(np.ones(20, bool), np.zeros(20, bool))
    assert r["a_only_correct"] == 20 and r["p_value"] < 1e-5
    labels = np.array([0] * 10 + [1] * 5)
    folds = stratified_folds(labels, 5, 0)
    assert sorted(np.concatenate(folds).tolist()) == list(range(15))
    assert all((labels[f] == 1).sum() == 1 for f in folds)


def test_evaluate_cli_json_and_files(tmp_path, capsys, tiny_checkpoint):
    data = make_folder_dataset(tmp_path / "faces", n_per_class=8)
    # the tiny checkpoint has the 7 FER2013 classes, the folder has 3: a clear error
    assert cli(["evaluate", "--data", str(data), "--weights", tiny_checkpoint]) == 2
    err = capsys.readouterr().err
    assert "'" + str(data / "bar") + "'" in err and "match none of the model's classes" in err
    assert cli(["train", "--data", str(data), "--preset", "tiny", "--epochs", "1", "--out", str(tmp_path / "m"),
                "--device", "cpu"]) == 0
    capsys.readouterr()
    assert cli(["evaluate", "--data", str(data), "--weights", str(tmp_path / "m" / "best.pt"), "--json",
                "--out", str(tmp_path / "rep"), "--compare", str(tmp_path / "m" / "last.pt")]) == 0
    report = json.loads(capsys.readouterr().out)
    for key in ("accuracy", "macro_f1", "per_class", "confusion_matrix", "class_names", "performance", "comparison"):
        assert key in report
    assert sum(map(sum, report["confusion_matrix"])) == 24
    assert (tmp_path / "rep" / "evaluation_confusion.png").stat().st_size > 1000


def write_class_folders(root, counts: dict) -> str:
    rng = np.random.default_rng(0)
    for name, n in counts.items():
        os.makedirs(root / name, exist_ok=True)
        for i in range(n):
            cv2.imwrite(str(root / name / f"{i}.png"), rng.integers(0, 256, (48, 48), dtype=np.uint8))
    return str(root)


def ferplus_checkpoint(path) -> str:
    from fer_ros.learning.datasets import FERPLUS_CLASSES
    from fer_ros.models.ams_cnn import build_model, config_for
    from fer_ros.models.checkpoint import save_checkpoint
    from fer_ros.models.preprocess import Preprocessing

    save_checkpoint(str(path), build_model(config_for("tiny", input_size=48, num_classes=8)),
                    Preprocessing(input_size=48, channels=1), FERPLUS_CLASSES)
    return str(path)


def test_evaluate_maps_folder_names_to_the_model_classes_and_reports_absent_ones(tmp_path, capsys, tiny_checkpoint):
    # AffectNet-style names, a subset of the FER2013 classes, mixed case
    data = write_class_folders(tmp_path / "affectnet", {"anger": 3, "Happiness": 4, "sadness": 2, "surprised": 1})
    assert cli(["evaluate", "--data", data, "--weights", tiny_checkpoint, "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["class_names"] == ["angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"]
    support = {name: v["support"] for name, v in report["per_class"].items()}
    assert support == {"angry": 3, "disgust": 0, "fear": 0, "happy": 4, "sad": 2, "surprise": 1, "neutral": 0}
    assert report["absent_classes"] == ["disgust", "fear", "neutral"]
    assert report["class_map"] == {"anger": "angry", "Happiness": "happy", "sadness": "sad", "surprised": "surprise"}
    assert cli(["evaluate", "--data", data, "--weights", tiny_checkpoint]) == 0
    assert "no faces of: disgust, fear, neutral" in capsys.readouterr().out

    # CK+ names (no neutral) against a FER+ model, whose classes are spelled the other way
    ckplus = write_class_folders(tmp_path / "ckplus", {n: 1 for n in ["anger", "contempt", "disgust", "fear", "happy",
                                                                     "sadness", "surprise"]})
    assert cli(["evaluate", "--data", ckplus, "--weights", ferplus_checkpoint(tmp_path / "ferplus.pt"), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["absent_classes"] == ["neutral"] and report["samples"] == 7
    assert report["class_map"] == {"happy": "happiness"}
    assert report["per_class"]["contempt"]["support"] == 1 and report["per_class"]["neutral"]["support"] == 0

    # a folder no class matches is refused by name, nothing is scored
    write_class_folders(tmp_path / "affectnet", {"train": 1})
    assert cli(["evaluate", "--data", data, "--weights", tiny_checkpoint]) == 2
    err = capsys.readouterr().err
    assert "'" + os.path.join(data, "train") + "'" in err and "--split" in err and len(err.splitlines()) == 1


def test_relabel_by_name_keeps_votes_and_refuses_only_classes_with_faces():
    from fer_ros.learning.datasets import FER2013_CLASSES, FERPLUS_CLASSES, FaceDataset, relabel

    votes = np.full((8, 8), 1 / 8, np.float32)
    votes[1] = np.eye(8)[7]  # a "happiness" face whose annotators all said contempt
    ferplus = FaceDataset(np.zeros((8, 48, 48), np.uint8), np.arange(8), list(FERPLUS_CLASSES), source="fer.npz",
                          soft_labels=votes)
    with pytest.raises(FerError, match=r"class names 'contempt' match none of the model's classes.*--labels"):
        relabel(ferplus, FER2013_CLASSES)  # one contempt face: it could only be scored wrong
    out, absent = relabel(ferplus.subset(np.arange(7)), FER2013_CLASSES)
    assert [out.class_names[i] for i in out.labels] == ["neutral", "happy", "surprise", "sad", "angry", "disgust", "fear"]
    assert absent == [] and np.allclose(out.soft_labels.sum(1), 1.0)
    assert out.soft_labels[1].tolist() == np.eye(7)[3].tolist()  # its only votes were dropped: its own label
    assert np.allclose(out.soft_labels[0], 1 / 7)


def write_fer_npz(path, usage, labels, seed=0):
    """A small file in the shared FER2013 npz layout (images, labels, usage, index, ferplus_votes)."""
    rng = np.random.default_rng(seed)
    n = len(labels)
    votes = np.zeros((n, 10), np.uint8)
    votes[np.arange(n), FER2013_TO_FERPLUS[np.asarray(labels) % 7]] = 10  # unanimous annotators
    np.savez(path, images=rng.integers(0, 256, (n, 48, 48), dtype=np.uint8), labels=np.asarray(labels, np.int64),
             usage=np.array(usage), index=np.arange(n, dtype=np.int64), ferplus_votes=votes)
    return str(path)


def test_evaluate_npz_without_split_uses_every_row(tmp_path, capsys, tiny_checkpoint):
    usage = ["Training"] * 12 + ["PublicTest"] * 5
    data = write_fer_npz(tmp_path / "fer.npz", usage, [i % 7 for i in range(17)])
    assert cli(["evaluate", "--data", data, "--weights", tiny_checkpoint, "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["samples"] == 17 and sum(map(sum, report["confusion_matrix"])) == 17
    assert report["class_names"][0] == "angry" and len(report["per_class"]) == 7
    assert cli(["evaluate", "--data", data, "--split", "PublicTest", "--weights", tiny_checkpoint, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["samples"] == 5
    assert cli(["evaluate", "--data", data, "--split", "PrivateTest", "--weights", tiny_checkpoint]) == 2
    assert "splits there: PublicTest, Training" in capsys.readouterr().err


def test_evaluate_fuses_an_ensemble_like_the_pipeline(tmp_path, capsys, tiny_checkpoint):
    import torch

    from fer_ros.learning.datasets import load_dataset
    from fer_ros.learning.evaluation import evaluate_checkpoint
    from fer_ros.models.checkpoint import load_checkpoint
    from fer_ros.models.inference import fuse

    data = write_fer_npz(tmp_path / "fer.npz", ["PublicTest"] * 21, [i % 7 for i in range(21)])
    ds, cpu = load_dataset(data, "PublicTest", "fer2013"), torch.device("cpu")
    bundled, tiny = load_checkpoint("fer2013"), load_checkpoint(tiny_checkpoint)
    _, p_bundled = evaluate_checkpoint(bundled, ds, cpu)
    _, p_tiny = evaluate_checkpoint(tiny, ds, cpu)
    for rule in ("sum", "product"):
        report, p_both = evaluate_checkpoint([bundled, tiny], ds, cpu, fusion=rule)
        assert np.allclose(p_both, fuse([p_bundled, p_tiny], rule), atol=1e-6)
        assert report["fusion"] == rule and report["weights"] == [bundled.path, tiny.path]
    assert not np.allclose(fuse([p_bundled, p_tiny], "sum"), fuse([p_bundled, p_tiny], "product"), atol=1e-3)
    assert cli(["evaluate", "--data", data, "--split", "PublicTest", "--weights", "fer2013", "--weights", tiny_checkpoint,
                "--fusion", "product", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["fusion"] == "product" and len(report["temperature"]) == 2 and report["samples"] == 21
    assert cli(["evaluate", "--data", data, "--held-out", "--weights", "fer2013", "--weights", tiny_checkpoint]) == 2
    assert "take one checkpoint" in capsys.readouterr().err


def test_npz_with_labels_outside_the_classes_is_refused(tmp_path, capsys, tiny_checkpoint):
    data = write_fer_npz(tmp_path / "bad.npz", ["Training"] * 3, [0, 3, 9])
    assert cli(["evaluate", "--data", data, "--weights", tiny_checkpoint]) == 2
    assert "labels must be 0..6" in capsys.readouterr().err
    np.savez(tmp_path / "other.npz", x=np.zeros(3))
    assert cli(["evaluate", "--data", str(tmp_path / "other.npz"), "--weights", tiny_checkpoint]) == 2
    assert "not the FER2013 npz layout" in capsys.readouterr().err


@needs(FER_NPZ, "FER2013 npz")
def test_fer_npz_loader_splits_labels_and_dedupe():
    from fer_ros.learning.datasets import drop_duplicates_of, load_dataset

    test = load_dataset(FER_NPZ, "PublicTest")
    assert len(test) == 3589 and test.counts()["happy"] == 895
    assert len(drop_duplicates_of(test, load_dataset(FER_NPZ, "Training"))) == 3589 - 280
    plus = load_dataset(FER_NPZ, "PublicTest", "ferplus")
    assert plus.class_names[-1] == "contempt" and 3000 < len(plus) < 3589


@needs(FER_NPZ, "FER2013 npz")
def test_live_pipeline_sees_what_training_saw():
    """FER2013 faces upscaled to camera size are found, aligned and classified by the bundled
    model about as well as the 48 px crops themselves."""
    from fer_ros.config import PipelineConfig
    from fer_ros.learning.datasets import load_dataset
    from fer_ros.learning.evaluation import through_pipeline
    from fer_ros.pipeline import FramePipeline

    config = PipelineConfig()
    config.classifier.weights = ["fer2013"]  # the FER2013 labels of these faces
    report = through_pipeline(FramePipeline(config), load_dataset(FER_NPZ, "PublicTest"), limit=60)
    assert report["faces"] == 60 and report["detection_rate"] > 0.7
    assert report["pipeline_accuracy_on_detected"] > 0.45  # always-happy would score about 0.25
    found = round(report["detection_rate"] * 60)
    gap = report["only_pipeline_right"] - report["only_direct_right"]  # McNemar's discordant pairs carry the gap
    assert gap == round((report["pipeline_accuracy_on_detected"] - report["direct_accuracy_on_detected"]) * found)
    assert 0.0 < report["gap_p_value"] <= 1.0


def test_kfold_cross_validation_pools_every_face_once(tmp_path, capsys):
    data = make_folder_dataset(tmp_path / "faces", n_per_class=12)
    assert cli(["evaluate", "--data", str(data), "--kfold", "3", "--epochs", "2", "--preset", "tiny",
                "--device", "cpu", "--out", str(tmp_path / "cv"), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)  # training news goes to stderr: stdout is one JSON object
    assert [f["fold"] for f in report["folds"]] == [0, 1, 2]
    assert report["samples"] == 36 and sum(map(sum, report["confusion_matrix"])) == 36
    assert report["accuracy_mean"] == pytest.approx(np.mean([f["accuracy"] for f in report["folds"]]))
    assert (tmp_path / "cv" / "fold2" / "best.pt").exists()


@needs(FER_NPZ, "FER2013 npz")
@pytest.mark.parametrize("name, faces, floor", [("fer2013", 3589, MODEL_CARD_FLOOR), ("ferplus", 3553, FERPLUS_CARD_FLOOR)])
def test_bundled_model_keeps_its_model_card_on_publictest(name, faces, floor):
    """Each shipped model scores what docs/model/<name>/evaluation.json (docs/model_cards.md) says,
    measured as the pipeline runs it by default (mirroring as configured): accuracy, macro-F1 and
    a calibration error within the 0.05 target, with its stored temperature."""
    import torch

    from fer_ros.config import PipelineConfig
    from fer_ros.learning.datasets import load_dataset
    from fer_ros.learning.evaluation import evaluate_checkpoint
    from fer_ros.models.checkpoint import load_checkpoint, use_mirror

    with open(os.path.join(REPO, "docs", "model", name, "evaluation.json")) as fh:
        card = json.load(fh)
    mirror = PipelineConfig().classifier.mirror
    loaded = load_checkpoint(name)
    assert card["mirror"] == use_mirror(mirror, loaded), "the card must describe the default configuration"
    metrics, _ = evaluate_checkpoint(loaded, load_dataset(FER_NPZ, "PublicTest", name), torch.device("cpu"), mirror)
    assert metrics["samples"] == card["samples"] == faces
    assert metrics["accuracy"] == pytest.approx(card["accuracy"], abs=0.002)
    assert metrics["macro_f1"] == pytest.approx(card["macro_f1"], abs=0.003)
    assert metrics["ece"] == pytest.approx(card["ece"], abs=0.003) and metrics["ece"] <= 0.05
    assert metrics["temperature"] == pytest.approx(card["temperature"]) != 1.0
    assert metrics["accuracy"] > floor
