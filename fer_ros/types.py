"""Typed results passed between pipeline stages.

Conventions, fixed here so no stage has to guess:
- Images entering the core are ``RGBImage``: uint8 HxWx3 in RGB order. Colour order is
  converted once at the door (video reader, ROS image conversion), never inside a stage.
- Boxes are ``[x1, y1, x2, y2]`` in pixels of the full frame, float32.
- Landmarks are 5 points ``[[x, y] * 5]`` in the order left eye, right eye, nose, left mouth
  corner, right mouth corner (image left/right, as MTCNN returns them).
- "No face" is an empty list, never ``None``.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from fer_ros.errors import FerError

RGBImage = np.ndarray  # uint8, HxWx3, RGB order

UNCERTAIN = "uncertain"  # label published while confidence is below the threshold


def as_rgb_image(image: np.ndarray) -> RGBImage:
    """Check that ``image`` is a uint8 HxWx3 array and return it contiguous."""
    if not isinstance(image, np.ndarray) or image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        desc = f"{image.dtype} {image.shape}" if isinstance(image, np.ndarray) else type(image).__name__
        raise FerError(f"expected an RGB uint8 HxWx3 image, got {desc}; convert it at the input (see fer_ros.imageio)")
    if image.shape[0] == 0 or image.shape[1] == 0:
        raise FerError(f"image is empty ({image.shape}); check the camera or file")
    return np.ascontiguousarray(image)


@dataclass
class Detection:
    """One face found by the detector in a full frame."""

    bbox: np.ndarray  # [4] float32, x1 y1 x2 y2 in pixels
    landmarks: np.ndarray  # [5, 2] float32, pixels; may be all-NaN when the detector gave none
    score: float  # detector probability in [0, 1]

    def __post_init__(self) -> None:
        self.bbox = np.asarray(self.bbox, dtype=np.float32).reshape(4)
        self.landmarks = np.asarray(self.landmarks, dtype=np.float32).reshape(5, 2)
        self.score = float(np.clip(self.score, 0.0, 1.0))
        x1, y1, x2, y2 = self.bbox
        if x2 < x1 or y2 < y1:
            raise FerError(f"malformed box {self.bbox.tolist()}: x2 < x1 or y2 < y1")

    @property
    def width(self) -> float:
        return float(self.bbox[2] - self.bbox[0])

    @property
    def height(self) -> float:
        return float(self.bbox[3] - self.bbox[1])

    @property
    def has_landmarks(self) -> bool:
        return bool(np.all(np.isfinite(self.landmarks)))


@dataclass
class AlignedFace:
    """A face crop at the classifier's input size, ready for preprocessing."""

    image: RGBImage  # uint8 SxSx3, RGB, S = the model's input size
    matrix: np.ndarray  # [2, 3] affine map from frame pixels to crop pixels
    from_landmarks: bool  # False when the expanded-box fallback was used


@dataclass
class Classification:
    """Classifier output for one face (one frame, before temporal smoothing)."""

    probabilities: np.ndarray  # [C] float32, sums to 1
    attention: np.ndarray | None = None  # [h, w] float32 in [0, 1], spatial attention map
    fusion_weights: np.ndarray | None = None  # [3] float32, pathway weights, sum to 1


@dataclass
class Track:
    """The tracker's view of one face at one frame."""

    track_id: int
    bbox: np.ndarray  # [4] float32
    landmarks: np.ndarray  # [5, 2] float32
    score: float
    detected: bool  # True: box came from this frame's detection; False: carried over
    detection_index: int | None  # index into this frame's detections, None when carried over


@dataclass
class SmoothedEmotion:
    """Temporal smoother state for one track after one update."""

    label: str  # stable published label, or UNCERTAIN
    confidence: float  # smoothed probability of ``label`` (of the top class when uncertain)
    probabilities: np.ndarray  # [C] smoothed probabilities
    stable: bool  # True when the label has held through the hysteresis time
    stable_for: float  # seconds the published label has been held


@dataclass
class FaceResult:
    """Everything the pipeline knows about one face in one frame."""

    track_id: int
    bbox: np.ndarray  # [4] float32, x1 y1 x2 y2 pixels
    landmarks: np.ndarray  # [5, 2] float32 pixels
    detection_score: float
    label: str  # stable label after smoothing and hysteresis (or "uncertain")
    confidence: float
    probabilities: np.ndarray  # [C] smoothed
    raw_label: str  # this frame's arg-max label
    raw_probabilities: np.ndarray  # [C] this frame's classifier output
    stable: bool
    stable_for: float  # seconds
    detected: bool  # box from a detection this frame (False: carried over by the tracker)
    valence: float = 0.0  # -1..1, estimated from the smoothed probabilities (fer_ros.perception.affect)
    arousal: float = 0.0  # -1..1, likewise
    attention: np.ndarray | None = None  # [h, w] in [0, 1], for annotation only
    fusion_weights: np.ndarray | None = None  # [3]

    def to_json(self, class_names: list[str]) -> dict:
        """A plain-JSON view (what `fer-ros detect` prints per face)."""
        return {
            "id": int(self.track_id),
            "bbox": [round(float(v), 1) for v in self.bbox],
            "landmarks": [[round(float(x), 1), round(float(y), 1)] for x, y in self.landmarks],
            "detection_score": round(float(self.detection_score), 4),
            "label": self.label,
            "confidence": round(float(self.confidence), 4),
            "probabilities": {n: round(float(p), 4) for n, p in zip(class_names, self.probabilities)},
            "valence": round(float(self.valence), 4),
            "arousal": round(float(self.arousal), 4),
            "raw_label": self.raw_label,
            "stable": bool(self.stable),
            "stable_for": round(float(self.stable_for), 3),
            "detected": bool(self.detected),
        }


@dataclass
class FrameResult:
    """The pipeline's answer for one frame."""

    frame_index: int
    stamp: float  # seconds, from the source (camera/bag stamp or video time)
    image_size: tuple[int, int]  # (width, height)
    class_names: list[str]
    faces: list[FaceResult] = field(default_factory=list)
    timings_ms: dict[str, float] = field(default_factory=dict)  # per stage
    ran_detection: bool = True  # False on frames where the tracker carried boxes

    def to_json(self) -> dict:
        return {
            "frame": int(self.frame_index),
            "stamp": round(float(self.stamp), 6),
            "faces": [f.to_json(self.class_names) for f in self.faces],
        }
