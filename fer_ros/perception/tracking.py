"""Give each face an id that survives from frame to frame (IoU association of boxes).

Why a tracker at all: the temporal smoother and the ROS consumers (music controller, HRI)
need to know that the face in this frame is the face of the previous one. Faces move little
between detection rounds, so box overlap (IoU) is a sufficient cue; a short constant-velocity
prediction keeps ids apart when two faces cross, and a centre-distance second stage keeps a fast
face that no longer overlaps its last box. Units: boxes in pixels; ``max_missed`` and the
velocity in *detection rounds* (calls to ``update``), because only those carry new evidence.
"""
from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import numpy as np
from scipy.optimize import linear_sum_assignment

from fer_ros.config import TrackerConfig
from fer_ros.errors import FerError
from fer_ros.types import Detection, Track

# Ended ids waiting for pop_ended(). The pipeline pops every frame; the bound only keeps memory
# flat for a caller that never does (it then loses the oldest ids, nothing else).
_MAX_PENDING_ENDED = 1024
# Two refreshed tracks whose boxes overlap more than this found the same face (MTCNN's own boxes
# of one face overlap far more; two neighbouring faces far less).
DUPLICATE_IOU = 0.5


def iou_matrix(boxes_a: np.ndarray, boxes_b: np.ndarray) -> np.ndarray:
    """Intersection over union of every box in ``boxes_a`` [N, 4] with every box in ``boxes_b`` [M, 4].

    Boxes are ``x1 y1 x2 y2``. Returns float64 [N, M]; pairs whose union is empty (two
    zero-area boxes) get 0 rather than NaN.
    """
    a = np.asarray(boxes_a, dtype=np.float64).reshape(-1, 4)
    b = np.asarray(boxes_b, dtype=np.float64).reshape(-1, 4)
    ix1 = np.maximum(a[:, None, 0], b[None, :, 0])
    iy1 = np.maximum(a[:, None, 1], b[None, :, 1])
    ix2 = np.minimum(a[:, None, 2], b[None, :, 2])
    iy2 = np.minimum(a[:, None, 3], b[None, :, 3])
    inter = np.clip(ix2 - ix1, 0.0, None) * np.clip(iy2 - iy1, 0.0, None)
    area_a = np.clip(a[:, 2] - a[:, 0], 0.0, None) * np.clip(a[:, 3] - a[:, 1], 0.0, None)
    area_b = np.clip(b[:, 2] - b[:, 0], 0.0, None) * np.clip(b[:, 3] - b[:, 1], 0.0, None)
    union = area_a[:, None] + area_b[None, :] - inter
    out = np.zeros_like(inter)
    np.divide(inter, union, out=out, where=union > 0)
    return out


def iou(a: np.ndarray, b: np.ndarray) -> float:
    """IoU of two single boxes ``x1 y1 x2 y2``."""
    return float(iou_matrix(a, b)[0, 0])


@dataclass
class _TrackState:
    """What the tracker remembers of one live face."""

    track_id: int
    bbox: np.ndarray  # [4] float32, last detected box
    landmarks: np.ndarray  # [5, 2] float32, from the last detection
    score: float
    velocity: np.ndarray  # [4] float64, box change per detection round (0 for a new track)
    missed: int = 0  # consecutive detection rounds without a match

    def predicted(self) -> np.ndarray:
        """Box expected at the next detection round if the face keeps its speed."""
        return self.bbox + self.velocity * (self.missed + 1)

    def view(self, detection_index: int | None, detected: bool | None = None) -> Track:
        detected = detection_index is not None if detected is None else detected
        return Track(track_id=self.track_id, bbox=self.bbox.copy(), landmarks=self.landmarks.copy(),
                     score=self.score, detected=detected, detection_index=detection_index)


