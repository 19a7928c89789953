"""Training: a tiny run on synthetic faces whose loss falls, resumable and deterministic."""
import json
import os

import cv2
import numpy as np
import pytest
import torch

from fer_ros.cli import main as cli
from fer_ros.config import PipelineConfig
from fer_ros.errors import FerError
from fer_ros.learning import training
from fer_ros.learning.augment import augment, erase_patches
from fer_ros.learning.datasets import load_dataset
from fer_ros.learning.train_data import to_tensors
from fer_ros.models.checkpoint import load_checkpoint
from fer_ros.models.int8 import int8_available
from fer_ros.models.preprocess import Preprocessing


def make_folder_dataset(root, n_per_class=60, seed=0):
    """Three classes a small CNN can learn: a bright blob top-left, bottom-right, or a bar across."""
    rng = np.random.default_rng(seed)
    for name in ["blob_a", "blob_b", "bar"]:
        os.makedirs(root / name, exist_ok=True)
        for i in range(n_per_class):
            img = rng.normal(100, 20, (48, 48)).clip(0, 255).astype(np.uint8)
            if name == "blob_a":
                cv2.circle(img, (14 + rng.integers(-3, 4), 14), 7, 230, -1)
            elif name == "blob_b":
                cv2.circle(img, (34, 34 + rng.integers(-3, 4)), 7, 230, -1)
            else:
                cv2.rectangle(img, (4, 22), (44, 27), 20, -1)
            cv2.imwrite(str(root / name / f"{i}.png"), img)
    return root


def args_for(data, out, *extra):
    return training.get_args_parser().parse_args(
        ["--data", str(data), "--preset", "tiny", "--epochs", "4", "--batch-size", "16", "--lr-step", "10",
         "--val-fraction", "0.2", "--out", str(out), "--device", "cpu", *extra])


def test_tiny_training_loss_falls_and_checkpoint_loads(tmp_path):
    data = make_folder_dataset(tmp_path / "faces")
    result = training.main(args_for(data, tmp_path / "run"))
    losses = [h["train_loss"] for h in result["history"]]
    assert losses[-1] < losses[0] * 0.8, losses
    assert result["history"][-1]["val_accuracy"] > 0.6  # chance is 1/3
    loaded = load_checkpoint(result["best"])
    assert loaded.class_names == ["bar", "blob_a", "blob_b"]
    assert loaded.preprocessing.input_size == 32 and loaded.meta["history"]
    assert json.load(open(tmp_path / "run" / "history.json"))[0]["epoch"] == 1


def test_same_seed_same_result_and_resume_continues(tmp_path):
    data = make_folder_dataset(tmp_path / "faces", n_per_class=20)
    a = training.main(args_for(data, tmp_path / "a", "--epochs", "2"))
    b = training.main(args_for(data, tmp_path / "b", "--epochs", "2"))
    assert [h["train_loss"] for h in a["history"]] == pytest.approx([h["train_loss"] for h in b["history"]], rel=1e-5)
    c = training.main(args_for(data, tmp_path / "b", "--epochs", "3", "--resume"))
    assert [h["epoch"] for h in c["history"]] == [1, 2, 3]


def test_balanced_sampling_and_curriculum_options_run(tmp_path):
    data = make_folder_dataset(tmp_path / "faces", n_per_class=10)
    result = training.main(args_for(data, tmp_path / "r", "--epochs", "1", "--balanced", "--curriculum", "2",
                                          "--erase", "0.5", "--scale", "0.1"))
    assert len(result["history"]) == 1


def test_random_erasing_blanks_one_rectangle_of_the_stated_size():
    x = torch.ones(64, 1, 32, 32)
    erased = erase_patches(x, torch.Generator().manual_seed(0), 1.0)
    share = (erased == 0).float().mean(dim=(1, 2, 3))
    assert share.min() > 0.01 and share.max() < 0.30, share  # 2-25 % of the face, give or take rounding to pixels
    rows, cols = np.nonzero((erased[0, 0] == 0).numpy())
    assert (rows.max() - rows.min() + 1) * (cols.max() - cols.min() + 1) == len(rows)  # one solid rectangle
    assert torch.equal(erase_patches(x, torch.Generator().manual_seed(0), 0.0), x)


