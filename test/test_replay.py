"""`fer-ros replay` end to end: real bags in both storages (raw and compressed images) through
the pipeline, the output bag read back (counts, stamps, frame_id, fields), ground-truth
reports, damaged messages skipped and counted, and the errors for bad bags."""
import json
import os

import numpy as np
import pytest
from conftest import read_topic

from fer_ros import sample
from fer_ros.bags import replay as replay_module
from fer_ros.bags.bagtools import (
    COMPRESSED_IMAGE,
    IMAGE,
    STRING,
    Labels,
    create_writer,
    open_reader,
    read_label_csv,
    read_label_topic,
    stamp_ns,
)
from fer_ros.bags.replay import BadMessages, FaceRecord, FrameRecord, ReplayOptions, ReplayResult, replay_bag
from fer_ros.bags.replay_report import build_report, save_report, settle_times, track_stability, truth_per_frame
from fer_ros.config import PipelineConfig
from fer_ros.errors import FerError
from fer_ros.messages.convert import (
    frame_result_to_msg,
    make_header,
    result_from_msg,
    rgb_to_compressed_msg,
    rgb_to_image_msg,
    stamp_to_seconds,
)
from fer_ros.messages.typestore import message_types
from fer_ros.models.checkpoint import resolve_weights
from fer_ros.pipeline import FramePipeline

N = 6
T0 = 1_700_000_000.0
FPS = sample.FPS
WIDTH, HEIGHT = sample.SIZE


@pytest.fixture(scope="module")
def frames():
    return sample.sample_frames(N)


@pytest.fixture(scope="module")
def weights(tiny_checkpoint):
    # FER2013's seven classes (no contempt): the label report below counts contempt frames as unknown
    bundled = resolve_weights("fer2013")
    return bundled if os.path.exists(bundled) else tiny_checkpoint


@pytest.fixture(scope="module")
def pipeline(weights):
    config = PipelineConfig()
    config.classifier.weights = [weights]
    config.detector.device = "cpu"
    return FramePipeline(config)


def stamp(i):
    return T0 + i / FPS


def header_ns(i):  # header stamps 2 ms before the bag (receive) time, as with a real camera
    return stamp(i) - 0.002


def write_camera_bag(path, store, frames, storage, labels=None):
    """/cam/raw: Image in rgb8 and bgr8 alternately; /cam/compressed: the same frames as jpeg."""
    types = message_types(store)
    writer = create_writer(path, storage)
    raw = writer.add_connection("/cam/raw", IMAGE, typestore=store)
    comp = writer.add_connection("/cam/compressed", COMPRESSED_IMAGE, typestore=store)
    lab = writer.add_connection("/truth", STRING, typestore=store) if labels else None
    for i, rgb in enumerate(frames):
        header = make_header(header_ns(i), f"optical_{i % 2}", types)
        encoding = ("rgb8", "bgr8")[i % 2]
        image = rgb_to_image_msg(rgb, header, types, encoding)
        writer.write(raw, stamp_ns(stamp(i)), store.serialize_cdr(image, IMAGE))
        writer.write(comp, stamp_ns(stamp(i)), store.serialize_cdr(rgb_to_compressed_msg(rgb, header, types),
                                                                   COMPRESSED_IMAGE))
        if lab is not None and i in labels:
            writer.write(lab, stamp_ns(stamp(i)), store.serialize_cdr(store.types[STRING](data=labels[i]), STRING))
    writer.close()
    return str(path)


@pytest.fixture(scope="module")
def sqlite_bag(tmp_path_factory, store, frames):
    return write_camera_bag(tmp_path_factory.mktemp("in") / "sqlite_bag", store, frames, "sqlite3",
                            labels={0: "Happiness", 3: "sad"})


@pytest.fixture(scope="module")
def mcap_bag(tmp_path_factory, store, frames):
    return write_camera_bag(tmp_path_factory.mktemp("in") / "mcap_bag", store, frames, "mcap")


