"""MTCNN's three-stage cascade driven with OpenCV image operations, for speed on small CPUs.

facenet-pytorch's ``detect_face`` builds the image pyramid and cuts every candidate window with
``torch.nn.functional.interpolate(mode="area")`` on a float copy of the whole frame; on a 2-core
CPU that resampling costs more than the three networks together. This module runs the same
P-, R- and O-Net weights (shipped in facenet-pytorch's wheel, loaded by ``mtcnn_nets``) with the
same thresholds, box regression and non-maximum suppression, but resamples uint8 images with
``cv2.resize`` and handles boxes in numpy (``mtcnn_boxes``), only the networks run in torch.

Coordinates follow the original MTCNN (and facenet-pytorch) convention: boxes are 1-based
inclusive pixel indices while inside the cascade, landmarks come out 0-based. Windows that
reach past the frame edge are zero-padded, as in the original MTCNN, not squeezed to fit.

``MtcnnCascade.detect`` answers like ``facenet_pytorch.MTCNN.detect(img, landmarks=True)``
so ``FaceDetector`` can use either.
"""
from __future__ import annotations

import logging

import cv2
import numpy as np
import torch

from fer_ros.errors import FerError
from fer_ros.models.runtime import onnx_module, onnxruntime_available
from fer_ros.perception.mtcnn_boxes import (
    PNET_CELL,
    crop_windows,
    nms_min,
    nms_union,
    pnet_boxes,
    pyramid_scales,
    regress,
    square,
)
from fer_ros.perception.mtcnn_nets import load_nets
from fer_ros.perception.tracking import DUPLICATE_IOU, iou_matrix

log = logging.getLogger(__name__)

RNET_SIZE, ONET_SIZE = 24, 48  # input sizes of R-Net and O-Net
# Non-maximum suppression limits of the original MTCNN (IoU; the last one intersection over the
# smaller box). A tighter limit after R-Net sends fewer windows to O-Net and detects faster, but
# finds fewer faces (docs/performance.md), so the original values stay.
NMS_SCALE, NMS_PNET, NMS_RNET, NMS_ONET = 0.5, 0.7, 0.7, 0.7
# A P-Net window overlapping a face the caller already follows by more than this is that face:
# the tracker would refuse a face overlapping one of its tracks that much as a duplicate.
KNOWN_IOU = DUPLICATE_IOU


