"""The ROS conversion layer, tested with real message classes from the rosbags typestore.

Results -> EmotionArray field by field and through CDR; images of every supported encoding,
odd sizes and padded rows against numpy; bad encodings, short data and corrupt JPEGs.
"""
import array
import dataclasses
import math

import numpy as np
import pytest

pytest.importorskip("rosbags", reason="rosbags missing: pip install rosbags")

import cv2  # noqa: E402

from fer_ros.errors import FerError  # noqa: E402
from fer_ros.messages.convert import (  # noqa: E402
    SUPPORTED_ENCODINGS,
    compressed_msg_to_rgb,
    frame_result_to_msg,
    image_msg_to_rgb,
    make_header,
    msg_to_rgb,
    rclpy_float32_array,
    rclpy_uint8_array,
    result_from_msg,
    rgb_to_compressed_msg,
    rgb_to_image_msg,
    stamp_to_seconds,
)
from fer_ros.messages.typestore import EMOTION_ARRAY, get_typestore, message_types  # noqa: E402
from fer_ros.types import FaceResult, FrameResult  # noqa: E402

CLASSES = ["angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"]
WIDTH, HEIGHT = 640, 480
IMAGE = "sensor_msgs/msg/Image"
COMPRESSED = "sensor_msgs/msg/CompressedImage"


@pytest.fixture(scope="module")
def store():
    return get_typestore()


@pytest.fixture(scope="module")
def types(store):
    return message_types(store)


@pytest.fixture(scope="module")
def rclpy_style(types):
    """rosbags classes, but arrays stored as rclpy stores them (array.array)."""
    return dataclasses.replace(types, float32_array=rclpy_float32_array, uint8_array=rclpy_uint8_array)


def _probs(rng):
    p = rng.random(len(CLASSES)) + 1e-3
    return (p / p.sum()).astype(np.float32)


def make_face(i, rng):
    x1, y1 = rng.uniform(0, WIDTH - 120), rng.uniform(0, HEIGHT - 120)
    size = rng.uniform(40, 110)
    bbox = np.array([x1, y1, x1 + size, y1 + size * 1.2], dtype=np.float32)
    landmarks = np.stack([rng.uniform(x1, x1 + size, 5), rng.uniform(y1, y1 + size, 5)], axis=1).astype(np.float32)
    probs, raw = _probs(rng), _probs(rng)
    return FaceResult(track_id=i * 7 + 1, bbox=bbox, landmarks=landmarks, detection_score=float(rng.uniform(0.9, 1)),
                      label=CLASSES[int(np.argmax(probs))] if i != 1 else "uncertain", confidence=float(probs.max()),
                      probabilities=probs, raw_label=CLASSES[int(np.argmax(raw))], raw_probabilities=raw,
                      stable=i % 2 == 0, stable_for=1.25 * i, detected=i != 2,
                      valence=float(rng.uniform(-1, 1)), arousal=float(rng.uniform(-1, 1)))


def make_result(n, seed=0):
    rng = np.random.default_rng(seed)
    return FrameResult(frame_index=3, stamp=12.5, image_size=(WIDTH, HEIGHT), class_names=list(CLASSES),
                       faces=[make_face(i, rng) for i in range(n)])


def assert_same(a, b):
    """Nested dict/list equality, floats to float32 precision (messages store float32), NaN == NaN."""
    if isinstance(a, dict):
        assert a.keys() == b.keys()
        for k in a:
            assert_same(a[k], b[k])
    elif isinstance(a, list):
        assert len(a) == len(b)
        for x, y in zip(a, b):
            assert_same(x, y)
    elif isinstance(a, float):
        assert (math.isnan(a) and math.isnan(b)) or a == pytest.approx(b, rel=1e-6, abs=1e-6)
    else:
        assert a == b


