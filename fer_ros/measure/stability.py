"""Is the published emotion something a behaviour tree can act on? Label stability per video shot.

For every shot (frames between hard cuts) of a video run through the pipeline: how many frames
show a face, the share of those whose published label is ``uncertain``, the mean published
confidence, and how often the published and the raw (per-frame arg-max) labels change per minute
of face time. A change counts when the same track's label differs from its previous frame's.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from fer_ros.errors import FerError
from fer_ros.types import UNCERTAIN, FrameResult


@dataclass
class ShotStability:
    first_frame: int
    last_frame: int
    frames: int
    face_frames: int  # frames with at least one face
    uncertain_fraction: float  # of face observations, published label == uncertain
    mean_confidence: float  # published (smoothed) confidence
    label_flips_per_minute: float  # published label changes within a track, per minute of face time
    raw_flips_per_minute: float  # the frame's arg-max label changes, for comparison
    labels: dict  # published label -> observations

    def to_json(self) -> dict:
        return asdict(self)


def parse_cuts(text: str) -> list[int]:
    """'21,65,185' -> [21, 65, 185]: the first frame of each new shot."""
    try:
        cuts = sorted({int(v) for v in text.split(",") if v.strip()})
    except ValueError:
        raise FerError(f"--cuts expects frame numbers separated by commas (e.g. 21,65,185), got '{text}'") from None
    if any(c <= 0 for c in cuts):
        raise FerError(f"--cuts are first frames of new shots and must be positive, got '{text}'")
    return cuts


def shot_stability(results: list[FrameResult], cuts: list[int], fps: float) -> list[ShotStability]:
    """Per-shot figures for consecutive frame results (index = frame number)."""
    if fps <= 0:
        raise FerError(f"frame rate must be positive, got {fps}")
    bounds = [0] + [c for c in cuts if c < len(results)] + [len(results)]
    shots = []
    for first, end in zip(bounds, bounds[1:]):
        if end > first:
            shots.append(_one_shot(results[first:end], first, fps))
    return shots


def _one_shot(frames: list[FrameResult], first: int, fps: float) -> ShotStability:
    confidences, uncertain, labels = [], 0, {}
    flips = raw_flips = 0
    previous: dict[int, tuple[str, str]] = {}
    face_frames = 0
    for frame in frames:
        face_frames += bool(frame.faces)
        current = {}
        for face in frame.faces:
            confidences.append(face.confidence)
            uncertain += face.label == UNCERTAIN
            labels[face.label] = labels.get(face.label, 0) + 1
            if face.track_id in previous:
                flips += previous[face.track_id][0] != face.label
                raw_flips += previous[face.track_id][1] != face.raw_label
            current[face.track_id] = (face.label, face.raw_label)
        previous = current  # a track that skips a frame starts afresh
    minutes = max(len(confidences), 1) / fps / 60.0
    n = len(confidences)
    return ShotStability(first, first + len(frames) - 1, len(frames), face_frames,
                         uncertain / n if n else 0.0, float(np.mean(confidences)) if n else 0.0,
                         flips / minutes if n else 0.0, raw_flips / minutes if n else 0.0, labels)
