"""Our results in ROS4HRI terms (REP-155, hri_msgs), without importing ROS.

What fer_node publishes under /humans/faces/ when ``ros4hri`` is on: the ids of the faces in
view, and per face its box, aligned crop, landmarks and expression. Everything here is pure
(ids, the class -> expression table, normalised coordinates, which faces came and went); the
messages are built by field name from classes passed in as ``HriTypes`` (rclpy's generated
hri_msgs in the node, a rosbags typestore in tests), like ``fer_ros.messages.convert`` does for ours.
With ``ros4hri_input`` the faces come from another detector instead (``id_changes`` follows its
tracked list; fer_ros.perception.latest.FaceInbox holds each face's newest crop).
"""
from __future__ import annotations

import random
import string
from dataclasses import dataclass
from typing import Any, Iterable

import numpy as np

from fer_ros.emotions import canonical_emotion
from fer_ros.types import UNCERTAIN, FaceResult

FACES_NS = "/humans/faces"
TRACKED_TOPIC = f"{FACES_NS}/tracked"
PER_FACE_TOPICS = ("roi", "aligned", "landmarks", "expression")
ALIGNED_SIZE = 128  # pixels, side of the published aligned face (ROS4HRI consumers expect a colour crop of this order)

# Our canonical classes -> hri_msgs/Expression constants. Contempt has no constant of its own:
# it becomes "disgusted", its nearest neighbour among them (both reject something; FER2013-style
# label sets fold it into disgust). Its valence and arousal still are contempt's own.
EXPRESSIONS = {
    "angry": "angry",
    "disgust": "disgusted",
    "fear": "scared",
    "happy": "happy",
    "sad": "sad",
    "surprise": "surprised",
    "neutral": "neutral",
    "contempt": "disgusted",
}
# The other constants of hri_msgs/Expression: a class of another model with one of these names
# is published under it.
OTHER_EXPRESSIONS = ("pleading", "vulnerable", "despaired", "guilty", "disappointed", "embarrassed", "horrified",
                     "skeptical", "annoyed", "furious", "suspicious", "rejected", "bored", "tired", "asleep",
                     "confused", "amazed", "excited")

# hri_msgs/FacialLandmarks indexes a 70-point layout; our five points (image left/right, see
# fer_ros.types) are the subject's right pupil, left pupil, nose tip, right and left mouth corner.
LANDMARK_COUNT = 70
LANDMARK_INDEX = (68, 69, 30, 48, 54)


def expression_of(class_name: str) -> str:
    """The hri_msgs/Expression string for one of our class names (any spelling); unknown: its own lower-case name."""
    name = canonical_emotion(class_name)
    return EXPRESSIONS.get(name, name)


def new_run_tag(rng: random.Random | None = None) -> str:
    """Five random lower-case letters, so face ids of two node runs never collide."""
    rng = rng or random.SystemRandom()
    return "".join(rng.choice(string.ascii_lowercase) for _ in range(5))


def face_id(track_id: int, run_tag: str) -> str:
    """The ROS4HRI id of a track: stable while tracked, a valid topic name token (e.g. ``fqkzta_3``)."""
    return f"f{run_tag}_{int(track_id)}"


def normalized_box(bbox: np.ndarray, width: int, height: int) -> tuple[float, float, float, float]:
    """Pixel box x1 y1 x2 y2 -> (xmin, ymin, xmax, ymax) as fractions of the image, clipped to 0..1."""
    x1, y1, x2, y2 = (float(v) for v in np.asarray(bbox, dtype=np.float64).reshape(4))
    w, h = max(int(width), 1), max(int(height), 1)
    return (min(max(x1 / w, 0.0), 1.0), min(max(y1 / h, 0.0), 1.0),
            min(max(x2 / w, 0.0), 1.0), min(max(y2 / h, 0.0), 1.0))


def face_expression(face: FaceResult, class_names: list[str]) -> tuple[str, float]:
    """(expression, confidence) of a face: its stable label, or while uncertain the smoothed top class,
    with the smoothed probability either way (low while uncertain: consumers threshold on it)."""
    label = face.label
    if label == UNCERTAIN:
        label = class_names[int(np.argmax(face.probabilities))]
    return expression_of(label), float(np.clip(face.confidence, 0.0, 1.0))


