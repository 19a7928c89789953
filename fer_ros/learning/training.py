"""Train AMS-CNN: the seed paper's recipe, resumable and deterministic under a seed.

Recipe (defaults): Adam, lr 1e-3 halved every 10 epochs, batch 32, early stopping on
validation loss, mixed precision on CUDA, loss = cross-entropy + lambda * mean|A| on the
attention map, augmentation = rotation +-15 deg, horizontal flip, brightness +-20 %,
contrast +-15 % (plus a small shift). Options: class-balanced sampling, an easy-first
curriculum driven by FER+ annotator agreement, FER+ vote distributions as soft targets, mixup,
SGD with Nesterov momentum, a moving average of the weights. After training, a temperature is fitted on the validation faces and
stored in best.pt (see fer_ros.models.calibration).
"""
from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from fer_ros.device import resolve_device
from fer_ros.errors import FerError
from fer_ros.learning.datasets import FaceDataset, load_dataset, split_train_val
from fer_ros.learning.precision import autocast_dtype, prepare_bf16
from fer_ros.learning.weight_average import WeightAverage
from fer_ros.models.ams_cnn import AMSCNN, PRESETS, build_model, config_for, config_to_dict, count_parameters
from fer_ros.models.calibration import fit_temperature, reliability, softmax
from fer_ros.models.checkpoint import LoadedModel, load_checkpoint, read_checkpoint, save_checkpoint, set_temperature
from fer_ros.models.inference import class_probabilities
from fer_ros.models.preprocess import Preprocessing, to_model_input
from fer_ros.perception.alignment import TEMPLATE


def parse_widths(text: str) -> tuple[int, ...]:
    """'32,64,128' -> (32, 64, 128), or a usage error that shows the expected form."""
    try:
        widths = tuple(int(w) for w in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"widths must be comma-separated integers like 32,64,128, got '{text}'") from None
    if min(widths) < 1:
        raise argparse.ArgumentTypeError(f"widths must be positive integers like 32,64,128, got '{text}'")
    return widths


