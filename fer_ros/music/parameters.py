"""ROS parameters of the music_controller node, owned by the example (no ROS import).

The node names a mapping file and may override a few of its choices; an empty value (or -1)
keeps what the file says.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

from fer_ros.config import set_setting, setting
from fer_ros.errors import FerError
from fer_ros.music.mapping import BACKENDS, FOLLOW_MODES, STRATEGIES
from fer_ros.parameters.spec import ParamSpec, specs_of


@dataclass
class MusicNodeSettings:
    """Parameters of music_controller: which mapping file, and overrides of its choices ('' = the file's)."""

    config_file: str = setting("", "music mapping YAML (see config/music.yaml); '' = built-in defaults")
    backend: str = setting("", "player backend; '' = the mapping file's", choices=("",) + BACKENDS)
    dry_run: bool = setting(False, "never start a player (log backend)")
    follow: str = setting("", "which face drives the music; '' = the mapping file's", choices=("",) + FOLLOW_MODES)
    strategy: str = setting("", "match or uplift the mood; '' = the mapping file's", choices=("",) + STRATEGIES)
    track_id: int = setting(-1, "face to follow (implies follow=track_id); -1 = the mapping file's", min=-1, max=2**31 - 1)


def music_param_specs() -> list[ParamSpec]:
    """Every parameter music_controller declares."""
    return specs_of(MusicNodeSettings())


def music_settings_from_params(values: Mapping[str, Any]) -> MusicNodeSettings:
    """Validated music_controller settings from its ROS parameter values."""
    settings = MusicNodeSettings()
    specs = {s.name: s for s in music_param_specs()}
    for name, value in values.items():
        if name not in specs:
            raise FerError(f"unknown music_controller parameter '{name}'; known: {', '.join(sorted(specs))}")
        set_setting(settings, name, specs[name].from_ros(value))
    return settings