@pytest.mark.parametrize("n", [0, 1, 3])
def test_frame_result_fields(types, n):
    result = make_result(n)
    header = make_header(1700000000.25, "camera_optical_frame", types)
    msg = frame_result_to_msg(result, header, types)
    assert msg.header.frame_id == "camera_optical_frame"
    assert (msg.header.stamp.sec, msg.header.stamp.nanosec) == (1700000000, 250_000_000)
    assert list(msg.class_names) == CLASSES
    assert len(msg.faces) == n
    for face, m in zip(result.faces, msg.faces):
        assert m.track_id == face.track_id
        x1, y1, x2, y2 = face.bbox
        assert (m.roi.x_offset, m.roi.y_offset) == (math.floor(x1), math.floor(y1))
        assert (m.roi.x_offset + m.roi.width, m.roi.y_offset + m.roi.height) == (math.ceil(x2), math.ceil(y2))
        assert m.roi.do_rectify is False
        assert len(m.landmarks) == 5
        np.testing.assert_allclose([[p.x, p.y] for p in m.landmarks], face.landmarks, rtol=1e-6)
        assert all(p.z == 0.0 for p in m.landmarks)
        assert m.detection_score == pytest.approx(face.detection_score)
        assert (m.label, m.raw_label) == (face.label, face.raw_label)
        assert m.confidence == pytest.approx(face.confidence)
        np.testing.assert_allclose(m.probabilities, face.probabilities, rtol=1e-6)
        np.testing.assert_allclose(m.raw_probabilities, face.raw_probabilities, rtol=1e-6)
        assert (m.stable, m.detected) == (face.stable, face.detected)
        assert m.stable_for == pytest.approx(face.stable_for)
        assert (m.valence, m.arousal) == pytest.approx((face.valence, face.arousal), abs=1e-6)


@pytest.mark.parametrize("n", [0, 1, 3])
def test_emotion_array_cdr_round_trip(store, types, n):
    result = make_result(n, seed=n)
    result.faces[-1:] and result.faces[-1].landmarks.fill(np.nan)  # a face without landmarks
    msg = frame_result_to_msg(result, make_header(42.000000001, "cam", types), types)
    raw = bytes(store.serialize_cdr(msg, EMOTION_ARRAY))
    back = store.deserialize_cdr(raw, EMOTION_ARRAY)
    assert_same(result_from_msg(back), result_from_msg(msg))
    assert bytes(store.serialize_cdr(back, EMOTION_ARRAY)) == raw  # nothing lost or added


def test_rclpy_style_arrays(rclpy_style):
    msg = frame_result_to_msg(make_result(2), make_header(1.0, "cam", rclpy_style), rclpy_style)
    probs = msg.faces[0].probabilities
    assert isinstance(probs, array.array) and probs.typecode == "f"
    np.testing.assert_allclose(probs, make_result(2).faces[0].probabilities, rtol=1e-6)


def test_result_from_msg(types):
    result = make_result(3)
    d = result_from_msg(frame_result_to_msg(result, make_header(7.5, "cam", types), types))
    assert d["stamp"] == pytest.approx(7.5) and d["frame_id"] == "cam" and d["class_names"] == CLASSES
    assert [f["id"] for f in d["faces"]] == [f.track_id for f in result.faces]
    face, ref = d["faces"][0], result.faces[0]
    assert face["bbox"] == [math.floor(ref.bbox[0]), math.floor(ref.bbox[1]), math.ceil(ref.bbox[2]), math.ceil(ref.bbox[3])]
    assert set(face["probabilities"]) == set(CLASSES)
    assert face["probabilities"]["happy"] == pytest.approx(float(ref.probabilities[3]))
    assert face["label"] == ref.label and face["stable"] == ref.stable and face["detected"] == ref.detected
    assert d["faces"][1]["label"] == "uncertain"
    assert (face["valence"], face["arousal"]) == pytest.approx((ref.valence, ref.arousal), abs=1e-6)


def test_roi_is_clipped_to_the_image(types):
    result = make_result(2)
    result.faces[0].bbox = np.array([-5.5, -2.0, 700.0, 500.0], dtype=np.float32)
    result.faces[1].bbox = np.array([650.0, 10.0, 700.0, 60.0], dtype=np.float32)  # carried off-screen
    roi0, roi1 = (f.roi for f in frame_result_to_msg(result, make_header(0.0, "", types), types).faces)
    assert (roi0.x_offset, roi0.y_offset, roi0.width, roi0.height) == (0, 0, WIDTH, HEIGHT)
    assert (roi1.x_offset, roi1.width) == (WIDTH, 0)


def test_probability_count_mismatch_is_an_error(types):
    result = make_result(1)
    result.faces[0].raw_probabilities = result.faces[0].raw_probabilities[:5]
    with pytest.raises(FerError, match="raw_probabilities"):
        frame_result_to_msg(result, make_header(0.0, "", types), types)


@pytest.mark.parametrize("seconds", [0.0, 1.5, 12.000000001, 1700000000.123456789, 59.9999999996])
def test_header_stamp_round_trip(types, seconds):
    header = make_header(seconds, "cam", types)
    assert 0 <= header.stamp.nanosec < 1_000_000_000
    assert stamp_to_seconds(header.stamp) == pytest.approx(seconds, abs=1e-9, rel=1e-15)