def check_output(out, store, n, annotated_topic=None):
    """The output bag as fer_node would have published it: stamps, frame ids and fields."""
    emotions = read_topic(out, store, "/emotions")
    assert len(emotions) == n
    for i, (ns, msg) in enumerate(emotions):
        assert ns == stamp_ns(stamp(i))
        assert stamp_to_seconds(msg.header.stamp) == pytest.approx(header_ns(i), abs=1e-6)
        assert msg.header.frame_id == f"optical_{i % 2}"
        assert list(msg.class_names)
        assert len(msg.faces) >= 1  # the astronaut is in every frame of a 6-frame sample
        for face in msg.faces:
            roi = face.roi
            assert roi.width > 0 and roi.height > 0
            assert roi.x_offset + roi.width <= WIDTH and roi.y_offset + roi.height <= HEIGHT
            assert len(face.probabilities) == len(msg.class_names)
            assert abs(float(np.sum(face.probabilities)) - 1.0) < 1e-3
            assert face.label in list(msg.class_names) + ["uncertain"]
    if annotated_topic:
        images = read_topic(out, store, annotated_topic)
        assert [ns for ns, _ in images] == [ns for ns, _ in emotions]
        for (_, img), (_, em) in zip(images, emotions):
            assert (img.width, img.height, img.encoding) == (WIDTH, HEIGHT, "rgb8")
            assert img.header.frame_id == em.header.frame_id and img.header.stamp == em.header.stamp
    return emotions


def test_sqlite_raw_images_match_the_pipeline_field_for_field(tmp_path, store, frames, pipeline, sqlite_bag):
    out = str(tmp_path / "out")
    result = replay_bag(sqlite_bag, pipeline, ReplayOptions(image_topic="/cam/raw", out=out, annotated=True,
                                                            progress=False), store)
    assert (result.messages, len(result.frames), result.bad.total, result.time_source) == (N, N, 0, "header")
    assert result.written == {"/emotions": N, "/fer_node/annotated": N}
    assert os.path.exists(os.path.join(out, "out.db3"))  # storage follows the input
    emotions = check_output(out, store, N, "/fer_node/annotated")
    # the same frames through a fresh pipeline and the conversion layer give the same messages
    types = message_types(store)
    pipeline.reset()  # ids go on counting after a reset, so compare them by their offset
    offset = None
    for i, (_, msg) in enumerate(emotions):
        expected = frame_result_to_msg(pipeline.process(frames[i], header_ns(i)), msg.header, types)
        got, want = result_from_msg(msg), result_from_msg(expected)
        for a, b in zip(got["faces"], want["faces"]):
            offset = b["id"] - a["id"] if offset is None else offset
            assert a["bbox"] == b["bbox"] and a["label"] == b["label"] and b["id"] - a["id"] == offset
            assert a["probabilities"] == pytest.approx(b["probabilities"], abs=1e-5)
        assert len(got["faces"]) == len(want["faces"]) and got["class_names"] == want["class_names"]


def test_mcap_compressed_images_and_label_report(tmp_path, store, pipeline, mcap_bag):
    out = str(tmp_path / "out")
    result = replay_bag(mcap_bag, pipeline, ReplayOptions(image_topic="/cam/compressed", out=out, storage="sqlite3",
                                                          progress=False), store)
    assert len(result.frames) == N and result.bad.total == 0
    assert os.path.exists(os.path.join(out, "out.db3"))  # --storage overrides the input's
    check_output(out, store, N)
    csv = tmp_path / "truth.csv"
    csv.write_text("frame,label\n0,happy\n2,Sadness\n4,contempt\n")
    labels = read_label_csv(csv)
    report = build_report(result, labels)
    assert report["frames"] == N and report["bad_messages"] == 0
    assert report["detection_rate"] == 1.0 and report["detection_rate_labelled"] == 1.0
    assert report["labelled_frames"] == N and report["evaluated_frames"] == 4  # contempt: no such class
    assert report["ignored_labels"] == {"contempt": 2}
    cm = np.array(report["confusion_matrix"])
    assert cm.sum() == 4 and report["class_names"][-2:] == ["uncertain", "no_face"]
    assert report["accuracy"] == pytest.approx(np.trace(cm) / 4)
    assert cm[report["class_names"].index("happy")].sum() == 2
    assert report["latency_ms"]["p50"] > 0 and report["latency_ms"]["p95"] >= report["latency_ms"]["p50"]
    assert report["throughput_fps"] > 0 and report["flips_per_minute"] is not None
    paths = save_report(report, result, labels, str(tmp_path / "report"))
    assert {os.path.basename(p) for p in paths.values()} == {"report.json", "timeline.png", "confusion.png"}
    assert json.load(open(paths["json"]))["frames"] == N
    assert open(paths["timeline_png"], "rb").read(8) == b"\x89PNG\r\n\x1a\n"


