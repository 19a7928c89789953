"""An exponential moving average of the weights during training (Polyak averaging).

On noisy labels such as FER2013's the last SGD steps jitter around a minimum; the average of
the recent weights sits nearer its centre. The shadow is a plain dict of tensors, not a copy of
the module: the bf16 guard patches ``forward`` on some convolutions of the training model, and a
deep copy would keep calling the original's.
"""
from __future__ import annotations

import torch
from torch import nn


class WeightAverage:
    """Shadow weights ``s <- d * s + (1 - d) * w`` after every optimiser step; BatchNorm statistics too.

    The decay ramps up as ``min(decay, (1 + n) / (10 + n))`` so the first steps' random weights wash out.
    """

    def __init__(self, model: nn.Module, decay: float):
        if not 0 < decay < 1:
            raise ValueError(f"weight-average decay must be in (0, 1), got {decay}")
        self.decay = decay
        self.updates = 0
        self.shadow = {k: v.detach().clone() for k, v in model.state_dict().items()}

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        self.updates += 1
        d = min(self.decay, (1 + self.updates) / (10 + self.updates))
        for key, value in model.state_dict().items():
            if value.is_floating_point():
                self.shadow[key].mul_(d).add_(value.detach(), alpha=1 - d)
            else:  # e.g. BatchNorm's num_batches_tracked
                self.shadow[key].copy_(value)

    def state_dict(self) -> dict:
        return {"decay": self.decay, "updates": self.updates, "shadow": self.shadow}

    def load_state_dict(self, state: dict) -> None:
        self.decay, self.updates = float(state["decay"]), int(state["updates"])
        for key, value in state["shadow"].items():
            self.shadow[key].copy_(value)