class IouTracker:
    """Associates each frame's detections with live tracks; ids are integers from 1, never reused.

    Settings are read from ``config`` on every call, so a live parameter change (ROS
    on-set-parameters) applies from the next frame.
    """

    def __init__(self, config: TrackerConfig) -> None:
        self.config = config
        self._tracks: dict[int, _TrackState] = {}
        self._next_id = 1
        self._ended: deque[int] = deque(maxlen=_MAX_PENDING_ENDED)

    def __len__(self) -> int:
        return len(self._tracks)

    def update(self, detections: list[Detection]) -> list[Track]:
        """Consume the detections of a frame where the detector ran; return every live track, sorted by id.

        Matched tracks take the detection's box (``detected=True``, ``detection_index`` into
        ``detections``); unmatched detections start new tracks; unmatched tracks count a miss
        and are returned with their last box until they have missed more than ``max_missed``
        rounds, then end (see ``pop_ended``).
        """
        for i, det in enumerate(detections):
            if not isinstance(det, Detection):
                raise FerError(f"IouTracker.update expects a list of Detection, item {i} is {type(det).__name__}")
        tracks = [self._tracks[k] for k in sorted(self._tracks)]
        pairs = self._associate(tracks, detections)
        matched_index = {t.track_id: d for t, d in pairs}
        for track, d in pairs:
            self._absorb(track, detections[d])
        for track in tracks:
            if track.track_id not in matched_index:
                track.missed += 1
                if track.missed > self.config.max_missed:
                    self._end(track.track_id)
        claimed = set(matched_index.values())
        for d, det in enumerate(detections):
            if d not in claimed:
                matched_index[self._start(det)] = d
        return [self._tracks[k].view(matched_index.get(k)) for k in sorted(self._tracks)]

    def refresh(self, found: dict[int, Detection | None], new: list[Detection] = ()) -> list[Track]:
        """A round in which each live track was looked for near its own box instead of matched
        against a full-frame detection (``FaceDetector.refine``); return every live track, sorted by id.

        ``found[track_id]``: the face found there (the track takes its box, ``detected=True``) or
        ``None`` (the track counts a miss, as in ``update``, and is returned with its last box).
        Two tracks that found the same face are one face: the younger one ends at once. ``new``:
        faces of a full-frame detection that no live track covers; each starts a track unless it
        overlaps a live one. ``detection_index`` is None throughout (there is no detection list).
        """
        kept: list[np.ndarray] = []
        for track_id in sorted(self._tracks):
            track, det = self._tracks[track_id], found.get(track_id)
            if det is not None and kept and iou_matrix(det.bbox, np.stack(kept)).max() > DUPLICATE_IOU:
                self._end(track_id)  # it followed an older track onto the same face
            elif det is not None:
                self._absorb(track, det)
                kept.append(det.bbox)
            else:
                track.missed += 1
                if track.missed > self.config.max_missed:
                    self._end(track_id)
        fresh = {k for k, d in found.items() if d is not None and k in self._tracks}
        for det in new:
            boxes = [t.bbox for t in self._tracks.values()]
            if not boxes or iou_matrix(det.bbox, np.stack(boxes)).max() <= DUPLICATE_IOU:
                fresh.add(self._start(det))
        return [self._tracks[k].view(None, detected=k in fresh) for k in sorted(self._tracks)]

    def predictions(self) -> dict[int, np.ndarray]:
        """Box each live track is expected at in the next round (its last box plus its speed), by id."""
        return {k: self._tracks[k].predicted().astype(np.float32) for k in sorted(self._tracks)}

    def missing(self) -> list[int]:
        """Ids of live tracks that missed their last round (candidates for a full-frame look)."""
        return [k for k in sorted(self._tracks) if self._tracks[k].missed > 0]

    def match(self, detections: list[Detection]) -> dict[int, int]:
        """Which live track each detection continues (track id -> index), as ``update`` would pair
        them, without changing any track: for a full-frame detection of an earlier frame."""
        tracks = [self._tracks[k] for k in sorted(self._tracks)]
        return {t.track_id: d for t, d in self._associate(tracks, list(detections))}

    def carry(self) -> list[Track]:
        """Live tracks for a frame where the detector did not run: last boxes, ``detected=False``.

        Not a miss: skipping detection (detect-every-N) says nothing about whether a face left.
        """
        return [self._tracks[k].view(None) for k in sorted(self._tracks)]

    def pop_ended(self) -> list[int]:
        """Ids of tracks that ended since the last call (so per-track state elsewhere can be dropped)."""
        ended = list(self._ended)
        self._ended.clear()
        return ended

    def reset(self) -> None:
        """End every track (reported by the next ``pop_ended``). Ids keep counting up, so none is reused."""
        for track_id in sorted(self._tracks):
            self._ended.append(track_id)
        self._tracks.clear()

    def _associate(self, tracks: list[_TrackState], detections: list[Detection]) -> list[tuple[_TrackState, int]]:
        """Optimal one-to-one assignment maximising total IoU; pairs below the threshold are refused.

        A track's affinity to a box is the better IoU of its predicted and its last box: the
        prediction separates crossing faces, the last box keeps a face that stopped suddenly.
        IoU must also be above 0, so ``iou_threshold = 0`` means "any overlap", not "anything".
        """
        if not tracks or not detections:
            return []
        boxes = np.stack([d.bbox for d in detections])
        last = iou_matrix(np.stack([t.bbox for t in tracks]), boxes)
        ahead = iou_matrix(np.stack([t.predicted() for t in tracks]), boxes)
        affinity = np.maximum(last, ahead)
        allowed = (affinity >= self.config.iou_threshold) & (affinity > 0.0)
        # Refused pairs score 0, the same as leaving both unmatched, so the optimum over allowed
        # pairs is unchanged by including them in the square problem.
        rows, cols = linear_sum_assignment(np.where(allowed, affinity, 0.0), maximize=True)
        pairs = [(tracks[r], int(c)) for r, c in zip(rows, cols) if allowed[r, c]]
        return pairs + self._associate_by_distance(tracks, detections, pairs)

    def _associate_by_distance(self, tracks: list[_TrackState], detections: list[Detection],
                               pairs: list[tuple[_TrackState, int]]) -> list[tuple[_TrackState, int]]:
        """Second chance for what IoU left unmatched: a face that moved more than its own width
        between detection rounds no longer overlaps its last box (low frame rate, detect-every-N,
        a person walking past a close camera). Gate on centre distance in face widths and on a
        similar size, so a face is not handed to a different-sized neighbour.
        """
        if self.config.max_jump <= 0:
            return []
        matched_tracks, matched_dets = {t.track_id for t, _ in pairs}, {d for _, d in pairs}
        left_t = [t for t in tracks if t.track_id not in matched_tracks]
        left_d = [d for d in range(len(detections)) if d not in matched_dets]
        if not left_t or not left_d:
            return []
        pred = np.stack([t.predicted() for t in left_t])
        boxes = np.stack([detections[d].bbox for d in left_d]).astype(np.float64)
        width_t = np.maximum(pred[:, 2] - pred[:, 0], 1.0)
        centre = lambda b: np.stack([(b[:, 0] + b[:, 2]) / 2, (b[:, 1] + b[:, 3]) / 2], 1)  # noqa: E731
        jump = np.linalg.norm(centre(pred)[:, None] - centre(boxes)[None], axis=2) / width_t[:, None]
        scale = np.maximum(boxes[:, 2] - boxes[:, 0], 1.0)[None] / width_t[:, None]
        allowed = (jump <= self.config.max_jump) & (scale > 2 / 3) & (scale < 1.5)
        rows, cols = linear_sum_assignment(np.where(allowed, jump, 1e6))
        return [(left_t[r], left_d[c]) for r, c in zip(rows, cols) if allowed[r, c]]

    def _end(self, track_id: int) -> None:
        del self._tracks[track_id]
        self._ended.append(track_id)

    def _absorb(self, track: _TrackState, det: Detection) -> None:
        rounds = track.missed + 1  # detection rounds since this track's last detection
        track.velocity = (det.bbox.astype(np.float64) - track.bbox) / rounds
        track.bbox = det.bbox.copy()
        track.landmarks = det.landmarks.copy()
        track.score = det.score
        track.missed = 0

    def _start(self, det: Detection) -> int:
        track_id = self._next_id
        self._next_id += 1
        self._tracks[track_id] = _TrackState(track_id=track_id, bbox=det.bbox.copy(), landmarks=det.landmarks.copy(),
                                             score=det.score, velocity=np.zeros(4))
        return track_id
