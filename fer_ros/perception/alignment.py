"""Face alignment: warp each detected face to a square crop framed like the training data.

The classifier learnt from FER2013's 48x48 crops, so the crop must put the eyes, nose and
mouth where FER2013 has them. A similarity transform (rotation, uniform scale, translation)
fitted to the 5 MTCNN landmarks does that and removes head roll; when the landmarks are
missing or implausible, an expanded square box crop is used instead.
"""
from __future__ import annotations

import math

import cv2
import numpy as np

from fer_ros.config import AlignConfig
from fer_ros.errors import FerError
from fer_ros.types import AlignedFace, Detection, RGBImage, as_rgb_image

# The common ArcFace 112x112 5-point template, normalised to [0, 1]: a reference framing.
ARCFACE_TEMPLATE = np.array(
    [[38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366], [41.5493, 92.3655], [70.7299, 92.2041]],
    dtype=np.float32,
) / 112.0

# Where FER2013 puts the landmarks, normalised to [0, 1] crop coordinates (x right, y down),
# order: left eye, right eye, nose, left mouth corner, right mouth corner (image left/right).
# Measured with this package's MTCNN on 800 random FER2013 training faces (upsampled x4):
# per-point median of the 352 near-frontal ones (|roll| < 10 deg, nose centred between the eyes),
# then made left/right symmetric. Compared with ARCFACE_TEMPLATE the eyes sit higher (0.40 of
# the height, not 0.46) and the eye distance is larger (0.39 of the width, not 0.31).
TEMPLATE = np.array(
    [[0.305, 0.397], [0.695, 0.397], [0.500, 0.620], [0.335, 0.806], [0.665, 0.806]],
    dtype=np.float32,
)

MIN_EYE_DISTANCE = 0.05  # landmarks with eyes closer than this fraction of the box width are unusable
MAX_SUPERSAMPLE = 8  # warp at up to 8x the output size, then area-shrink, so big faces do not alias


class FaceAligner:
    """Warp faces to ``output_size`` x ``output_size`` RGB crops framed like ``template``."""

    def __init__(self, config: AlignConfig, output_size: int, template: np.ndarray | None = None) -> None:
        if int(output_size) < 8:
            raise FerError(f"alignment output_size must be at least 8 pixels, got {output_size}")
        template = TEMPLATE if template is None else np.asarray(template, dtype=np.float32)
        if template.shape != (5, 2) or not np.all(np.isfinite(template)):
            raise FerError(f"alignment template must be a finite [5, 2] array in [0, 1] crop units, got shape {template.shape}")
        self.config = config
        self.output_size = int(output_size)
        self.template = template

    def target_points(self) -> np.ndarray:
        """The template in output pixels, zoomed about the crop centre by ``template_scale``."""
        zoomed = 0.5 + (self.template - 0.5) * float(self.config.template_scale)
        return (zoomed * self.output_size).astype(np.float32)

    def align(self, image: RGBImage, detection: Detection) -> AlignedFace:
        """Crop one face; uses the landmarks when usable, the expanded box otherwise."""
        image = as_rgb_image(image)
        matrix = None
        if self.config.use_landmarks and landmarks_usable(detection):
            matrix = similarity_transform(detection.landmarks, self.target_points())
        from_landmarks = matrix is not None
        if matrix is None:
            matrix = box_crop_matrix(detection.bbox, self.config.box_margin, self.output_size)
        crop = warp_crop(image, matrix, self.output_size)
        return AlignedFace(image=crop, matrix=matrix.astype(np.float32), from_landmarks=from_landmarks)


def landmarks_usable(detection: Detection) -> bool:
    """True when the 5 points are finite, the eyes are apart, and the mouth is below the eyes."""
    points = np.asarray(detection.landmarks, dtype=np.float64)
    if points.shape != (5, 2) or not np.all(np.isfinite(points)):
        return False
    left_eye, right_eye = points[0], points[1]
    eye_vec = right_eye - left_eye
    eye_dist = float(np.hypot(*eye_vec))
    if eye_dist < MIN_EYE_DISTANCE * max(detection.width, 1.0):
        return False
    # "Below" in the face's own frame: the eye-to-mouth direction must lie clockwise of the
    # left-to-right eye direction (image y points down), so rolled faces pass, upside-down fail.
    down = points[3:5].mean(axis=0) - points[0:2].mean(axis=0)
    cross = eye_vec[0] * down[1] - eye_vec[1] * down[0]
    return bool(cross > 0.25 * eye_dist * eye_dist)


def similarity_transform(src: np.ndarray, dst: np.ndarray) -> np.ndarray | None:
    """Least-squares similarity (Umeyama) mapping ``src`` points onto ``dst``; None if degenerate."""
    src = np.asarray(src, dtype=np.float64)
    dst = np.asarray(dst, dtype=np.float64)
    src_mean, dst_mean = src.mean(axis=0), dst.mean(axis=0)
    src_c, dst_c = src - src_mean, dst - dst_mean
    src_var = float((src_c ** 2).sum()) / len(src)
    if src_var < 1e-6:
        return None
    cov = dst_c.T @ src_c / len(src)
    u, s, vt = np.linalg.svd(cov)
    d = np.ones(2)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:
        d[1] = -1.0  # no reflections: faces are never mirrored by the camera
    rotation = u @ np.diag(d) @ vt
    scale = float((s * d).sum()) / src_var
    if not math.isfinite(scale) or scale <= 0:
        return None
    translation = dst_mean - scale * rotation @ src_mean
    matrix = np.hstack([scale * rotation, translation[:, None]])
    return matrix if np.all(np.isfinite(matrix)) else None


def box_crop_matrix(bbox: np.ndarray, margin: float, output_size: int) -> np.ndarray:
    """Affine map of the box, grown by ``margin`` per side and made square, onto the output."""
    x1, y1, x2, y2 = (float(v) for v in bbox)
    cx, cy = (x1 + x2) / 2.0, (y1 + y2) / 2.0
    side = max(x2 - x1, y2 - y1, 1.0) * (1.0 + 2.0 * float(margin))
    scale = output_size / side
    # Box edges are continuous coordinates (a box [0, W] spans the whole frame); the warp works in
    # pixel-index coordinates, so the box centre cx - 0.5 must land on crop index (S - 1) / 2.
    tx = output_size / 2.0 - scale * cx + 0.5 * (scale - 1.0)
    ty = output_size / 2.0 - scale * cy + 0.5 * (scale - 1.0)
    return np.array([[scale, 0.0, tx], [0.0, scale, ty]], dtype=np.float64)


def warp_crop(image: RGBImage, matrix: np.ndarray, output_size: int) -> RGBImage:
    """Warp with replicate borders; shrinking faces are warped larger, then area-resized."""
    scale = math.sqrt(abs(np.linalg.det(matrix[:, :2])))
    factor = int(min(MAX_SUPERSAMPLE, max(1, round(1.0 / max(scale, 1e-6)))))
    if factor == 1:
        return cv2.warpAffine(image, matrix, (output_size, output_size), flags=cv2.INTER_LINEAR,
                              borderMode=cv2.BORDER_REPLICATE)
    # Index coordinates: big pixel X = factor * x + (factor - 1) / 2 for crop pixel x.
    big_matrix = matrix * factor
    big_matrix[:, 2] += (factor - 1) / 2.0
    big_size = output_size * factor
    big = cv2.warpAffine(image, big_matrix, (big_size, big_size), flags=cv2.INTER_LINEAR,
                         borderMode=cv2.BORDER_REPLICATE)
    return cv2.resize(big, (output_size, output_size), interpolation=cv2.INTER_AREA)
