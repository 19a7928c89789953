"""The teacher's inputs: grey 48-pixel faces as ImageNet tensors at the teacher's size, and the
augmentation each training batch gets (mirror, rotation, zoom, shift, brightness and contrast).
Everything stays on the faces' device, so a GPU run never waits for the CPU."""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from fer_ros.learning.efficientnet_lite import IMAGENET_MEAN, IMAGENET_STD


def to_input(images: torch.Tensor, size: int, theta: torch.Tensor | None = None) -> torch.Tensor:
    """uint8 [N, H, W] grey faces -> ImageNet-normalised [N, 3, size, size], warped by ``theta`` if given."""
    x = images.float().unsqueeze(1) / 255.0
    n = x.shape[0]
    if theta is None:
        theta = torch.tensor([[1.0, 0, 0], [0, 1.0, 0]]).expand(n, 2, 3)
    grid = F.affine_grid(theta.to(x.device), (n, 1, size, size), align_corners=False)
    x = F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)
    mean = torch.tensor(IMAGENET_MEAN, device=x.device).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD, device=x.device).view(1, 3, 1, 1)
    return ((x.expand(-1, 3, -1, -1) - mean) / std).contiguous(memory_format=torch.channels_last)


def random_warp(n: int, gen: torch.Generator, rotate: float = 15, scale: float = 0.12, shift: float = 0.1) -> torch.Tensor:
    """Affine matrices for a batch: mirror half, rotate, zoom and shift each face independently."""
    def u(lo: float, hi: float) -> torch.Tensor:
        return torch.rand(n, generator=gen) * (hi - lo) + lo
    a = u(-rotate, rotate) * math.pi / 180
    s = 1 / u(1 - scale, 1 + scale)
    flip = torch.where(torch.rand(n, generator=gen) < 0.5, -1.0, 1.0)
    theta = torch.zeros(n, 2, 3)
    theta[:, 0, 0] = s * torch.cos(a) * flip
    theta[:, 0, 1] = -s * torch.sin(a)
    theta[:, 1, 0] = s * torch.sin(a) * flip
    theta[:, 1, 1] = s * torch.cos(a)
    theta[:, 0, 2] = u(-shift, shift)
    theta[:, 1, 2] = u(-shift, shift)
    return theta


def photometric(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Per-face brightness and contrast jitter on uint8 faces (lighting the camera will bring)."""
    n = x.shape[0]
    c = (torch.rand(n, 1, 1, generator=gen) * 0.6 + 0.7).to(x.device)
    b = ((torch.rand(n, 1, 1, generator=gen) - 0.5) * 60).to(x.device)
    m = x.float().mean((1, 2), keepdim=True)
    return ((x.float() - m) * c + m + b).clamp(0, 255)
