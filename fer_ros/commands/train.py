"""`fer-ros train`: train AMS-CNN (see fer_ros.learning.training for the recipe)."""
from __future__ import annotations

import os

from fer_ros.errors import FerError
from fer_ros.learning import training
from fer_ros.learning.train_args import check_options
from fer_ros.outputs import check_output_dir

OUT_FILES = ("best.pt", "best_raw.pt", "last.pt", "history.json")


def register(sub) -> None:
    parser = sub.add_parser("train", help="train AMS-CNN on FER2013 (npz/csv) or an ImageFolder tree",
                            description=training.__doc__)
    training.get_args_parser(parser)
    parser.set_defaults(func=run)


def check_args(args) -> None:
    """What would fail only after the data loaded or an epoch ran: the option values, the output folder."""
    check_options(args)
    check_output_dir(args.out, "--out", OUT_FILES)
    last = os.path.join(args.out, "last.pt")
    if args.resume and not os.path.isfile(last):
        raise FerError(f"--resume: there is no {last} to continue from; check --out, or drop --resume to start afresh")


def run(args) -> int:
    check_args(args)
    training.main(args)
    return 0