@pytest.mark.parametrize("bad", [-1.0, float("nan"), float("inf")])
def test_header_rejects_bad_stamps(types, bad):
    with pytest.raises(FerError, match="stamp"):
        make_header(bad, "cam", types)


# --- images ------------------------------------------------------------------------------------

def encode(rgb, encoding, rng):
    """(pixels as the encoding stores them [h, w, c], the RGB the converter must return)."""
    if encoding == "rgb8":
        return rgb, rgb
    if encoding == "bgr8":
        return rgb[..., ::-1], rgb
    if encoding == "mono8":
        return rgb[..., :1], np.repeat(rgb[..., :1], 3, axis=2)
    alpha = rng.integers(0, 256, rgb.shape[:2] + (1,), dtype=np.uint8)
    if encoding == "rgba8":
        return np.concatenate([rgb, alpha], axis=2), rgb
    return np.concatenate([rgb[..., ::-1], alpha], axis=2), rgb  # bgra8


CONTAINERS = {"bytes": bytes, "array": lambda b: array.array("B", b), "list": list,
              "ndarray": lambda b: np.frombuffer(b, dtype=np.uint8)}


def raw_image_msg(types, pixels, encoding, padding, container, bigendian=0):
    h, w, c = pixels.shape
    rows = np.full((h, w * c + padding), 0xAB, dtype=np.uint8)  # padding bytes must never leak through
    rows[:, :w * c] = pixels.reshape(h, w * c)
    return types.Image(header=make_header(1.0, "cam", types), height=h, width=w, encoding=encoding,
                       is_bigendian=bigendian, step=w * c + padding, data=CONTAINERS[container](rows.tobytes()))


@pytest.mark.parametrize("encoding", ["rgb8", "bgr8", "mono8", "rgba8", "bgra8"])
@pytest.mark.parametrize("size", [(1, 1), (3, 5), (17, 9), (64, 48)])
@pytest.mark.parametrize("padding", [0, 1, 8])
@pytest.mark.parametrize("container", list(CONTAINERS))
def test_raw_image_to_rgb(types, encoding, size, padding, container):
    rng = np.random.default_rng(size[0] * 100 + padding)
    rgb = rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    pixels, expected = encode(rgb, encoding, rng)
    out = image_msg_to_rgb(raw_image_msg(types, pixels, encoding, padding, container))
    assert out.dtype == np.uint8 and out.shape == (size[1], size[0], 3) and out.flags.c_contiguous
    np.testing.assert_array_equal(out, expected)


def test_big_endian_flag_is_irrelevant_for_8_bit(types):
    rgb = np.random.default_rng(1).integers(0, 256, (5, 7, 3), dtype=np.uint8)
    msg = raw_image_msg(types, rgb[..., ::-1], "bgr8", 2, "bytes", bigendian=1)
    np.testing.assert_array_equal(image_msg_to_rgb(msg), rgb)


def test_result_does_not_alias_message_data(types):
    rgb = np.zeros((4, 4, 3), dtype=np.uint8)
    msg = raw_image_msg(types, rgb, "rgb8", 0, "ndarray")
    msg.data = msg.data.copy()
    out = image_msg_to_rgb(msg)
    msg.data[:] = 255
    assert out.max() == 0


# Known colours in flat 12x12 patches: every conversion (demosaicing and chroma subsampling
# included) must give them back in the patch interiors.
COLOURS = np.array([[[200, 40, 40], [40, 180, 60], [50, 60, 210]],
                    [[230, 230, 230], [20, 20, 20], [220, 200, 40]]], dtype=np.uint8)
PATCH = 12


def known_colours():
    return np.repeat(np.repeat(COLOURS, PATCH, axis=0), PATCH, axis=1)  # 24 x 36 RGB


def bt601_yuv(rgb):
    """Limited-range BT.601 Y, U, V (what OpenCV's YUV 4:2:2 conversions invert), computed by hand."""
    r, g, b = (rgb[..., i].astype(np.float64) for i in range(3))
    y = 16 + (65.738 * r + 129.057 * g + 25.064 * b) / 256
    u = 128 + (-37.945 * r - 74.494 * g + 112.439 * b) / 256
    v = 128 + (112.439 * r - 94.154 * g - 18.285 * b) / 256
    return [np.clip(np.round(c), 0, 255).astype(np.uint8) for c in (y, u, v)]


