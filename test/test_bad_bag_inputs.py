"""Bad input to `fer-ros replay` and `fer-ros make-bag`: one error line each, checked before the
replay or before any bag exists, and never a half-made bag left behind. Real bags throughout."""
from __future__ import annotations

import cv2
import numpy as np
import pytest
from conftest import read_topic

from fer_ros import sample
from fer_ros.bags.bagtools import SampleBagSpec, StagedBag, open_reader, read_label_csv, write_frames_bag
from fer_ros.cli import main as cli
from fer_ros.errors import FerError
from fer_ros.messages.convert import MessageTypes, make_header, rgb_to_image_msg

START = 1_700_000_000.0  # an epoch-sized first stamp, as a real recording has


def one_error(capfd, needle: str) -> str:
    out, err = capfd.readouterr()
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert "error:" in lines[0] and needle in lines[0], lines[0]
    assert out == "", out
    return lines[0]


@pytest.fixture(scope="module")
def bag(tmp_path_factory):
    path = tmp_path_factory.mktemp("bags") / "cam"
    assert cli(["make-bag", str(path), "--frames", "3", "--start", str(START)]) == 0
    return path


def test_report_into_a_file_fails_before_the_replay(bag, tmp_path, capfd):
    capfd.readouterr()
    (tmp_path / "a_file").write_text("x")
    assert cli(["replay", str(bag), "--report", str(tmp_path / "a_file"), "--no-progress"]) == 2
    one_error(capfd, "--report '")  # no summary printed: the replay never ran
    assert cli(["replay", str(bag), "--report", str(tmp_path / "a_file" / "sub"), "--no-progress"]) == 2
    one_error(capfd, "which is a file, not a folder")
    (tmp_path / "rep" / "report.json").mkdir(parents=True)
    assert cli(["replay", str(bag), "--report", str(tmp_path / "rep"), "--no-progress"]) == 2
    one_error(capfd, "holds 'report.json', which cannot be replaced")


def test_out_under_a_file_fails_before_the_replay(bag, tmp_path, capfd):
    capfd.readouterr()
    (tmp_path / "a_file").write_text("x")
    assert cli(["replay", str(bag), "--out", str(tmp_path / "a_file" / "out"), "--no-progress"]) == 2
    one_error(capfd, "which is a file, not a folder")


def test_label_stamps_on_another_clock_are_named(bag, tmp_path, capfd):
    capfd.readouterr()
    labels = tmp_path / "labels.csv"
    labels.write_text("stamp,label\n0,happy\n1.5,sad\n")
    assert cli(["replay", str(bag), "--labels", str(labels), "--no-progress"]) == 2
    line = one_error(capfd, "label stamps in")
    assert "0.000 .. 1.500 s" in line and f"{START:.3f}" in line and "time,label" in line
    on_clock = read_label_csv(labels)  # the same labels on the bag's clock are accepted
    on_clock.keys = [START + k for k in on_clock.keys]
    on_clock.check_clock(START, START + 0.2)


def test_unreadable_bag_files_and_folders(bag, tmp_path, capfd):
    (tmp_path / "x.db3").write_text("not a database")
    assert cli(["replay", str(tmp_path / "x.db3")]) == 2
    line = one_error(capfd, "cannot read bag file")
    assert "instead of the folder" not in line  # it was given a file: no advice to pass the file
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "cam.db3").write_bytes(next(bag.glob("*.db3")).read_bytes())
    (broken / "metadata.yaml").write_text("rosbag2_bagfile_information: [\n")
    assert cli(["replay", str(broken)]) == 2
    line = one_error(capfd, "its metadata.yaml is damaged (not valid YAML)")
    assert "ros2 bag reindex" in line and "cam.db3" in line


@pytest.mark.parametrize("extra,needle", [(["--fps", "0"], "--fps must be a positive number"),
                                          (["--fps", "nan"], "--fps must be a positive number"),
                                          (["--from", "missing_dir"], "does not exist"),
                                          (["--from", "notes.txt"], "cannot decode"),
                                          (["--from", "empty"], "holds no images"),
                                          (["--from", "bad_images"], "cannot decode")])
def test_failed_make_bag_leaves_no_bag(tmp_path, capfd, monkeypatch, extra, needle):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "notes.txt").write_text("some text")
    (tmp_path / "empty").mkdir()
    (tmp_path / "bad_images").mkdir()  # the first image is fine, the second is not: fails mid-way
    cv2.imwrite(str(tmp_path / "bad_images" / "a.png"), np.full((32, 32, 3), 90, np.uint8))
    (tmp_path / "bad_images" / "b.png").write_bytes(b"\x89PNG not really")
    assert cli(["make-bag", "out", "--frames", "2", *extra]) == 2
    one_error(capfd, needle)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad_images", "empty", "notes.txt"]  # nothing, not even hidden
    assert cli(["make-bag", "out", "--frames", "2"]) == 0  # the corrected run needs no --force


def test_two_writers_of_one_bag_leave_a_readable_bag(tmp_path, store):
    """Interleaved like two `replay --out same --force` at once: each stages its own bag, the last commit wins."""
    frames = sample.sample_frames(2)
    target = tmp_path / "same"
    write_frames_bag(target, [(START, frames[0])], store, SampleBagSpec())
    first, second = StagedBag(target, force=True), StagedBag(target, force=True)
    conns = [b.writer.add_connection("/camera/image_raw", "sensor_msgs/msg/Image", typestore=store) for b in (first, second)]
    types = MessageTypes.from_typestore(store)
    for i, rgb in enumerate(frames):
        msg = rgb_to_image_msg(rgb, make_header(START + i, "camera", types), types)
        for staged, conn in zip((first, second), conns):
            if staged is first or i == 0:
                staged.writer.write(conn, int((START + i) * 1e9), store.serialize_cdr(msg, "sensor_msgs/msg/Image"))
    second.commit()
    first.commit()
    assert len(read_topic(target, store, "/camera/image_raw")) == 2  # the first writer's bag, whole
    assert [p.name for p in tmp_path.iterdir()] == ["same"]


def test_a_failed_force_run_keeps_the_old_bag(bag, tmp_path, store):
    target = tmp_path / "keep"
    write_frames_bag(target, [(START, sample.sample_frames(1)[0])], store, SampleBagSpec())

    def broken():
        yield START, sample.sample_frames(1)[0]
        raise FerError("the source failed")

    with pytest.raises(FerError, match="the source failed"):
        write_frames_bag(target, broken(), store, SampleBagSpec(), force=True)
    reader = open_reader(target)  # --force deletes the old bag only once a new one is complete
    reader.close()
    assert [p.name for p in tmp_path.iterdir()] == ["keep"]
