"""Which faces are in this frame: full-frame MTCNN on a schedule, tracked faces refreshed every frame.

The P-Net pyramid over the whole frame is what costs (30-50 ms at 640x480 on one core); R-Net
and O-Net on a window around a face whose place is known cost about a millisecond. So every
frame, each tracked face is looked for again near its predicted box (``FaceDetector.refine``):
a fresh box, landmarks and score, and a face that is no longer there counts a miss at once.
The full detection runs only every ``detect_every`` frames, or on the next frame after a
tracked face was lost, and only finds faces that are new, or lost faces again.

With ``detector.background_lag = L > 0`` that full detection runs on a second thread while the
frame path carries on, and its faces join exactly L frames after it started (the frame path
waits only if it is not done by then). Joining at a fixed frame, not "whenever it finishes",
keeps every run deterministic: a video, a bag or a benchmark gives the same tracks on a fast
or a slow machine. It spends no R-Net or O-Net work on the faces tracked when it starts (the
refresh follows them), so it costs less the more faces are tracked. Faces it found on an older
frame are refined on the current one before they become tracks, so their boxes are never stale.
When nothing is tracked there is nothing to do meanwhile, so the detection runs on the frame
itself.
"""
from __future__ import annotations

import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import torch

from fer_ros.config import PipelineConfig
from fer_ros.perception.detection import FaceDetector
from fer_ros.perception.tracking import IouTracker
from fer_ros.types import Detection, RGBImage, Track


@dataclass
class _Job:
    """A full-frame detection started on frame ``frame`` (running on the worker thread)."""

    frame: int
    future: Future


def _add(timings: dict, stage: str, start: float) -> None:
    timings[stage] = timings.get(stage, 0.0) + (time.perf_counter() - start) * 1000.0


def _detect_timed(detector: FaceDetector, image: RGBImage, followed: list[np.ndarray]) -> tuple[list[Detection], float]:
    start = time.perf_counter()
    return detector.detect(image, followed), (time.perf_counter() - start) * 1000.0


