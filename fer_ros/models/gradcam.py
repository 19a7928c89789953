"""Grad-CAM for AMS-CNN: which regions of the aligned face drove a class score.

The attention map shows where the network looks for any class; Grad-CAM (Selvaraju et al.) is
class-specific: the attended feature maps are weighted by the spatially averaged gradient of
the chosen class logit and summed, then rectified and stretched to the crop. Works on any
AMS-CNN module (a checkpoint, a BatchNorm-folded copy inside the pipeline, an ensemble member).
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from fer_ros.errors import FerError
from fer_ros.models.ams_cnn import AMSCNN
from fer_ros.models.checkpoint import LoadedModel
from fer_ros.models.preprocess import to_model_input


@dataclass
class Explanation:
    """One face as one model sees it."""

    heatmap: np.ndarray  # [S, S] float32 in [0, 1], S = the crop's side; Grad-CAM of ``class_index``
    attention: np.ndarray  # [S, S] float32 in [0, 1], the model's own spatial attention, same grid
    probabilities: np.ndarray  # [C] float32, softmax(logits / temperature) of this crop (not mirrored)
    class_index: int  # the class explained


def gradcam(model: AMSCNN, x: torch.Tensor, class_index: int | list[int] | None = None,
            ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Grad-CAM of a batch ``x`` [N, C, S, S]: (cam [N, S, S] rectified, not normalised, logits, attention
    [N, 1, h, w], explained class per face). ``class_index`` None explains each face's arg-max."""
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode(False), torch.enable_grad():
            x = x.detach().clone().to(next(model.parameters()).dtype)
            features, attention, _ = model.forward_features(x)
            logits = model.forward_head(features)
            n, classes = logits.shape
            if class_index is None:
                target = logits.argmax(1)
            else:
                target = torch.as_tensor(class_index, device=logits.device).reshape(-1).expand(n)
                if int(target.min()) < 0 or int(target.max()) >= classes:
                    raise FerError(f"class index {class_index} outside the model's {classes} classes")
            score = logits.gather(1, target[:, None]).sum()
            grads = torch.autograd.grad(score, features)[0]
        weights = grads.mean(dim=(2, 3), keepdim=True)  # one weight per channel: the class's pooled gradient
        cam = F.relu((weights * features).sum(1, keepdim=True)).detach().float()
        cam = F.interpolate(cam, size=x.shape[-2:], mode="bilinear", align_corners=False)[:, 0]
        return cam, logits.detach().float(), attention.detach().float(), target.detach()
    finally:
        model.train(was_training)


def normalise_map(heat: np.ndarray) -> np.ndarray:
    """Scale a non-negative map to [0, 1] by its maximum (an all-zero map stays zero)."""
    heat = np.nan_to_num(np.asarray(heat, np.float32), nan=0.0, posinf=0.0, neginf=0.0).clip(min=0.0)
    peak = float(heat.max()) if heat.size else 0.0
    return heat / peak if peak > 0 else heat


def class_index_of(name: str | None, class_names: list[str]) -> int | None:
    """The index of a class given by name (any case); FerError naming the classes when unknown."""
    if name is None:
        return None
    lowered = [c.lower() for c in class_names]
    if name.lower() not in lowered:
        raise FerError(f"unknown class '{name}'; this model's classes are {', '.join(class_names)}")
    return lowered.index(name.lower())


def explain_crops(loaded: LoadedModel, crops: list[np.ndarray], class_name: str | None = None) -> list[Explanation]:
    """Grad-CAM and attention of uint8 face crops (gray or RGB, any size) for one checkpoint.

    Each map is returned at the crop's own size so it lies over the crop pixel for pixel.
    """
    if not crops:
        return []
    index = class_index_of(class_name, loaded.class_names)
    device = next(loaded.model.parameters()).device
    out = []
    for crop in crops:  # one at a time: crops may differ in size
        x = torch.from_numpy(to_model_input(np.asarray(crop)[None], loaded.preprocessing)).to(device)
        cam, logits, attention, target = gradcam(loaded.model, x, index)
        size = (crop.shape[1], crop.shape[0])
        heat = cv2.resize(normalise_map(cam[0].cpu().numpy()), size, interpolation=cv2.INTER_LINEAR)
        att = cv2.resize(attention[0, 0].cpu().numpy(), size, interpolation=cv2.INTER_LINEAR)
        probs = torch.softmax(logits[0] / loaded.temperature, dim=0).cpu().numpy()
        out.append(Explanation(heat.clip(0, 1), att.clip(0, 1), probs.astype(np.float32), int(target[0])))
    return out


class FaceExplainer:
    """Grad-CAM heat maps for the faces of a frame, for the annotated image (``annotate.explain``).

    ``members``: the classifier's checkpoints; the maps of an ensemble's members are averaged.
    ``aligner``: the pipeline's aligner, so the crop explained is the crop that was classified.
    """

    def __init__(self, members: list[LoadedModel], aligner) -> None:
        if not members:
            raise FerError("Grad-CAM needs at least one PyTorch checkpoint")
        self.members, self.aligner = members, aligner

    @classmethod
    def for_classifier(cls, classifier, aligner) -> "FaceExplainer | None":
        """An explainer for a pipeline's classifier; None when it runs no PyTorch modules (another runtime)."""
        members = getattr(classifier, "members", None)
        if not members or not all(isinstance(getattr(m, "model", None), AMSCNN) for m in members):
            return None
        return cls(list(members), aligner)

    def __call__(self, image: np.ndarray, faces: list) -> list[tuple[np.ndarray, np.ndarray]]:
        """Per face: (heat map [S, S] in [0, 1] over the aligned crop, the crop's [2, 3] frame -> crop matrix).

        Explains each face's published label, or this frame's arg-max while it is 'uncertain'.
        """
        from fer_ros.types import Detection

        out = []
        for face in faces:
            aligned = self.aligner.align(image, Detection(face.bbox, face.landmarks, face.detection_score))
            names = self.members[0].class_names
            label = face.label if face.label in names else face.raw_label
            maps = [explain_crops(m, [aligned.image], label)[0].heatmap for m in self.members]
            out.append((normalise_map(np.mean(maps, axis=0)), aligned.matrix))
        return out
