"""`fer-ros music`: run the music policy over the JSON lines `fer-ros detect` prints.

The same policy and backends as the ROS `music_controller` node, without ROS:
``fer-ros detect video.mp4 | fer-ros music --input -`` prints one JSON object per decision.
"""
from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import logging
import sys
import time
from typing import Iterator, TextIO

from fer_ros.errors import FerError
from fer_ros.music.backends import make_backend
from fer_ros.music.mapping import BACKENDS, FOLLOW_MODES, STRATEGIES, MusicConfig, load_config
from fer_ros.music.policy import MusicPolicy, as_observation

log = logging.getLogger(__name__)


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "music", help="choose music from the emotions `fer-ros detect` prints",
        description="Run the music policy over JSON lines from `fer-ros detect` (one object per frame) and "
                    "print one JSON object per decision: stamp, action, emotion, track, playlist, item, reason.")
    p.add_argument("--input", required=True, metavar="FILE",
                   help="JSON lines as printed by `fer-ros detect`; '-' reads stdin")
    p.add_argument("--config", metavar="FILE",
                   help="music mapping YAML (default: built-in defaults, the same as config/music.yaml)")
    p.add_argument("--backend", choices=BACKENDS, help="player backend (default: the config's 'backend', log)")
    p.add_argument("--dry-run", action="store_true", help="never start a player: use the log backend")
    p.add_argument("--strategy", choices=STRATEGIES, help="override the config: match or uplift")
    p.add_argument("--follow", choices=FOLLOW_MODES, help="override the config: which face to follow")
    p.add_argument("--track-id", type=int, metavar="ID", help="follow this track id (implies --follow track_id)")
    p.add_argument("--realtime", action="store_true",
                   help="wait between frames as their stamps say, so a real player plays a recorded file at its pace")
    p.set_defaults(func=run)


def config_with_overrides(args: argparse.Namespace) -> MusicConfig:
    """The mapping file's settings with the command-line overrides applied (and validated)."""
    config = load_config(args.config)
    follow = args.follow or ("track_id" if args.track_id is not None else None)
    overrides = {"strategy": args.strategy, "follow": follow, "track_id": args.track_id}
    overrides = {k: v for k, v in overrides.items() if v is not None}
    return dataclasses.replace(config, **overrides) if overrides else config


@contextlib.contextmanager
def _open_lines(path: str) -> Iterator[TextIO]:
    if path == "-":
        yield sys.stdin
        return
    try:
        f = open(path, encoding="utf-8")
    except OSError as exc:
        raise FerError(f"cannot read {path!r} ({exc.strerror}); give a JSON lines file from `fer-ros detect` "
                       "or '-' for stdin") from None
    with f:
        yield f


def _numbered_lines(lines: TextIO, source: str) -> Iterator[tuple[int, str]]:
    """(line number, text); a file that is not UTF-8 text (a photo, a video) is a FerError, not a traceback."""
    number = 0
    try:
        for number, line in enumerate(lines, 1):
            yield number, line
    except UnicodeDecodeError:
        raise FerError(f"{source} is not text (line {number + 1} is not UTF-8); give the JSON lines that "
                       "`fer-ros detect` prints, e.g. fer-ros detect video.mp4 > frames.jsonl") from None


def parse_line(line: str, number: int, source: str) -> dict | None:
    """One frame object, or None for a blank line or an object that is not a frame."""
    line = line.strip()
    if not line:
        return None
    try:
        data = json.loads(line)
    except json.JSONDecodeError as exc:
        raise FerError(f"{source} line {number} is not JSON ({exc.msg}); give one object per line "
                       "as printed by `fer-ros detect`") from None
    if not isinstance(data, dict):
        raise FerError(f"{source} line {number} is a JSON {type(data).__name__}, not a frame object "
                       "with 'stamp' and 'faces'")
    return data if "faces" in data else None  # e.g. a summary line: not a frame


def run(args: argparse.Namespace) -> int:
    config = config_with_overrides(args)
    backend_name = "log" if args.dry_run else (args.backend or config.backend)
    policy = MusicPolicy(config)
    source = "stdin" if args.input == "-" else args.input
    frames = decisions = skipped = 0
    pace: tuple[float, float] | None = None  # (first stamp, wall time then) for --realtime
    with make_backend(backend_name, config, emit=log.info) as backend, _open_lines(args.input) as lines:
        for number, line in _numbered_lines(lines, source):
            frame = parse_line(line, number, source)
            if frame is None:
                skipped += 1
                continue
            try:
                observation = as_observation(frame)
            except FerError as exc:
                raise FerError(f"{source} line {number}: {exc}") from None
            if args.realtime:  # sleep until this frame's stamp, counted from the first frame
                pace = pace or (observation.stamp, time.monotonic())
                time.sleep(max(0.0, (observation.stamp - pace[0]) - (time.monotonic() - pace[1])))
            frames += 1
            decision = policy.step(observation)
            if decision is not None:
                decisions += 1
                print(json.dumps(decision.to_json()), flush=True)
                backend.apply(decision)
    log.info("%d frames, %d decisions, %d lines skipped (backend %s)", frames, decisions, skipped, backend.name)
    return 0
