"""The options of `fer-ros train` (``get_args_parser``) and the checks of their values that need no data.

The parser is built in the order `--help` lists the options; each helper adds one run of them.
"""
from __future__ import annotations

import argparse
import math

from fer_ros.errors import FerError
from fer_ros.models.ams_cnn import PRESETS


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
    """The training options, added to ``parser`` (a `fer-ros train` sub-command) or to a new parser."""
    p = parser or argparse.ArgumentParser(description="Train AMS-CNN on a facial expression dataset.")
    for add in (_data_and_model, _optimisation, _targets, _weights, _sampling_and_augmentation, _run):
        add(p)
    return p


def _data_and_model(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data", required=True, help="FER2013 .npz or .csv, or an ImageFolder directory")
    p.add_argument("--labels", default="fer2013", choices=["fer2013", "ferplus"], help="label set for the npz layout")
    p.add_argument("--train-split", default="Training", help="split used for training (npz/csv Usage; folder sub-dir)")
    p.add_argument("--val-fraction", type=float, default=0.1, help="share of the training split held out for early stopping")
    p.add_argument("--preset", default="small", choices=sorted(PRESETS), help="model preset")
    p.add_argument("--input-size", type=int, default=None, help="override the preset's input size (pixels)")
    p.add_argument("--widths", type=parse_widths, default=None, metavar="W1,W2,..",
                   help="override the preset's channel schedule, e.g. 32,64,128 (a wider small); stored in the checkpoint")


def _optimisation(p: argparse.ArgumentParser) -> None:
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--lr-schedule", default="step", choices=["step", "cosine"],
                   help="step: halve every --lr-step epochs (the paper); cosine: anneal to 0 over --epochs (short runs)")
    p.add_argument("--lr-step", type=int, default=10, help="halve the learning rate every N epochs (step schedule)")
    p.add_argument("--weight-decay", type=float, default=1e-4)
    p.add_argument("--attention-l1", type=float, default=1e-3, help="lambda of the attention L1 penalty (mean |A|)")


def _targets(p: argparse.ArgumentParser) -> None:
    p.add_argument("--label-smoothing", type=float, default=0.0)
    p.add_argument("--soft-labels", type=float, default=0.0, metavar="W",
                   help="weight 0..1 of the FER+ vote distribution in the target (1 = votes only; npz with ferplus_votes)")
    p.add_argument("--fer2013-labels", type=float, default=0.0, metavar="V",
                   help="with --labels ferplus: weight 0..1 of each face's FER2013 label (a one-hot on its FER+ class) "
                        "mixed into the target; FER+'s annotators call many faces neutral that were collected "
                        "as an expression")
    p.add_argument("--teacher", action="append", default=None, metavar="WEIGHTS",
                   help="distil from this checkpoint, or a teacher run's last.pt from fer_ros.learning.teacher "
                        "(repeat for an ensemble, fused by the sum rule, each with its mirror)")
    p.add_argument("--distill", type=float, default=0.5, metavar="W",
                   help="weight 0..1 of the teachers' distribution in the target")
    p.add_argument("--consistent-teacher", action="store_true",
                   help="run the teachers on every augmented batch (the same warp, lighting and mixup as the "
                        "student's) instead of once on the clean faces; needs teacher weights, not probability files")
    p.add_argument("--mixup", type=float, default=0.0, metavar="ALPHA",
                   help="mixup with Beta(ALPHA, ALPHA) (0 = off, the default: it lost its A/B, docs/experiments.md)")


def _weights(p: argparse.ArgumentParser) -> None:
    p.add_argument("--init", default=None, metavar="WEIGHTS",
                   help="start from this checkpoint's weights (a warm restart: fresh optimiser and schedule); it must "
                        "have the same model, classes and validation split as this run")
    p.add_argument("--weight-average", type=float, default=0.0, metavar="DECAY",
                   help="keep an exponential moving average of the weights (e.g. 0.999, about 2.5 epochs of 400 steps) "
                        "and select, calibrate and save it as best.pt; the raw weights go to best_raw.pt (0 = off)")
    p.add_argument("--optimizer", default="adam", choices=["adam", "sgd"], help="adam, or sgd with Nesterov momentum 0.9")
    p.add_argument("--patience", type=int, default=6, help="early stopping: epochs without a better validation loss")


