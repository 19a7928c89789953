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
import time
from dataclasses import dataclass, field

import torch
from tqdm import tqdm

from fer_ros.device import resolve_device
from fer_ros.errors import FerError
from fer_ros.learning.calibrate_checkpoint import calibrate_best
from fer_ros.learning.datasets import FaceDataset
from fer_ros.learning.epoch import evaluate, memory_format, train_one_epoch
from fer_ros.learning.precision import autocast_dtype, prepare_bf16
from fer_ros.learning.progress import log
from fer_ros.learning.train_args import check_options, get_args_parser, plain_args
from fer_ros.learning.train_data import SPLIT_ARGS, Tensors, run_faces, to_tensors
from fer_ros.learning.weight_average import WeightAverage
from fer_ros.models.ams_cnn import AMSCNN, AMSConfig, build_model, config_for, config_to_dict, count_parameters
from fer_ros.models.checkpoint import load_checkpoint, read_checkpoint, save_checkpoint
from fer_ros.models.preprocess import Preprocessing
from fer_ros.models.widen import can_widen, widened_state
from fer_ros.perception.alignment import TEMPLATE

# What the commands and tests reach through this module.
__all__ = ["evaluate", "get_args_parser", "main", "train_one_epoch"]


@dataclass
class Run:
    """One training run: what it trains with (fixed), then what it carries from epoch to epoch,
    which last.pt stores so that --resume continues where the run stopped."""

    args: argparse.Namespace
    device: torch.device
    pre: Preprocessing
    class_names: list[str]
    sizes: dict  # train_size and val_size, recorded in every checkpoint's meta
    model: AMSCNN
    opt: torch.optim.Optimizer
    sched: torch.optim.lr_scheduler.LRScheduler
    scaler: torch.amp.GradScaler
    gen: torch.Generator  # every augmentation and sampling draw
    average: WeightAverage | None = None  # --weight-average
    averaged: AMSCNN | None = None  # the average as a model: validated, selected and saved as best.pt
    history: list[dict] = field(default_factory=list)  # one entry per epoch
    best_loss: float = math.inf  # best validation loss so far (of the average, with --weight-average)
    stale: int = 0  # epochs since it last improved
    best_raw_loss: float = math.inf  # best validation loss of the raw weights, with --weight-average

    def path(self, name: str) -> str:
        return os.path.join(self.args.out, name)


def main(args: argparse.Namespace, dataset: FaceDataset | None = None) -> dict:
    """Train per ``args``; ``dataset`` (if given) replaces loading ``args.data`` (k-fold runs)."""
    check_options(args)
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    device = resolve_device(args.device)
    gen = torch.Generator().manual_seed(args.seed)
    full, train_ds, val_ds = run_faces(args, dataset)
    cfg = model_config(args, len(full.class_names))
    pre = Preprocessing(input_size=cfg.input_size, channels=cfg.in_chans, clahe=not args.no_clahe,
                        align_template=TEMPLATE.tolist())  # live crops framed like FER2013's
    train_t, val_t = to_tensors(train_ds, pre, args, teachers=True), to_tensors(val_ds, pre, args)
    run = start_run(args, cfg, pre, full.class_names, device, gen)
    run.sizes = {"train_size": len(train_ds), "val_size": len(val_ds)}
    if args.resume and os.path.exists(run.path("last.pt")):
        resume(run, run.path("last.pt"))
    log(f"training {args.preset} ({count_parameters(run.model) / 1e6:.2f} M params) on {len(train_ds)} faces, "
        f"validating on {len(val_ds)}, classes {full.class_names}, device {device}")
    train_epochs(run, train_t, val_t)
    return finish(run, val_t)


def model_config(args: argparse.Namespace, num_classes: int) -> AMSConfig:
    """The preset, with the run's --input-size and --widths when given."""
    overrides = {"num_classes": num_classes}
    if args.input_size:
        overrides["input_size"] = args.input_size
    if args.widths:
        overrides["widths"] = tuple(args.widths)
    return config_for(args.preset, **overrides)


