"""Turn per-frame class probabilities of a tracked face into a steady, publishable emotion label.

Why: a classifier's arg-max flickers from frame to frame, and a robot that reacts to every
flicker looks erratic. Three stages, all timed by stamps in seconds (never frame counts, so the
behaviour is the same at 10 fps, 30 fps or with dropped frames):

1. smoothing of the probabilities: ``ema`` (time constant ``window``) or ``window`` (mean of the
   samples of the last ``window`` seconds);
2. confidence threshold: a top class below ``confidence_threshold`` is reported as ``uncertain``;
3. hysteresis: the published label changes only after a new label has been the candidate for
   ``hysteresis`` seconds without interruption.

Stamps that do not increase (repeated frames, a bag that loops) count as no time passing: each
track keeps its own clock that only moves forward.
"""
from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass

import numpy as np

from fer_ros.config import SmootherConfig
from fer_ros.errors import FerError
from fer_ros.types import UNCERTAIN, SmoothedEmotion

# Samples kept per track for the ``window`` method: 60 s (the largest window) at 60 fps. Higher
# rates shorten the window to the newest samples instead of growing memory.
MAX_WINDOW_SAMPLES = 3600
# Tolerance on time comparisons, so that stamps such as k/30 s do not miss a deadline by rounding.
_EPS = 1e-6  # seconds


@dataclass
class _TrackState:
    """Smoother memory for one track; times are on the track's own forward-only clock (seconds)."""

    ema: np.ndarray  # [C] float64, exponentially smoothed probabilities
    samples: deque  # (clock, probabilities) pairs for the window method, oldest first
    window_sum: np.ndarray  # [C] float64, running sum of the probabilities in ``samples``
    last_stamp: float  # raw stamp of the previous update
    offset: float = 0.0  # clock - stamp; changes only when a stamp goes backwards
    label: str = ""  # published label
    held_since: float = 0.0  # clock when the published label started to be the candidate
    pending: str | None = None  # candidate that differs from the published label
    pending_since: float = 0.0
    pushes: int = 0  # samples added since window_sum was last summed from scratch

    @property
    def clock(self) -> float:
        """Forward-only track time in seconds: the stamp itself until a stamp ever goes backwards."""
        return self.last_stamp + self.offset

    def push(self, probs: np.ndarray) -> None:
        """Add a sample at the current clock; the running sum is re-summed now and then so rounding cannot build up."""
        if len(self.samples) >= MAX_WINDOW_SAMPLES:
            self.pop_oldest()
        self.samples.append((self.clock, probs))
        self.window_sum += probs
        self.pushes += 1
        if self.pushes >= MAX_WINDOW_SAMPLES:
            self.window_sum = np.sum([p for _, p in self.samples], axis=0)
            self.pushes = 0

    def pop_oldest(self) -> None:
        _, probs = self.samples.popleft()
        self.window_sum -= probs

    def window_mean(self) -> np.ndarray:
        return self.window_sum / len(self.samples)


