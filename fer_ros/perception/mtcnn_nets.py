"""MTCNN's P-, R- and O-Net, loaded from the weight files in facenet-pytorch's wheel.

Only the three small networks: importing ``facenet_pytorch`` itself pulls in torchvision (about
a second of start-up) for code the cascade does not use. The layers carry the weight files'
names, so the weights load strictly: a missing or misshapen tensor is an error, not a silent
random layer.
"""
from __future__ import annotations

import importlib.util
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from fer_ros.errors import FerError


def _conv(net: nn.Module, index: int, channels_in: int, channels_out: int, kernel: int) -> None:
    net.add_module(f"conv{index}", nn.Conv2d(channels_in, channels_out, kernel))
    net.add_module(f"prelu{index}", nn.PReLU(channels_out))


def _layer(net: nn.Module, index: int, x: torch.Tensor, pool: int | None = None) -> torch.Tensor:
    """conv{index}, prelu{index}, then a ceil-mode max pool of ``pool`` (stride 2) when given."""
    x = getattr(net, f"prelu{index}")(getattr(net, f"conv{index}")(x))
    return F.max_pool2d(x, pool, 2, ceil_mode=True) if pool else x


def _flatten(x: torch.Tensor) -> torch.Tensor:
    """Channels-last order, width before height: how the original (Caffe) dense layers were trained."""
    return x.permute(0, 3, 2, 1).contiguous().view(x.shape[0], -1)


class PNet(nn.Module):
    """Proposal net, fully convolutional over a pyramid level: box offsets [N, 4, h, w], face probability [N, 2, h, w]."""

    def __init__(self) -> None:
        super().__init__()
        for i, (cin, cout) in enumerate(((3, 10), (10, 16), (16, 32)), 1):
            _conv(self, i, cin, cout, 3)
        self.conv4_1, self.conv4_2 = nn.Conv2d(32, 2, 1), nn.Conv2d(32, 4, 1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = _layer(self, 3, _layer(self, 2, _layer(self, 1, x, pool=2)))
        return self.conv4_2(x), F.softmax(self.conv4_1(x), dim=1)


class RNet(nn.Module):
    """Refine net on 24 px windows: box offsets [N, 4], face probability [N, 2]."""

    def __init__(self) -> None:
        super().__init__()
        for i, (cin, cout, k) in enumerate(((3, 28, 3), (28, 48, 3), (48, 64, 2)), 1):
            _conv(self, i, cin, cout, k)
        self.dense4, self.prelu4 = nn.Linear(576, 128), nn.PReLU(128)
        self.dense5_1, self.dense5_2 = nn.Linear(128, 2), nn.Linear(128, 4)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = _layer(self, 3, _layer(self, 2, _layer(self, 1, x, pool=3), pool=3))
        x = self.prelu4(self.dense4(_flatten(x)))
        return self.dense5_2(x), F.softmax(self.dense5_1(x), dim=1)


class ONet(nn.Module):
    """Output net on 48 px windows: box offsets [N, 4], landmarks [N, 10] (5 x, then 5 y), face probability [N, 2]."""

    def __init__(self) -> None:
        super().__init__()
        for i, (cin, cout, k) in enumerate(((3, 32, 3), (32, 64, 3), (64, 64, 3), (64, 128, 2)), 1):
            _conv(self, i, cin, cout, k)
        self.dense5, self.prelu5 = nn.Linear(1152, 256), nn.PReLU(256)
        self.dense6_1, self.dense6_2, self.dense6_3 = nn.Linear(256, 2), nn.Linear(256, 4), nn.Linear(256, 10)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        x = _layer(self, 3, _layer(self, 2, _layer(self, 1, x, pool=3), pool=3), pool=2)
        x = self.prelu5(self.dense5(_flatten(_layer(self, 4, x))))
        return self.dense6_2(x), self.dense6_3(x), F.softmax(self.dense6_1(x), dim=1)


def weights_dir() -> Path:
    """Where facenet-pytorch's wheel keeps pnet.pt, rnet.pt and onet.pt (found without importing it)."""
    spec = importlib.util.find_spec("facenet_pytorch")
    if spec is None or not spec.submodule_search_locations:
        raise FerError("facenet-pytorch is not installed, and its wheel carries the MTCNN weights; "
                       "pip install facenet-pytorch")
    return Path(list(spec.submodule_search_locations)[0]) / "data"


def load_nets(device: torch.device) -> tuple[PNet, RNet, ONet]:
    """The three networks with their trained weights, in eval mode on ``device``."""
    nets = []
    for name, net in (("pnet", PNet()), ("rnet", RNet()), ("onet", ONet())):
        path = weights_dir() / f"{name}.pt"
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except OSError as exc:
            raise FerError(f"cannot read the MTCNN weights {path}: {exc.strerror or exc}; "
                           "reinstall facenet-pytorch") from None
        net.load_state_dict(state, strict=True)
        nets.append(net.to(device).eval())
    return nets[0], nets[1], nets[2]