def get_args_parser(parser: argparse.ArgumentParser | None = None) -> argparse.ArgumentParser:
    p = parser or argparse.ArgumentParser(description="Train AMS-CNN on a facial expression dataset.")
    p.add_argument("--data", required=True, help="FER2013 .npz or .csv, or an ImageFolder directory")
    p.add_argument("--labels", default="fer2013", choices=["fer2013", "ferplus"], help="label set for the npz layout")
    p.add_argument("--train-split", default="Training", help="split used for training (npz/csv Usage; folder sub-dir)")
    p.add_argument("--val-fraction", type=float, default=0.1, help="share of the training split held out for early stopping")
    p.add_argument("--preset", default="small", choices=sorted(PRESETS), help="model preset")
    p.add_argument("--input-size", type=int, default=None, help="override the preset's input size (pixels)")
    p.add_argument("--widths", type=parse_widths, default=None, metavar="W1,W2,..",
                   help="override the preset's channel schedule, e.g. 32,64,128 (a wider small); stored in the checkpoint")
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--lr-schedule", default="step", choices=["step", "cosine"],
                   help="step: halve every --lr-step epochs (the paper); cosine: anneal to 0 over --epochs (short runs)")
    p.add_argument("--lr-step", type=int, default=10, help="halve the learning rate every N epochs (step schedule)")
    p.add_argument("--weight-decay", type=float, default=1e-4)
    p.add_argument("--attention-l1", type=float, default=1e-3, help="lambda of the attention L1 penalty (mean |A|)")
    p.add_argument("--label-smoothing", type=float, default=0.0)
    p.add_argument("--soft-labels", type=float, default=0.0, metavar="W",
                   help="weight 0..1 of the FER+ vote distribution in the target (1 = votes only; npz with ferplus_votes)")
    p.add_argument("--teacher", action="append", default=None, metavar="WEIGHTS",
                   help="distil from this checkpoint, or a teacher run's last.pt from fer_ros.learning.teacher "
                        "(repeat for an ensemble, fused by the sum rule, each with its mirror)")
    p.add_argument("--distill", type=float, default=0.5, metavar="W", help="weight 0..1 of the teachers' distribution in the target")
    p.add_argument("--mixup", type=float, default=0.0, metavar="ALPHA",
                   help="mixup with Beta(ALPHA, ALPHA) (0 = off, the default: 0.6 points lower on FER2013 in an A/B)")
    p.add_argument("--init", default=None, metavar="WEIGHTS",
                   help="start from this checkpoint's weights (a warm restart: fresh optimiser and schedule); it must "
                        "have the same model, classes and validation split as this run")
    p.add_argument("--weight-average", type=float, default=0.0, metavar="DECAY",
                   help="keep an exponential moving average of the weights (e.g. 0.999, about 2.5 epochs of 400 steps) "
                        "and select, calibrate and save it as best.pt; the raw weights go to best_raw.pt (0 = off)")
    p.add_argument("--optimizer", default="adam", choices=["adam", "sgd"], help="adam, or sgd with Nesterov momentum 0.9")
    p.add_argument("--patience", type=int, default=6, help="early stopping: epochs without a better validation loss")
    p.add_argument("--balanced", action="store_true", help="class-balanced sampling")
    p.add_argument("--curriculum", type=int, default=0, help="epochs of easy-first curriculum (needs FER+ agreement)")
    p.add_argument("--no-clahe", action="store_true", help="train without CLAHE (stored in the checkpoint)")
    p.add_argument("--shift", type=float, default=0.08, help="random shift as a fraction of the size (0 = off)")
    p.add_argument("--scale", type=float, default=0.0,
                   help="random zoom in 1 +- SCALE (0 = off; faces vary in size live). With --erase 0.5 it cost "
                        "the 90-epoch FER2013 small 1.4 points on PublicTest")
    p.add_argument("--erase", type=float, default=0.0, metavar="P",
                   help="random erasing (Zhong et al. 2020): with probability P blank a rectangle of 2-25 %% of the face "
                        "to the mean pixel, as hands, glasses and hair do (0 = off; see --scale for what it measured)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="auto")
    p.add_argument("--bf16", action="store_true",
                   help="bfloat16 autocast on CPU (1.2-1.4x faster per step where the CPU has bf16 instructions); "
                        "weights, optimizer and validation stay fp32. CUDA always uses fp16 autocast")
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0 = torch default)")
    p.add_argument("--out", default="runs/train", help="output directory (best.pt, last.pt, history.json)")
    p.add_argument("--resume", action="store_true", help="continue from OUT/last.pt")
    p.add_argument("--max-samples", type=int, default=0, help="use only the first N training samples (quick runs)")
    p.add_argument("--half-weights", action="store_true", help="store best.pt weights in fp16 (half the size)")
    return p


@dataclass
class Tensors:
    x: torch.Tensor  # float32 [N, C, S, S], preprocessed
    y: torch.Tensor  # int64 [N]
    agreement: torch.Tensor | None
    target: torch.Tensor  # float32 [N, C]: the training target distribution per face


def to_tensors(ds: FaceDataset, pre: Preprocessing, args, teachers: bool = False) -> Tensors:
    agreement = None if ds.agreement is None else torch.from_numpy(ds.agreement)
    y = torch.from_numpy(ds.labels)
    target = target_distribution(ds, args)
    if teachers and args.teacher:
        w = args.distill
        if not 0 < w <= 1:
            raise FerError(f"--distill must be in 0..1, got {w}")
        target = (1 - w) * target + w * teacher_distribution(ds, args.teacher)
    return Tensors(torch.from_numpy(to_model_input(ds.images, pre)), y, agreement, target)