def _sampling_and_augmentation(p: argparse.ArgumentParser) -> None:
    p.add_argument("--balanced", action="store_true", help="class-balanced sampling")
    p.add_argument("--curriculum", type=int, default=0, help="epochs of easy-first curriculum (needs FER+ agreement)")
    p.add_argument("--no-clahe", action="store_true", help="train without CLAHE (stored in the checkpoint)")
    p.add_argument("--shift", type=float, default=0.08, help="random shift as a fraction of the size (0 = off)")
    p.add_argument("--scale", type=float, default=0.0,
                   help="random zoom in 1 +- SCALE (0 = off; faces vary in size live; with --erase it lost its A/B, "
                        "docs/experiments.md)")
    p.add_argument("--erase", type=float, default=0.0, metavar="P",
                   help="random erasing (Zhong et al. 2020): with probability P blank a rectangle of 2-25 %% of the face "
                        "to the mean pixel, as hands, glasses and hair do (0 = off; see --scale for what it measured)")
    p.add_argument("--degrade", type=float, default=0.0, metavar="P",
                   help="with probability P damage a face as a camera does: blur, noise, JPEG, low resolution, or a "
                        "sunglasses / mask band, at a random strength, before CLAHE (0 = off; docs/robustness.md)")


def _run(p: argparse.ArgumentParser) -> None:
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="auto")
    p.add_argument("--bf16", action="store_true",
                   help="bfloat16 autocast on CPU (faster per step where the CPU has bf16 instructions; docs/training.md); "
                        "weights, optimizer and validation stay fp32. CUDA always uses fp16 autocast")
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0 = torch default)")
    p.add_argument("--out", default="runs/train", help="output directory (best.pt, last.pt, history.json)")
    p.add_argument("--resume", action="store_true", help="continue from OUT/last.pt")
    p.add_argument("--max-samples", type=int, default=0, help="use only the first N training samples (quick runs)")
    p.add_argument("--half-weights", action="store_true", help="store best.pt weights in fp16 (half the size)")


def check_options(args: argparse.Namespace) -> None:
    """Refuse values that would fail (or silently do nothing) only after the data loaded or an epoch
    ran: the split, the schedule, augmentation that would blank or invert faces, target and averaging
    weights out of their range."""
    if not (math.isfinite(args.val_fraction) and 0 < args.val_fraction < 1):
        raise FerError(f"--val-fraction is the share of faces held out for validation, in (0, 1) such as 0.1; "
                       f"got {args.val_fraction}")
    if not (math.isfinite(args.lr) and args.lr > 0):
        raise FerError(f"--lr must be a positive learning rate such as 0.001; got {args.lr}")
    for option, value in (("--batch-size", args.batch_size), ("--epochs", args.epochs), ("--lr-step", args.lr_step)):
        if value < 1:
            raise FerError(f"{option} must be at least 1; got {value}")
    if not (math.isfinite(args.weight_decay) and args.weight_decay >= 0):
        raise FerError(f"--weight-decay must be 0 or positive; got {args.weight_decay}")
    if not 0 <= args.erase <= 1:
        raise FerError(f"--erase is a probability in 0..1, got {args.erase}")
    if not 0 <= getattr(args, "degrade", 0.0) <= 1:
        raise FerError(f"--degrade is a probability in 0..1, got {args.degrade}")
    if not 0 <= args.scale < 1:
        raise FerError(f"--scale is a zoom range in 0..1 (0.1 = +-10 %), got {args.scale}")
    if args.soft_labels and not 0 < args.soft_labels <= 1:
        raise FerError(f"--soft-labels must be in 0..1, got {args.soft_labels}")
    fer2013_labels = getattr(args, "fer2013_labels", 0.0)
    if not 0 <= fer2013_labels <= 1:
        raise FerError(f"--fer2013-labels must be in 0..1, got {fer2013_labels}")
    if fer2013_labels and args.labels != "ferplus":
        raise FerError("--fer2013-labels mixes FER2013's labels into FER+ targets; it needs --labels ferplus")
    if getattr(args, "consistent_teacher", False) and not args.teacher:
        raise FerError("--consistent-teacher distils the --teacher networks per batch; add --teacher WEIGHTS")
    if args.teacher and not 0 < args.distill <= 1:
        raise FerError(f"--distill must be in 0..1, got {args.distill}")
    if args.weight_average and not 0 < args.weight_average < 1:
        raise FerError(f"--weight-average is a decay in (0, 1) such as 0.999, got {args.weight_average}")


def plain_args(args: argparse.Namespace) -> dict:
    """The command line as plain values (safe to store in a weights_only checkpoint)."""
    plain = {k: v for k, v in vars(args).items() if isinstance(v, (int, float, str, bool, type(None)))}
    plain.update({k: list(v) for k, v in vars(args).items() if isinstance(v, (tuple, list))})  # widths, teachers
    return plain