def test_zoom_jitter_changes_the_face_size_within_its_range():
    pre = Preprocessing(input_size=48, channels=1)
    disk = np.zeros((48, 48), np.float32)
    cv2.circle(disk, (24, 24), 8, 1.0, -1)
    x = ((torch.from_numpy(disk) - pre.mean) / pre.std).expand(256, 1, 48, 48).contiguous()

    def areas(scale):
        out = augment(x, pre, torch.Generator().manual_seed(1), shift=0.0, scale=scale)
        lo, hi = out.amin(dim=(1, 2, 3), keepdim=True), out.amax(dim=(1, 2, 3), keepdim=True)
        return ((out - lo) > (hi - lo) / 2).float().sum(dim=(1, 2, 3)) / float(disk.sum())

    still, zoomed = areas(0.0), areas(0.3)
    assert still.max() - still.min() < 0.15  # rotation, flip and lighting keep the disk's size
    assert zoomed.min() < 0.65 and zoomed.max() > 1.45  # 0.7x-1.3x in width: about 0.49x-1.69x in area
    assert zoomed.min() > 0.4 and zoomed.max() < 1.9


def test_cli_train_and_bad_options(tmp_path, capsys):
    data = make_folder_dataset(tmp_path / "faces", n_per_class=10)
    assert cli(["train", "--data", str(data), "--preset", "tiny", "--epochs", "1", "--out", str(tmp_path / "o"),
                "--device", "cpu"]) == 0
    assert os.path.exists(tmp_path / "o" / "best.pt")
    shown = capsys.readouterr()
    assert "epoch 1/1 train_loss" in shown.out + shown.err and "val_acc=" in shown.err  # the epoch bar's postfix
    assert cli(["train", "--data", str(tmp_path / "missing"), "--out", str(tmp_path / "o")]) == 2
    assert "not found" in capsys.readouterr().err
    assert cli(["train", "--data", str(data), "--erase", "1.5", "--out", str(tmp_path / "o")]) == 2
    assert "--erase is a probability in 0..1, got 1.5" in capsys.readouterr().err
    assert cli(["train", "--data", str(data), "--scale", "-0.1", "--out", str(tmp_path / "o")]) == 2
    assert "--scale is a zoom range" in capsys.readouterr().err
    missing = str(tmp_path / "missing")  # checked before the data loads: the error is about the option
    assert cli(["train", "--data", missing, "--soft-labels", "1.5", "--out", str(tmp_path / "o")]) == 2
    assert "--soft-labels must be in 0..1, got 1.5" in capsys.readouterr().err
    assert cli(["train", "--data", missing, "--teacher", "t.pt", "--distill", "0", "--out", str(tmp_path / "o")]) == 2
    assert "--distill must be in 0..1, got 0.0" in capsys.readouterr().err
    assert cli(["train", "--data", missing, "--weight-average", "1", "--out", str(tmp_path / "o")]) == 2
    assert "--weight-average is a decay in (0, 1)" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        cli(["train", "--data", str(data), "--preset", "huge"])
    assert "invalid choice" in capsys.readouterr().err


def test_csv_loader_and_malformed_csv(tmp_path):
    good = tmp_path / "fer.csv"
    px = " ".join(["7"] * 2304)
    good.write_text(f"emotion,pixels,Usage\n3,{px},Training\n0,{px},PublicTest\n")
    ds = load_dataset(str(good), "Training")
    assert len(ds) == 1 and ds.labels.tolist() == [3] and ds.images.shape == (1, 48, 48)
    bad = tmp_path / "bad.csv"
    bad.write_text("emotion,pixels,Usage\n3,1 2 3,Training\n")
    with pytest.raises(FerError, match="line 2"):
        load_dataset(str(bad))
    (tmp_path / "x.csv").write_text("a,b\n1,2\n")
    with pytest.raises(FerError, match="header"):
        load_dataset(str(tmp_path / "x.csv"))


def test_cosine_schedule_anneals_to_zero_and_step_halves():
    import torch
    for schedule, expect_end in [("cosine", 0.0), ("step", 1e-3 * 0.5 ** 2)]:
        args = training.get_args_parser().parse_args(["--data", "x", "--epochs", "20", "--lr-schedule", schedule])
        opt = torch.optim.Adam([torch.zeros(1, requires_grad=True)], lr=args.lr)
        sched = training.make_scheduler(opt, args)
        lrs = []
        for _ in range(args.epochs):
            opt.step()
            sched.step()
            lrs.append(opt.param_groups[0]["lr"])
        assert all(a >= b for a, b in zip(lrs, lrs[1:]))  # never rises
        assert lrs[-1] == pytest.approx(expect_end, abs=1e-9)