def teacher_distribution(ds: FaceDataset, teachers: list[str]) -> torch.Tensor:
    """Knowledge distillation targets: the teachers' calibrated probabilities (face + mirror, sum rule)
    on the un-augmented training faces, computed once (augmentation is mild, so they stay valid)."""
    from fer_ros.learning.evaluation import check_classes, predict
    from fer_ros.learning.teacher import is_teacher_file, teacher_probabilities

    probs = []
    for path in teachers:
        if is_teacher_file(path):  # a fine-tuned ImageNet teacher (fer_ros.learning.teacher)
            probs.append(teacher_probabilities(path, ds.images, ds.class_names))
            log(f"teacher {path}: {np.mean(probs[-1].argmax(1) == ds.labels):.4f} on the training faces")
            continue
        loaded = load_checkpoint(path)
        check_classes(loaded, ds)
        probs.append(predict(loaded, ds.images, torch.device("cpu"), mirror=True)[0])
        log(f"teacher {loaded.path}: {np.mean(probs[-1].argmax(1) == ds.labels):.4f} on the training faces")
    return torch.from_numpy(np.mean(probs, axis=0).astype(np.float32))


def target_distribution(ds: FaceDataset, args) -> torch.Tensor:
    """(1 - W) * smoothed one-hot + W * FER+ vote distribution, W = --soft-labels."""
    c = len(ds.class_names)
    onehot = F.one_hot(torch.from_numpy(ds.labels), c).float()
    hard = onehot * (1 - args.label_smoothing) + args.label_smoothing / c
    w = args.soft_labels
    if not w:
        return hard
    if not 0 < w <= 1:
        raise FerError(f"--soft-labels must be in 0..1, got {w}")
    if ds.soft_labels is None:
        raise FerError(f"--soft-labels needs FER+ votes, and {ds.source} has none; use the FER2013 npz with ferplus_votes or drop --soft-labels")
    return (1 - w) * hard + w * torch.from_numpy(ds.soft_labels)


def uniform(b: int, lo: float, hi: float, gen: torch.Generator) -> torch.Tensor:
    """``b`` draws from U(lo, hi): one random parameter per face of a batch."""
    return torch.rand(b, generator=gen) * (hi - lo) + lo


def augment(x: torch.Tensor, pre: Preprocessing, gen: torch.Generator, shift: float,
            scale: float = 0.0, erase: float = 0.0) -> torch.Tensor:
    """Rotation +-15 deg, shift, zoom, horizontal flip, brightness +-20 %, contrast +-15 %, random
    erasing; batched. Zoom and erasing draw no random numbers when off, so older runs resume unchanged."""
    b = x.shape[0]
    u = lambda lo, hi: uniform(b, lo, hi, gen)  # noqa: E731
    angle = u(-15, 15) * math.pi / 180
    flip = torch.where(torch.rand(b, generator=gen) < 0.5, -1.0, 1.0)
    tx, ty = u(-shift, shift) * 2, u(-shift, shift) * 2
    zoom = 1 / u(1 - scale, 1 + scale) if scale else torch.ones(b)  # sampling grid shrinks when the face grows
    theta = torch.zeros(b, 2, 3)
    theta[:, 0, 0], theta[:, 0, 1], theta[:, 0, 2] = torch.cos(angle) * flip * zoom, -torch.sin(angle) * zoom, tx
    theta[:, 1, 0], theta[:, 1, 1], theta[:, 1, 2] = torch.sin(angle) * flip * zoom, torch.cos(angle) * zoom, ty
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    x = F.grid_sample(x, grid, padding_mode="border", align_corners=False)
    pixels = x * pre.std + pre.mean  # back to [0, 1] for photometric changes
    mean = pixels.mean(dim=(1, 2, 3), keepdim=True)
    pixels = (pixels - mean) * u(0.85, 1.15)[:, None, None, None] + mean
    pixels = (pixels * u(0.8, 1.2)[:, None, None, None]).clamp(0, 1)
    out = (pixels - pre.mean) / pre.std
    return erase_patches(out, gen, erase) if erase else out


def check_augmentation(args: argparse.Namespace) -> None:
    """Refuse augmentation settings that would blank or invert faces, before any data is read."""
    if not 0 <= args.erase <= 1:
        raise FerError(f"--erase is a probability in 0..1, got {args.erase}")
    if not 0 <= args.scale < 1:
        raise FerError(f"--scale is a zoom range in 0..1 (0.1 = +-10 %), got {args.scale}")


