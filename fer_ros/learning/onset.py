"""How fast and how reliably does the published label follow a clear expression? Onset sequences.

A robot acts on the published label, so the temporal stage is judged on sequences, not single
faces: a face holds neutral, an expression fades in, then the peak is held. Labelled face
datasets have no such clips, so they are made from still faces: a neutral face of the dataset
cross-fades into an expressive face of the same size, every frame jittered a little (shift,
zoom, sensor noise) the way a tracked crop jitters on video. The classifier sees every frame
once; any number of smoother settings then replay the same probabilities, which makes tuning
cheap and comparisons fair.

Measured per sequence: the published label at the end of the hold (right, wrong or
``uncertain``), and the delay from the peak to the first frame that publishes the right label.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import cv2
import numpy as np

from fer_ros.config import SmootherConfig
from fer_ros.emotions import canonical_emotion
from fer_ros.errors import FerError
from fer_ros.learning.datasets import FaceDataset
from fer_ros.perception.smoothing import EmotionSmoother
from fer_ros.types import UNCERTAIN


@dataclass
class OnsetTiming:
    fps: float = 30.0
    neutral_s: float = 1.0  # neutral face before the onset
    ramp_s: float = 0.3  # cross-fade from neutral to the peak
    hold_s: float = 3.0  # peak held; figures are read at 1 s and at the end
    jitter_px: float = 1.0  # per-frame shift, in pixels of a 48-px face
    noise: float = 3.0  # per-frame Gaussian sensor noise (grey levels)

    def frames(self) -> tuple[int, int, int]:
        return (round(self.neutral_s * self.fps), round(self.ramp_s * self.fps), round(self.hold_s * self.fps))


@dataclass
class OnsetSet:
    """Frames of every sequence (uint8 [S, T, H, W]), the target label and the timing."""

    frames: np.ndarray
    targets: np.ndarray  # int64 [S], index into class_names
    class_names: list[str]
    timing: OnsetTiming


def make_sequences(ds: FaceDataset, per_class: int, timing: OnsetTiming, seed: int = 0) -> OnsetSet:
    """``per_class`` sequences for every expressive class of ``ds`` (all of its faces when fewer)."""
    names = [canonical_emotion(n) for n in ds.class_names]
    if "neutral" not in names:
        raise FerError(f"onset sequences start from neutral faces, and {ds.source} has no neutral class")
    if ds.images.ndim != 3:
        raise FerError("onset sequences need grey faces [N, H, W]")
    rng = np.random.default_rng(seed)
    neutral = np.flatnonzero(ds.labels == names.index("neutral"))
    chosen = []
    for k, name in enumerate(names):
        if name == "neutral":
            continue
        idx = np.flatnonzero(ds.labels == k)
        chosen.extend(rng.choice(idx, size=min(per_class, len(idx)), replace=False).tolist())
    n_neutral, n_ramp, n_hold = timing.frames()
    frames = np.stack([_sequence(ds.images[rng.choice(neutral)], ds.images[i], n_neutral, n_ramp, n_hold, timing, rng)
                       for i in chosen])
    return OnsetSet(frames, ds.labels[chosen], list(ds.class_names), timing)


def _sequence(start: np.ndarray, peak: np.ndarray, n_neutral: int, n_ramp: int, n_hold: int,
              timing: OnsetTiming, rng: np.random.Generator) -> np.ndarray:
    weights = np.concatenate([np.zeros(n_neutral), np.arange(1, n_ramp + 1) / (n_ramp + 1), np.ones(n_hold)])
    a, b = start.astype(np.float32), peak.astype(np.float32)
    h, w = start.shape
    out = np.empty((len(weights), h, w), np.uint8)
    for t, wt in enumerate(weights):
        img = (1 - wt) * a + wt * b
        dx, dy = rng.uniform(-timing.jitter_px, timing.jitter_px, 2)
        zoom = rng.uniform(0.98, 1.02)
        m = cv2.getRotationMatrix2D((w / 2, h / 2), 0.0, zoom)
        m[:, 2] += (dx, dy)
        img = cv2.warpAffine(img, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        out[t] = np.clip(img + rng.normal(0, timing.noise, img.shape), 0, 255).astype(np.uint8)
    return out


@dataclass
class OnsetReport:
    sequences: int
    right_at_1s: float  # published label right 1 s after the peak was reached
    uncertain_at_1s: float
    right_at_end: float  # at the end of the hold
    median_delay_s: float  # from the peak to the first right published label (inf when most never get there)
    median_delay_reached_s: float  # the same over the sequences that do get there (nan when none)
    false_alarms: float  # sequences publishing an expression other than neutral/uncertain before the onset
    raw_right_at_peak: float  # the classifier's arg-max over the hold (no smoothing)
    per_class_right_at_1s: dict

    def to_json(self) -> dict:
        return asdict(self)


def replay(probs: np.ndarray, onset: OnsetSet, smoother: SmootherConfig, model_classes: list[str]) -> OnsetReport:
    """Run the smoother over classified sequences (``probs``: [S, T, C] in ``model_classes`` order)."""
    timing = onset.timing
    n_neutral, n_ramp, n_hold = timing.frames()
    peak = n_neutral + n_ramp  # first frame of the hold
    at_1s = min(peak + round(timing.fps) - 1, probs.shape[1] - 1)
    targets = [canonical_emotion(onset.class_names[t]) for t in onset.targets]
    model = [canonical_emotion(n) for n in model_classes]
    right_1s, unc_1s, right_end, delays, alarms = [], [], [], [], []
    for s, target in enumerate(targets):
        sm = EmotionSmoother(smoother, model_classes)
        published = [canonical_emotion(sm.update(0, p, t / timing.fps).label) for t, p in enumerate(probs[s])]
        right_1s.append(published[at_1s] == target)
        unc_1s.append(published[at_1s] == UNCERTAIN)
        right_end.append(published[-1] == target)
        hit = next((t for t in range(peak, len(published)) if published[t] == target), None)
        delays.append(np.inf if hit is None else (hit - peak) / timing.fps)
        alarms.append(any(lbl not in ("neutral", UNCERTAIN) for lbl in published[:n_neutral]))
    raw = np.array([model[i] for i in probs[:, peak:].mean(1).argmax(1)])
    right_1s = np.array(right_1s)
    per_class = {c: float(right_1s[np.array(targets) == c].mean()) for c in sorted(set(targets))}
    reached = [d for d in delays if np.isfinite(d)]
    return OnsetReport(len(targets), float(right_1s.mean()), float(np.mean(unc_1s)), float(np.mean(right_end)),
                       float(np.median(delays)), float(np.median(reached)) if reached else float("nan"), float(np.mean(alarms)), float(np.mean(raw == np.array(targets))),
                       per_class)


def classify_sequences(classifier, onset: OnsetSet, batch: int = 512) -> np.ndarray:
    """Probabilities [S, T, C] from a classifier with ``classify(list of RGB crops)``, e.g. EmotionClassifier."""
    s, t = onset.frames.shape[:2]
    flat = onset.frames.reshape(s * t, *onset.frames.shape[2:])
    out = []
    for i in range(0, len(flat), batch):
        crops = [np.repeat(f[..., None], 3, axis=2) for f in flat[i:i + batch]]
        out.extend(c.probabilities for c in classifier.classify(crops))
    return np.stack(out).reshape(s, t, -1)