def test_soft_labels_and_distillation_shape_the_target(tmp_path):
    """--soft-labels mixes FER+ votes into the target; --teacher/--distill mixes in the teachers' probabilities."""
    from fer_ros.learning.datasets import FaceDataset
    from fer_ros.models.preprocess import Preprocessing

    data = make_folder_dataset(tmp_path / "faces", n_per_class=10)
    teacher = training.main(args_for(data, tmp_path / "teacher", "--epochs", "1"))["best"]
    ds = load_dataset(str(data))
    votes = np.tile(np.array([[0.2, 0.5, 0.3]], np.float32), (len(ds), 1))
    ds = FaceDataset(ds.images, ds.labels, ds.class_names, None, "votes", votes)
    pre = Preprocessing(input_size=32)
    soft = to_tensors(ds, pre, args_for(data, tmp_path / "x", "--soft-labels", "1")).target
    assert np.allclose(soft.numpy(), votes)
    half = to_tensors(ds, pre, args_for(data, tmp_path / "x", "--soft-labels", "0.5")).target.numpy()
    assert np.allclose(half, 0.5 * votes + 0.5 * np.eye(3)[ds.labels])
    distilled = to_tensors(ds, pre, args_for(data, tmp_path / "x", "--teacher", teacher, "--distill", "1"),
                                    teachers=True).target.numpy()
    assert np.allclose(distilled.sum(1), 1, atol=1e-5) and not np.allclose(distilled, np.eye(3)[ds.labels])
    with pytest.raises(FerError, match="no"):
        to_tensors(load_dataset(str(data)), pre, args_for(data, tmp_path / "x", "--soft-labels", "1"))
    student = training.main(args_for(data, tmp_path / "student", "--epochs", "1", "--teacher", teacher))["best"]
    assert load_checkpoint(student).meta["args"]["teacher"] == [teacher]  # the recipe names its teachers


def test_fer2013_labels_pull_ferplus_targets_towards_the_collected_expression(tmp_path, capsys):
    """FER+ annotators who call an angry-collected face neutral: --fer2013-labels V puts V of the target on anger."""
    from fer_ros.learning.datasets import FER2013_CLASSES, FERPLUS_CLASSES

    rng = np.random.default_rng(0)
    votes = np.zeros((4, 10), np.uint8)
    votes[:, 0] = 7  # neutral majority ...
    votes[:, 4] = 3  # ... and some anger
    data = tmp_path / "fer.npz"
    np.savez(data, images=rng.integers(0, 256, (4, 48, 48), dtype=np.uint8),
             labels=np.full(4, FER2013_CLASSES.index("angry")), usage=np.array(["Training"] * 4), ferplus_votes=votes)
    ds = load_dataset(str(data), "Training", "ferplus")
    anger, neutral = FERPLUS_CLASSES.index("anger"), FERPLUS_CLASSES.index("neutral")
    assert ds.labels.tolist() == [neutral] * 4 and ds.fer2013_labels.tolist() == [anger] * 4
    assert ds.subset(np.array([1, 2])).fer2013_labels.tolist() == [anger] * 2
    pre = Preprocessing(input_size=32)

    def target(*extra):
        return to_tensors(ds, pre, args_for(data, tmp_path / "x", "--labels", "ferplus", "--soft-labels", "1", *extra)).target
    assert target()[0, anger] == pytest.approx(0.3) and target()[0, neutral] == pytest.approx(0.7)
    mixed = target("--fer2013-labels", "0.5")
    assert mixed[0, anger] == pytest.approx(0.65) and mixed[0, neutral] == pytest.approx(0.35)
    assert torch.allclose(mixed.sum(1), torch.ones(4))
    with pytest.raises(FerError, match="--fer2013-labels needs FER\\+ labels"):
        to_tensors(load_dataset(str(data), "Training", "fer2013"), pre, args_for(data, tmp_path / "x", "--fer2013-labels", "0.5"))
    assert cli(["train", "--data", str(data), "--fer2013-labels", "0.5", "--out", str(tmp_path / "o")]) == 2
    assert "it needs --labels ferplus" in capsys.readouterr().err
    assert cli(["train", "--data", str(data), "--labels", "ferplus", "--fer2013-labels", "2", "--out", str(tmp_path / "o")]) == 2
    assert "--fer2013-labels must be in 0..1, got 2.0" in capsys.readouterr().err


