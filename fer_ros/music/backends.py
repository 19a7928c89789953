"""Players the music policy can drive: log (prints only), mpris (playerctl) and command (argv).

A backend turns a Decision into an effect and remembers just enough (the current item,
whether it is paused) to resume instead of restarting. Programs are always started from an
argv list, never through a shell, so an item such as ``"; rm -rf ~"`` is only ever a file name.
"""
from __future__ import annotations

import logging
import os
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path
from typing import Callable

from fer_ros.errors import FerError
from fer_ros.music.mapping import BACKENDS, CommandConfig, MprisConfig, MusicConfig, check_argv
from fer_ros.music.policy import Decision

log = logging.getLogger(__name__)

STOP_TIMEOUT_S = 3.0  # grace time after SIGTERM before a player is killed
PLAYERCTL_TIMEOUT_S = 10.0


class Backend:
    """Base class: ``apply`` each decision, ``close`` once (also usable as a context manager)."""

    name = "base"

    def apply(self, decision: Decision) -> None:
        raise NotImplementedError

    def close(self) -> None:
        """Release the player; the default has nothing to release."""

    def __enter__(self) -> "Backend":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _stderr_line(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


class LogBackend(Backend):
    """Plays nothing: reports what it would do. Works everywhere, so it is the default."""

    name = "log"

    def __init__(self, emit: Callable[[str], None] | None = None) -> None:
        self._emit = emit or _stderr_line

    def apply(self, decision: Decision) -> None:
        what = {"play": f"play {decision.item!r} from playlist {decision.playlist}",
                "pause": f"pause {decision.item!r}", "stop": f"stop {decision.item!r}",
                "keep": f"keep {decision.item!r}" if decision.item else "keep (nothing playing)"}
        self._emit(f"[music {decision.stamp:.2f}s] would {what.get(decision.action, decision.action)}: {decision.reason}")


def _as_uri(item: str) -> str:
    """Local files become file:// URIs (what MPRIS OpenUri expects); anything else is passed as-is."""
    path = Path(item).expanduser()
    return path.resolve().as_uri() if path.exists() else item


class MprisBackend(Backend):
    """Desktop players (VLC, Rhythmbox, Spotify, mpv with mpris...) through the playerctl program."""

    name = "mpris"

    def __init__(self, config: MprisConfig | None = None) -> None:
        config = config or MprisConfig()
        exe = shutil.which("playerctl")
        if exe is None:
            raise FerError("the mpris backend needs the playerctl program, which is not installed; install it "
                           "(e.g. sudo apt install playerctl) or use --backend log")
        self._base = [exe] + ([f"--player={config.player}"] if config.player else [])
        self._item = ""
        self._paused = False

    def _run(self, *args: str) -> None:
        argv = self._base + list(args)
        try:
            done = subprocess.run(argv, capture_output=True, text=True, timeout=PLAYERCTL_TIMEOUT_S, check=False)
        except subprocess.TimeoutExpired:
            raise FerError(f"playerctl {' '.join(args)} did not answer in {PLAYERCTL_TIMEOUT_S:g} s; "
                           "check that the desktop session's D-Bus is reachable") from None
        if done.returncode != 0:
            why = (done.stderr or done.stdout).strip() or f"exit code {done.returncode}"
            raise FerError(f"playerctl {' '.join(args)} failed ({why}); start a desktop player that supports "
                           "MPRIS or name one with mpris.player")

    def apply(self, decision: Decision) -> None:
        if decision.action == "play":
            if decision.item == self._item and self._paused:
                self._run("play")  # resume where it paused
            else:
                self._run("open", _as_uri(decision.item))
            self._item, self._paused = decision.item, False
        elif decision.action == "pause":
            self._run("pause")
            self._paused = True
        elif decision.action == "stop":
            self._run("stop")
            self._item, self._paused = "", False


_PLACEHOLDER = re.compile(r"\{(item|playlist|emotion)\}")


class CommandBackend(Backend):
    """Runs one player process per item from an argv template, e.g. ``[mpv, --no-video, "{item}"]``.

    Placeholders are substituted inside each argv element: ``{item}``, ``{playlist}``,
    ``{emotion}``; an element that is exactly ``{items}`` becomes the whole playlist starting
    at the chosen item (for players that take several files). Pause freezes the process with
    SIGSTOP (resume: SIGCONT) or, with ``pause: terminate`` or where SIGSTOP does not exist,
    ends it so that resuming restarts the item.
    """

    name = "command"

    def __init__(self, config: CommandConfig | None = None, playlists: dict[str, list[str]] | None = None) -> None:
        config = config or CommandConfig()
        self._template = check_argv(config.argv)
        self._freeze = config.pause == "sigstop" and hasattr(signal, "SIGSTOP")
        self._playlists = playlists or {}
        self.process: subprocess.Popen | None = None
        self._item = ""
        self._paused = False

    def command_for(self, decision: Decision) -> list[str]:
        """The argv that plays ``decision.item`` (no shell: each element is one argument)."""
        values = {"item": decision.item, "playlist": decision.playlist, "emotion": decision.emotion}
        argv: list[str] = []
        for arg in self._template:
            if arg == "{items}":
                items = self._playlists.get(decision.playlist) or [decision.item]
                start = items.index(decision.item) if decision.item in items else 0
                argv.extend(items[start:] + items[:start])
            else:
                argv.append(_PLACEHOLDER.sub(lambda m: values[m.group(1)], arg))
        return argv

    def _alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def _start(self, decision: Decision) -> None:
        argv = self.command_for(decision)
        try:
            # stdout is discarded so a player's chatter never mixes with the JSON lines on stdout.
            self.process = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
        except FileNotFoundError:
            raise FerError(f"player program {argv[0]!r} not found; install it or change command.argv "
                           "in the music config") from None
        except OSError as exc:
            raise FerError(f"could not start the player {argv[0]!r} ({exc}); check command.argv") from None
        log.info("started player pid %d: %s", self.process.pid, argv)

    def _end(self) -> None:
        """Terminate the current player (SIGTERM, then SIGKILL after STOP_TIMEOUT_S) and reap it."""
        proc, self.process, paused, self._paused = self.process, None, self._paused, False
        if proc is None:
            return
        if proc.poll() is None:
            if paused and self._freeze:
                os.kill(proc.pid, signal.SIGCONT)  # a stopped process would not act on SIGTERM
            proc.terminate()
            try:
                proc.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        log.info("player pid %d ended with %s", proc.pid, proc.returncode)

    def apply(self, decision: Decision) -> None:
        if decision.action == "play":
            if decision.item == self._item and self._paused and self._alive():
                os.kill(self.process.pid, signal.SIGCONT)
                self._paused = False
                return
            self._end()
            self._start(decision)
            self._item = decision.item
        elif decision.action == "pause":
            if self._freeze and self._alive():
                os.kill(self.process.pid, signal.SIGSTOP)
                self._paused = True
            else:
                self._end()
                self._paused = True  # resuming the same item restarts it
        elif decision.action == "stop":
            self._end()
            self._item = ""

    def close(self) -> None:
        self._end()


def make_backend(name: str, config: MusicConfig | None = None,
                 emit: Callable[[str], None] | None = None) -> Backend:
    """Build the backend called ``name`` (log, mpris or command) from the music config."""
    config = config or MusicConfig()
    key = str(name).strip().lower()
    if key == "log":
        return LogBackend(emit)
    if key == "mpris":
        return MprisBackend(config.mpris)
    if key == "command":
        return CommandBackend(config.command, config.playlists)
    raise FerError(f"unknown music backend {name!r}; use one of {', '.join(BACKENDS)}")