def start_run(args: argparse.Namespace, cfg: AMSConfig, pre: Preprocessing, class_names: list[str],
              device: torch.device, gen: torch.Generator) -> Run:
    """A fresh model (or --init's weights) on ``device``, its optimiser and schedule, the weight average."""
    model = build_model(cfg)
    if args.init:
        init_weights(model, args.init, class_names, args)
    model = model.to(device, memory_format=memory_format(model))
    if autocast_dtype(device, args.bf16) == torch.bfloat16:
        kept = prepare_bf16(model, (cfg.in_chans, cfg.input_size, cfg.input_size))
        log(f"bf16 autocast; {kept} convolution(s) larger than their feature map kept in fp32")
    opt = make_optimizer(model, args)
    run = Run(args, device, pre, class_names, {}, model, opt, make_scheduler(opt, args),
              torch.amp.GradScaler(device.type, enabled=device.type == "cuda"), gen)
    if args.weight_average:
        run.average = WeightAverage(model, args.weight_average)
        run.averaged = build_model(cfg).to(device, memory_format=memory_format(model))
    return run


def init_weights(model: AMSCNN, path: str, class_names: list[str], args: argparse.Namespace) -> None:
    """Load ``path``'s weights into ``model`` for a warm restart, refusing a checkpoint whose model or
    classes differ, or whose training run held out other validation faces (it would have trained on ours)."""
    loaded = load_checkpoint(path)
    theirs, ours = config_to_dict(loaded.model.cfg), config_to_dict(model.cfg)
    differ = [f"{k} {theirs.get(k)} vs {ours.get(k)}" for k in sorted(set(theirs) | set(ours)) if theirs.get(k) != ours.get(k)]
    widen = bool(differ) and can_widen(loaded.model, model)  # wider --widths: grown with the same function
    if differ and not widen:
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
    model.load_state_dict(widened_state(loaded.model, model) if widen else loaded.model.state_dict())
    log(f"initialised from {loaded.path}" + (f", widened from {loaded.model.cfg.widths} to {model.cfg.widths}" if widen else ""))


def make_optimizer(model: AMSCNN, args: argparse.Namespace) -> torch.optim.Optimizer:
    """Adam, or SGD with Nesterov momentum 0.9 (--optimizer)."""
    if args.optimizer == "sgd":
        return torch.optim.SGD(model.parameters(), lr=args.lr, momentum=0.9, nesterov=True, weight_decay=args.weight_decay)
    return torch.optim.Adam(model.parameters(), lr=args.lr, weight_decay=args.weight_decay)


def make_scheduler(opt: torch.optim.Optimizer, args: argparse.Namespace) -> torch.optim.lr_scheduler.LRScheduler:
    """Halve every --lr-step epochs (step), or anneal to 0 over --epochs (cosine)."""
    if args.lr_schedule == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=args.epochs)
    return torch.optim.lr_scheduler.StepLR(opt, step_size=args.lr_step, gamma=0.5)


def resume(run: Run, path: str) -> None:
    """Continue from ``path`` (a last.pt): weights, optimiser, schedule, random states, history."""
    state = read_checkpoint(path)
    run.model.load_state_dict(state["state_dict"])
    run.opt.load_state_dict(state["optimizer"])
    run.sched.load_state_dict(state["scheduler"])
    run.gen.set_state(state["generator"])
    torch.set_rng_state(state["torch_rng"])
    run.history, run.best_loss, run.stale = state["meta"]["history"], state["best_loss"], state["stale"]
    if run.average is not None:
        if "weight_average" not in state:
            raise FerError(f"{path} was trained without --weight-average; resume it without the option")
        run.average.load_state_dict(state["weight_average"])
        run.best_raw_loss = state["best_raw_loss"]
    log(f"resumed from {path} at epoch {len(run.history)}")


