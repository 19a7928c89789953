"""The `fer-ros` command: one sub-command per module in ``fer_ros.commands``.

Each command module exposes ``register(subparsers)`` which adds its parser and sets
``func(args) -> int``. Modules are imported only when listed so a missing optional
dependency of one command never breaks the others.
"""
from __future__ import annotations

import argparse
import importlib
import logging
import sys

from fer_ros.errors import FerError

COMMANDS = ["detect", "demo", "train", "evaluate", "calibrate", "stability", "replay", "make_bag", "music", "bench",
            "explain", "onset"]


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """All commands, or just ``only`` (so `fer-ros music` does not pay for importing torch)."""
    parser = argparse.ArgumentParser(prog="fer-ros", description="Facial expression recognition for robots.")
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug messages to stderr")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name in COMMANDS:
        if only is not None and name.replace("_", "-") != only:
            continue
        try:
            module = importlib.import_module(f"fer_ros.commands.{name}")
        except ModuleNotFoundError as exc:
            if exc.name and exc.name.startswith("fer_ros.commands"):
                continue  # command not written yet
            raise
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    first = next((a for a in argv if not a.startswith("-")), None)
    known = {name.replace("_", "-") for name in COMMANDS}
    parser = build_parser(first if first in known else None)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        return int(args.func(args) or 0)
    except FerError as exc:
        print(f"fer-ros {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0


if __name__ == "__main__":
    sys.exit(main())
