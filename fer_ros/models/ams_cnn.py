"""AMS-CNN: attention-guided multi-scale CNN for facial expression recognition.

Three parallel pathways see the aligned face at scales 1, 1/2 and 1/4 with 3x3, 5x5 and 7x7
kernels and 6, 4 and 3 residual blocks. Adaptive fusion learns per-image weights for the
pathways (GAP -> MLP -> softmax over 3), the fused map is re-weighted by a context-aware
spatial attention A = sigmoid(conv1x1(ReLU(conv3x3(F)))), and a small head classifies it.
``forward`` returns an ``AMSOutput``: logits, the attention map (so training can add
lambda * |A|_1 and the annotator can draw it) and the fusion weights, each by name.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from fer_ros.errors import FerError


@dataclass
class AMSConfig:
    in_chans: int = 1  # 1 = grayscale faces (FER2013), 3 = RGB
    num_classes: int = 7
    input_size: int = 48  # square input in pixels
    widths: tuple = (32, 64, 128, 256)  # channel schedule each pathway climbs through
    kernels: tuple = (3, 5, 7)  # one kernel size per pathway
    depths: tuple = (6, 4, 3)  # residual blocks per pathway
    scales: tuple = (1.0, 0.5, 0.25)  # input scale per pathway
    stem_stride: int = 1  # 2 for large inputs (paper preset) to save compute early
    separable: bool = False  # depthwise-separable convs (cheap large kernels for CPU presets)
    fusion_hidden: int = 64  # hidden units of the fusion MLP
    head_hidden: int = 256  # FC -> 256 -> C
    dropout: float = 0.3

    def __post_init__(self) -> None:
        self.widths, self.kernels = tuple(self.widths), tuple(self.kernels)
        self.depths, self.scales = tuple(self.depths), tuple(self.scales)
        if not (len(self.kernels) == len(self.depths) == len(self.scales)):
            raise FerError(f"kernels, depths and scales need one entry per pathway, got {len(self.kernels)}, {len(self.depths)}, {len(self.scales)}")


PRESETS = {
    # The seed paper's network: 224x224 RGB input, channels 64 -> 512.
    "paper": dict(in_chans=3, input_size=224, widths=(64, 128, 256, 512), stem_stride=2, fusion_hidden=128),
    # Real time on a small CPU: 48x48 grayscale (FER2013 native size), channels 24 -> 96,
    # stride-2 stem, 6x6 attention map. On 2 CPU cores plain convs trained 4x faster than separable ones.
    "small": dict(in_chans=1, input_size=48, widths=(24, 48, 96), stem_stride=2),
    # Tiny: for tests and quick experiments.
    "tiny": dict(in_chans=1, input_size=32, widths=(8, 16), separable=True, fusion_hidden=16, head_hidden=32),
}


def config_for(preset: str, **overrides) -> AMSConfig:
    if preset not in PRESETS:
        raise FerError(f"unknown preset '{preset}'; choose one of {', '.join(PRESETS)}")
    return AMSConfig(**{**PRESETS[preset], **overrides})


def conv_bn(cin: int, cout: int, k: int, stride: int, separable: bool) -> nn.Sequential:
    """k x k convolution (optionally depthwise + pointwise) followed by BatchNorm."""
    if separable:
        return nn.Sequential(
            nn.Conv2d(cin, cin, k, stride, k // 2, groups=cin, bias=False),
            nn.Conv2d(cin, cout, 1, bias=False),
            nn.BatchNorm2d(cout),
        )
    return nn.Sequential(nn.Conv2d(cin, cout, k, stride, k // 2, bias=False), nn.BatchNorm2d(cout))


class ResidualBlock(nn.Module):
    """Two conv-BN layers with ReLU and an identity (or 1x1 projection) shortcut."""

    def __init__(self, cin: int, cout: int, k: int, stride: int, separable: bool):
        super().__init__()
        self.conv1 = conv_bn(cin, cout, k, stride, separable)
        self.conv2 = conv_bn(cout, cout, k, 1, separable)
        self.shortcut = nn.Identity()
        if stride != 1 or cin != cout:
            self.shortcut = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.conv2(F.relu(self.conv1(x))) + self.shortcut(x))


def block_widths(depth: int, widths: tuple) -> list[int]:
    """Spread ``depth`` blocks over the width schedule so every pathway ends at widths[-1]."""
    if depth == 1:
        return [widths[-1]]
    return [widths[round(i * (len(widths) - 1) / (depth - 1))] for i in range(depth)]


class Pathway(nn.Module):
    """One scale of the network: resize, stem, residual blocks (stride 2 when width grows)."""

    def __init__(self, cfg: AMSConfig, kernel: int, depth: int, scale: float):
        super().__init__()
        self.scale = scale
        self.stem = nn.Sequential(conv_bn(cfg.in_chans, cfg.widths[0], kernel, cfg.stem_stride, False), nn.ReLU(inplace=True))
        blocks, cin = [], cfg.widths[0]
        for cout in block_widths(depth, cfg.widths):
            blocks.append(ResidualBlock(cin, cout, kernel, 2 if cout != cin else 1, cfg.separable))
            cin = cout
        self.blocks = nn.Sequential(*blocks)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.scale != 1.0:
            x = F.interpolate(x, scale_factor=self.scale, mode="bilinear", align_corners=False, antialias=True)
        return self.blocks(self.stem(x))


class AdaptiveFusion(nn.Module):
    """Per-image pathway weights: GAP of each pathway -> MLP -> softmax over pathways."""

    def __init__(self, channels: int, pathways: int, hidden: int, dropout: float):
        super().__init__()
        self.mlp = nn.Sequential(
            nn.Linear(channels * pathways, hidden), nn.ReLU(inplace=True), nn.Dropout(dropout), nn.Linear(hidden, pathways)
        )

    def forward(self, feats: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        # Bring every pathway to the finest pathway's grid so attention keeps its resolution.
        size = feats[0].shape[-2:]
        feats = [f if f.shape[-2:] == size else F.interpolate(f, size=size, mode="bilinear", align_corners=False) for f in feats]
        pooled = torch.cat([f.mean(dim=(2, 3)) for f in feats], dim=1)
        weights = torch.softmax(self.mlp(pooled), dim=1)  # [B, P]
        fused = sum(w[:, None, None, None] * f for w, f in zip(weights.unbind(1), feats))
        return fused, weights


class SpatialAttention(nn.Module):
    """A = sigmoid(conv1x1(ReLU(conv3x3(F)))), one weight per position, applied element-wise."""

    def __init__(self, channels: int):
        super().__init__()
        self.conv3 = nn.Conv2d(channels, max(channels // 4, 8), 3, padding=1)
        self.conv1 = nn.Conv2d(max(channels // 4, 8), 1, 1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        attention = torch.sigmoid(self.conv1(F.relu(self.conv3(x))))  # [B, 1, H, W]
        return x * attention, attention


class AMSOutput(NamedTuple):
    """One forward pass. A tuple, so TorchScript and ONNX export it as three outputs in this order;
    their runtimes hand back a plain tuple, which ``AMSOutput(*outputs)`` names again."""

    logits: torch.Tensor  # [B, C]
    attention: torch.Tensor  # [B, 1, h, w] in [0, 1]
    fusion_weights: torch.Tensor  # [B, P]: softmax over the pathways


class AMSCNN(nn.Module):
    def __init__(self, cfg: AMSConfig):
        super().__init__()
        self.cfg = cfg
        self.pathways = nn.ModuleList(Pathway(cfg, k, d, s) for k, d, s in zip(cfg.kernels, cfg.depths, cfg.scales))
        channels = cfg.widths[-1]
        self.fusion = AdaptiveFusion(channels, len(self.pathways), cfg.fusion_hidden, cfg.dropout)
        self.attention = SpatialAttention(channels)
        self.head = nn.Sequential(
            nn.Linear(channels, cfg.head_hidden), nn.ReLU(inplace=True), nn.Dropout(cfg.dropout), nn.Linear(cfg.head_hidden, cfg.num_classes)
        )

    def forward_features(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(attended feature map [B, C, h, w], attention, fusion weights): the head's input, for Grad-CAM."""
        fused, weights = self.fusion([p(x) for p in self.pathways])
        attended, attention = self.attention(fused)
        return attended, attention, weights

    def forward_head(self, features: torch.Tensor) -> torch.Tensor:
        return self.head(features.mean(dim=(2, 3)))

    def forward(self, x: torch.Tensor) -> AMSOutput:
        features, attention, weights = self.forward_features(x)
        return AMSOutput(self.forward_head(features), attention, weights)


