"""`fer-ros evaluate` over several sources in one table, and on folders of uncropped photos."""
from __future__ import annotations

import json

import cv2
import numpy as np
from conftest import FER_NPZ, needs

from fer_ros.cli import main
from fer_ros.emotions import canonical_emotion

FER2013_NAMES = ["angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"]


@needs(FER_NPZ, "FER2013 npz")
def test_several_sources_one_table_and_the_same_faces_score_the_same(tmp_path, capsys):
    data = np.load(FER_NPZ)
    rows = np.flatnonzero(data["usage"] == "PublicTest")[:40]
    small = tmp_path / "small.npz"
    np.savez(small, images=data["images"][rows], labels=data["labels"][rows], usage=data["usage"][rows])
    folder = tmp_path / "folder"
    for k, row in enumerate(rows):  # the same faces as an ImageFolder, lossless
        (folder / FER2013_NAMES[data["labels"][row]]).mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(folder / FER2013_NAMES[data["labels"][row]] / f"{k}.png"), data["images"][row])
    out = tmp_path / "out"
    assert main(["evaluate", "--data", str(small), "--data", str(folder), "--out", str(out), "--json"]) == 0
    sources = json.loads(capsys.readouterr().out)["sources"]
    assert [s["samples"] for s in sources] == [40, 40]
    assert sources[0]["accuracy"] == sources[1]["accuracy"] and 0.3 < sources[0]["accuracy"] <= 1
    assert (out / "small" / "evaluation.json").exists() and (out / "folder" / "evaluation.json").exists()
    assert main(["evaluate", "--data", str(small), "--data", str(folder)]) == 0
    table = capsys.readouterr().out.splitlines()[-3:]
    assert table[0].split()[:3] == ["source", "accuracy", "macro-F1"]
    assert table[1].split()[1] == table[2].split()[1] == f"{sources[0]['accuracy']:.4f}"


def test_photos_go_through_the_pipeline_and_faceless_photos_are_counted(astronaut, tmp_path, capsys):
    for name in ("happy", "sad"):
        (tmp_path / "photos" / name).mkdir(parents=True)
    bgr = cv2.cvtColor(astronaut, cv2.COLOR_RGB2BGR)
    cv2.imwrite(str(tmp_path / "photos" / "happy" / "astronaut.jpg"), bgr)
    cv2.imwrite(str(tmp_path / "photos" / "sad" / "astronaut.png"), bgr)
    cv2.imwrite(str(tmp_path / "photos" / "sad" / "wall.png"), np.full((300, 300, 3), 180, np.uint8))
    assert main(["evaluate", "--data", str(tmp_path / "photos"), "--photos", "--device", "cpu", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["photos"] == 3 and report["faces_found"] == 2 and report["samples"] == 2
    assert report["no_face"] == [str(tmp_path / "photos" / "sad" / "wall.png")]
    per_class = {canonical_emotion(k): v for k, v in report["per_class"].items()}
    assert per_class["happy"]["recall"] == 1.0  # the smiling astronaut is happy, labelled sad she is wrong
    assert report["accuracy"] == 0.5 and abs(report["accuracy_all"] - 1 / 3) < 1e-9
    (tmp_path / "photos" / "bored").mkdir()
    cv2.imwrite(str(tmp_path / "photos" / "bored" / "a.png"), bgr)
    assert main(["evaluate", "--data", str(tmp_path / "photos"), "--photos"]) == 2
    assert "bored" in capsys.readouterr().err
