"""The music mapping file: which playlist each emotion leads to, and when to act.

One YAML file (``config/music.yaml``) holds the policy settings, the playlists and the
backend settings, so an integrator adapts the example by editing one commented file. Every
value is checked here once; a bad file raises FerError naming the key and the fix, so the
policy and the backends never see a half-valid configuration.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

from fer_ros.emotions import EMOTIONS, canonical_emotion
from fer_ros.errors import FerError
from fer_ros.parameters.files import read_yaml

STRATEGIES = ("match", "uplift")
FOLLOW_MODES = ("largest", "most_confident", "track_id")
NO_FACE_ACTIONS = ("pause", "keep", "stop")
BACKENDS = ("log", "mpris", "command")
PAUSE_MODES = ("sigstop", "terminate")

# The classes of the bundled models; the vocabulary (names, synonyms) lives in the core.
DEFAULT_EMOTIONS = EMOTIONS

# strategy "uplift": steer towards a calmer or happier mood instead of mirroring it.
DEFAULT_UPLIFT = {
    "angry": "calm",
    "disgust": "calm",
    "fear": "calm",
    "sad": "uplift",
    "surprise": "happy",
    "neutral": "uplift",
    "happy": "happy",
    "contempt": "calm",
}

# Search terms work with the log backend and with command templates that search
# (e.g. mpv's ytdl://ytsearch:); files and URIs work with every backend.
DEFAULT_PLAYLISTS = {
    "happy": ["upbeat pop", "feel good funk"],
    "sad": ["slow piano", "melancholic strings"],
    "angry": ["heavy rock"],
    "fear": ["ambient drones"],
    "surprise": ["big band swing"],
    "disgust": ["punk"],
    "neutral": ["lo-fi beats"],
    "contempt": ["dark jazz"],
    "calm": ["calm piano", "nature sounds"],
    "uplift": ["sunny acoustic", "motown classics"],
}


@dataclass
class NoFaceConfig:
    after_s: float = 5.0  # seconds without the followed face before acting
    action: str = "pause"  # pause | keep | stop


@dataclass
class CommandConfig:
    argv: list[str] = field(default_factory=lambda: ["mpv", "--no-video", "--really-quiet", "{item}"])
    pause: str = "sigstop"  # sigstop: freeze the player (POSIX); terminate: end it, resume restarts the item


@dataclass
class MprisConfig:
    player: str = ""  # playerctl --player NAME; empty = the first player playerctl finds


@dataclass
class MusicConfig:
    """Everything the music example needs, validated."""

    strategy: str = "match"
    follow: str = "largest"
    track_id: int | None = None  # the face to follow when follow == "track_id"
    min_stable_s: float = 2.0  # the followed label must have held this long before acting
    cooldown_s: float = 10.0  # smallest time between two playlist changes
    no_face: NoFaceConfig = field(default_factory=NoFaceConfig)
    playlists: dict[str, list[str]] = field(default_factory=lambda: {k: list(v) for k, v in DEFAULT_PLAYLISTS.items()})
    uplift: dict[str, str] = field(default_factory=lambda: dict(DEFAULT_UPLIFT))
    emotions: list[str] = field(default_factory=lambda: list(DEFAULT_EMOTIONS))
    backend: str = "log"
    command: CommandConfig = field(default_factory=CommandConfig)
    mpris: MprisConfig = field(default_factory=MprisConfig)

    def __post_init__(self) -> None:
        validate(self)

    def playlist_for(self, emotion: str) -> str | None:
        """The playlist the current strategy picks for ``emotion`` (None: nothing mapped)."""
        emotion = canonical_emotion(emotion)
        name = self.uplift.get(emotion) if self.strategy == "uplift" else emotion
        return name if name in self.playlists else None


def _choice(value: Any, key: str, choices: tuple[str, ...]) -> str:
    if not isinstance(value, str) or value.strip().lower() not in choices:
        raise FerError(f"music config: {key} is {value!r}; use one of {', '.join(choices)}")
    return value.strip().lower()


def _seconds(value: Any, key: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 0:
        raise FerError(f"music config: {key} is {value!r}; give a number of seconds >= 0")
    return float(value)


def _playlists(value: Any) -> dict[str, list[str]]:
    if not isinstance(value, dict) or not value:
        raise FerError("music config: playlists must be a mapping name -> list of files, URIs or search terms, "
                       "e.g. playlists: {happy: [song.mp3]}")
    out: dict[str, list[str]] = {}
    for name, items in value.items():
        key = canonical_emotion(name)
        if isinstance(items, str):
            items = [items]  # "happy: song.mp3" is a one-item playlist
        if not isinstance(items, list) or not items or not all(isinstance(i, str) and i.strip() for i in items):
            raise FerError(f"music config: playlists.{name} must be a non-empty list of files, URIs or search "
                           f"terms (strings), got {items!r}")
        if key in out:
            raise FerError(f"music config: playlists.{name} duplicates playlist {key!r}; merge the two lists")
        out[key] = [i.strip() for i in items]
    return out


def _emotion_key(name: Any, where: str, emotions: list[str]) -> str:
    key = canonical_emotion(name)
    if key not in emotions:
        raise FerError(f"music config: {where}.{name} is not an emotion the model knows; use one of "
                       f"{', '.join(emotions)} (or list your model's classes under 'emotions')")
    return key


def check_argv(value: Any) -> list[str]:
    """A player argv template: a list of strings with an {item} or {items} placeholder, never a shell string."""
    if isinstance(value, str):
        raise FerError("music config: command.argv must be an argv list such as "
                       "[mpv, --no-video, '{item}'], not a shell string (no shell is ever used)")
    if not isinstance(value, list) or not value or not all(isinstance(a, str) for a in value):
        raise FerError(f"music config: command.argv must be a non-empty list of strings, got {value!r}")
    if not any(p in a for a in value for p in ("{item}", "{items}")):
        raise FerError("music config: command.argv has no '{item}' (or '{items}') placeholder, so the player "
                       "would never get the song; add one, e.g. [mpv, --no-video, '{item}']")
    return list(value)


def validate(config: MusicConfig) -> None:
    """Normalise and check ``config`` in place; FerError names the bad key and the fix."""
    config.strategy = _choice(config.strategy, "strategy", STRATEGIES)
    config.follow = _choice(config.follow, "follow", FOLLOW_MODES)
    config.backend = _choice(config.backend, "backend", BACKENDS)
    if config.follow == "track_id" and (isinstance(config.track_id, bool) or not isinstance(config.track_id, int)):
        raise FerError(f"music config: follow is track_id but track_id is {config.track_id!r}; "
                       "set track_id to the integer id of the face to follow")
    config.min_stable_s = _seconds(config.min_stable_s, "min_stable_s")
    config.cooldown_s = _seconds(config.cooldown_s, "cooldown_s")
    config.no_face.after_s = _seconds(config.no_face.after_s, "no_face.after_s")
    config.no_face.action = _choice(config.no_face.action, "no_face.action", NO_FACE_ACTIONS)
    if not isinstance(config.emotions, list) or not config.emotions:
        raise FerError("music config: emotions must be a non-empty list of the model's class names")
    config.emotions = [canonical_emotion(e) for e in config.emotions]
    config.playlists = _playlists(config.playlists)
    if not isinstance(config.uplift, dict):
        raise FerError("music config: uplift must be a mapping emotion -> playlist name, e.g. uplift: {sad: calm}")
    for k, v in config.uplift.items():
        if not isinstance(v, str):
            raise FerError(f"music config: uplift.{k} must be one playlist name, got {v!r}")
    config.uplift = {_emotion_key(k, "uplift", config.emotions): canonical_emotion(v) for k, v in config.uplift.items()}
    if config.strategy == "match" and not any(e in config.playlists for e in config.emotions):
        raise FerError("music config: strategy is match but no playlist is named after an emotion; name playlists "
                       f"after emotions ({', '.join(config.emotions)}) or use strategy: uplift")
    if config.strategy == "uplift":
        for emotion, target in config.uplift.items():
            if target not in config.playlists:
                raise FerError(f"music config: uplift.{emotion} names playlist {target!r}, which is not under "
                               f"playlists; add a {target!r} playlist or change uplift.{emotion}")
    config.command.argv = check_argv(config.command.argv)
    config.command.pause = _choice(config.command.pause, "command.pause", PAUSE_MODES)
    if not isinstance(config.mpris.player, str):
        raise FerError(f"music config: mpris.player must be a player name string, got {config.mpris.player!r}")


_SECTIONS = {"no_face": NoFaceConfig, "command": CommandConfig, "mpris": MprisConfig}


def _section(cls: type, key: str, value: Any) -> Any:
    if value is None:
        return cls()
    if not isinstance(value, dict):
        raise FerError(f"music config: {key} must be a mapping, got {value!r}")
    known = set(cls.__dataclass_fields__)
    unknown = sorted(set(value) - known)
    if unknown:
        raise FerError(f"music config: unknown key {key}.{unknown[0]}; valid keys are {', '.join(sorted(known))}")
    return cls(**value)


def config_from_dict(data: dict | None) -> MusicConfig:
    """Build a validated MusicConfig from a parsed YAML mapping (missing keys keep their defaults)."""
    data = {} if data is None else data
    if not isinstance(data, dict):
        raise FerError(f"music config: the file must hold a YAML mapping of settings, got {type(data).__name__}")
    known = set(MusicConfig.__dataclass_fields__)
    unknown = sorted(set(data) - known)
    if unknown:
        raise FerError(f"music config: unknown key {unknown[0]!r}; valid keys are {', '.join(sorted(known))}")
    kwargs = {k: (_section(_SECTIONS[k], k, v) if k in _SECTIONS else v) for k, v in data.items()}
    return MusicConfig(**kwargs)


def load_config(path: str | os.PathLike | None = None) -> MusicConfig:
    """Read and validate a music mapping file; None gives the built-in defaults."""
    if path is None:
        return MusicConfig()
    data = read_yaml(path, "music config", "config/music.yaml")
    try:
        return config_from_dict(data)
    except TypeError as exc:  # a wrong-typed value the dataclass could not take
        raise FerError(f"music config {os.fspath(path)!r}: {' '.join(str(exc).split())}; check the file against config/music.yaml") from None
    except FerError as exc:  # one line even when a key of the file holds a line break
        raise FerError(f"{' '.join(str(exc).split())} (in {os.fspath(path)})") from None