def test_damaged_messages_are_skipped_and_counted(tmp_path, store, frames, pipeline):
    types = message_types(store)
    writer = create_writer(tmp_path / "bad", "mcap")
    raw = writer.add_connection("/cam", IMAGE, typestore=store)
    comp = writer.add_connection("/cam", COMPRESSED_IMAGE, typestore=store)  # one topic, both types
    header = lambda i: make_header(stamp(i), "cam", types)  # noqa: E731
    good = rgb_to_image_msg(frames[0], header(0), types)
    short = rgb_to_image_msg(frames[0], header(2), types)
    short.data = short.data[:1000]
    depth = rgb_to_image_msg(frames[0], header(3), types)
    depth.encoding = "32FC1"  # a depth image: no colour to read
    broken_jpeg = rgb_to_compressed_msg(frames[0], header(4), types)
    broken_jpeg.data = broken_jpeg.data[:50]
    writer.write(raw, stamp_ns(stamp(0)), store.serialize_cdr(good, IMAGE))
    writer.write(raw, stamp_ns(stamp(1)), b"\x00\x01\x00\x00garbage")
    writer.write(raw, stamp_ns(stamp(2)), store.serialize_cdr(short, IMAGE))
    writer.write(raw, stamp_ns(stamp(3)), store.serialize_cdr(depth, IMAGE))
    writer.write(comp, stamp_ns(stamp(4)), store.serialize_cdr(broken_jpeg, COMPRESSED_IMAGE))
    writer.write(comp, stamp_ns(stamp(5)), store.serialize_cdr(rgb_to_compressed_msg(frames[1], header(5), types),
                                                               COMPRESSED_IMAGE))
    writer.close()
    options = ReplayOptions(out=str(tmp_path / "out"), progress=False)
    result = replay_bag(str(tmp_path / "bad"), pipeline, options, store)
    assert result.image_topic == "/cam"  # the only image topic, picked without --image-topic
    assert result.messages == 6 and [f.index for f in result.frames] == [0, 5]
    assert result.bad.counts == {"corrupt_message": 1, "bad_image": 2, "unsupported_encoding": 1}
    assert "32FC1" in result.bad.examples["unsupported_encoding"]
    assert len(read_topic(str(tmp_path / "out"), store, "/emotions")) == 2
    assert build_report(result)["bad_messages"] == 4


def test_label_topic_and_truth_alignment(store, pipeline, sqlite_bag):
    reader = open_reader(sqlite_bag)
    try:
        labels = read_label_topic(reader, "/truth", store, sqlite_bag)
    finally:
        reader.close()
    options = ReplayOptions(image_topic="/cam/compressed", progress=False, max_frames=5)
    result = replay_bag(sqlite_bag, pipeline, options, store)
    assert len(result.frames) == 5 and result.out is None and result.written == {}
    assert truth_per_frame(labels, result.frames) == ["happy"] * 3 + ["sad"] * 2
    report = build_report(result, labels)
    assert report["labelled_frames"] == 5 and report["evaluated_frames"] == 5
    assert report["unsettled_changes"] + len(report["settle_times_s"]) == 1


def test_bad_bag_errors(tmp_path, store, pipeline, sqlite_bag):
    with pytest.raises(FerError) as err:
        replay_module.check_bag(sqlite_bag, ReplayOptions(image_topic="/camera/image_raw"))
    text = str(err.value)
    assert "/cam/raw (sensor_msgs/msg/Image, 6 messages)" in text and "/truth (std_msgs/msg/String" in text
    with pytest.raises(FerError, match="several image topics"):
        replay_bag(sqlite_bag, pipeline, ReplayOptions(progress=False), store)
    with pytest.raises(FerError, match="not sensor_msgs/msg/Image or sensor_msgs/msg/CompressedImage"):
        replay_bag(sqlite_bag, pipeline, ReplayOptions(image_topic="/truth", progress=False), store)
    occupied = tmp_path / "occupied"
    occupied.mkdir()
    (occupied / "metadata.yaml").write_text("old")
    with pytest.raises(FerError, match="--force"):
        replay_module.check_bag(sqlite_bag, ReplayOptions(image_topic="/cam/raw", out=str(occupied)))
    with pytest.raises(FerError, match="is \\(or holds\\) the input"):
        replay_bag(sqlite_bag, pipeline, ReplayOptions(image_topic="/cam/raw", out=sqlite_bag, force=True,
                                                       progress=False), store)
    assert os.path.isdir(sqlite_bag)