def stored(rgb, encoding, bigendian):
    """(bytes of each row as the encoding stores ``rgb``, expected RGB) - written without OpenCV."""
    h, w, _ = rgb.shape
    grey = rgb[..., 1]  # mono: the green channel is as good a grey as any
    if encoding in ("mono16", "rgb16", "bgr16"):
        values = {"mono16": grey[..., None], "rgb16": rgb, "bgr16": rgb[..., ::-1]}[encoding].astype(np.uint16) * 257
        expected = np.repeat(grey[..., None], 3, axis=2) if encoding == "mono16" else rgb
        return values.astype(">u2" if bigendian else "<u2").view(np.uint8).reshape(h, -1), expected
    if encoding in ("yuv422", "yuv422_yuy2"):
        y, u, v = bt601_yuv(rgb)
        u2, v2 = u[:, 0::2], v[:, 0::2]  # one chroma pair per two pixels (flat patches: either sample)
        if encoding == "yuv422":  # U Y0 V Y1
            packed = np.stack([u2, y[:, 0::2], v2, y[:, 1::2]], axis=2)
        else:  # Y0 U Y1 V
            packed = np.stack([y[:, 0::2], u2, y[:, 1::2], v2], axis=2)
        return packed.reshape(h, w * 2), rgb
    if encoding.startswith("bayer_"):
        pattern = encoding[len("bayer_"):-1]  # e.g. "rggb": the 2x2 cell, row by row
        mosaic = np.zeros((h, w), np.uint8)
        for k, colour in enumerate(pattern):
            dy, dx = divmod(k, 2)
            mosaic[dy::2, dx::2] = rgb[dy::2, dx::2, "rgb".index(colour)]
        return mosaic, rgb
    raise AssertionError(encoding)


@pytest.mark.parametrize("encoding", ["mono16", "rgb16", "bgr16", "yuv422", "yuv422_yuy2",
                                      "bayer_rggb8", "bayer_bggr8", "bayer_gbrg8", "bayer_grbg8"])
@pytest.mark.parametrize("bigendian", [0, 1])
@pytest.mark.parametrize("padding", [0, 6])
def test_driver_encodings_give_the_known_colours(types, encoding, bigendian, padding):
    rows, expected = stored(known_colours(), encoding, bigendian)
    h = rows.shape[0]
    data = np.full((h, rows.shape[1] + padding), 0xAB, np.uint8)
    data[:, :rows.shape[1]] = rows
    msg = types.Image(header=make_header(1.0, "cam", types), height=h, width=known_colours().shape[1],
                      encoding=encoding, is_bigendian=bigendian, step=data.shape[1], data=data.tobytes())
    out = image_msg_to_rgb(msg)
    assert out.dtype == np.uint8 and out.shape == expected.shape and out.flags.c_contiguous
    for py in range(COLOURS.shape[0]):
        for px in range(COLOURS.shape[1]):
            ys, xs = slice(py * PATCH + 3, py * PATCH + PATCH - 3), slice(px * PATCH + 3, px * PATCH + PATCH - 3)
            got = out[ys, xs].reshape(-1, 3).astype(int)
            want = expected[ys, xs].reshape(-1, 3).astype(int)
            assert np.abs(got - want).max() <= 3, (encoding, COLOURS[py, px], got[0])


def test_16_bit_keeps_the_high_byte(types):
    values = np.array([[0x0000, 0x00FF, 0x0100, 0xFFFF]], dtype="<u2")
    msg = types.Image(header=make_header(1.0, "cam", types), height=1, width=4, encoding="mono16", is_bigendian=0,
                      step=8, data=values.view(np.uint8).tobytes())
    assert image_msg_to_rgb(msg)[0, :, 0].tolist() == [0, 0, 1, 255]


def test_yuv422_with_an_odd_width_is_rejected(types):
    msg = types.Image(header=make_header(0.0, "", types), height=2, width=3, encoding="yuv422", is_bigendian=0,
                      step=6, data=bytes(12))
    with pytest.raises(FerError, match="odd width"):
        image_msg_to_rgb(msg)


