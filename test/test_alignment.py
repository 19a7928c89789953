"""FaceAligner: landmarks land on the template, rotation is undone, fallbacks keep the size."""
from __future__ import annotations

import cv2
import numpy as np
import pytest
from skimage import data

from fer_ros.config import AlignConfig, DetectorConfig
from fer_ros.errors import FerError
from fer_ros.perception.alignment import ARCFACE_TEMPLATE, TEMPLATE, FaceAligner, landmarks_usable, similarity_transform
from fer_ros.perception.detection import FaceDetector
from fer_ros.types import Detection


def apply(matrix: np.ndarray, points: np.ndarray) -> np.ndarray:
    return points @ matrix[:, :2].T + matrix[:, 2]


def eye_line_angle(eyes: np.ndarray) -> float:
    dx, dy = eyes[1] - eyes[0]
    return float(np.degrees(np.arctan2(dy, dx)))


@pytest.fixture(scope="module")
def detector() -> FaceDetector:
    return FaceDetector(DetectorConfig(device="cpu"))


@pytest.fixture(scope="module")
def astronaut_face(detector) -> Detection:
    return detector.detect(data.astronaut())[0]


@pytest.mark.parametrize("size", [112, 48])
def test_eyes_land_on_the_template(astronaut_face, size):
    aligned = FaceAligner(AlignConfig(), size).align(data.astronaut(), astronaut_face)
    assert aligned.from_landmarks
    assert aligned.image.shape == (size, size, 3) and aligned.image.dtype == np.uint8
    assert aligned.matrix.shape == (2, 3)
    eyes = apply(aligned.matrix, astronaut_face.landmarks[:2])
    assert np.abs(eyes - TEMPLATE[:2] * size).max() < 3.0


def test_rotated_face_is_straightened(detector):
    image = data.astronaut()
    centre = (224.0, 116.0)  # about the astronaut's face
    rotation = cv2.getRotationMatrix2D(centre, 20.0, 1.0)
    rotated = cv2.warpAffine(image, rotation, (512, 512), borderMode=cv2.BORDER_REFLECT)
    faces = detector.detect(rotated)
    assert len(faces) == 1
    eyes_in = faces[0].landmarks[:2]
    upright_face = detector.detect(image)[0]
    roll = eye_line_angle(eyes_in) - eye_line_angle(upright_face.landmarks[:2])
    assert abs(roll + 20.0) < 5.0  # counter-clockwise rotation by 20 deg tilts the eye line by -20
    aligned = FaceAligner(AlignConfig(), 112).align(rotated, faces[0])
    assert aligned.from_landmarks
    eyes = apply(aligned.matrix, eyes_in)
    assert np.abs(eyes - TEMPLATE[:2] * 112).max() < 4.0
    # The crop looks like the crop of the upright image: same face, same place.
    upright = FaceAligner(AlignConfig(), 112).align(image, upright_face)
    diff = np.abs(aligned.image.astype(np.float32) - upright.image.astype(np.float32)).mean()
    assert diff < 20.0


def test_template_scale_zooms_about_the_centre(astronaut_face):
    normal = FaceAligner(AlignConfig(), 112).align(data.astronaut(), astronaut_face)
    tight = FaceAligner(AlignConfig(template_scale=1.5), 112).align(data.astronaut(), astronaut_face)
    ratio = np.sqrt(np.linalg.det(tight.matrix[:, :2]) / np.linalg.det(normal.matrix[:, :2]))
    assert ratio == pytest.approx(1.5, rel=1e-3)
    eyes = apply(tight.matrix, astronaut_face.landmarks[:2])
    assert np.abs(eyes - (0.5 + (TEMPLATE[:2] - 0.5) * 1.5) * 112).max() < 4.0


def test_custom_template(astronaut_face):
    aligned = FaceAligner(AlignConfig(), 112, template=ARCFACE_TEMPLATE).align(data.astronaut(), astronaut_face)
    eyes = apply(aligned.matrix, astronaut_face.landmarks[:2])
    assert np.abs(eyes - ARCFACE_TEMPLATE[:2] * 112).max() < 3.0


