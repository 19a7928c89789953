"""FaceDetector on real images: one known face, no-face images, downscaling, bad input."""
from __future__ import annotations

import numpy as np
import pytest
from skimage import data

from fer_ros.config import DetectorConfig
from fer_ros.errors import FerError
from fer_ros.perception.detection import FaceDetector

# The astronaut's face as MTCNN boxes it (measured: x 180-268, y 61-172 in the 512x512 image).
ASTRONAUT_FACE = np.array([180.0, 61.0, 268.0, 172.0])


def iou(a: np.ndarray, b: np.ndarray) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


@pytest.fixture(scope="module")
def detector() -> FaceDetector:
    return FaceDetector(DetectorConfig(device="cpu"))


@pytest.fixture(scope="module")
def astronaut_faces(detector) -> list:
    return detector.detect(data.astronaut())


def test_astronaut_has_one_face_with_landmarks_inside(astronaut_faces):
    faces = astronaut_faces
    assert len(faces) == 1
    face = faces[0]
    assert face.score > 0.95
    np.testing.assert_allclose(face.bbox, ASTRONAUT_FACE, atol=8.0)
    x1, y1, x2, y2 = face.bbox
    assert face.has_landmarks
    assert np.all((face.landmarks[:, 0] > x1) & (face.landmarks[:, 0] < x2))
    assert np.all((face.landmarks[:, 1] > y1) & (face.landmarks[:, 1] < y2))
    left_eye, right_eye, nose, mouth_left, mouth_right = face.landmarks
    assert left_eye[0] < nose[0] < right_eye[0]
    assert max(left_eye[1], right_eye[1]) < nose[1] < min(mouth_left[1], mouth_right[1])
    assert face.bbox.dtype == np.float32 and face.landmarks.dtype == np.float32


def test_downscale_maps_back_to_full_frame(astronaut_faces):
    full = astronaut_faces
    half = FaceDetector(DetectorConfig(device="cpu", downscale=2.0)).detect(data.astronaut())
    assert len(half) == 1
    assert iou(full[0].bbox, half[0].bbox) > 0.8
    # Landmarks come back in full-frame pixels too (within a few pixels of the full-size run).
    assert np.abs(full[0].landmarks - half[0].landmarks).max() < 6.0


@pytest.mark.parametrize("image", [data.coffee(), np.full((240, 320, 3), 128, np.uint8)], ids=["coffee", "grey"])
def test_no_face_is_an_empty_list(detector, image):
    assert detector.detect(image) == []


def test_frame_smaller_than_min_face_is_empty(detector):
    assert detector.detect(np.zeros((20, 30, 3), np.uint8)) == []


def test_two_faces_sorted_by_score(detector):
    image = data.astronaut()
    canvas = np.concatenate([image, image], axis=1)
    faces = detector.detect(canvas)
    assert len(faces) == 2
    assert faces[0].score >= faces[1].score
    centres = sorted(float(f.bbox[0] + f.bbox[2]) / 2 for f in faces)
    assert centres[0] < 512 < centres[1]


class FakeMTCNN:
    """Stands in for facenet's MTCNN to feed the wrapper awkward raw outputs."""

    def __init__(self, boxes, probs, points):
        self.result = (boxes, probs, points)
        self.seen_shape = None
        self.min_face_size, self.factor = 20, 0.709

    def detect(self, image, landmarks=False, known=None):
        self.seen_shape = image.shape
        return self.result


def test_raw_output_is_filtered_clipped_sorted_and_rescaled():
    detector = FaceDetector(DetectorConfig(device="cpu", downscale=2.0, min_score=0.9))
    boxes = np.array([[-5.0, 10.0, 40.0, 60.0], [50.0, 20.0, 90.0, 70.0], [10.0, 10.0, 30.0, 30.0],
                      [70.0, 90.0, 130.0, 150.0]], dtype=object)
    probs = np.array([0.95, 0.99, 0.5, 0.97], dtype=object)
    points = np.tile(np.array([[10.0, 20.0], [30.0, 20.0], [20.0, 30.0], [12.0, 40.0], [28.0, 40.0]]), (4, 1, 1))
    fake = FakeMTCNN(boxes, probs, points)
    detector._mtcnn = fake
    faces = detector.detect(np.zeros((240, 320, 3), np.uint8))
    assert fake.seen_shape == (120, 160, 3)  # MTCNN saw the half-size frame
    assert [round(f.score, 2) for f in faces] == [0.99, 0.97, 0.95]  # 0.5 dropped, best first
    np.testing.assert_allclose(faces[0].bbox, [100, 40, 180, 140])  # x2 back to full frame
    np.testing.assert_allclose(faces[1].bbox, [140, 180, 260, 240])  # y2 = 300 clipped to 240
    np.testing.assert_allclose(faces[2].bbox, [0, 20, 80, 120])  # x1 = -10 clipped to 0
    np.testing.assert_allclose(faces[0].landmarks[0], [20, 40])


@pytest.mark.parametrize("raw", [(None, [None], None), (None, np.array([None], dtype=object), None),
                                 (np.zeros((0, 4)), np.zeros(0), np.zeros((0, 5, 2)))],
                         ids=["none", "object-none", "empty-arrays"])
def test_facenet_no_face_outputs_become_empty_list(raw):
    detector = FaceDetector(DetectorConfig(device="cpu"))
    detector._mtcnn = FakeMTCNN(*raw)
    assert detector.detect(np.zeros((100, 100, 3), np.uint8)) == []


def test_min_score_filters_real_detections(astronaut_faces):
    score = astronaut_faces[0].score
    below = FaceDetector(DetectorConfig(device="cpu", min_score=max(0.0, score - 1e-3)))
    assert len(below.detect(data.astronaut())) == 1
    if score < 1.0:
        above = FaceDetector(DetectorConfig(device="cpu", min_score=min(1.0, score + 1e-7)))
        assert above.detect(data.astronaut()) == []


@pytest.mark.parametrize("bad", [
    np.zeros((64, 64), np.uint8),
    np.zeros((64, 64, 3), np.float32),
    np.zeros((64, 64, 4), np.uint8),
    np.zeros((0, 64, 3), np.uint8),
    [[1, 2, 3]],
], ids=["gray", "float", "rgba", "empty", "list"])
def test_bad_input_is_fer_error(detector, bad):
    with pytest.raises(FerError):
        detector.detect(bad)


def test_device_is_exposed(detector):
    assert detector.device.type == "cpu"


def test_known_faces_cost_no_rnet_work_and_leave_the_others_as_they_were(detector):
    """A face the tracker follows is passed as ``known``: R-Net sees fewer windows, and the other
    face comes out with the very same box, landmarks and score."""
    image = data.astronaut()
    canvas = np.concatenate([image, image[:, ::-1]], axis=1)
    faces = detector.detect(canvas)
    assert len(faces) == 2
    left, right = sorted(faces, key=lambda f: f.bbox[0])
    rnet, windows = detector._mtcnn.rnet, []
    detector._mtcnn.rnet = lambda x: windows.append(len(x)) or rnet(x)
    try:
        detector.detect(canvas)
        again = detector.detect(canvas, known=[left.bbox])
    finally:
        detector._mtcnn.rnet = rnet
    assert windows[1] < windows[0]
    match = [f for f in again if iou(f.bbox, right.bbox) > 0.5]
    assert len(match) == 1
    np.testing.assert_array_equal(match[0].bbox, right.bbox)
    np.testing.assert_array_equal(match[0].landmarks, right.landmarks)
    assert match[0].score == right.score
