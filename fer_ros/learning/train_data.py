"""The faces a training run sees: its training / validation split (rebuilt later from what a
checkpoint records, so calibration and `evaluate --held-out` see the same validation faces), as
tensors with their target distributions (one-hot, FER+ votes, teachers), and each epoch's order.
"""
from __future__ import annotations

import argparse
from dataclasses import dataclass, replace
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F

from fer_ros.device import resolve_device
from fer_ros.errors import FerError
from fer_ros.learning.datasets import FaceDataset, load_dataset, split_train_val
from fer_ros.learning.progress import log
from fer_ros.models.checkpoint import LoadedModel, load_checkpoint
from fer_ros.models.preprocess import Preprocessing, to_model_input

SPLIT_ARGS = ("train_split", "labels", "val_fraction", "seed", "max_samples")  # what decides the validation faces


@dataclass
class Tensors:
    x: torch.Tensor  # float32 [N, C, S, S], preprocessed
    y: torch.Tensor  # int64 [N]
    agreement: torch.Tensor | None
    target: torch.Tensor  # float32 [N, C]: the training target distribution per face
    raw: np.ndarray | None = None  # the uint8 faces, kept when training damages them before preprocessing
    plain: torch.Tensor | None = None  # float32 [N, C, S, S]: the faces normalised without CLAHE (--consistent-teacher)
    teacher: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None  # (preprocessed, plain) -> probabilities


def split_run(full: FaceDataset, max_samples: int, val_fraction: float, seed: int,
              ) -> tuple[FaceDataset, FaceDataset, FaceDataset]:
    """(the faces used, training faces, validation faces): the first ``max_samples`` faces of ``full``
    (all when 0), split as every run with this ``val_fraction`` and ``seed`` splits them."""
    if max_samples:
        full = full.subset(np.arange(min(max_samples, len(full))))
    train, val = split_train_val(full, val_fraction, seed)
    return full, train, val


def run_faces(args: argparse.Namespace, dataset: FaceDataset | None = None) -> tuple[FaceDataset, FaceDataset, FaceDataset]:
    """The faces of a run per ``args`` (``dataset``, if given, instead of loading ``args.data``), split."""
    full = dataset if dataset is not None else load_dataset(args.data, args.train_split or None, args.labels,
                                                            split_optional=True)
    full, train, val = split_run(full, args.max_samples, args.val_fraction, args.seed)
    if len(val) == 0:
        raise FerError("validation split is empty; raise --val-fraction or use more data")
    return full, train, val


def validation_faces(loaded: LoadedModel, data: str) -> FaceDataset:
    """The faces a checkpoint was validated (and calibrated) on, rebuilt from the training run it
    records: data split, label set, validation share and seed. Faces it never trained on."""
    recorded = loaded.meta.get("args") or {}
    if not recorded:
        raise FerError(f"'{loaded.path}' does not record its training run (meta.args); "
                       "only checkpoints written by `fer-ros train` know their validation faces")
    full = load_dataset(data, recorded.get("train_split") or None, recorded.get("labels", "fer2013"),
                        split_optional=True)
    _, _, val = split_run(full, recorded.get("max_samples"), recorded.get("val_fraction", 0.1), recorded.get("seed", 0))
    if len(val) != loaded.meta.get("val_size", len(val)):
        raise FerError(f"rebuilt validation split has {len(val)} faces but '{loaded.path}' was validated on "
                       f"{loaded.meta['val_size']}; pass the same --data it was trained on")
    return val


