"""Consistent distillation: the teachers answer for the very batch the student sees.

Fixed targets (``--teacher`` alone) are the teachers' answers for each clean, centred face,
computed once; the student then learns them for warped, relit and mixed faces the teachers
never saw. With ``--consistent-teacher`` every training batch goes through the teachers too,
with the same warp, lighting, erasing and mixup as the student's, so the student matches the
teachers' function on the images it trains on ("a good teacher is patient and consistent",
Beyer et al., CVPR 2022). Damage (``--degrade``) stays hidden from the teachers: the student
learns to answer for a damaged face what the teachers say of the clean one.

A fine-tuned ImageNet teacher (its ``last.pt`` or ``teacher.pt``) reads the clean face without
CLAHE, as it was trained; an AMS-CNN checkpoint reads the clean face preprocessed as the student's.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from fer_ros.errors import FerError
from fer_ros.learning.precision import autocast_dtype
from fer_ros.learning.teacher import _head, build, load_teacher
from fer_ros.learning.teacher_inputs import to_input
from fer_ros.models.checkpoint import LoadedModel, load_checkpoint
from fer_ros.models.inference import class_probabilities
from fer_ros.models.preprocess import Preprocessing


class OnlineTeacher:
    """The weighted mean probability of several teachers for augmented batches (sum rule, one view each);
    a teacher named twice counts twice and runs once."""

    def __init__(self, paths: list[str], class_names: list[str], pre: Preprocessing, device: torch.device,
                 bf16: bool = False):
        self.pre, self.device = pre, device
        self.dtype = autocast_dtype(device, bf16) or (torch.bfloat16 if device.type == "cuda" else None)
        # (weight, an AMS-CNN checkpoint or None, a fine-tuned network's (network, head, input size) or None)
        self.members: list[tuple[float, LoadedModel | None, tuple[torch.nn.Module, str, int] | None]] = []
        for path in dict.fromkeys(paths):
            weight = float(paths.count(path))
            if path.endswith(".npz"):
                raise FerError(f"--consistent-teacher runs the teachers on every batch, and '{path}' holds only their "
                               "answers for the clean faces; pass the teacher's teacher.pt or last.pt instead")
            run = load_teacher(path)
            if run is not None:
                model = build(pretrained=False, arch=str(run.get("arch", "lite0")))
                model.load_state_dict({k: v.float() for k, v in run["model"].items()})
                self.members.append((weight, None, (model.to(device).eval(), _head(path, class_names), int(run["size"]))))
                continue
            loaded = load_checkpoint(path, device)
            if [c.lower() for c in loaded.class_names] != [c.lower() for c in class_names]:
                raise FerError(f"teacher '{path}' has classes {loaded.class_names}, the run {class_names}; "
                               "pass a teacher trained on the same label set (--labels)")
            if loaded.preprocessing.to_dict() != pre.to_dict():
                raise FerError(f"teacher '{path}' preprocesses faces differently from this run ({loaded.preprocessing} "
                               f"against {pre}); with --consistent-teacher use a checkpoint of the same input size and CLAHE")
            self.members.append((weight, loaded, None))

    @torch.inference_mode()
    def __call__(self, preprocessed: torch.Tensor, plain: torch.Tensor) -> torch.Tensor:
        """Probabilities [B, C] for a batch given twice, augmented alike: ``preprocessed`` as the
        student's input (CLAHE, normalised), ``plain`` without CLAHE, normalised the same way."""
        total, weights = 0.0, 0.0
        grey = ((plain[:, 0] * self.pre.std + self.pre.mean) * 255).to(self.device)
        with torch.autocast(self.device.type, dtype=self.dtype or torch.float32, enabled=self.dtype is not None):
            for weight, loaded, fine_tuned in self.members:
                if loaded is not None:
                    p = class_probabilities(loaded.model, preprocessed.to(self.device), False, loaded.temperature).probabilities
                else:
                    model, head, size = fine_tuned
                    p = F.softmax(model(to_input(grey, size))[head].float(), 1)
                total, weights = total + weight * p.float(), weights + weight
        return (total / weights).cpu()
