"""Training-time image damage: what small, distant, compressed or half-covered faces look like.

A live camera gives blurred, noisy, JPEG-compressed and low-resolution faces, and faces behind
sunglasses or a mask; a model trained on clean 48 px crops loses a third of its accuracy on them
(docs/robustness.md). With probability ``p`` a training face gets one such damage at a random
strength, on its raw pixels, before the CLAHE and normalisation inference applies, so it is
damaged in the order a camera damages it. Distillation targets stay those of the clean face:
the student learns to answer for the damaged face what the teacher says of the clean one.

The damage reuses the functions of the robustness suite with strengths drawn from a continuous
range; rotation, lighting and random patches are left out, so those rows of the suite stay
conditions the model never trained on.
"""
from __future__ import annotations

from typing import Callable

import numpy as np
import torch

from fer_ros.learning import robustness as r

# name, function, strength range (drawn uniformly), in the suite's units
DAMAGE: tuple[tuple[str, Callable, float, float], ...] = (
    ("blur", r.blur, 0.5, 3.0),
    ("noise", r.noise, 3.0, 20.0),
    ("jpeg", r.jpeg, 10.0, 60.0),
    ("low_resolution", r.low_resolution, 20.0, 40.0),
    ("sunglasses", r.occlude_eyes, 0.1, 0.3),
    ("mask", r.occlude_mouth, 0.1, 0.35),
)


def degrade(images: np.ndarray, p: float, gen: torch.Generator, template: np.ndarray) -> np.ndarray:
    """``images`` (uint8 [B, H, W] or [B, H, W, 3]) with each face damaged with probability ``p`` by one
    kind of ``DAMAGE`` at a uniform random strength. One seed drawn from ``gen`` fixes every draw,
    so a seeded (or resumed) run repeats them."""
    if p <= 0 or len(images) == 0:
        return images
    rng = np.random.default_rng(int(torch.randint(0, 2**31, (1,), generator=gen)))
    out = images.copy()
    hit = np.flatnonzero(rng.random(len(images)) < p)
    kinds = rng.integers(0, len(DAMAGE), len(hit))
    for i, k in zip(hit, kinds):
        _, damage, lo, hi = DAMAGE[k]
        out[i] = damage(out[i], float(rng.uniform(lo, hi)), rng, template)
    return out
