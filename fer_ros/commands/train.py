"""`fer-ros train`: train AMS-CNN (see fer_ros.learning.training for the recipe)."""
from fer_ros.learning import training


def register(sub) -> None:
    parser = sub.add_parser("train", help="train AMS-CNN on FER2013 (npz/csv) or an ImageFolder tree",
                            description=training.__doc__)
    training.get_args_parser(parser)
    parser.set_defaults(func=run)


def run(args) -> int:
    training.main(args)
    return 0