@dataclass
class FaceChanges:
    """The faces in view after one frame, and which of them are new or gone since the previous one."""

    ids: list[str]
    appeared: list[str]
    ended: list[str]


def id_changes(before: Iterable[str], ids: Iterable[str]) -> FaceChanges:
    """Which ids of a /humans/faces/tracked list are new or gone since the previous list (empty ids
    and repeats dropped, order kept)."""
    ids = list(dict.fromkeys(str(i) for i in ids if str(i)))
    before = list(before)
    return FaceChanges(ids, [i for i in ids if i not in set(before)], [i for i in before if i not in set(ids)])


class TrackedFaces:
    """Which ids are in view; a face ends when its track is no longer in the frame's result."""

    def __init__(self, run_tag: str) -> None:
        self.run_tag = run_tag
        self.current: list[str] = []

    def update(self, track_ids: list[int]) -> FaceChanges:
        changes = id_changes(self.current, [face_id(t, self.run_tag) for t in track_ids])
        self.current = changes.ids
        return changes


@dataclass(frozen=True)
class HriTypes:
    """The hri_msgs classes one run builds messages from."""

    IdsList: type
    NormalizedRegionOfInterest2D: type
    Expression: type
    FacialLandmarks: type
    NormalizedPointOfInterest2D: type

    @classmethod
    def from_rclpy(cls) -> "HriTypes":
        """rosidl's generated classes; ImportError when hri_msgs is not installed."""
        from hri_msgs.msg import Expression, FacialLandmarks, IdsList, NormalizedPointOfInterest2D, NormalizedRegionOfInterest2D

        return cls(IdsList, NormalizedRegionOfInterest2D, Expression, FacialLandmarks, NormalizedPointOfInterest2D)

    @classmethod
    def from_typestore(cls, store: Any) -> "HriTypes":
        t = store.types
        return cls(*(t[f"hri_msgs/msg/{n}"] for n in ("IdsList", "NormalizedRegionOfInterest2D", "Expression",
                                                     "FacialLandmarks", "NormalizedPointOfInterest2D")))


def ids_msg(ids: list[str], header: Any, types: HriTypes) -> Any:
    return types.IdsList(header=header, ids=[str(i) for i in ids])


def roi_msg(face: FaceResult, width: int, height: int, header: Any, types: HriTypes) -> Any:
    xmin, ymin, xmax, ymax = normalized_box(face.bbox, width, height)
    return types.NormalizedRegionOfInterest2D(header=header, xmin=xmin, ymin=ymin, xmax=xmax, ymax=ymax,
                                              c=float(np.clip(face.detection_score, 0.0, 1.0)))


def expression_msg(face: FaceResult, class_names: list[str], header: Any, types: HriTypes) -> Any:
    expression, confidence = face_expression(face, class_names)
    return types.Expression(header=header, expression=expression, valence=float(np.clip(face.valence, -1.0, 1.0)),
                            arousal=float(np.clip(face.arousal, -1.0, 1.0)), confidence=confidence)


def landmarks_msg(face: FaceResult, width: int, height: int, header: Any, types: HriTypes) -> Any:
    """All 70 points of the layout; ours filled in (confidence = the detector's), the rest zero with c = 0."""
    points = [types.NormalizedPointOfInterest2D(x=0.0, y=0.0, c=0.0) for _ in range(LANDMARK_COUNT)]
    w, h = max(int(width), 1), max(int(height), 1)
    score = float(np.clip(face.detection_score, 0.0, 1.0))
    for index, (x, y) in zip(LANDMARK_INDEX, np.asarray(face.landmarks, dtype=np.float64).reshape(5, 2)):
        if np.isfinite(x) and np.isfinite(y):
            points[index] = types.NormalizedPointOfInterest2D(x=min(max(x / w, 0.0), 1.0),
                                                              y=min(max(y / h, 0.0), 1.0), c=score)
    return types.FacialLandmarks(header=header, landmarks=points, height=int(height), width=int(width))
