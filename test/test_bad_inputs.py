"""Bad input a new user gives the CLI: each is one error line naming the problem and the fix, exit
code 2, no decoder noise before it, and (for output paths) refused before any model loads or any
frame is printed. Real files throughout: images and videos written with OpenCV, real checkpoints."""
from __future__ import annotations

import json
import math

import cv2
import numpy as np
import pytest
import torch

from fer_ros.cli import main as cli
from fer_ros.errors import FerError
from fer_ros.framewriter import FrameWriter
from fer_ros.imageio import open_source
from fer_ros.learning.datasets import load_dataset
from fer_ros.models.checkpoint import load_checkpoint


def one_error(capfd, needle: str) -> str:
    """The command's stderr is exactly one line, an error that contains ``needle``; stdout is empty."""
    out, err = capfd.readouterr()
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("fer-ros ") and "error:" in lines[0] and needle in lines[0], lines[0]
    assert out == "", out  # nothing processed or printed before the error
    return lines[0]


@pytest.fixture(scope="module")
def files(tmp_path_factory, astronaut):
    """A small video, a good jpeg and png, and damaged copies of each."""
    d = tmp_path_factory.mktemp("inputs")
    small = cv2.resize(cv2.cvtColor(astronaut, cv2.COLOR_RGB2BGR), (160, 160))
    writer = cv2.VideoWriter(str(d / "clip.mp4"), cv2.VideoWriter_fourcc(*"mp4v"), 10, (160, 160))
    for i in range(6):
        writer.write(np.roll(small, 4 * i, axis=1))
    writer.release()
    cv2.imwrite(str(d / "face.jpg"), small)
    cv2.imwrite(str(d / "face.png"), small)
    jpeg = bytearray((d / "face.jpg").read_bytes())
    jpeg[len(jpeg) // 3: len(jpeg) // 3 + 2000] = b"\x00" * 2000  # libjpeg "repairs" this with grey
    (d / "corrupt.jpg").write_bytes(bytes(jpeg))
    png = (d / "face.png").read_bytes()
    (d / "truncated.png").write_bytes(png[: len(png) // 2])
    video = (d / "clip.mp4").read_bytes()
    (d / "truncated.mp4").write_bytes(video[: len(video) // 2])
    (d / "text.mp4").write_text("not a video\n")
    return d


# --- inputs ------------------------------------------------------------------------------------

@pytest.mark.parametrize("name,needle", [("corrupt.jpg", "is damaged (decoder: Corrupt JPEG data"),
                                         ("truncated.png", "cannot decode"),
                                         ("truncated.mp4", "cannot decode"),
                                         ("text.mp4", "cannot decode")])
def test_damaged_files_are_one_line_without_decoder_noise(files, capfd, name, needle):
    assert cli(["detect", str(files / name)]) == 2
    one_error(capfd, needle)


def test_corrupt_jpeg_is_refused_by_the_reader_too(files):
    with pytest.raises(FerError, match="damaged"):
        open_source(str(files / "corrupt.jpg"))
    with open_source(str(files / "face.jpg")) as good:  # the intact file still reads
        assert next(iter(good)).image.shape == (160, 160, 3)


@pytest.mark.parametrize("spec,needle", [("", "no input given"), ("99999999999999999999", "not a camera index"),
                                         ("97", "cannot open camera 97")])
def test_empty_path_and_impossible_cameras(capfd, spec, needle):
    assert cli(["detect", spec]) == 2
    one_error(capfd, needle)


def test_animated_gif_is_refused_with_the_fix(tmp_path, capfd):
    image = pytest.importorskip("PIL.Image")
    frames = [image.fromarray(np.full((32, 32, 3), 60 * i, np.uint8)) for i in range(3)]
    frames[0].save(tmp_path / "anim.gif", save_all=True, append_images=frames[1:], duration=100)
    assert cli(["detect", str(tmp_path / "anim.gif")]) == 2
    assert "ffmpeg -i anim.gif anim.mp4" in one_error(capfd, "an animation of 3 frames")
    frames[0].save(tmp_path / "still.gif")  # a still GIF is an ordinary image
    with open_source(str(tmp_path / "still.gif")) as still:
        assert len(list(still)) == 1


# --- output paths ------------------------------------------------------------------------------

def test_annotate_onto_the_input_is_refused_and_the_input_kept(files, capfd):
    before = (files / "clip.mp4").read_bytes()
    for same in (files / "clip.mp4", files / "." / "clip.mp4"):
        assert cli(["detect", str(files / "clip.mp4"), "--annotate", str(same)]) == 2
        one_error(capfd, "is the input file itself")
    assert (files / "clip.mp4").read_bytes() == before


def test_bad_annotate_paths_fail_before_any_frame(files, tmp_path, capfd):
    (tmp_path / "a_file").write_text("x")
    (tmp_path / "a_dir").mkdir()
    cases = [(tmp_path / "a_dir", "is an existing folder; give a file path in it, such as"),
             (tmp_path / "a_file" / "out.mp4", "which is a file, not a folder"),
             (tmp_path / "out.mkv", "unknown extension '.mkv'")]
    for path, needle in cases:
        assert cli(["detect", str(files / "clip.mp4"), "--annotate", str(path)]) == 2
        one_error(capfd, needle)
    assert cli(["demo", "--out", str(tmp_path / "a_file" / "demo.mp4")]) == 2
    one_error(capfd, "which is a file, not a folder")  # before the weights line: no model was loaded


def test_two_writers_on_one_path_leave_a_whole_video(tmp_path):
    """Interleaved like two runs at once: each writes its own hidden file; the last to close wins, whole."""
    target = tmp_path / "same.mp4"
    first, second = FrameWriter(target, 10.0), FrameWriter(target, 10.0)
    for i in range(8):
        first.write(np.full((64, 64, 3), 10 * i, np.uint8))
        if i < 5:
            second.write(np.full((64, 64, 3), 200, np.uint8))
    second.close()
    first.close()
    capture = cv2.VideoCapture(str(target))
    count = 0
    while capture.read()[0]:
        count += 1
    capture.release()
    assert count == 8  # the first writer's whole video, not a mix
    assert [p.name for p in tmp_path.iterdir()] == ["same.mp4"]  # no hidden part files left


# --- settings, weights, data -------------------------------------------------------------------

def test_a_section_given_a_value_is_named_as_a_section(files, tmp_path, capfd):
    (tmp_path / "c.yaml").write_text("detector: 5\n")
    assert cli(["detect", str(files / "face.jpg"), "--config", str(tmp_path / "c.yaml")]) == 2
    assert "detector: {" in one_error(capfd, "unknown setting 'detector': it is a section, so it cannot be 5")


def test_broken_checkpoints_name_the_file(tiny_checkpoint, tmp_path):
    payload = torch.load(tiny_checkpoint, weights_only=True)
    no_state = {k: v for k, v in payload.items() if k != "state_dict"}
    torch.save(no_state, tmp_path / "no_state.pt")
    with pytest.raises(FerError, match="no_state.pt' has a malformed header.*state_dict"):
        load_checkpoint(str(tmp_path / "no_state.pt"))
    first = next(iter(payload["state_dict"]))
    payload["state_dict"][first] = torch.full_like(payload["state_dict"][first], math.nan)
    torch.save(payload, tmp_path / "nan.pt")
    with pytest.raises(FerError, match=f"nan.pt' contain NaN or infinite values .*{first}"):
        load_checkpoint(str(tmp_path / "nan.pt"))
    with pytest.raises(FerError, match="is a folder; pass the checkpoint file in it"):
        load_checkpoint(str(tmp_path))


def test_a_missing_split_folder_is_an_error(tmp_path, capfd):
    for name in ("happy", "sad"):
        (tmp_path / "data" / "train" / name).mkdir(parents=True)
        cv2.imwrite(str(tmp_path / "data" / "train" / name / "a.png"), np.full((48, 48), 100, np.uint8))
    with pytest.raises(FerError, match="no sub-folder 'test'.*its folders: train"):
        load_dataset(str(tmp_path / "data"), "test")
    assert len(load_dataset(str(tmp_path / "data"), "train")) == 2
    assert cli(["evaluate", "--data", str(tmp_path / "data"), "--split", "test"]) == 2
    one_error(capfd, "no sub-folder 'test'")


# --- music input -------------------------------------------------------------------------------

def test_music_input_that_is_not_text_or_has_a_nan_stamp(files, tmp_path, capfd):
    assert cli(["music", "--input", str(files / "face.jpg"), "--dry-run"]) == 2
    one_error(capfd, "is not text")
    lines = tmp_path / "frames.jsonl"
    lines.write_text(json.dumps({"stamp": 0.0, "faces": []}) + "\n" + '{"stamp": NaN, "faces": []}\n')
    assert cli(["music", "--input", str(lines), "--dry-run"]) == 2
    one_error(capfd, "line 2: observation stamp nan is not a finite time")


# --- training options --------------------------------------------------------------------------

@pytest.mark.parametrize("extra,needle", [(["--val-fraction", "1.5"], "--val-fraction"),
                                          (["--val-fraction", "0"], "--val-fraction"),
                                          (["--lr", "-1"], "--lr must be a positive"),
                                          (["--lr", "nan"], "--lr must be a positive"),
                                          (["--batch-size", "0"], "--batch-size must be at least 1"),
                                          (["--epochs", "0"], "--epochs must be at least 1"),
                                          (["--resume"], "--resume: there is no")])
def test_bad_training_options_fail_before_the_data_loads(tmp_path, capfd, extra, needle):
    # --data does not exist: an error about the option proves it was checked first
    assert cli(["train", "--data", str(tmp_path / "missing.npz"), "--out", str(tmp_path / "run"), *extra]) == 2
    one_error(capfd, needle)


def test_training_output_under_a_file_fails_before_training(tmp_path, capfd):
    (tmp_path / "a_file").write_text("x")
    assert cli(["train", "--data", str(tmp_path / "missing.npz"), "--out", str(tmp_path / "a_file" / "run")]) == 2
    one_error(capfd, "which is a file, not a folder")


def test_a_video_damaged_midway_is_read_up_to_the_damage_and_said_once_in_our_words(tmp_path):
    """ffmpeg's per-packet lines are silenced (in a fresh process: OpenCV reads the setting when it
    first opens a video) and one warning says how far decoding got."""
    import subprocess
    import sys

    path = tmp_path / "damaged.mp4"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 25, (160, 120))
    for i in range(60):
        frame = np.full((120, 160, 3), i * 4, np.uint8)
        cv2.circle(frame, (20 + 2 * i, 60), 15, (255, 255, 255), -1)
        writer.write(frame)
    writer.release()
    data = bytearray(path.read_bytes())
    data[len(data) // 2:int(len(data) * 0.85)] = bytes(int(len(data) * 0.85) - len(data) // 2)
    path.write_bytes(bytes(data))
    code = ("import logging; logging.basicConfig(format='%(levelname)s %(message)s')\n"
            "from fer_ros.imageio import open_source\n"
            f"with open_source({str(path)!r}) as source:\n"
            "    print(sum(1 for _ in source))\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    frames = int(done.stdout.strip())
    assert 0 < frames < 57
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("WARNING") and f"up to frame {frames} of the 60" in lines[0], lines


def _without_file_permission_override() -> None:
    """In the child before exec: drop CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH from the bounding set, so
    a root process obeys permission bits as any user does (PR_CAPBSET_DROP = 24)."""
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    for capability in (1, 2):
        if libc.prctl(24, capability, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP) failed")


def test_output_folders_without_write_permission_fail_first_with_one_line(tmp_path, astronaut):
    """A folder the user may not write in (as root, the commands run without the capability that lets
    root write anywhere): one line naming the folder, exit 2, before any model loads or frame is read."""
    import os
    import subprocess
    import sys

    image = tmp_path / "face.jpg"
    cv2.imwrite(str(image), cv2.cvtColor(astronaut, cv2.COLOR_RGB2BGR))
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o555)
    preexec = _without_file_permission_override if os.geteuid() == 0 else None
    if preexec is not None:
        try:
            subprocess.run([sys.executable, "-c", "pass"], preexec_fn=preexec, check=True, timeout=60)
        except (OSError, subprocess.SubprocessError) as exc:
            pytest.skip(f"running as root and cannot drop CAP_DAC_OVERRIDE here ({exc})")
    commands = [["detect", str(image), "--annotate", str(locked / "out.jpg")],
                ["demo", "--out", str(locked / "demo.mp4")],
                ["train", "--data", str(image), "--out", str(locked / "run")]]
    for args in commands:
        done = subprocess.run([sys.executable, "-m", "fer_ros", *args], capture_output=True, text=True, timeout=120,
                              preexec_fn=preexec)
        lines = done.stderr.strip().splitlines()
        assert done.returncode == 2 and len(lines) == 1, (args, done.stderr)
        assert "permission denied" in lines[0] and str(locked) in lines[0], lines[0]
        assert done.stdout == "", done.stdout  # nothing loaded or processed first