def build_model(cfg: AMSConfig) -> AMSCNN:
    return AMSCNN(cfg)


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def dry_forward(model: nn.Module, hooks: dict, input_shape: tuple[int, ...] | None = None) -> None:
    """One no-grad eval-mode pass on zeros with ``hooks[type]`` as forward hook on every module of that
    type; the hooks and the model's train/eval mode are restored afterwards. For counting and inspecting."""
    shape = input_shape or (model.cfg.in_chans, model.cfg.input_size, model.cfg.input_size)
    handles = [m.register_forward_hook(hook) for kind, hook in hooks.items() for m in model.modules() if isinstance(m, kind)]
    was_training = model.training
    try:
        model.eval()
        with torch.no_grad():
            model(torch.zeros(1, *shape, device=next(model.parameters()).device))
    finally:
        model.train(was_training)
        for handle in handles:
            handle.remove()


def count_flops(model: AMSCNN) -> int:
    """Multiply-accumulates of one forward pass (conv and linear layers), counted with hooks."""
    macs = 0

    def conv_hook(m: nn.Conv2d, _inp, out):
        nonlocal macs
        macs += out.numel() * (m.in_channels // m.groups) * m.kernel_size[0] * m.kernel_size[1]

    def linear_hook(m: nn.Linear, _inp, out):
        nonlocal macs
        macs += out.numel() * m.in_features

    dry_forward(model, {nn.Conv2d: conv_hook, nn.Linear: linear_hook})
    return macs


def config_to_dict(cfg: AMSConfig) -> dict:
    return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(cfg).items()}
