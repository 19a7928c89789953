"""Bag tools without a pipeline: sample bags in both storages read back field by field, ground
truth from CSV and from a label topic, and the errors for bad bags and occupied output paths."""
import os
import sqlite3

import cv2
import numpy as np
import pytest
from conftest import read_topic

from fer_ros import sample
from fer_ros.bags.bagtools import (
    BagReadError,
    Labels,
    SampleBagSpec,
    canonical_label,
    iter_messages,
    open_reader,
    prepare_output,
    read_label_csv,
    read_label_topic,
    source_frames,
    stamp_ns,
    storage_of,
    topic_connections,
    write_frames_bag,
)
from fer_ros.errors import FerError
from fer_ros.messages.convert import image_msg_to_rgb, msg_to_rgb, stamp_to_seconds

T0 = 1_700_000_000.25  # an epoch-sized stamp, as a real recording has
N = 4


@pytest.fixture(scope="module")
def frames():
    return sample.sample_frames(N)


def stamped(frames, fps=sample.FPS):
    return [(T0 + i / fps, f) for i, f in enumerate(frames)]


def write_labels(tmp_path, text, name="labels.csv"):
    path = tmp_path / name
    path.write_text(text)
    return str(path)


@pytest.mark.parametrize("storage,compressed,encoding", [("sqlite3", False, "rgb8"), ("mcap", True, "rgb8"),
                                                         ("sqlite3", False, "bgr8")])
def test_frames_bag_reads_back(tmp_path, store, frames, storage, compressed, encoding):
    spec = SampleBagSpec(topic="/cam/image", compressed=compressed, encoding=encoding, frame_id="head_camera",
                         storage=storage)
    counts = write_frames_bag(tmp_path / "bag", stamped(frames), store, spec)
    assert counts == {"/cam/image": N}
    assert storage_of(tmp_path / "bag") == storage
    messages = read_topic(tmp_path / "bag", store, "/cam/image")
    assert len(messages) == N
    for i, (ns, msg) in enumerate(messages):
        stamp = T0 + i / sample.FPS
        assert ns == stamp_ns(stamp)
        assert abs(stamp_to_seconds(msg.header.stamp) - stamp) < 1e-6
        assert msg.header.frame_id == "head_camera"
        rgb = msg_to_rgb(msg)
        assert rgb.shape == (480, 640, 3)
        if compressed:
            assert np.abs(rgb.astype(int) - frames[i]).mean() < 4  # jpeg
        else:
            assert msg.encoding == encoding
            np.testing.assert_array_equal(image_msg_to_rgb(msg), frames[i])


def test_label_topic_written_at_changes_and_read_back(tmp_path, store, frames):
    csv = write_labels(tmp_path, "frame,label\n0,Happiness\n2,none\n3,SAD\n")
    spec = SampleBagSpec(storage="mcap")
    counts = write_frames_bag(tmp_path / "bag", stamped(frames), store, spec, read_label_csv(csv))
    assert counts == {"/camera/image_raw": N, "/emotion_label": 3}
    labels = read_topic(tmp_path / "bag", store, "/emotion_label")
    assert [m.data for _, m in labels] == ["happy", "", "sad"]
    assert [ns for ns, _ in labels] == [stamp_ns(T0 + i / sample.FPS) for i in (0, 2, 3)]
    reader = open_reader(tmp_path / "bag")
    try:
        truth = read_label_topic(reader, "/emotion_label", store, "bag")
    finally:
        reader.close()
    per_frame = [truth.at(i, 0.0, 0.0, stamp_ns(T0 + i / sample.FPS)) for i in range(N)]
    assert per_frame == ["happy", "happy", None, "sad"]


def test_label_csv_kinds_synonyms_and_steps(tmp_path):
    frame = read_label_csv(write_labels(tmp_path, "# annotated by hand\nFrame,Emotion\n10,sadness\n0,Joy\n20,-\n"))
    assert frame.kind == "frame" and frame.keys == [0.0, 10.0, 20.0]
    assert [frame.at(i, 0, 0) for i in (0, 9, 10, 19, 20, 99)] == ["happy", "happy", "sad", "sad", None, None]
    stamp = read_label_csv(write_labels(tmp_path, "stamp,label\n100.5,angry\n101.0,surprised\n"))
    assert stamp.kind == "stamp"
    assert stamp.at(0, 100.49, 0) is None
    assert stamp.at(0, 100.49995, 0) == "angry"  # a stamp rounded up in the CSV still matches its frame
    assert stamp.at(0, 101.2, 0) == "surprise"
    rel = read_label_csv(write_labels(tmp_path, "time,label\n0,neutral\n1.5,fearful\n"))
    assert rel.kind == "time"
    assert rel.at(0, 50.0, 50.0) == "neutral" and rel.at(0, 51.6, 50.0) == "fear"
    assert canonical_label(" Anger ") == "angry" and canonical_label("none") is None and canonical_label("") is None


@pytest.mark.parametrize("text,match", [("label\nhappy\n", "frame, stamp or time column"),
                                        ("frame,label\n", "at least one row"),
                                        ("frame,label\nabc,happy\n", "row 2"),
                                        ("frame,label\nnan,happy\n", "not a finite number")])
def test_label_csv_errors(tmp_path, text, match):
    with pytest.raises(FerError, match=match):
        read_label_csv(write_labels(tmp_path, text))
    with pytest.raises(FerError, match="cannot read label file"):
        read_label_csv(tmp_path / "missing.csv")


