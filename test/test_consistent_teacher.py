"""--consistent-teacher: the teachers answer for the very faces the student trains on (the same
warp, lighting and mixup), a fine-tuned ImageNet teacher reads them without CLAHE as it was
trained, and the student's own augmentation is the same as without the teachers."""
import cv2
import numpy as np
import pytest
import torch
from test_training import args_for, make_folder_dataset

from fer_ros.errors import FerError
from fer_ros.learning import training
from fer_ros.learning.datasets import FERPLUS_CLASSES, load_dataset
from fer_ros.learning.epoch import batch
from fer_ros.learning.online_teacher import OnlineTeacher
from fer_ros.learning.teacher import build
from fer_ros.learning.teacher_inputs import to_input
from fer_ros.learning.train_data import Tensors, to_tensors
from fer_ros.models.checkpoint import load_checkpoint
from fer_ros.models.inference import class_probabilities
from fer_ros.models.preprocess import Preprocessing, to_model_input


@pytest.fixture(scope="module")
def faces_and_teacher(tmp_path_factory):
    root = tmp_path_factory.mktemp("consistent")
    data = make_folder_dataset(root / "faces", n_per_class=12)
    teacher = training.main(args_for(data, root / "teacher", "--epochs", "1"))["best"]
    return data, teacher, root


def test_the_teacher_answers_for_the_students_augmented_and_mixed_faces(faces_and_teacher):
    data, teacher, root = faces_and_teacher
    ds = load_dataset(str(data))
    loaded = load_checkpoint(teacher)
    pre = loaded.preprocessing
    args = args_for(data, root / "x", "--teacher", teacher, "--consistent-teacher", "--distill", "1", "--mixup", "0.4")
    t = to_tensors(ds, pre, args, teachers=True)
    assert t.teacher is not None and t.plain is not None
    idx = torch.arange(16)
    x, target = batch(t, idx, pre, torch.Generator().manual_seed(3), args)
    alone, labels = batch(Tensors(t.x, t.y, None, t.target), idx, pre, torch.Generator().manual_seed(3), args)
    assert torch.allclose(x, alone, atol=1e-6)  # the riding views change nothing of the student's batch
    assert not torch.allclose(x, t.x[idx])  # and it was augmented
    with torch.inference_mode():  # no damage, so the teacher's view is the student's own input
        expect = class_probabilities(loaded.model, x, False, loaded.temperature).probabilities
    assert torch.allclose(target, expect, atol=1e-4)
    assert not torch.allclose(target, labels)  # not the (mixed) labels
    plain_pixels = (t.plain[:, 0] * pre.std + pre.mean) * 255  # what a fine-tuned teacher reads: no CLAHE
    resized = np.stack([cv2.resize(f, (pre.input_size,) * 2, interpolation=cv2.INTER_AREA) for f in ds.images])
    assert pre.clahe and torch.allclose(plain_pixels, torch.from_numpy(resized).float(), atol=1e-3)


def test_a_fine_tuned_teacher_reads_the_plain_faces_at_its_own_size(tmp_path):
    torch.manual_seed(0)
    net = build(pretrained=False, arch="lite0").eval()
    run = {"model": net.state_dict(), "size": 64, "arch": "lite0"}
    pre = Preprocessing(input_size=48)
    faces = np.random.default_rng(0).integers(0, 256, (4, 48, 48), dtype=np.uint8)
    path = str(tmp_path / "last.pt")
    torch.save(run, path)
    online = OnlineTeacher([path], FERPLUS_CLASSES, pre, torch.device("cpu"))
    plain = torch.from_numpy(to_model_input(faces, Preprocessing(input_size=48, clahe=False)))
    got = online(torch.zeros_like(plain), plain)
    with torch.inference_mode():
        want = torch.softmax(net(to_input(torch.from_numpy(faces), 64))["ferplus"], 1)
    assert got.shape == (4, 8) and torch.allclose(got, want, atol=1e-4)
    twice = OnlineTeacher([path, path], FERPLUS_CLASSES, pre, torch.device("cpu"))  # counted twice, run once
    assert len(twice.members) == 1 and twice.members[0][0] == 2 and torch.allclose(twice(plain, plain), got)


def test_what_a_consistent_teacher_cannot_use_is_one_line(faces_and_teacher, tmp_path):
    data, teacher, root = faces_and_teacher
    with pytest.raises(FerError, match="teacher.pt or last.pt"):
        OnlineTeacher([str(tmp_path / "probs.npz")], ["a", "b", "c"], Preprocessing(), torch.device("cpu"))
    with pytest.raises(FerError, match="preprocesses faces differently"):
        OnlineTeacher([teacher], load_checkpoint(teacher).class_names, Preprocessing(input_size=32, clahe=False),
                      torch.device("cpu"))
    with pytest.raises(FerError, match="add --teacher"):
        training.main(args_for(data, tmp_path / "s", "--consistent-teacher"))


def test_a_student_trains_with_a_consistent_teacher_and_records_it(faces_and_teacher, tmp_path):
    data, teacher, _ = faces_and_teacher
    result = training.main(args_for(data, tmp_path / "student", "--epochs", "2", "--teacher", teacher,
                                    "--consistent-teacher", "--degrade", "0.5"))
    assert len(result["history"]) == 2 and all(np.isfinite(h["train_loss"]) for h in result["history"])
    assert load_checkpoint(result["best"]).meta["args"]["consistent_teacher"] is True
