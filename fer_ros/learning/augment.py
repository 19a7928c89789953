"""Training-time augmentation of batches of preprocessed faces: geometry and lighting, random
erasing, mixup. Every draw comes from the run's generator, so a seed (and a resumed run) repeats them.
"""
from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from fer_ros.models.preprocess import Preprocessing


def uniform(b: int, lo: float, hi: float, gen: torch.Generator) -> torch.Tensor:
    """``b`` draws from U(lo, hi): one random parameter per face of a batch."""
    return torch.rand(b, generator=gen) * (hi - lo) + lo


def augment(x: torch.Tensor, pre: Preprocessing, gen: torch.Generator, shift: float,
            scale: float = 0.0, erase: float = 0.0, views: int = 1) -> torch.Tensor:
    """Rotation +-15 deg, shift, zoom, horizontal flip, brightness +-20 %, contrast +-15 %, random
    erasing; batched. Zoom and erasing draw no random numbers when off, so older runs resume unchanged.
    ``views``: the channels hold that many versions of each face, changed alike (contrast about each one's mean)."""
    b = x.shape[0]
    u = lambda lo, hi: uniform(b, lo, hi, gen)  # noqa: E731
    angle = u(-15, 15) * math.pi / 180
    flip = torch.where(torch.rand(b, generator=gen) < 0.5, -1.0, 1.0)
    tx, ty = u(-shift, shift) * 2, u(-shift, shift) * 2
    zoom = 1 / u(1 - scale, 1 + scale) if scale else torch.ones(b)  # sampling grid shrinks when the face grows
    theta = torch.zeros(b, 2, 3)
    theta[:, 0, 0], theta[:, 0, 1], theta[:, 0, 2] = torch.cos(angle) * flip * zoom, -torch.sin(angle) * zoom, tx
    theta[:, 1, 0], theta[:, 1, 1], theta[:, 1, 2] = torch.sin(angle) * flip * zoom, torch.cos(angle) * zoom, ty
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    x = F.grid_sample(x, grid, padding_mode="border", align_corners=False)
    pixels = x * pre.std + pre.mean  # back to [0, 1] for photometric changes
    grouped = pixels.view(b, views, -1)
    mean = grouped.mean(dim=2, keepdim=True)
    pixels = ((grouped - mean) * u(0.85, 1.15)[:, None, None] + mean).view_as(pixels)
    pixels = (pixels * u(0.8, 1.2)[:, None, None, None]).clamp(0, 1)
    out = (pixels - pre.mean) / pre.std
    return erase_patches(out, gen, erase) if erase else out


def erase_patches(x: torch.Tensor, gen: torch.Generator, p: float) -> torch.Tensor:
    """Blank one rectangle (area 2-25 %, aspect 1/3..3) per face with probability ``p`` to 0, the
    normalised mean pixel: the model must read expression from more than one region."""
    b, _, h, w = x.shape
    u = lambda lo, hi: uniform(b, lo, hi, gen)  # noqa: E731
    area, log_aspect = u(0.02, 0.25), u(-math.log(3), math.log(3))
    eh = (torch.sqrt(area * torch.exp(log_aspect)) * h).clamp(1, h)
    ew = (torch.sqrt(area / torch.exp(log_aspect)) * w).clamp(1, w)
    top, left = u(0, 1) * (h - eh), u(0, 1) * (w - ew)
    on = torch.rand(b, generator=gen) < p
    rows = torch.arange(h, dtype=torch.float32)[None, :, None]
    cols = torch.arange(w, dtype=torch.float32)[None, None, :]
    box = ((rows >= top[:, None, None]) & (rows < (top + eh)[:, None, None])
           & (cols >= left[:, None, None]) & (cols < (left + ew)[:, None, None]) & on[:, None, None])
    return x.masked_fill(box[:, None], 0.0)


def mix(x: torch.Tensor, target: torch.Tensor, alpha: float, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """mixup (Zhang et al. 2018): convex blend of each face and its target with a shuffled partner."""
    if alpha <= 0:
        return x, target
    lam = float(np.random.default_rng(int(torch.randint(0, 2**31, (1,), generator=gen))).beta(alpha, alpha))
    perm = torch.randperm(len(x), generator=gen)
    return lam * x + (1 - lam) * x[perm], lam * target + (1 - lam) * target[perm]