def train_epochs(run: Run, train_t: Tensors, val_t: Tensors) -> None:
    """The epochs from where the run stands to --epochs, or until --patience of them bring no better
    validation loss; every epoch is checkpointed."""
    args, start = run.args, len(run.history)
    epochs = tqdm(range(start, args.epochs), desc="training", unit="epoch", initial=start,
                  total=args.epochs, dynamic_ncols=True)
    for epoch in epochs:
        t0 = time.time()
        train_loss = train_one_epoch(run.model, train_t, run.opt, run.scaler, args, run.pre, run.gen, epoch,
                                     run.device, run.average)
        run.sched.step()
        val, raw, selected = validate(run, val_t)
        epochs.set_postfix(loss=f"{train_loss:.3f}", val_loss=f"{val['loss']:.3f}", val_acc=f"{val['accuracy']:.3f}")
        improved = record_epoch(run, epoch, train_loss, val, raw, t0)
        save_epoch(run, selected, improved, raw)
        if run.stale >= args.patience:
            log(f"early stop: no better validation loss for {args.patience} epochs")
            break
    epochs.close()


def validate(run: Run, val_t: Tensors) -> tuple[dict, dict, AMSCNN]:
    """(the result that selects best.pt, the raw weights' result, the model selected): the weight
    average's when there is one, else the raw weights'."""
    raw = evaluate(run.model, val_t, run.args, run.device)
    if run.average is None:
        return raw, raw, run.model
    run.averaged.load_state_dict(run.average.shadow)
    return evaluate(run.averaged, val_t, run.args, run.device), raw, run.averaged


def record_epoch(run: Run, epoch: int, train_loss: float, val: dict, raw: dict, t0: float) -> bool:
    """Add the epoch to the history and the log; True when its validation loss is the best so far."""
    entry = {"epoch": epoch + 1, "train_loss": train_loss, "val_loss": val["loss"], "val_accuracy": val["accuracy"],
             "lr": run.opt.param_groups[0]["lr"], "seconds": time.time() - t0}
    if run.average is not None:
        entry.update(val_loss_raw=raw["loss"], val_accuracy_raw=raw["accuracy"])
    run.history.append(entry)
    improved = val["loss"] < run.best_loss
    run.best_loss, run.stale = (val["loss"], 0) if improved else (run.best_loss, run.stale + 1)
    raw_note = f" (raw weights {raw['loss']:.4f} / {raw['accuracy']:.4f})" if run.average is not None else ""
    log(f"epoch {epoch + 1}/{run.args.epochs} train_loss {train_loss:.4f} val_loss {val['loss']:.4f} "
        f"val_acc {val['accuracy']:.4f}{raw_note} {'*' if improved else ''} ({time.time() - t0:.0f}s)")
    return improved


def save_epoch(run: Run, selected: AMSCNN, improved: bool, raw: dict) -> None:
    """best.pt when the selected weights improved, best_raw.pt when the raw ones did (with a weight
    average), and always last.pt with all that --resume needs."""
    args = run.args
    meta = {"history": run.history, "args": plain_args(args), **run.sizes, "device": str(run.device)}
    if improved:
        save_checkpoint(run.path("best.pt"), selected, run.pre, run.class_names, meta, half=args.half_weights)
    extra = {"optimizer": run.opt.state_dict(), "scheduler": run.sched.state_dict(), "generator": run.gen.get_state(),
             "torch_rng": torch.get_rng_state(), "best_loss": run.best_loss, "stale": run.stale}
    if run.average is not None:
        if raw["loss"] < run.best_raw_loss:
            run.best_raw_loss = raw["loss"]
            save_checkpoint(run.path("best_raw.pt"), run.model, run.pre, run.class_names, meta, half=args.half_weights)
        extra.update(weight_average=run.average.state_dict(), best_raw_loss=run.best_raw_loss)
    save_checkpoint(run.path("last.pt"), run.model, run.pre, run.class_names, meta, extra=extra)


def finish(run: Run, val_t: Tensors) -> dict:
    """Write history.json and calibrate best.pt (and best_raw.pt) on the validation faces."""
    with open(run.path("history.json"), "w") as fh:
        json.dump(run.history, fh, indent=1)
    best, best_raw = run.path("best.pt"), run.path("best_raw.pt")
    temperature = calibrate_best(best, val_t, run.args, run.device)["temperature"] if os.path.exists(best) else 1.0
    if run.average is not None and os.path.exists(best_raw):
        calibrate_best(best_raw, val_t, run.args, run.device)  # the same run without the average, for comparison
    return {"history": run.history, "best": best, "classes": run.class_names, "temperature": temperature}
