"""Grow a trained AMS-CNN into a wider one that computes the same function: a warm start with
more capacity (``fer-ros train --init CKPT --widths`` larger than the checkpoint's).

Every tensor of the wider model keeps the trained values in its leading slice. The weights by
which a trained channel would read a new channel are zero, so every trained channel, the fusion
weights, the attention map and the logits come out exactly as before, while the new channels
start random and receive gradients through those zero weights from the first step (the idea of
Net2Net, Chen et al., ICLR 2016, with zero fan-in instead of copied units). A distilled student
that cannot match its teacher even on its training faces is short of capacity; at inference an
8-bit AMS-CNN costs about the same at these widths, because the time goes to overhead, not to
arithmetic (docs/experiments.md).
"""
from __future__ import annotations

import torch

from fer_ros.errors import FerError
from fer_ros.models.ams_cnn import AMSCNN, config_to_dict

FUSION_INPUT = "fusion.mlp.0.weight"  # reads the pathways' pooled channels concatenated, block by block


def can_widen(old: AMSCNN, new: AMSCNN) -> bool:
    """Whether ``new`` is ``old`` with the same number of widths, none of them narrower, and nothing else changed."""
    a, b = config_to_dict(old.cfg), config_to_dict(new.cfg)
    same = all(a[k] == b[k] for k in set(a) | set(b) if k != "widths")
    wa, wb = tuple(a["widths"]), tuple(b["widths"])
    return same and len(wa) == len(wb) and all(y >= x for x, y in zip(wa, wb))


def widened_state(old: AMSCNN, new: AMSCNN) -> dict[str, torch.Tensor]:
    """``new``'s state dict with ``old``'s weights in it, computing ``old``'s function."""
    if not can_widen(old, new):
        raise FerError(f"cannot grow widths {old.cfg.widths} into {new.cfg.widths}: only wider widths of the same "
                       "model can start from a checkpoint; pass the checkpoint's other settings")
    state = {k: v.clone() for k, v in new.state_dict().items()}
    for name, trained in old.state_dict().items():
        grown = state[name]
        if name == FUSION_INPUT:  # [hidden, P * C]: each pathway's block of C channels widens on its own
            blocks, old_blocks = grown.view(grown.shape[0], len(old.pathways), -1), trained.view(trained.shape[0], len(old.pathways), -1)
            blocks[:, :, :old_blocks.shape[2]] = old_blocks
            blocks[:, :, old_blocks.shape[2]:] = 0
            continue
        grown[tuple(slice(0, s) for s in trained.shape)] = trained
        if trained.ndim >= 2:
            grown[:trained.shape[0], trained.shape[1]:] = 0  # trained outputs ignore the new inputs
    return state