class MtcnnCascade:
    """P-Net over an image pyramid, then R-Net and O-Net on the surviving windows."""

    def __init__(self, min_face_size: float = 20.0, thresholds: tuple = (0.6, 0.7, 0.7), factor: float = 0.709,
                 device: torch.device | str = "cpu", runtime: str = "torch") -> None:
        self.device = torch.device(device)
        self.pnet, self.rnet, self.onet = load_nets(self.device)  # the weights facenet-pytorch's wheel carries
        self.runtime = "torch"
        if self.device.type == "cpu" and (runtime == "onnxruntime" or runtime == "auto" and onnxruntime_available()):
            self._use_onnxruntime(required=runtime == "onnxruntime")
        self.min_face_size, self.thresholds, self.factor = float(min_face_size), list(thresholds), float(factor)

    def _use_onnxruntime(self, required: bool) -> None:
        """The three networks on ONNX Runtime (about 2-3x faster than torch for these tiny nets on one core)."""
        try:
            key = "facenet-pytorch MTCNN"  # the weights are the wheel's: export once per process
            pnet = onnx_module(self.pnet, torch.zeros(1, 3, 48, 64), {0: "n", 2: "h", 3: "w"}, key=(key, "pnet"))
            rnet = onnx_module(self.rnet, torch.zeros(1, 3, RNET_SIZE, RNET_SIZE), {0: "n"}, key=(key, "rnet"))
            onet = onnx_module(self.onet, torch.zeros(1, 3, ONET_SIZE, ONET_SIZE), {0: "n"}, key=(key, "onet"))
        except Exception as exc:  # a broken onnxruntime install: torch does the same
            if required:
                raise FerError(f"could not run MTCNN on ONNX Runtime ({type(exc).__name__}: {exc}); "
                               f"set detector.runtime=torch") from exc
            log.warning("MTCNN on ONNX Runtime failed (%s: %s); running it with torch", type(exc).__name__, exc)
            return
        self.pnet, self.rnet, self.onet, self.runtime = pnet, rnet, onet, "onnxruntime"

    def eval(self) -> "MtcnnCascade":
        return self  # the nets are already in eval mode; kept so it swaps in for facenet's MTCNN

    def detect(self, image: np.ndarray, landmarks: bool = False, known: np.ndarray | None = None):
        """``(boxes [N, 4] or None, probs [N] or [None], points [N, 5, 2] or None)`` like facenet's MTCNN;
        ``known``: boxes of faces followed elsewhere, left out (see ``run``)."""
        boxes, scores, points = self.run(image, known)
        if len(boxes) == 0:
            return (None, [None], None) if landmarks else (None, [None])
        order = np.argsort(-scores, kind="stable")
        boxes, scores, points = boxes[order], scores[order], points[order]
        return (boxes, scores, points) if landmarks else (boxes, scores)

    @torch.inference_mode()
    def run(self, image: np.ndarray, known: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """uint8 HxWx3 RGB -> boxes [N, 4], scores [N], landmarks [N, 5, 2] (float32).

        ``known`` [M, 4]: faces the caller already follows (a tracker refreshing them). P-Net
        windows overlapping one of them by more than ``KNOWN_IOU`` skip R-Net and O-Net, so that
        face is usually not reported again; the windows of every other face are untouched.
        """
        empty = (np.zeros((0, 4), np.float32), np.zeros(0, np.float32), np.zeros((0, 5, 2), np.float32))
        boxes = self._proposals(image)
        if known is not None and len(known) and len(boxes):
            boxes = boxes[iou_matrix(boxes[:, :4], known).max(axis=1) <= KNOWN_IOU]
        if len(boxes):
            boxes = self._refine(image, boxes)
        if not len(boxes):
            return empty
        return self._output(image, boxes)

    # --- stage 1: P-Net on the pyramid -------------------------------------------------------------

    def _proposals(self, image: np.ndarray, scales: list[float] | None = None) -> np.ndarray:
        """Square candidate windows [K, 5] (x1 y1 x2 y2 score) from every pyramid level (or ``scales``)."""
        height, width = image.shape[:2]
        found, level = [], image
        if scales is None:
            scales = pyramid_scales(height, width, self.min_face_size, self.factor)
        for scale in scales:
            size = (int(width * scale + 1), int(height * scale + 1))
            # Each level shrinks the previous one: INTER_AREA of the full frame is costly for
            # non-integer ratios, and the levels are only 1/0.709 apart.
            level = cv2.resize(level, size, interpolation=cv2.INTER_AREA)
            reg, prob = self.pnet(self._tensor(level[None]))
            boxes = pnet_boxes(reg[0].float().cpu().numpy(), prob[0, 1].float().cpu().numpy(), scale, self.thresholds[0])
            if len(boxes):
                found.append(boxes[nms_union(boxes, NMS_SCALE)])
        if not found:
            return np.zeros((0, 5), np.float32)
        boxes = np.concatenate(found)
        boxes = boxes[nms_union(boxes, NMS_PNET)]
        wh = np.stack([boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]] * 2, axis=1)
        regressed = np.concatenate([boxes[:, :4] + boxes[:, 5:9] * wh, boxes[:, 4:5]], axis=1)
        return square(regressed)

    # --- stage 2: R-Net --------------------------------------------------------------------------

    def _refine(self, image: np.ndarray, boxes: np.ndarray) -> np.ndarray:
        reg, prob = self.rnet(self._tensor(crop_windows(image, boxes, RNET_SIZE)))
        score = prob[:, 1].float().cpu().numpy()
        keep = score > self.thresholds[1]
        boxes = np.concatenate([boxes[keep, :4], score[keep, None]], axis=1)
        reg = reg.float().cpu().numpy()[keep]
        pick = nms_union(boxes, NMS_RNET)
        return square(regress(boxes[pick], reg[pick]))

    # --- stage 3: O-Net, landmarks ---------------------------------------------------------------

    def _output(self, image: np.ndarray, boxes: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        boxes, points = self._onet(image, boxes)
        keep = boxes[:, 4] > self.thresholds[2]
        boxes, points = boxes[keep], points[keep]
        pick = nms_min(boxes, NMS_ONET)
        boxes, points = boxes[pick], points[pick]
        return boxes[:, :4].astype(np.float32), boxes[:, 4].astype(np.float32), points.astype(np.float32)

    def _onet(self, image: np.ndarray, boxes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """O-Net on square windows [K, >=4] -> regressed boxes [K, 5] (x1 y1 x2 y2 score), landmarks [K, 5, 2]."""
        reg, marks, prob = self.onet(self._tensor(crop_windows(image, boxes, ONET_SIZE)))
        score = prob[:, 1].float().cpu().numpy()
        boxes = np.concatenate([boxes[:, :4], score[:, None]], axis=1)
        reg, marks = reg.float().cpu().numpy(), marks.float().cpu().numpy()
        w = boxes[:, 2:3] - boxes[:, 0:1] + 1.0
        h = boxes[:, 3:4] - boxes[:, 1:2] + 1.0
        points = np.stack([w * marks[:, :5] + boxes[:, 0:1] - 1.0, h * marks[:, 5:] + boxes[:, 1:2] - 1.0], axis=2)
        return regress(boxes, reg), points

    # --- known faces: a small cascade around one place ----------------------------------------------

    @torch.inference_mode()
    def search(self, image: np.ndarray, box: np.ndarray) -> tuple[np.ndarray, float, np.ndarray] | None:
        """The whole cascade on the neighbourhood of ``box`` only, for faces of about its size.

        For a face that moved too far for ``refine`` (a fast face, or one found on an older frame):
        P-Net on a region three box widths wide at the pyramid levels for faces of 0.6-1.6 times
        the box, then R-Net and O-Net: a fraction of the cost of the whole frame. Returns
        the face nearest the box's centre (box [4], score, landmarks [5, 2]) or None.
        """
        height, width = image.shape[:2]
        x1, y1, x2, y2 = (float(v) for v in box[:4])
        side = max(x2 - x1, y2 - y1, float(PNET_CELL))
        cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
        left, top = int(max(cx - 1.5 * side, 0)), int(max(cy - 1.5 * side, 0))
        right, bottom = int(min(cx + 1.5 * side, width)), int(min(cy + 1.5 * side, height))
        if right - left < PNET_CELL or bottom - top < PNET_CELL:
            return None
        region = np.ascontiguousarray(image[top:bottom, left:right])
        smallest = max(0.6 * side, PNET_CELL)
        scales = [s for s in pyramid_scales(bottom - top, right - left, smallest, self.factor)
                  if s * 1.6 * side >= PNET_CELL * self.factor]
        boxes = self._proposals(region, scales) if scales else np.zeros((0, 5), np.float32)
        if len(boxes):
            boxes = self._refine(region, boxes)
        if not len(boxes):
            return None
        found, scores, points = self._output(region, boxes)
        if not len(found):
            return None
        centres = np.stack([(found[:, 0] + found[:, 2]) / 2 + left, (found[:, 1] + found[:, 3]) / 2 + top], axis=1)
        i = int(np.argmin(np.linalg.norm(centres - np.array([cx, cy]), axis=1)))
        offset = np.array([left, top], np.float32)
        return np.concatenate([found[i, :2] + offset, found[i, 2:4] + offset]), float(scores[i]), points[i] + offset

    # --- known faces: R-Net and O-Net only ---------------------------------------------------------

    @torch.inference_mode()
    def refine(self, image: np.ndarray, boxes: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Find again each face whose box (or prediction) is known, without the P-Net pyramid.

        Each box [N, 4] (a previous detection's, in this module's convention) is squared and
        passed through R-Net and O-Net exactly as a P-Net proposal would be: a fresh box,
        landmarks and score for about a millisecond per face on one CPU core, where the pyramid
        costs tens of milliseconds per frame. Returns boxes [N, 4], scores [N] and landmarks
        [N, 5, 2] in input order; a face that R-Net or O-Net rejects gets score 0 (and NaN box
        and landmarks), so the caller can tell which tracks lost their face.
        """
        n = len(boxes)
        out_boxes = np.full((n, 4), np.nan, np.float32)
        out_scores = np.zeros(n, np.float32)
        out_points = np.full((n, 5, 2), np.nan, np.float32)
        if n == 0:
            return out_boxes, out_scores, out_points
        windows = square(np.asarray(boxes, np.float32).reshape(-1, 4))
        reg, prob = self.rnet(self._tensor(crop_windows(image, windows, RNET_SIZE)))
        score = prob[:, 1].float().cpu().numpy()
        alive = np.flatnonzero(score > self.thresholds[1])
        if len(alive) == 0:
            return out_boxes, out_scores, out_points
        moved = regress(np.concatenate([windows[alive], score[alive, None]], axis=1), reg.float().cpu().numpy()[alive])
        found, points = self._onet(image, square(moved))
        ok = found[:, 4] > self.thresholds[2]
        rows = alive[ok]
        out_boxes[rows], out_scores[rows], out_points[rows] = found[ok, :4], found[ok, 4], points[ok]
        return out_boxes, out_scores, out_points

    def _tensor(self, images: np.ndarray) -> torch.Tensor:
        """uint8 [N, H, W, 3] -> float [N, 3, H, W] scaled to about [-1, 1] as MTCNN was trained."""
        x = torch.from_numpy(np.ascontiguousarray(images)).to(self.device).permute(0, 3, 1, 2).float()
        return (x - 127.5) * 0.0078125