class FaceFinder:
    """Detector + tracker: ``step(image, frame_index, timings) -> (tracks, ran_detection)``.

    The finder owns the tracker: it alone feeds it, and ``pop_ended`` tells the caller which
    tracks ended. ``timings`` receives ``detect`` (full detection on the frame path, including
    any wait for the worker), ``refine`` (R-/O-Net on tracked faces), ``track`` and, on the
    frame where a background detection joins, ``detect_background`` (its own duration on the
    worker thread, not on the frame path). Settings are read on every call, so live changes
    apply at once. ``close`` stops the worker thread.
    """

    def __init__(self, detector: FaceDetector, config: PipelineConfig) -> None:
        self.detector, self.config = detector, config
        self.tracker = IouTracker(config.tracker)
        self._job: _Job | None = None
        self._unsure = False  # a tracked face was lost: look at the whole frame on the next one
        self._executor: ThreadPoolExecutor | None = None

    # --- one frame ---------------------------------------------------------------------------------

    def step(self, image: RGBImage, frame_index: int, timings: dict) -> tuple[list[Track], bool]:
        if not self.config.tracker.refine:
            return self._step_carrying(image, frame_index, timings)
        lag = int(self.config.detector.background_lag)
        want = frame_index % self.config.detect_every == 0 or self._unsure
        joined: list[Detection] = []  # found by a detection of an earlier frame
        if self._job is not None and (want or frame_index - self._job.frame >= lag or not len(self.tracker)):
            joined = self._join(timings)
        same: list[Detection] = []  # found by a detection of this frame
        ran = False
        if want and self._job is None:
            ran, self._unsure = True, False
            if lag > 0 and (len(self.tracker) or joined):
                lost = set(self.tracker.missing())  # followed faces are left out: it looks for the others
                followed = [box for k, box in self.tracker.predictions().items() if k not in lost]
                self._job = _Job(frame_index, self._worker().submit(_detect_timed, self.detector, image.copy(), followed))
            else:
                start = time.perf_counter()
                same = self.detector.detect(image)
                _add(timings, "detect", start)
        if not len(self.tracker) and not joined and not same:
            return [], ran
        return self._refresh(image, joined, same, timings), ran

    def _refresh(self, image: RGBImage, joined: list[Detection], same: list[Detection], timings: dict) -> list[Track]:
        """Look for every tracked face near its prediction and merge the full detections' faces.

        ``same``: detections of this frame (used as they are); ``joined``: of an earlier frame
        (refined on this one first). A face lost on this frame makes the next frame look at the
        whole frame (``_unsure``).
        """
        start = time.perf_counter()
        windows = self.tracker.predictions()
        found: dict[int, Detection | None] = {}
        pairs = self.tracker.match(same)
        for track_id, d in pairs.items():
            found[track_id] = same[d]  # seen on this very frame: nothing to refine
            del windows[track_id]
        new = [d for i, d in enumerate(same) if i not in set(pairs.values())]
        lost_before = set(self.tracker.missing())
        pairs = self.tracker.match(joined)
        for track_id, d in pairs.items():
            if track_id in lost_before and track_id in windows:
                windows[track_id] = joined[d].bbox  # a lost face seen again: look where it was seen
        candidates = [d for i, d in enumerate(joined) if i not in set(pairs.values())]
        _add(timings, "track", start)
        start = time.perf_counter()
        ids = list(windows)
        boxes = [windows[k] for k in ids] + [d.bbox for d in candidates]
        refined = self.detector.refine(image, boxes) if boxes else []
        # Too far from where it was expected (fast, or seen on an older frame): search around it.
        refined = [d if d is not None else self.detector.search(image, b) for d, b in zip(refined, boxes)]
        _add(timings, "refine", start)
        start = time.perf_counter()
        found.update(zip(ids, refined[:len(ids)]))
        new += [d for d in refined[len(ids):] if d is not None]
        tracks = self.tracker.refresh(found, new)
        self._unsure = self._unsure or bool(set(self.tracker.missing()) - lost_before)
        _add(timings, "track", start)
        return tracks

    def _step_carrying(self, image: RGBImage, frame_index: int, timings: dict) -> tuple[list[Track], bool]:
        """Without refresh: detect every N frames (every frame while nothing is tracked), carry boxes in between."""
        if frame_index % self.config.detect_every == 0 or len(self.tracker) == 0:
            start = time.perf_counter()
            detections = self.detector.detect(image)
            _add(timings, "detect", start)
            start = time.perf_counter()
            tracks = self.tracker.update(detections)
            _add(timings, "track", start)
            return tracks, True
        return self.tracker.carry(), False

    # --- the worker thread -------------------------------------------------------------------------

    def _join(self, timings: dict) -> list[Detection]:
        """The faces of the detection in flight, waiting for it if it is not done yet."""
        job, self._job = self._job, None
        start = time.perf_counter()
        detections, ms = job.future.result()
        _add(timings, "detect", start)
        timings["detect_background"] = timings.get("detect_background", 0.0) + ms
        return detections

    def _worker(self) -> ThreadPoolExecutor:
        if self._executor is None:
            # One torch thread there: the frame path keeps its own core, the detection takes the other.
            self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="fer-detect",
                                                initializer=torch.set_num_threads, initargs=(1,))
        return self._executor

    def warmup(self, image: RGBImage) -> None:
        """First calls on a new thread are slow (thread pools, allocator): make them before the real frames."""
        if self.config.detector.background_lag > 0:
            self._worker().submit(self.detector.detect, image).result()
        box = np.array([image.shape[1] * 0.3, image.shape[0] * 0.3, image.shape[1] * 0.6, image.shape[0] * 0.7], np.float32)
        for _ in range(2):
            self.detector.refine(image, [box])

    def __len__(self) -> int:
        """Faces tracked now."""
        return len(self.tracker)

    def pop_ended(self) -> list[int]:
        """Ids of the tracks that ended since the last call (their smoothing state can go)."""
        return self.tracker.pop_ended()

    def reset(self) -> None:
        """Forget every track, the detection in flight (it belongs to the old sequence) and any pending full-frame look."""
        if self._job is not None:
            self._job.future.result()
            self._job = None
        self._unsure = False
        self.tracker.reset()

    def close(self) -> None:
        """Stop the worker thread once the detection in flight is done (it still joins on its frame); a later one starts a new thread."""
        if self._executor is not None:
            self._executor.shutdown(wait=True)
            self._executor = None