def test_read_failure_keeps_frames_written_so_far(tmp_path, store, pipeline, mcap_bag, monkeypatch):
    real = replay_module.iter_messages

    def failing(reader, conns, bag):
        for n, item in enumerate(real(reader, conns, bag)):
            if n == 2:
                raise replay_module.BagReadError(bag, n, EOFError("unexpected end of file"))
            yield item

    monkeypatch.setattr(replay_module, "iter_messages", failing)
    out = str(tmp_path / "partial")
    with pytest.raises(FerError, match="truncated or corrupt.*2 frames before it were written"):
        replay_bag(mcap_bag, pipeline, ReplayOptions(image_topic="/cam/raw", out=out, progress=False), store)
    assert [ns for ns, _ in read_topic(out, store, "/emotions")] == [stamp_ns(stamp(0)), stamp_ns(stamp(1))]


def test_replay_command(tmp_path, capsys, weights, mcap_bag, store):
    from fer_ros.cli import main

    csv = tmp_path / "truth.csv"
    csv.write_text(f"stamp,label\n{header_ns(0):.6f},neutral\n")
    out, report_dir = str(tmp_path / "out"), str(tmp_path / "report")
    argv = ["replay", mcap_bag, "--image-topic", "/cam/raw", "--out", out, "--labels", str(csv), "--report", report_dir,
            "--json", "--max-frames", "3", "--weights", weights, "--device", "cpu", "--no-progress",
            "--storage", "mcap"]
    assert main(argv) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["frames"] == 3 and report["labelled_frames"] == 3 and report["written"] == {"/emotions": 3}
    assert sorted(os.listdir(report_dir)) == ["confusion.png", "report.json", "timeline.png"]
    assert any(name.endswith(".mcap") for name in os.listdir(out))
    assert main(argv) == 2 and "--force" in capsys.readouterr().err
    assert main(argv + ["--force", "--annotated"]) == 0
    capsys.readouterr()
    assert len(read_topic(out, store, "/fer_node/annotated")) == 3
    assert main(["replay", mcap_bag, "--image-topic", "/nope", "--no-progress"]) == 2
    assert "/cam/compressed (sensor_msgs/msg/CompressedImage" in capsys.readouterr().err


# --- metrics on synthetic records (no pipeline) -------------------------------------------------

def _frames(labels_per_frame, fps=2.0, raw=None):
    """One track (id 1) whose published labels are given; None = no face in that frame."""
    out = []
    for i, label in enumerate(labels_per_frame):
        faces = [] if label is None else [FaceRecord(1, label, (raw or labels_per_frame)[i] or label, 0.9, 100.0, True)]
        out.append(FrameRecord(i, i * 500_000_000, i / fps, faces, 10.0 + i, {"detect": 5.0}))
    return out


def test_settle_time_and_flips_on_known_sequences():
    truth = ["happy", "happy", "sad", "sad", "sad", "angry", "angry"]
    predicted = ["happy", "happy", "happy", "uncertain", "sad", "happy", "happy"]
    frames = _frames(predicted)
    times, unsettled = settle_times(frames, truth, predicted)
    assert times == [1.0] and unsettled == 1  # sad matched 2 frames (1 s at 2 fps) after the change; angry never
    tracks = track_stability(frames)
    assert tracks[0]["flips"] == 3 and tracks[0]["duration_s"] == 3.0
    assert tracks[0]["flips_per_minute"] == pytest.approx(60.0)


def test_report_scores_main_face_and_counts_missing_faces():
    frames = _frames(["happy", "happy", None, "uncertain"])
    frames[0].faces.append(FaceRecord(2, "sad", "sad", 0.9, 10.0, True))  # smaller face: not the main one
    result = ReplayResult(bag="b", image_topic="/cam", out=None, class_names=["angry", "happy", "sad"],
                          time_source="header", frames=frames, messages=5, bad=BadMessages({"bad_image": 1}),
                          written={}, wall_s=2.0, weights="w", device="cpu")
    labels = Labels("frame", [0.0], ["happy"])
    report = build_report(result, labels)
    assert report["accuracy"] == 0.5 and report["detection_rate"] == 0.75
    names = report["class_names"]
    cm = np.array(report["confusion_matrix"])
    assert cm[names.index("happy"), names.index("happy")] == 2
    assert cm[names.index("happy"), names.index("no_face")] == 1
    assert cm[names.index("happy"), names.index("uncertain")] == 1
    assert report["macro_f1"] == pytest.approx(2 / 3)  # happy only: precision 1, recall 0.5
    assert report["throughput_fps"] == 2.0 and report["bad_messages"] == 1
    assert report["latency_ms"]["p50"] == pytest.approx(11.5)
    no_truth = build_report(result)
    assert no_truth["accuracy"] is None and no_truth["labels"] is None