def erase_patches(x: torch.Tensor, gen: torch.Generator, p: float) -> torch.Tensor:
    """Blank one rectangle (area 2-25 %, aspect 1/3..3) per face with probability ``p`` to 0, the
    normalised mean pixel: the model must read expression from more than one region."""
    b, _, h, w = x.shape
    u = lambda lo, hi: uniform(b, lo, hi, gen)  # noqa: E731
    area, log_aspect = u(0.02, 0.25), u(-math.log(3), math.log(3))
    eh = (torch.sqrt(area * torch.exp(log_aspect)) * h).clamp(1, h)
    ew = (torch.sqrt(area / torch.exp(log_aspect)) * w).clamp(1, w)
    top, left = u(0, 1) * (h - eh), u(0, 1) * (w - ew)
    on = torch.rand(b, generator=gen) < p
    rows = torch.arange(h, dtype=torch.float32)[None, :, None]
    cols = torch.arange(w, dtype=torch.float32)[None, None, :]
    box = ((rows >= top[:, None, None]) & (rows < (top + eh)[:, None, None])
           & (cols >= left[:, None, None]) & (cols < (left + ew)[:, None, None]) & on[:, None, None])
    return x.masked_fill(box[:, None], 0.0)


def epoch_order(t: Tensors, epoch: int, args, gen: torch.Generator) -> torch.Tensor:
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


SPLIT_ARGS = ("train_split", "labels", "val_fraction", "seed", "max_samples")  # what decides the validation faces


def init_weights(model: AMSCNN, path: str, class_names: list[str], args) -> None:
    """Load ``path``'s weights into ``model`` for a warm restart, refusing a checkpoint whose model or
    classes differ, or whose training run held out other validation faces (it would have trained on ours)."""
    loaded = load_checkpoint(path)
    theirs, ours = config_to_dict(loaded.model.cfg), config_to_dict(model.cfg)
    differ = [f"{k} {theirs.get(k)} vs {ours.get(k)}" for k in sorted(set(theirs) | set(ours)) if theirs.get(k) != ours.get(k)]
    if differ:
        raise FerError(f"--init {loaded.path} is a different model ({'; '.join(differ)}); "
                       "pass the --preset, --widths and --input-size it was trained with")
    if loaded.class_names != list(class_names):
        raise FerError(f"--init {loaded.path} predicts {loaded.class_names}, this run {class_names}; pass its --labels")
    recorded = loaded.meta.get("args") or {}
    split = [f"{k} {recorded.get(k)!r} vs {getattr(args, k)!r}" for k in SPLIT_ARGS
             if k in recorded and recorded[k] != getattr(args, k)]
    if not recorded or split:
        raise FerError(f"--init {loaded.path} was not trained on this run's split "
                       f"({'; '.join(split) or 'it records no training run'}): its validation faces would not be new to it")
    model.load_state_dict(loaded.model.state_dict())
    log(f"initialised from {loaded.path}")


def memory_format(model: AMSCNN) -> torch.memory_format:
    """channels_last trains ~15 % faster on CPU and suits tensor cores; but torch 2.14's CPU backward of a
    depthwise conv in channels_last corrupts the heap for some odd batch sizes (3, 5, 7), so
    separable models (the tiny preset) train contiguous."""
    return torch.contiguous_format if model.cfg.separable else torch.channels_last


def log(line: str) -> None:
    """Training news goes to stderr beside the progress bars, so stdout stays free for results (--json)."""
    tqdm.write(line, file=sys.stderr)


def loss_fn(model_out, target: torch.Tensor, args) -> torch.Tensor:
    """Cross-entropy against a target distribution, plus lambda * mean|A| on the attention map."""
    logits, attention, _ = model_out
    ce = -(target * torch.log_softmax(logits.float(), dim=1)).sum(1).mean()
    return ce + args.attention_l1 * attention.float().abs().mean()