def test_training_calibrates_best_and_the_calibrate_command_refits_it(tmp_path, capsys):
    data = make_folder_dataset(tmp_path / "faces", n_per_class=10)
    result = training.main(args_for(data, tmp_path / "run", "--epochs", "1"))
    best = load_checkpoint(result["best"])
    assert best.temperature == pytest.approx(result["temperature"]) and best.meta["calibration"]["val_faces"] == best.meta["val_size"]
    int8 = int8_available()
    if int8:  # the same validation faces set the ranges of 8-bit inference
        assert best.int8["faces"] == min(best.meta["val_size"], 1000) and best.int8["method"] == "minmax"
    out = tmp_path / "calibrated.pt"
    assert cli(["calibrate", "--weights", result["best"], "--data", str(data), "--out", str(out)]) == 0
    assert "validation faces" in capsys.readouterr().out
    assert load_checkpoint(str(out)).temperature == pytest.approx(result["temperature"], rel=1e-6)  # same faces, same fit
    # evaluate --held-out scores the same validation faces, and says how often 'uncertain' faces are right
    assert cli(["evaluate", "--weights", str(out), "--data", str(data), "--held-out", "--no-mirror", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["samples"] == best.meta["val_size"]
    assert report["precision"] == ("int8" if int8 else "fp32")  # what the pipeline would run by default
    u = report["uncertain"]
    assert u["threshold"] == PipelineConfig().smoother.confidence_threshold and 0 <= u["share"] <= 1
    assert cli(["evaluate", "--weights", str(out), "--data", str(data), "--held-out", "--split", "x"]) == 2
    assert "--held-out takes the split" in capsys.readouterr().err


def test_warm_restart_starts_where_its_checkpoint_left_off_and_refuses_a_mismatch(tmp_path):
    data = make_folder_dataset(tmp_path / "faces")
    first = training.main(args_for(data, tmp_path / "first"))
    fresh = training.main(args_for(data, tmp_path / "fresh", "--epochs", "1"))
    warm = training.main(args_for(data, tmp_path / "warm", "--epochs", "1", "--init", first["best"]))
    assert warm["history"][0]["val_loss"] < fresh["history"][0]["val_loss"], (warm["history"], fresh["history"])
    assert warm["history"][0]["train_loss"] < fresh["history"][0]["train_loss"]
    with pytest.raises(FerError, match="different model.*widths"):
        training.main(args_for(data, tmp_path / "x", "--epochs", "1", "--widths", "8,16,32", "--init", first["best"]))
    with pytest.raises(FerError, match="not trained on this run's split.*seed"):
        training.main(args_for(data, tmp_path / "x", "--epochs", "1", "--seed", "7", "--init", first["best"]))


def test_weight_average_is_an_exponential_average_of_the_steps():
    from fer_ros.learning.weight_average import WeightAverage

    layer = torch.nn.Linear(1, 1, bias=False)
    with torch.no_grad():
        layer.weight.fill_(0.0)
    average = WeightAverage(layer, 0.5)
    expected = 0.0
    for step in range(1, 30):
        with torch.no_grad():
            layer.weight.fill_(float(step))
        average.update(layer)
        d = min(0.5, (1 + step) / (10 + step))
        expected = d * expected + (1 - d) * step
    assert average.shadow["weight"].item() == pytest.approx(expected)
    assert expected < 29  # the average lags the last step
    with pytest.raises(ValueError, match="decay"):
        WeightAverage(layer, 1.0)


def test_training_with_weight_average_saves_both_and_resumes(tmp_path):
    data = make_folder_dataset(tmp_path / "faces", n_per_class=20)
    run = tmp_path / "avg"
    result = training.main(args_for(data, run, "--epochs", "2", "--weight-average", "0.9"))
    assert {"val_loss_raw", "val_accuracy_raw"} <= set(result["history"][0])
    averaged, raw = load_checkpoint(str(run / "best.pt")), load_checkpoint(str(run / "best_raw.pt"))
    a, r = averaged.model.state_dict(), raw.model.state_dict()
    assert any(not torch.equal(a[k], r[k]) for k in a if a[k].is_floating_point())  # best.pt holds the average
    assert "val_accuracy_mirrored" in raw.meta["calibration"]  # the raw weights are calibrated too, for the A/B
    resumed = training.main(args_for(data, run, "--epochs", "3", "--weight-average", "0.9", "--resume"))
    assert [h["epoch"] for h in resumed["history"]] == [1, 2, 3]
    plain = tmp_path / "plain"
    training.main(args_for(data, plain, "--epochs", "1"))
    with pytest.raises(FerError, match="without --weight-average"):
        training.main(args_for(data, plain, "--epochs", "2", "--weight-average", "0.9", "--resume"))
    with pytest.raises(FerError, match="--weight-average is a decay in"):
        training.main(args_for(data, tmp_path / "bad", "--epochs", "1", "--weight-average", "1.5"))