@pytest.mark.parametrize("encoding", ["16UC1", "32FC1", "bayer_rggb16", "nv12", ""])
def test_unsupported_encodings_are_rejected(types, encoding):
    msg = types.Image(header=make_header(0.0, "", types), height=2, width=2, encoding=encoding, is_bigendian=0,
                      step=16, data=bytes(32))
    with pytest.raises(FerError, match="unsupported image encoding") as info:
        image_msg_to_rgb(msg)
    assert f"'{encoding}'" in str(info.value) and ", ".join(SUPPORTED_ENCODINGS) in str(info.value)


def test_short_data_is_rejected(types):
    msg = raw_image_msg(types, np.zeros((6, 5, 3), np.uint8), "rgb8", 1, "bytes")
    msg.data = msg.data[:-1]
    with pytest.raises(FerError, match=r"image data is 95 bytes, expected step\*height = 96"):
        image_msg_to_rgb(msg)


def test_step_smaller_than_row_is_rejected(types):
    msg = raw_image_msg(types, np.zeros((4, 5, 3), np.uint8), "rgb8", 0, "bytes")
    msg.step = 14
    with pytest.raises(FerError, match="step 14 is less than width\\*bytes_per_pixel = 15"):
        image_msg_to_rgb(msg)


def test_empty_image_is_rejected(types):
    msg = types.Image(header=make_header(0.0, "", types), height=0, width=0, encoding="rgb8", is_bigendian=0,
                      step=0, data=b"")
    with pytest.raises(FerError, match="empty"):
        image_msg_to_rgb(msg)


@pytest.mark.parametrize("encoding", ["rgb8", "bgr8"])
@pytest.mark.parametrize("size", [(1, 1), (7, 3), (33, 20)])
def test_rgb_to_image_msg_round_trip_through_cdr(store, types, rclpy_style, encoding, size):
    rgb = np.random.default_rng(size[0]).integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    msg = rgb_to_image_msg(rgb, make_header(3.0, "cam", types), types, encoding=encoding)
    assert (msg.encoding, msg.step, msg.width, msg.height) == (encoding, size[0] * 3, size[0], size[1])
    back = store.deserialize_cdr(bytes(store.serialize_cdr(msg, IMAGE)), IMAGE)
    np.testing.assert_array_equal(image_msg_to_rgb(back), rgb)
    rclpy_msg = rgb_to_image_msg(rgb, msg.header, rclpy_style, encoding=encoding)
    assert isinstance(rclpy_msg.data, array.array) and rclpy_msg.data.typecode == "B"
    np.testing.assert_array_equal(image_msg_to_rgb(rclpy_msg), rgb)


def test_rgb_to_image_msg_rejects_other_encodings_and_arrays(types):
    header = make_header(0.0, "", types)
    with pytest.raises(FerError, match="mono8"):
        rgb_to_image_msg(np.zeros((2, 2, 3), np.uint8), header, types, encoding="mono8")
    with pytest.raises(FerError, match="RGB uint8"):
        rgb_to_image_msg(np.zeros((2, 2), np.uint8), header, types)


