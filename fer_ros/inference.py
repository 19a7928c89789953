"""Classify aligned faces: every face of a frame in one batch, one or several checkpoints.

Several checkpoints form an ensemble fused by the sum rule (mean of probabilities) or the
product rule (normalised product), as in the "deep fusion" paper. Every member must share
the class names; each keeps its own preprocessing, so members trained differently still mix.
"""
from __future__ import annotations

import numpy as np
import torch

from fer_ros.checkpoint import LoadedModel, load_checkpoint
from fer_ros.errors import FerError
from fer_ros.preprocess import to_model_input
from fer_ros.types import Classification

FUSION_RULES = ("sum", "product")


def fuse(probabilities: list[np.ndarray], rule: str) -> np.ndarray:
    """Combine [N, C] probability arrays from ensemble members."""
    if rule == "sum":
        return np.mean(probabilities, axis=0)
    if rule == "product":  # in log space, so tiny probabilities do not underflow
        log = np.sum([np.log(np.clip(p, 1e-12, 1.0)) for p in probabilities], axis=0)
        log -= log.max(axis=1, keepdims=True)
        out = np.exp(log)
        return out / out.sum(axis=1, keepdims=True)
    raise FerError(f"unknown fusion rule '{rule}'; choose one of {', '.join(FUSION_RULES)}")


class EmotionClassifier:
    def __init__(self, weights: list[str] | None, device: torch.device, fusion: str = "sum", half: bool = False):
        if fusion not in FUSION_RULES:
            raise FerError(f"unknown fusion rule '{fusion}'; choose one of {', '.join(FUSION_RULES)}")
        self.device, self.fusion = device, fusion
        self.members: list[LoadedModel] = [load_checkpoint(w, device) for w in (weights or [None])]
        self.class_names = self.members[0].class_names
        for m in self.members[1:]:
            if m.class_names != self.class_names:
                raise FerError(f"ensemble members disagree on classes: {m.path} has {m.class_names}, "
                               f"{self.members[0].path} has {self.class_names}")
        self.half = half and device.type == "cuda"
        for m in self.members:
            if self.half:
                m.model.half()
            if device.type == "cpu":
                m.model.to(memory_format=torch.channels_last)

    @property
    def input_size(self) -> int:
        """Crop size the aligner should produce (the largest member input; others resize)."""
        return max(m.preprocessing.input_size for m in self.members)

    @property
    def is_trained(self) -> bool:
        return all(bool(m.meta.get("history")) for m in self.members)

    def describe(self) -> str:
        return ", ".join(f"{m.path} ({m.model.cfg.input_size}px, {len(m.class_names)} classes)" for m in self.members)

    @torch.inference_mode()
    def classify(self, faces: list[np.ndarray]) -> list[Classification]:
        """``faces``: aligned uint8 RGB crops. One forward pass per member for the whole batch."""
        if not faces:
            return []
        probs, attention, weights = [], None, None
        for m in self.members:
            x = torch.from_numpy(to_model_input(np.stack(faces), m.preprocessing)).to(self.device)
            x = x.half() if self.half else x
            if self.device.type == "cpu":
                x = x.contiguous(memory_format=torch.channels_last)
            logits, att, w = m.model(x)
            probs.append(torch.softmax(logits.float(), dim=1).cpu().numpy())
            if attention is None:
                attention, weights = att[:, 0].float().cpu().numpy(), w.float().cpu().numpy()
        fused = fuse(probs, self.fusion) if len(probs) > 1 else probs[0]
        return [Classification(fused[i].astype(np.float32), attention[i], weights[i]) for i in range(len(faces))]