def mix(x: torch.Tensor, target: torch.Tensor, alpha: float, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """mixup (Zhang et al. 2018): convex blend of each face and its target with a shuffled partner."""
    if alpha <= 0:
        return x, target
    lam = float(np.random.default_rng(int(torch.randint(0, 2**31, (1,), generator=gen))).beta(alpha, alpha))
    perm = torch.randperm(len(x), generator=gen)
    return lam * x + (1 - lam) * x[perm], lam * target + (1 - lam) * target[perm]


def train_one_epoch(model: AMSCNN, t: Tensors, opt, scaler, args, pre, gen, epoch, device,
                    average: WeightAverage | None = None) -> float:
    model.train()
    order = epoch_order(t, epoch, args, gen)
    total, seen = 0.0, 0
    dtype = autocast_dtype(device, args.bf16)
    bar = tqdm(range(0, len(order), args.batch_size), desc=f"epoch {epoch + 1}/{args.epochs}", leave=False, dynamic_ncols=True)
    for start in bar:
        idx = order[start:start + args.batch_size]
        x, target = mix(augment(t.x[idx], pre, gen, args.shift, args.scale, args.erase), t.target[idx], args.mixup, gen)
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


@torch.inference_mode()
def evaluate(model: AMSCNN, t: Tensors, args, device, batch_size: int = 256) -> dict:
    """Validation loss and accuracy (no augmentation), and the logits for calibration."""
    model.eval()
    total, correct, logits = 0.0, 0, []
    for start in range(0, len(t.y), batch_size):
        x, y = t.x[start:start + batch_size].to(device), t.y[start:start + batch_size].to(device)
        out = model(x)
        total += loss_fn(out, t.target[start:start + batch_size].to(device), args).item() * len(y)
        correct += (out[0].argmax(1) == y).sum().item()
        logits.append(out[0].float().cpu())
    n = max(len(t.y), 1)
    return {"loss": total / n, "accuracy": correct / n, "logits": torch.cat(logits).numpy() if logits else np.zeros((0, 0))}


def make_scheduler(opt: torch.optim.Optimizer, args) -> torch.optim.lr_scheduler.LRScheduler:
    if args.lr_schedule == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=args.epochs)
    return torch.optim.lr_scheduler.StepLR(opt, step_size=args.lr_step, gamma=0.5)


def plain_args(args: argparse.Namespace) -> dict:
    """The command line as plain values (safe to store in a weights_only checkpoint)."""
    plain = {k: v for k, v in vars(args).items() if isinstance(v, (int, float, str, bool, type(None)))}
    plain.update({k: list(v) for k, v in vars(args).items() if isinstance(v, tuple)})
    return plain


