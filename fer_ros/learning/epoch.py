"""One pass over the faces: a training epoch (augmented batches, mixed precision, the weight
average) and a validation pass (loss, accuracy and the logits calibration fits on).
"""
from __future__ import annotations

import argparse

import numpy as np
import torch
from tqdm import tqdm

from fer_ros.learning.augment import augment, mix
from fer_ros.learning.degrade import degrade
from fer_ros.learning.precision import autocast_dtype
from fer_ros.learning.train_data import Tensors, epoch_order
from fer_ros.learning.weight_average import WeightAverage
from fer_ros.models.ams_cnn import AMSCNN, AMSOutput
from fer_ros.models.preprocess import Preprocessing, to_model_input
from fer_ros.perception.alignment import TEMPLATE


def memory_format(model: AMSCNN) -> torch.memory_format:
    """channels_last trains ~15 % faster on CPU and suits tensor cores; but torch 2.14's CPU backward of a
    depthwise conv in channels_last corrupts the heap for some odd batch sizes (3, 5, 7), so
    separable models (the tiny preset) train contiguous."""
    return torch.contiguous_format if model.cfg.separable else torch.channels_last


def loss_fn(out: AMSOutput, target: torch.Tensor, args: argparse.Namespace) -> torch.Tensor:
    """Cross-entropy against a target distribution, plus lambda * mean|A| on the attention map."""
    ce = -(target * torch.log_softmax(out.logits.float(), dim=1)).sum(1).mean()
    return ce + args.attention_l1 * out.attention.float().abs().mean()


def train_one_epoch(model: AMSCNN, t: Tensors, opt: torch.optim.Optimizer, scaler: torch.amp.GradScaler,
                    args: argparse.Namespace, pre: Preprocessing, gen: torch.Generator, epoch: int,
                    device: torch.device, average: WeightAverage | None = None) -> float:
    """One epoch of augmented batches in ``epoch_order``; returns the mean training loss."""
    model.train()
    order = epoch_order(t, epoch, args, gen)
    total, seen = 0.0, 0
    dtype = autocast_dtype(device, args.bf16)
    bar = tqdm(range(0, len(order), args.batch_size), desc=f"epoch {epoch + 1}/{args.epochs}", leave=False, dynamic_ncols=True)
    for start in bar:
        idx = order[start:start + args.batch_size]
        x, target = batch(t, idx, pre, gen, args)
        x, target = x.to(device, memory_format=memory_format(model)), target.to(device)
        with torch.autocast(device.type, dtype=dtype or torch.float32, enabled=dtype is not None):
            loss = loss_fn(model(x), target, args)
        opt.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(opt)
        scaler.update()
        if average is not None:
            average.update(model)
        total += loss.item() * len(idx)
        seen += len(idx)
        bar.set_postfix(loss=f"{total / seen:.3f}")
    return total / max(seen, 1)


def batch(t: Tensors, idx: torch.Tensor, pre: Preprocessing, gen: torch.Generator,
          args: argparse.Namespace) -> tuple[torch.Tensor, torch.Tensor]:
    """The student's augmented (and mixed) input and its target. With an online teacher the clean
    faces (preprocessed and plain) ride along as extra channels, so they get the very same warp,
    lighting, erasing and mixup, and the teachers' answer for them is distilled."""
    x = faces(t, idx, pre, gen, args)
    c = x.shape[1]
    views = x if t.teacher is None else torch.cat([x, t.x[idx], t.plain[idx]], 1)
    views, target = mix(augment(views, pre, gen, args.shift, args.scale, args.erase, views.shape[1] // c),
                        t.target[idx], args.mixup, gen)
    if t.teacher is not None:
        target = (1 - args.distill) * target + args.distill * t.teacher(views[:, c:2 * c], views[:, 2 * c:])
    return views[:, :c].contiguous(), target


def faces(t: Tensors, idx: torch.Tensor, pre: Preprocessing, gen: torch.Generator,
          args: argparse.Namespace) -> torch.Tensor:
    """The batch's model input: preprocessed once up front, or (--degrade) damaged raw and preprocessed now."""
    if t.raw is None:
        return t.x[idx]
    template = np.asarray(pre.align_template if pre.align_template else TEMPLATE, np.float32)
    return torch.from_numpy(to_model_input(degrade(t.raw[idx.numpy()], args.degrade, gen, template), pre))


@torch.inference_mode()
def evaluate(model: AMSCNN, t: Tensors, args: argparse.Namespace, device: torch.device, batch_size: int = 256) -> dict:
    """Validation loss and accuracy (no augmentation), and the logits for calibration."""
    model.eval()
    total, correct, logits = 0.0, 0, []
    for start in range(0, len(t.y), batch_size):
        x, y = t.x[start:start + batch_size].to(device), t.y[start:start + batch_size].to(device)
        out = model(x)
        total += loss_fn(out, t.target[start:start + batch_size].to(device), args).item() * len(y)
        correct += (out.logits.argmax(1) == y).sum().item()
        logits.append(out.logits.float().cpu())
    n = max(len(t.y), 1)
    return {"loss": total / n, "accuracy": correct / n, "logits": torch.cat(logits).numpy() if logits else np.zeros((0, 0))}