def test_output_path_rules(tmp_path, store, frames):
    bag = tmp_path / "bag"
    write_frames_bag(bag, stamped(frames[:1]), store, SampleBagSpec())
    with pytest.raises(FerError, match="--force"):
        write_frames_bag(bag, stamped(frames[:2]), store, SampleBagSpec())
    assert write_frames_bag(bag, stamped(frames[:2]), store, SampleBagSpec(), force=True) == {"/camera/image_raw": 2}
    with pytest.raises(FerError, match="is \\(or holds\\) the input"):
        prepare_output(bag, force=True, inputs=[bag])
    db3 = next(bag.glob("*.db3"))
    with pytest.raises(FerError, match="is \\(or holds\\) the input"):
        prepare_output(bag, force=True, inputs=[db3])
    assert db3.exists()
    precious = tmp_path / "home"
    (precious / "notes").mkdir(parents=True)
    (precious / "thesis.tex").write_text("do not delete")
    with pytest.raises(FerError, match="not a bag folder"):
        prepare_output(precious, force=True)
    assert (precious / "thesis.tex").exists()
    with pytest.raises(FerError, match="no frames"):
        write_frames_bag(tmp_path / "empty", [], store, SampleBagSpec())
    assert not (tmp_path / "empty").exists()


def test_missing_topic_lists_topics(tmp_path, store, frames):
    write_frames_bag(tmp_path / "bag", stamped(frames[:1]), store, SampleBagSpec(topic="/front/image_raw"))
    reader = open_reader(tmp_path / "bag")
    try:
        with pytest.raises(FerError) as err:
            topic_connections(reader, "/camera/image_raw", ("sensor_msgs/msg/Image",), "bag", "image")
        assert "/front/image_raw (sensor_msgs/msg/Image, 1 messages)" in str(err.value)
        with pytest.raises(FerError, match="carries sensor_msgs/msg/Image, not std_msgs/msg/String"):
            topic_connections(reader, "/front/image_raw", ("std_msgs/msg/String",), "bag", "label")
    finally:
        reader.close()


def test_truncated_and_foreign_files(tmp_path, store, frames):
    for storage, suffix in (("sqlite3", ".db3"), ("mcap", ".mcap")):
        bag = tmp_path / storage
        write_frames_bag(bag, stamped(frames[:2]), store, SampleBagSpec(storage=storage))
        data = next(bag.glob(f"*{suffix}")).read_bytes()
        cut = tmp_path / f"cut{suffix}"
        cut.write_bytes(data[: len(data) // 3])
        with pytest.raises(FerError, match="truncated, corrupt or not a ROS 2 bag"):
            open_reader(cut)
    with pytest.raises(FerError, match="does not exist"):
        open_reader(tmp_path / "nowhere")
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(FerError, match="cannot read bag"):
        open_reader(tmp_path / "notes.txt")


def test_read_failure_part_way_is_a_fer_error():
    class Damaged:
        def messages(self, connections):
            yield "conn", 1, b"a"
            yield "conn", 2, b"b"
            raise sqlite3.DatabaseError("database disk image is malformed")

    got = []
    with pytest.raises(BagReadError, match="after 2 messages.*malformed") as err:
        for item in iter_messages(Damaged(), [], "bag"):
            got.append(item)
    assert len(got) == 2 and err.value.good == 2 and isinstance(err.value, FerError)


def test_source_frames_sample_and_folder(tmp_path):
    out = list(source_frames("sample", fps=10.0, max_frames=3, start=5.0))
    assert [s for s, _ in out] == pytest.approx([5.0, 5.1, 5.2])
    assert all(f.shape == (480, 640, 3) for _, f in out)
    folder = tmp_path / "imgs"
    folder.mkdir()
    for i, (_, f) in enumerate(out):
        cv2.imwrite(str(folder / f"{i:02d}.png"), f[..., ::-1])
    (folder / "readme.txt").write_text("not an image")
    got = list(source_frames(str(folder), fps=2.0, start=0.0))
    assert [s for s, _ in got] == [0.0, 0.5, 1.0]
    np.testing.assert_array_equal(got[1][1], out[1][1])
    with pytest.raises(FerError, match="--fps"):
        list(source_frames("sample", fps=0.0))
    (tmp_path / "empty").mkdir()
    with pytest.raises(FerError, match="no images"):
        list(source_frames(str(tmp_path / "empty"), fps=1.0))


def test_make_bag_command(tmp_path, capsys, store):
    from fer_ros.cli import main

    csv = write_labels(tmp_path, "time,label\n0,happy\n0.1,sad\n")
    out = str(tmp_path / "made")
    argv = ["make-bag", out, "--from", "sample", "--frames", "3", "--fps", "10", "--start", "42", "--compressed",
            "--storage", "mcap", "--labels", csv, "--frame-id", "cam"]
    assert main(argv) == 0
    assert "/camera/image_raw/compressed 3 messages" in capsys.readouterr().out
    images = read_topic(out, store, "/camera/image_raw/compressed")
    assert [round(stamp_to_seconds(m.header.stamp), 6) for _, m in images] == [42.0, 42.1, 42.2]
    assert {m.header.frame_id for _, m in images} == {"cam"}
    assert [m.data for _, m in read_topic(out, store, "/emotion_label")] == ["happy", "sad"]
    assert main(argv) == 2  # exists
    assert "--force" in capsys.readouterr().err
    assert main(argv + ["--force"]) == 0
    assert os.path.isdir(out)


def test_labels_dataclass_needs_bag_time():
    labels = Labels("bag_ns", [0.0], ["happy"])
    with pytest.raises(FerError, match="bag time"):
        labels.at(0, 0.0, 0.0)