def main(args: argparse.Namespace, dataset: FaceDataset | None = None) -> dict:
    """Train per ``args``; ``dataset`` (if given) replaces loading ``args.data`` (k-fold runs)."""
    check_augmentation(args)
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    device = resolve_device(args.device)
    gen = torch.Generator().manual_seed(args.seed)

    full = dataset if dataset is not None else load_dataset(args.data, args.train_split or None, args.labels, split_optional=True)
    if args.max_samples:
        full = full.subset(np.arange(min(args.max_samples, len(full))))
    train_ds, val_ds = split_train_val(full, args.val_fraction, args.seed)
    if len(val_ds) == 0:
        raise FerError("validation split is empty; raise --val-fraction or use more data")
    overrides = {"num_classes": len(full.class_names)}
    if args.input_size:
        overrides["input_size"] = args.input_size
    if args.widths:
        overrides["widths"] = tuple(args.widths)
    cfg = config_for(args.preset, **overrides)
    pre = Preprocessing(input_size=cfg.input_size, channels=cfg.in_chans, clahe=not args.no_clahe,
                        align_template=TEMPLATE.tolist())  # live crops framed like FER2013's
    train_t, val_t = to_tensors(train_ds, pre, args, teachers=True), to_tensors(val_ds, pre, args)

    model = build_model(cfg)
    if args.init:
        init_weights(model, args.init, full.class_names, args)
    model = model.to(device, memory_format=memory_format(model))
    if autocast_dtype(device, args.bf16) == torch.bfloat16:
        kept = prepare_bf16(model, (cfg.in_chans, cfg.input_size, cfg.input_size))
        log(f"bf16 autocast; {kept} convolution(s) larger than their feature map kept in fp32")
    if args.optimizer == "sgd":
        opt = torch.optim.SGD(model.parameters(), lr=args.lr, momentum=0.9, nesterov=True, weight_decay=args.weight_decay)
    else:
        opt = torch.optim.Adam(model.parameters(), lr=args.lr, weight_decay=args.weight_decay)
    sched = make_scheduler(opt, args)
    average = averaged = None
    if args.weight_average:
        if not 0 < args.weight_average < 1:
            raise FerError(f"--weight-average is a decay in (0, 1) such as 0.999, got {args.weight_average}")
        average = WeightAverage(model, args.weight_average)
        averaged = build_model(cfg).to(device, memory_format=memory_format(model))  # validated and saved
    scaler = torch.amp.GradScaler(device.type, enabled=device.type == "cuda")
    history, start_epoch, best_loss, stale, best_raw_loss = [], 0, float("inf"), 0, float("inf")
    last_path, best_path = os.path.join(args.out, "last.pt"), os.path.join(args.out, "best.pt")
    best_raw_path = os.path.join(args.out, "best_raw.pt")
    if args.resume and os.path.exists(last_path):
        state = read_checkpoint(last_path)
        model.load_state_dict(state["state_dict"])
        opt.load_state_dict(state["optimizer"])
        sched.load_state_dict(state["scheduler"])
        gen.set_state(state["generator"])
        torch.set_rng_state(state["torch_rng"])
        history, best_loss, stale = state["meta"]["history"], state["best_loss"], state["stale"]
        if average is not None:
            if "weight_average" not in state:
                raise FerError(f"{last_path} was trained without --weight-average; resume it without the option")
            average.load_state_dict(state["weight_average"])
            best_raw_loss = state["best_raw_loss"]
        start_epoch = len(history)
        log(f"resumed from {last_path} at epoch {start_epoch}")
    log(f"training {args.preset} ({count_parameters(model) / 1e6:.2f} M params) on {len(train_ds)} faces, "
        f"validating on {len(val_ds)}, classes {full.class_names}, device {device}")

    epochs = tqdm(range(start_epoch, args.epochs), desc="training", unit="epoch", initial=start_epoch,
                  total=args.epochs, dynamic_ncols=True)
    for epoch in epochs:
        t0 = time.time()
        train_loss = train_one_epoch(model, train_t, opt, scaler, args, pre, gen, epoch, device, average)
        sched.step()
        val = raw = evaluate(model, val_t, args, device)
        selected = model
        if average is not None:
            averaged.load_state_dict(average.shadow)
            val, selected = evaluate(averaged, val_t, args, device), averaged
        history.append({"epoch": epoch + 1, "train_loss": train_loss, "val_loss": val["loss"], "val_accuracy": val["accuracy"],
                        "lr": opt.param_groups[0]["lr"], "seconds": time.time() - t0})
        if average is not None:
            history[-1].update(val_loss_raw=raw["loss"], val_accuracy_raw=raw["accuracy"])
        improved = val["loss"] < best_loss
        best_loss, stale = (val["loss"], 0) if improved else (best_loss, stale + 1)
        epochs.set_postfix(loss=f"{train_loss:.3f}", val_loss=f"{val['loss']:.3f}", val_acc=f"{val['accuracy']:.3f}")
        raw_note = f" (raw weights {raw['loss']:.4f} / {raw['accuracy']:.4f})" if average is not None else ""
        log(f"epoch {epoch + 1}/{args.epochs} train_loss {train_loss:.4f} val_loss {val['loss']:.4f} "
            f"val_acc {val['accuracy']:.4f}{raw_note} {'*' if improved else ''} ({time.time() - t0:.0f}s)")
        meta = {"history": history, "args": plain_args(args), "train_size": len(train_ds), "val_size": len(val_ds), "device": str(device)}
        if improved:
            save_checkpoint(best_path, selected, pre, full.class_names, meta, half=args.half_weights)
        extra = {"optimizer": opt.state_dict(), "scheduler": sched.state_dict(), "generator": gen.get_state(),
                 "torch_rng": torch.get_rng_state(), "best_loss": best_loss, "stale": stale}
        if average is not None:
            if raw["loss"] < best_raw_loss:
                best_raw_loss = raw["loss"]
                save_checkpoint(best_raw_path, model, pre, full.class_names, meta, half=args.half_weights)
            extra.update(weight_average=average.state_dict(), best_raw_loss=best_raw_loss)
        save_checkpoint(last_path, model, pre, full.class_names, meta, extra=extra)
        if stale >= args.patience:
            log(f"early stop: no better validation loss for {args.patience} epochs")
            break
    epochs.close()
    with open(os.path.join(args.out, "history.json"), "w") as fh:
        json.dump(history, fh, indent=1)
    temperature = calibrate_best(best_path, val_t, args, device)["temperature"] if os.path.exists(best_path) else 1.0
    if average is not None and os.path.exists(best_raw_path):
        calibrate_best(best_raw_path, val_t, args, device)  # the same run without the average, for comparison
    return {"history": history, "best": best_path, "classes": full.class_names, "temperature": temperature}


