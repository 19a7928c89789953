"""MtcnnCascade (OpenCV-driven MTCNN) against facenet-pytorch's own MTCNN on the same images."""
from __future__ import annotations

import numpy as np
import pytest
from facenet_pytorch import MTCNN
from skimage import data

from fer_ros.perception.cascade import MtcnnCascade
from fer_ros.perception.mtcnn_boxes import crop_windows, nms_min, pyramid_scales, square
from fer_ros.perception.tracking import iou_matrix

SETTINGS = dict(min_face_size=40, thresholds=[0.6, 0.7, 0.8], factor=0.709)


@pytest.fixture(scope="module")
def both():
    return MtcnnCascade(device="cpu", **SETTINGS), MTCNN(keep_all=True, device="cpu", **SETTINGS)


@pytest.mark.parametrize("name", ["one_face", "two_faces", "small_face"])
def test_same_faces_as_facenet(both, name):
    face = data.astronaut()
    image = {"one_face": face, "two_faces": np.concatenate([face, face[:, ::-1]], axis=1),
             "small_face": np.pad(face[::3, ::3], ((100, 100), (150, 150), (0, 0)), constant_values=90)}[name]
    ours, ref = both
    boxes, probs, points = ours.detect(image, landmarks=True)
    ref_boxes, ref_probs, ref_points = (np.asarray(a, np.float64) for a in ref.detect(image, landmarks=True))
    assert len(boxes) == len(ref_boxes)
    overlap = iou_matrix(boxes, ref_boxes)
    match = overlap.argmax(axis=1)
    assert overlap.max(axis=1).min() > 0.85  # only the resampling differs (uint8 OpenCV vs float torch)
    np.testing.assert_allclose(probs, ref_probs[match], atol=0.02)
    eye_distance = np.linalg.norm(ref_points[:, 1] - ref_points[:, 0], axis=1)[match]
    error = np.linalg.norm(points - ref_points[match], axis=2).mean(axis=1)
    assert np.all(error < 0.1 * eye_distance)
    assert np.all(np.diff(probs) <= 0)  # best first


def test_no_face_answers_like_facenet(both):
    ours, _ = both
    assert ours.detect(data.coffee(), landmarks=True) == (None, [None], None)
    boxes, scores, points = ours.run(np.full((120, 160, 3), 128, np.uint8))
    assert boxes.shape == (0, 4) and scores.shape == (0,) and points.shape == (0, 5, 2)


def test_pyramid_scales_cover_min_face_to_frame():
    scales = pyramid_scales(480, 640, 40, 0.709)
    assert scales[0] == pytest.approx(12 / 40)
    assert 480 * scales[-1] >= 12 > 480 * scales[-1] * 0.709
    assert pyramid_scales(20, 20, 40, 0.709) == []


def test_square_and_crop_windows_zero_pad_outside_the_frame():
    boxes = square(np.array([[11.0, 21.0, 30.0, 60.0, 0.9]]))
    w, h = boxes[0, 2] - boxes[0, 0], boxes[0, 3] - boxes[0, 1]
    assert w == pytest.approx(h) and (boxes[0, 0] + boxes[0, 2]) / 2 == pytest.approx(20.5)
    image = np.full((50, 50, 3), 255, np.uint8)
    crop = crop_windows(image, np.array([[-24.0, 1.0, 25.0, 50.0]]), 24)[0]  # left half outside
    assert crop[:, :10].max() == 0 and crop[:, 14:].min() == 255


def test_nms_min_drops_a_box_inside_a_better_one():
    boxes = np.array([[0, 0, 100, 100, 0.99], [10, 10, 50, 50, 0.95], [200, 200, 260, 260, 0.9]], np.float64)
    assert nms_min(boxes, 0.7).tolist() == [0, 2]


def test_our_nets_answer_exactly_like_facenets(both):
    """The networks built here from the weight files give facenet-pytorch's outputs, to the bit."""
    import torch

    from fer_ros.perception.mtcnn_nets import load_nets

    ref = both[1]
    ours = load_nets(torch.device("cpu"))
    generator = torch.Generator().manual_seed(0)
    for net, theirs, shape in zip(ours, (ref.pnet, ref.rnet, ref.onet), ((2, 3, 61, 83), (5, 3, 24, 24), (5, 3, 48, 48))):
        x = torch.rand(shape, generator=generator) * 2 - 1
        with torch.inference_mode():
            for a, b in zip(net(x), theirs(x)):
                assert torch.equal(a, b), type(net).__name__


def test_nms_union_keeps_what_torchvisions_nms_keeps():
    from torchvision.ops import nms

    from fer_ros.perception.mtcnn_boxes import nms_union

    rng = np.random.default_rng(0)
    for n, iou in ((0, 0.5), (1, 0.5), (40, 0.5), (300, 0.7), (300, 0.3)):
        xy = rng.uniform(0, 200, (n, 2)).astype(np.float32)
        wh = rng.uniform(5, 80, (n, 2)).astype(np.float32)
        score = np.round(rng.uniform(0, 1, n), 1).astype(np.float32)  # rounded: many ties
        boxes = np.concatenate([xy, xy + wh, score[:, None]], axis=1)
        expected = nms(torch_tensor(boxes[:, :4]), torch_tensor(boxes[:, 4]), iou).numpy()
        np.testing.assert_array_equal(nms_union(boxes, iou), expected)


def torch_tensor(a: np.ndarray):
    import torch

    return torch.from_numpy(np.ascontiguousarray(a))


def test_importing_the_cascade_does_not_import_torchvision():
    import subprocess
    import sys

    code = "import sys, fer_ros.perception.cascade; print('torchvision' in sys.modules, 'facenet_pytorch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["False", "False"]
