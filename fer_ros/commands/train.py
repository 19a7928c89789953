"""`fer-ros train`: train AMS-CNN (see fer_ros.learning.training for the recipe)."""
from __future__ import annotations

import math
import os

from fer_ros.errors import FerError
from fer_ros.learning import training
from fer_ros.outputs import check_output_dir

OUT_FILES = ("best.pt", "best_raw.pt", "last.pt", "history.json")


def register(sub) -> None:
    parser = sub.add_parser("train", help="train AMS-CNN on FER2013 (npz/csv) or an ImageFolder tree",
                            description=training.__doc__)
    training.get_args_parser(parser)
    parser.set_defaults(func=run)


def check_args(args) -> None:
    """Options that would fail (or silently do nothing) only after the data loaded or an epoch ran."""
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
    check_output_dir(args.out, "--out", OUT_FILES)
    last = os.path.join(args.out, "last.pt")
    if args.resume and not os.path.isfile(last):
        raise FerError(f"--resume: there is no {last} to continue from; check --out, or drop --resume to start afresh")


def run(args) -> int:
    check_args(args)
    training.main(args)
    return 0