def validation_faces(loaded: LoadedModel, data: str) -> FaceDataset:
    """The faces a checkpoint was validated (and calibrated) on, rebuilt from the training run it
    records: data split, label set, validation share and seed. Faces it never trained on."""
    recorded = loaded.meta.get("args") or {}
    if not recorded:
        raise FerError(f"'{loaded.path}' does not record its training run (meta.args); "
                       "only checkpoints written by `fer-ros train` know their validation faces")
    full = load_dataset(data, recorded.get("train_split") or None, recorded.get("labels", "fer2013"),
                        split_optional=True)
    if recorded.get("max_samples"):
        full = full.subset(np.arange(min(recorded["max_samples"], len(full))))
    _, val = split_train_val(full, recorded.get("val_fraction", 0.1), recorded.get("seed", 0))
    if len(val) != loaded.meta.get("val_size", len(val)):
        raise FerError(f"rebuilt validation split has {len(val)} faces but '{loaded.path}' was validated on "
                       f"{loaded.meta['val_size']}; pass the same --data it was trained on")
    return val


MIRROR_MIN_GAIN = 0.005  # a second classifier pass per face must buy at least half a point on the validation faces


def calibrate_best(best_path: str, val_t: Tensors, args, device) -> dict:
    """Fit the temperature of the checkpoint at ``best_path`` on the validation faces and store it
    there, with whether the model classifies each face with its mirror by default: when that gains
    at least MIRROR_MIN_GAIN of validation accuracy."""
    loaded = load_checkpoint(best_path, device)
    logits = evaluate(loaded.model, val_t, args, device)["logits"]
    y = val_t.y.numpy()
    temperature = fit_temperature(logits, y)
    one_pass = float(np.mean(logits.argmax(1) == y))
    mirrored = float(np.mean(mirrored_probabilities(loaded, val_t, device, temperature).argmax(1) == y))
    calibration = {"val_ece_before": reliability(softmax(logits), y)["ece"],
                   "val_ece_after": reliability(softmax(logits, temperature), y)["ece"], "val_faces": len(y),
                   "val_accuracy": one_pass, "val_accuracy_mirrored": mirrored}
    mirror = mirrored - one_pass >= MIRROR_MIN_GAIN
    set_temperature(best_path, temperature, calibration, mirror=mirror)
    log(f"temperature {temperature:.3f} fitted on {len(y)} validation faces: "
        f"ECE {calibration['val_ece_before']:.4f} -> {calibration['val_ece_after']:.4f}; accuracy {one_pass:.4f}, "
        f"with the mirror {mirrored:.4f}: mirror {'on' if mirror else 'off'} by default")
    return {"temperature": temperature, "mirror": mirror, **calibration}


@torch.inference_mode()
def mirrored_probabilities(loaded: LoadedModel, t: Tensors, device, temperature: float, batch_size: int = 256) -> np.ndarray:
    """Calibrated probabilities of each validation face averaged with its mirror image's."""
    out = [class_probabilities(loaded.model, t.x[i:i + batch_size].to(device), True, temperature)[0].cpu().numpy()
           for i in range(0, len(t.y), batch_size)]
    return np.concatenate(out) if out else np.zeros((0, len(loaded.class_names)), np.float32)