def smooth_image(h=48, w=64):
    y, x = np.mgrid[0:h, 0:w]
    return np.stack([x * 255 // w, y * 255 // h, (x + y) * 255 // (w + h)], axis=2).astype(np.uint8)


def test_png_round_trip_is_exact(store, types):
    rgb = smooth_image()
    msg = rgb_to_compressed_msg(rgb, make_header(1.0, "cam", types), types, fmt="png")
    assert msg.format == "rgb8; png compressed bgr8"
    back = store.deserialize_cdr(bytes(store.serialize_cdr(msg, COMPRESSED)), COMPRESSED)
    np.testing.assert_array_equal(compressed_msg_to_rgb(back), rgb)


def test_jpeg_round_trip_keeps_colour_order(types):
    rgb = smooth_image()
    out = compressed_msg_to_rgb(rgb_to_compressed_msg(rgb, make_header(1.0, "cam", types), types, quality=95))
    assert out.shape == rgb.shape
    assert np.abs(out.astype(int) - rgb.astype(int)).mean() < 3.0


def test_grey_jpeg_becomes_three_channels(types):
    grey = smooth_image()[..., 0]
    ok, buf = cv2.imencode(".jpg", grey)
    msg = types.CompressedImage(header=make_header(0.0, "", types), format="mono8; jpeg compressed mono8",
                                data=buf.reshape(-1))
    out = compressed_msg_to_rgb(msg)
    assert out.shape == grey.shape + (3,)
    np.testing.assert_array_equal(out[..., 0], out[..., 2])


@pytest.mark.parametrize("data", [b"", b"not an image at all", "corrupt_header"])
def test_corrupt_compressed_data_is_rejected(types, data):
    if data == "corrupt_header":
        ok, buf = cv2.imencode(".jpg", smooth_image())
        data = bytes(16) + buf.tobytes()[16:]
    msg = types.CompressedImage(header=make_header(0.0, "", types), format="jpeg", data=data)
    with pytest.raises(FerError, match="compressed image"):
        compressed_msg_to_rgb(msg)


def test_msg_to_rgb_dispatches_on_message_type(types):
    rgb = smooth_image(8, 10)
    header = make_header(0.0, "", types)
    np.testing.assert_array_equal(msg_to_rgb(rgb_to_image_msg(rgb, header, types, "bgr8")), rgb)
    np.testing.assert_array_equal(msg_to_rgb(rgb_to_compressed_msg(rgb, header, types, fmt="png")), rgb)


def test_pipeline_result_of_a_real_face_to_emotion_array(store, types, tmp_path):
    """The node's path without rclpy: Image (through CDR) -> RGB -> pipeline -> EmotionArray -> CDR.

    An untrained tiny checkpoint keeps it fast and independent of the bundled model: only the
    plumbing is checked, not the predicted emotion.
    """
    torch = pytest.importorskip("torch")
    skimage_data = pytest.importorskip("skimage.data")
    from fer_ros.models.ams_cnn import build_model, config_for
    from fer_ros.models.checkpoint import save_checkpoint
    from fer_ros.models.preprocess import Preprocessing
    from fer_ros.parameters.node import settings_from_params
    from fer_ros.pipeline import FramePipeline

    torch.manual_seed(0)
    weights = str(tmp_path / "tiny.pt")
    save_checkpoint(weights, build_model(config_for("tiny")), Preprocessing(input_size=32), CLASSES)
    config, _ = settings_from_params({"detector.device": "cpu", "classifier.weights": weights})
    pipeline = FramePipeline(config)

    image = rgb_to_image_msg(skimage_data.astronaut(), make_header(3.5, "cam", types), types, encoding="bgr8")
    image = store.deserialize_cdr(bytes(store.serialize_cdr(image, IMAGE)), IMAGE)
    result = pipeline.process(image_msg_to_rgb(image), stamp_to_seconds(image.header.stamp))
    msg = frame_result_to_msg(result, image.header, types)
    back = result_from_msg(store.deserialize_cdr(bytes(store.serialize_cdr(msg, EMOTION_ARRAY)), EMOTION_ARRAY))

    assert back["stamp"] == pytest.approx(3.5) and back["frame_id"] == "cam" and back["class_names"] == CLASSES
    assert len(back["faces"]) == 1
    x1, y1, x2, y2 = back["faces"][0]["bbox"]
    assert 170 < (x1 + x2) / 2 < 280 and 50 < (y1 + y2) / 2 < 185  # the astronaut's face
    assert sum(back["faces"][0]["raw_probabilities"].values()) == pytest.approx(1.0, abs=1e-4)


@pytest.mark.parametrize("seconds, stamp", [(0.0, (0, 0)), (1.5, (1, 500_000_000)), (2.9999999999, (3, 0)),
                                            (1_700_000_000.25, (1_700_000_000, 250_000_000))])
def test_seconds_to_stamp_splits_before_scaling(seconds, stamp):
    from fer_ros.messages.convert import seconds_to_ns, seconds_to_stamp

    assert seconds_to_stamp(seconds) == stamp
    assert seconds_to_ns(seconds) == stamp[0] * 1_000_000_000 + stamp[1]


def test_a_music_decision_becomes_now_playing_through_cdr(store, types):
    from fer_ros.messages.convert import decision_to_msg
    from fer_ros.messages.typestore import NOW_PLAYING
    from fer_ros.music.policy import Decision

    decision = Decision(stamp=12.25, action="play", emotion="happy", playlist="upbeat", item="a.mp3", track_id=4,
                        strategy="match", reason="happy for 2.0 s")
    msg = store.deserialize_cdr(store.serialize_cdr(decision_to_msg(decision, "log", "cam", types), NOW_PLAYING),
                                NOW_PLAYING)
    assert (msg.header.stamp.sec, msg.header.stamp.nanosec, msg.header.frame_id) == (12, 250_000_000, "cam")
    assert (msg.action, msg.emotion, msg.playlist, msg.item, msg.track_id, msg.strategy, msg.backend) == (
        "play", "happy", "upbeat", "a.mp3", 4, "match", "log")