def test_bad_template_and_size_are_fer_errors():
    with pytest.raises(FerError):
        FaceAligner(AlignConfig(), 48, template=np.zeros((4, 2)))
    with pytest.raises(FerError):
        FaceAligner(AlignConfig(), 4)


def test_nan_landmarks_fall_back_to_the_box():
    image = data.astronaut()
    face = Detection(bbox=[180, 61, 268, 172], landmarks=np.full((5, 2), np.nan), score=0.99)
    aligned = FaceAligner(AlignConfig(box_margin=0.2), 48).align(image, face)
    assert not aligned.from_landmarks
    assert aligned.image.shape == (48, 48, 3)
    # The box centre maps to the crop centre and the grown square side (111 * 1.4) to 48 px.
    centre = apply(aligned.matrix, np.array([[224.0 - 0.5, 116.5 - 0.5]]))[0]
    np.testing.assert_allclose(centre, [23.5, 23.5], atol=0.01)
    assert aligned.matrix[0, 0] == pytest.approx(48 / (111 * 1.4), rel=1e-4)


def test_use_landmarks_false_uses_the_box(astronaut_face):
    aligned = FaceAligner(AlignConfig(use_landmarks=False), 64).align(data.astronaut(), astronaut_face)
    assert not aligned.from_landmarks
    assert aligned.image.shape == (64, 64, 3)
    assert aligned.matrix[0, 1] == 0.0 and aligned.matrix[1, 0] == 0.0  # no rotation


@pytest.mark.parametrize("landmarks", [
    [[100, 100], [101, 100], [100, 120], [95, 140], [105, 140]],  # eyes 1 px apart
    [[90, 140], [110, 140], [100, 120], [90, 100], [110, 100]],  # mouth above the eyes
    [[100, 100], [100, 100], [100, 100], [100, 100], [100, 100]],  # all one point
], ids=["eyes-together", "upside-down", "collapsed"])
def test_implausible_landmarks_fall_back(landmarks):
    face = Detection(bbox=[60, 60, 140, 160], landmarks=np.array(landmarks, float), score=0.99)
    assert not landmarks_usable(face)
    aligned = FaceAligner(AlignConfig(), 48).align(np.zeros((200, 200, 3), np.uint8), face)
    assert not aligned.from_landmarks and aligned.image.shape == (48, 48, 3)


@pytest.mark.parametrize("bbox", [[-30, -20, 40, 50], [170, 180, 240, 260], [0, 0, 200, 200]])
def test_box_near_the_border_keeps_the_size(bbox):
    image = np.random.default_rng(0).integers(0, 255, (200, 200, 3), dtype=np.uint8)
    face = Detection(bbox=bbox, landmarks=np.full((5, 2), np.nan), score=0.9)
    aligned = FaceAligner(AlignConfig(box_margin=0.5), 48).align(image, face)
    assert aligned.image.shape == (48, 48, 3) and aligned.image.dtype == np.uint8


def test_similarity_transform_recovers_a_known_transform():
    rng = np.random.default_rng(1)
    src = rng.uniform(0, 100, (5, 2))
    angle, scale, shift = np.radians(33.0), 0.37, np.array([12.0, -7.0])
    rot = scale * np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    dst = src @ rot.T + shift
    matrix = similarity_transform(src, dst)
    np.testing.assert_allclose(matrix, np.hstack([rot, shift[:, None]]), atol=1e-9)
    assert similarity_transform(np.ones((5, 2)), dst) is None


def test_large_face_is_smoothly_shrunk():
    # A fine checkerboard face: nearest/linear sampling at 1/8 scale aliases into a high-contrast
    # pattern; the supersampled path averages it to grey.
    board = (np.indices((400, 400)).sum(axis=0) % 2 * 255).astype(np.uint8)
    image = np.repeat(board[..., None], 3, axis=2)
    face = Detection(bbox=[0, 0, 400, 400], landmarks=np.full((5, 2), np.nan), score=0.9)
    aligned = FaceAligner(AlignConfig(box_margin=0.0), 48).align(image, face)
    assert aligned.image.std() < 20.0


def test_input_is_validated(astronaut_face):
    with pytest.raises(FerError):
        FaceAligner(AlignConfig(), 48).align(np.zeros((10, 10), np.uint8), astronaut_face)
