"""Valence and arousal of a face, estimated from its class probabilities.

The classifiers are categorical: they say how likely each emotion is, not where the face lies
on the valence (unpleasant..pleasant) and arousal (calm..excited) axes. This module places
each class at published norms and reports the probability-weighted mean of those places, so
the numbers are an estimate from categories, not a measurement: a face the model calls 60 %
happy and 40 % surprised lands between the two, and two different faces with the same
probabilities get the same estimate. A model with its own valence/arousal output would
replace it.

Norms: Warriner, Kuperman and Brysbaert (2013), "Norms of valence, arousal, and dominance for
13,915 English lemmas", Behavior Research Methods 45(4), 1191-1207: mean ratings of each word
on 1..9 scales (``V.Mean.Sum``, ``A.Mean.Sum``), taken here for the adjective a face of the
class shows ("angry", "disgusted", ...; "contempt" itself, as the norms have no
"contemptuous") and mapped linearly to -1..1 with ``(rating - 5) / 4``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from fer_ros.emotions import canonical_emotion

# canonical class -> (word rated, mean valence 1..9, mean arousal 1..9), Warriner et al. (2013)
NORMS: dict[str, tuple[str, float, float]] = {
    "angry": ("angry", 2.53, 6.20),
    "disgust": ("disgusted", 2.68, 4.89),
    "fear": ("fearful", 2.66, 5.45),
    "happy": ("happy", 8.47, 6.05),
    "sad": ("sad", 2.10, 3.49),
    "surprise": ("surprised", 6.57, 5.95),
    "neutral": ("neutral", 5.50, 3.45),
    "contempt": ("contempt", 3.22, 4.61),
}
SCALE_MID, SCALE_HALF = 5.0, 4.0  # 1..9 rating scale -> -1..1


def coordinates(name: str) -> tuple[float, float] | None:
    """(valence, arousal) in -1..1 of one class name (any spelling ``canonical_emotion`` knows), or None."""
    norm = NORMS.get(canonical_emotion(name))
    if norm is None:
        return None
    _, valence, arousal = norm
    return (valence - SCALE_MID) / SCALE_HALF, (arousal - SCALE_MID) / SCALE_HALF


@dataclass(frozen=True)
class Affect:
    """Valence and arousal in -1..1."""

    valence: float
    arousal: float


class AffectEstimator:
    """Probability-weighted mean of the class coordinates, for one model's class list.

    Classes without norms (a model trained on other categories) take no part: the others'
    probabilities are renormalised. With none known, every estimate is (0, 0).
    """

    def __init__(self, class_names: Sequence[str]) -> None:
        coords = [coordinates(n) for n in class_names]
        self.known = np.array([c is not None for c in coords], dtype=bool)
        self.points = np.array([c if c is not None else (0.0, 0.0) for c in coords], dtype=np.float64).reshape(-1, 2)
        self.unknown = [n for n, c in zip(class_names, coords) if c is None]

    def __call__(self, probabilities: np.ndarray) -> Affect:
        p = np.asarray(probabilities, dtype=np.float64).reshape(-1)
        if p.shape[0] != self.points.shape[0]:
            raise ValueError(f"{p.shape[0]} probabilities for {self.points.shape[0]} classes")
        weights = np.where(self.known & np.isfinite(p), np.clip(p, 0.0, None), 0.0)
        total = weights.sum()
        if total <= 0.0:
            return Affect(0.0, 0.0)
        valence, arousal = np.clip(weights @ self.points / total, -1.0, 1.0)
        return Affect(float(valence), float(arousal))