class EmotionSmoother:
    """Per-track temporal smoothing, confidence threshold and hysteresis of emotion labels.

    ``config`` is read on every update, so live parameter changes apply from the next frame.
    Both the EMA and the sample window (pruned to the current ``window``) are maintained under
    either method, so even ``method`` can switch live without a cold start.
    """

    def __init__(self, config: SmootherConfig, class_names: list[str]) -> None:
        if not class_names:
            raise FerError("EmotionSmoother needs at least one class name; pass the model's class_names")
        if len(set(class_names)) != len(class_names):
            raise FerError(f"class names must be unique, got {list(class_names)}; fix the checkpoint's class list")
        self.config = config
        self.class_names = list(class_names)
        self._tracks: dict[int, _TrackState] = {}

    def __len__(self) -> int:
        """Number of tracks with smoother state."""
        return len(self._tracks)

    def __contains__(self, track_id: int) -> bool:
        return track_id in self._tracks

    def update(self, track_id: int, probabilities: np.ndarray, stamp: float) -> SmoothedEmotion:
        """Add one frame's probabilities for ``track_id`` taken at ``stamp`` (seconds); return the published state."""
        if self.config.method not in ("ema", "window"):
            raise FerError(f"smoother.method must be ema or window, got {self.config.method!r}")
        probs = self._check(probabilities)
        stamp = float(stamp)
        if not math.isfinite(stamp):
            raise FerError(f"stamp must be a finite number of seconds, got {stamp}; check the image header or video time")
        state = self._tracks.get(track_id)
        if state is None:
            state = self._start(track_id, probs, stamp)
        else:
            self._advance(state, probs, stamp)
        smoothed = self._smoothed(state)
        self._decide(state, smoothed)
        return self._publish(state, smoothed)

    def drop(self, track_id: int) -> None:
        """Forget a track (it ended in the tracker). Unknown ids are ignored."""
        self._tracks.pop(track_id, None)

    def reset(self) -> None:
        """Forget every track."""
        self._tracks.clear()

    def _check(self, probabilities: np.ndarray) -> np.ndarray:
        probs = np.asarray(probabilities, dtype=np.float64)
        if probs.ndim != 1 or probs.shape[0] != len(self.class_names):
            raise FerError(f"got {probs.size} probabilities (shape {probs.shape}) for {len(self.class_names)} classes "
                           f"({', '.join(self.class_names)}); the classifier and the smoother must use the same class list")
        if not np.all(np.isfinite(probs)):
            raise FerError(f"probabilities contain NaN or inf: {probs.tolist()}; check the classifier output")
        return probs.copy()

    def _start(self, track_id: int, probs: np.ndarray, stamp: float) -> _TrackState:
        state = _TrackState(ema=probs.copy(), samples=deque([(stamp, probs)]), window_sum=probs.copy(),
                            last_stamp=stamp, label="", held_since=stamp)
        self._tracks[track_id] = state
        return state

    def _advance(self, state: _TrackState, probs: np.ndarray, stamp: float) -> None:
        """Move the track's clock by max(0, dt) and fold the new sample into the EMA and the window."""
        dt = stamp - state.last_stamp
        if dt <= 0.0:  # repeated or backward stamp: no time passes, the clock carries on from here
            state.offset += state.last_stamp - stamp
            dt = 0.0
        state.last_stamp = stamp
        tau = self.config.window
        alpha = 1.0 if tau <= 0.0 else -math.expm1(-dt / tau)  # 1 - exp(-dt/tau), exact for small dt
        state.ema += alpha * (probs - state.ema)
        state.push(probs)
        self._prune(state)

    def _prune(self, state: _TrackState) -> None:
        """Keep the samples younger than ``window`` seconds (always the newest), for the window method."""
        horizon = max(self.config.window, 0.0)
        while len(state.samples) > 1 and state.clock - state.samples[0][0] >= horizon - _EPS:
            state.pop_oldest()

    def _smoothed(self, state: _TrackState) -> np.ndarray:
        if self.config.method == "window":
            # Samples with clock - t < window; the newest is always in (window 0 = no smoothing).
            return state.window_mean()
        return state.ema.copy()

    def _candidate(self, smoothed: np.ndarray) -> str:
        top = int(np.argmax(smoothed))
        return self.class_names[top] if smoothed[top] >= self.config.confidence_threshold else UNCERTAIN

    def _decide(self, state: _TrackState, smoothed: np.ndarray) -> None:
        """Apply the hysteresis: adopt a new candidate once it has held ``hysteresis`` seconds."""
        candidate = self._candidate(smoothed)
        if not state.label:  # first update: publish at once, stable only after the hysteresis time
            state.label, state.held_since = candidate, state.clock
            return
        if candidate == state.label:
            state.pending = None
            return
        if candidate != state.pending:
            state.pending, state.pending_since = candidate, state.clock
        if state.clock - state.pending_since >= self.config.hysteresis - _EPS:
            # Adoption is dated from when the label started to dominate: it has already proved itself.
            state.label, state.held_since, state.pending = candidate, state.pending_since, None

    def _publish(self, state: _TrackState, smoothed: np.ndarray) -> SmoothedEmotion:
        if state.label == UNCERTAIN:
            confidence = float(np.max(smoothed))
        else:
            confidence = float(smoothed[self.class_names.index(state.label)])
        held = state.clock - state.held_since
        return SmoothedEmotion(label=state.label, confidence=confidence, probabilities=smoothed.astype(np.float32),
                               stable=held >= self.config.hysteresis - _EPS, stable_for=held)