def to_tensors(ds: FaceDataset, pre: Preprocessing, args: argparse.Namespace, teachers: bool = False) -> Tensors:
    """``ds`` preprocessed, with its targets; ``teachers``: mix in the --teacher distribution (training faces)."""
    agreement = None if ds.agreement is None else torch.from_numpy(ds.agreement)
    target = target_distribution(ds, args)
    x = torch.from_numpy(to_model_input(ds.images, pre))
    raw = ds.images if teachers and getattr(args, "degrade", 0.0) else None  # training faces only
    if not (teachers and args.teacher):
        return Tensors(x, torch.from_numpy(ds.labels), agreement, target, raw)
    device = resolve_device(getattr(args, "device", "cpu"))
    if getattr(args, "consistent_teacher", False):  # the teachers answer per batch (epoch.py), not here
        from fer_ros.learning.online_teacher import OnlineTeacher

        plain = torch.from_numpy(to_model_input(ds.images, replace(pre, clahe=False)))
        teacher = OnlineTeacher(args.teacher, ds.class_names, pre, device, args.bf16)
        return Tensors(x, torch.from_numpy(ds.labels), agreement, target, raw, plain, teacher)
    target = (1 - args.distill) * target + args.distill * teacher_distribution(ds, args.teacher, device)
    return Tensors(x, torch.from_numpy(ds.labels), agreement, target, raw)


def target_distribution(ds: FaceDataset, args: argparse.Namespace) -> torch.Tensor:
    """(1 - W) * smoothed one-hot + W * FER+ vote distribution, W = --soft-labels; then
    (1 - V) * that + V * smoothed one-hot of the FER2013 label, V = --fer2013-labels."""
    c = len(ds.class_names)

    def smoothed(labels: np.ndarray) -> torch.Tensor:
        return F.one_hot(torch.from_numpy(labels), c).float() * (1 - args.label_smoothing) + args.label_smoothing / c

    target = smoothed(ds.labels)
    w = args.soft_labels
    if w:
        if ds.soft_labels is None:
            raise FerError(f"--soft-labels needs FER+ votes, and {ds.source} has none; "
                           "use the FER2013 npz with ferplus_votes or drop --soft-labels")
        target = (1 - w) * target + w * torch.from_numpy(ds.soft_labels)
    v = getattr(args, "fer2013_labels", 0.0)
    if v:
        if ds.fer2013_labels is None:
            raise FerError(f"--fer2013-labels needs FER+ labels from the FER2013 npz (--labels ferplus), and {ds.source} "
                           "has no second label per face; drop --fer2013-labels")
        target = (1 - v) * target + v * smoothed(ds.fer2013_labels)
    return target


def teacher_distribution(ds: FaceDataset, teachers: list[str], device: str | torch.device = "cpu") -> torch.Tensor:
    """Knowledge distillation targets: the teachers' calibrated probabilities (face + mirror, sum rule)
    on the un-augmented training faces, computed once (augmentation is mild, so they stay valid)."""
    from fer_ros.learning.evaluation import check_classes, predict
    from fer_ros.learning.teacher import read_teacher, teacher_probabilities

    probs = []
    for path in teachers:
        teacher = read_teacher(path)  # a fine-tuned ImageNet teacher or the probabilities it wrote
        if teacher is not None:
            probs.append(teacher_probabilities(teacher, ds.images, ds.class_names, device))
        else:
            loaded = load_checkpoint(path)
            check_classes(loaded, ds)
            probs.append(predict(loaded, ds.images, torch.device(device), mirror=True)[0])
            path = loaded.path
        log(f"teacher {path}: {np.mean(probs[-1].argmax(1) == ds.labels):.4f} on the training faces")
    return torch.from_numpy(np.mean(probs, axis=0).astype(np.float32))


def epoch_order(t: Tensors, epoch: int, args: argparse.Namespace, gen: torch.Generator) -> torch.Tensor:
    """Sample indices for one epoch: shuffled, class-balanced, and/or easy-first."""
    n = len(t.y)
    pool = torch.arange(n)
    if args.curriculum and epoch < args.curriculum and t.agreement is not None:
        # easy-first: start with the most agreed-on half, grow to everything by the last curriculum epoch
        share = 0.5 + 0.5 * epoch / args.curriculum
        pool = torch.argsort(t.agreement, descending=True)[: max(1, int(n * share))]
    if args.balanced:
        counts = torch.bincount(t.y[pool], minlength=int(t.y.max()) + 1).float()
        weights = 1.0 / counts[t.y[pool]]
        return pool[torch.multinomial(weights, len(pool), replacement=True, generator=gen)]
    return pool[torch.randperm(len(pool), generator=gen)]
