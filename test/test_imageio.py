"""Frame sources and writers: round trips keep RGB order, bad inputs give helpful FerErrors."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from fer_ros.errors import FerError
from fer_ros.imageio import Frame, FrameWriter, open_source, read_image, write_image

RED = (255, 0, 0)
GREEN = (0, 255, 0)


def moving_frames(count: int = 12, width: int = 160, height: int = 120) -> list[np.ndarray]:
    """Red background with a green disc moving right: colour order and motion are both visible."""
    frames = []
    for i in range(count):
        frame = np.zeros((height, width, 3), np.uint8)
        frame[:] = RED
        cv2.circle(frame, (16 + 10 * i, height // 2), 12, GREEN, -1)
        frames.append(frame)
    return frames


def disc_x(image: np.ndarray) -> float:
    mask = (image[..., 1] > 150) & (image[..., 0] < 100)
    return float(np.nonzero(mask)[1].mean())


@pytest.mark.parametrize("ext", ["mp4", "avi"])
def test_video_round_trip(tmp_path, ext):
    path = tmp_path / f"clip.{ext}"
    frames = moving_frames()
    with FrameWriter(path, fps=12.0) as writer:
        for frame in frames:
            writer.write(frame)
    assert writer.is_video and writer.count == len(frames)
    with open_source(str(path)) as source:
        assert source.is_video and source.size == (160, 120)
        assert source.fps == pytest.approx(12.0, rel=1e-3)
        read = list(source)
    assert len(read) == len(frames)
    assert all(isinstance(f, Frame) for f in read)
    assert [f.index for f in read] == list(range(len(frames)))
    stamps = np.array([f.stamp for f in read])
    assert stamps[0] == pytest.approx(0.0, abs=1e-3)
    np.testing.assert_allclose(np.diff(stamps), 1 / 12.0, atol=2e-3)
    corner = read[0].image[4, 4].astype(int)
    assert corner[0] > 200 and corner[2] < 60, f"red came back as {corner}: channel order swapped"
    positions = [disc_x(f.image) for f in read]
    assert np.all(np.diff(positions) > 5)  # the disc keeps moving right


def test_image_round_trip_png_exact(tmp_path):
    image = np.random.default_rng(0).integers(0, 255, (37, 53, 3), dtype=np.uint8)
    path = tmp_path / "sub" / "frame.png"  # parent folder is created
    write_image(path, image)
    np.testing.assert_array_equal(read_image(path), image)
    with open_source(str(path)) as source:
        frames = list(source)
    assert not source.is_video and source.fps is None and source.size == (53, 37)
    assert len(frames) == 1 and frames[0].stamp == 0.0 and frames[0].index == 0
    np.testing.assert_array_equal(frames[0].image, image)


def test_jpeg_keeps_red_red(tmp_path):
    image = np.zeros((32, 32, 3), np.uint8)
    image[:] = RED
    write_image(tmp_path / "red.jpg", image)
    back = read_image(tmp_path / "red.jpg").astype(int)
    assert back[..., 0].min() > 200 and back[..., 2].max() < 60


def test_image_with_other_extension_is_read_as_image(tmp_path):
    image = np.random.default_rng(1).integers(0, 255, (20, 30, 3), dtype=np.uint8)
    ok, encoded = cv2.imencode(".tiff", cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    assert ok
    path = tmp_path / "frame.tiff"
    encoded.tofile(str(path))
    with open_source(str(path)) as source:
        assert not source.is_video
        np.testing.assert_array_equal(next(iter(source)).image, image)


def test_image_writer_one_frame_and_sequence(tmp_path):
    frames = moving_frames(3, 40, 30)
    single = tmp_path / "one.png"
    with FrameWriter(single) as writer:
        writer.write(frames[0])
    assert writer.paths == [single] and single.exists()

    many = tmp_path / "many.png"
    with FrameWriter(many) as writer:
        for frame in frames:
            writer.write(frame)
    expected = [tmp_path / f"many_{i:06d}.png" for i in range(3)]
    assert writer.paths == expected
    assert not many.exists()
    for path, frame in zip(expected, frames):
        np.testing.assert_array_equal(read_image(path), frame)


def test_writer_rejects_unknown_extension_and_size_change(tmp_path):
    with pytest.raises(FerError, match=r"\.mkv.*\.png.*\.mp4.*\.avi"):
        FrameWriter(tmp_path / "out.mkv")
    with pytest.raises(FerError, match="unknown extension"):
        write_image(tmp_path / "out.gif", np.zeros((4, 4, 3), np.uint8))
    with pytest.raises(FerError, match="fps"):
        FrameWriter(tmp_path / "out.mp4", fps=0)
    with FrameWriter(tmp_path / "out.avi", fps=5) as writer:
        writer.write(np.zeros((40, 60, 3), np.uint8))
        with pytest.raises(FerError, match="60x40"):
            writer.write(np.zeros((50, 60, 3), np.uint8))
    with pytest.raises(FerError, match="RGB uint8"):
        FrameWriter(tmp_path / "x.png").write(np.zeros((4, 4), np.float32))


def test_missing_path(tmp_path):
    with pytest.raises(FerError, match="does not exist"):
        open_source(str(tmp_path / "nope.mp4"))
    with pytest.raises(FerError, match="does not exist"):
        read_image(tmp_path / "nope.png")
    with pytest.raises(FerError, match="directory"):
        open_source(str(tmp_path))


def _truncated(tmp_path: Path, name: str, source: Path) -> Path:
    data = source.read_bytes()
    target = tmp_path / name
    target.write_bytes(data[: len(data) // 2])
    return target


@pytest.mark.parametrize("kind", ["text", "text-as-mp4", "text-as-png", "empty", "truncated-mp4", "truncated-png"])
def test_undecodable_files(tmp_path, kind):
    if kind == "text":
        path = tmp_path / "notes.txt"
        path.write_text("not a picture\n" * 20)
    elif kind == "text-as-mp4":
        path = tmp_path / "fake.mp4"
        path.write_text("not a video\n" * 20)
    elif kind == "text-as-png":
        path = tmp_path / "fake.png"
        path.write_text("not an image\n" * 20)
    elif kind == "empty":
        path = tmp_path / "empty.mp4"
        path.write_bytes(b"")
    elif kind == "truncated-mp4":
        with FrameWriter(tmp_path / "full.mp4", fps=10) as writer:
            for frame in moving_frames():
                writer.write(frame)
        path = _truncated(tmp_path, "cut.mp4", tmp_path / "full.mp4")
    else:
        write_image(tmp_path / "full.png", moving_frames(1)[0])
        path = _truncated(tmp_path, "cut.png", tmp_path / "full.png")
    with pytest.raises(FerError, match=r"cannot decode .*" + path.name):
        open_source(str(path))


def test_video_with_zero_frames(tmp_path):
    path = tmp_path / "none.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10.0, (64, 48))
    writer.release()
    assert path.exists() and path.stat().st_size > 0
    with pytest.raises(FerError, match="no frames"):
        open_source(str(path))


def test_camera_that_cannot_be_opened():
    with pytest.raises(FerError, match="cannot open camera 97"):
        open_source("97")


def test_close_is_idempotent_and_stops_reading(tmp_path):
    path = tmp_path / "clip.avi"
    with FrameWriter(path, fps=10) as writer:
        for frame in moving_frames(5):
            writer.write(frame)
    source = open_source(str(path))
    iterator = iter(source)
    next(iterator)
    source.close()
    source.close()
    assert list(iterator) == []
