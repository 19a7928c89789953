"""The one reader of YAML settings files (no ROS import).

Every settings file goes through ``read_yaml``: the CLI's ``--config``, fer_node's parameter
file (the launch file and ``load_fer_yaml``) and the music example's mapping file. So a missing,
binary or malformed file gives the same kind of one-line error everywhere, naming the file and
what to do. What each caller then does with the mapping (check names, types, ranges) stays
with the settings it fills.
"""
from __future__ import annotations

import dataclasses
import os
from typing import Any

import yaml

from fer_ros.config import PipelineConfig, flatten
from fer_ros.errors import FerError

NODE_NAME = "fer_node"
# The top-level names of the pipeline's settings; a fer_node parameter file holds the node's own too.
PIPELINE_KEYS = frozenset(f.name for f in dataclasses.fields(PipelineConfig))


def read_yaml(path: str | os.PathLike, what: str, example: str) -> Any:
    """The parsed YAML document of ``path``; FerError in one line when it cannot be read or parsed.

    ``what`` names the file for the user ("settings file"), ``example`` a commented file of the
    right layout ("config/fer.yaml").
    """
    name = os.fspath(path)
    try:
        with open(path, "rb") as f:
            text = f.read().decode("utf-8")
        return yaml.safe_load(text)
    except FileNotFoundError:
        raise FerError(f"cannot read {what} {name}: not found; check the path ({example} is a commented example)") from None
    except OSError as exc:
        raise FerError(f"cannot read {what} {name}: {exc.strerror or exc}; check the path") from None
    except UnicodeDecodeError:
        raise FerError(f"{what} {name} is not text (not UTF-8); give a YAML file such as {example}") from None
    except yaml.YAMLError as exc:
        raise FerError(f"{what} {name} is not valid YAML ({' '.join(str(exc).split())}); fix the syntax") from None


def load_params_file(path: str | os.PathLike, node_name: str = NODE_NAME) -> dict[str, Any]:
    """Flat ``{name: value}`` of a ROS parameter file's entries for ``node_name``.

    Accepts the keys rcl would match for a node of that name in any namespace: ``fer_node``,
    ``/ns/fer_node``, ``/**`` and ``/**/fer_node``; later entries override earlier ones.
    """
    data = read_yaml(path, "parameter file", "config/fer.yaml")
    if not isinstance(data, dict):
        raise FerError(f"{os.fspath(path)} is not a ROS parameter file; expected '{node_name}: ros__parameters: ...'")
    return _node_entries(data, path, node_name)


def read_settings_file(path: str | os.PathLike) -> dict[str, Any]:
    """Flat pipeline settings from a ROS parameter file (config/fer.yaml layout) or a plain nested mapping."""
    data = read_yaml(path, "settings file", "config/fer.yaml")
    if data is None:
        return {}  # an empty file (or only comments) changes nothing
    if not isinstance(data, dict):
        raise FerError(f"settings file {os.fspath(path)} is YAML but not a mapping of settings (it is a "
                       f"{type(data).__name__}); write 'section: {{name: value}}' as in config/fer.yaml")
    if any(isinstance(v, dict) and "ros__parameters" in v for v in data.values()):
        values = _node_entries(data, path, NODE_NAME)  # the fer_node entries, picked like rcl does
        return {k: v for k, v in values.items() if k.split(".")[0] in PIPELINE_KEYS}  # node-only keys dropped
    return flatten(data)


def _node_entries(data: dict, path: str | os.PathLike, node_name: str) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for key, entry in data.items():
        key = str(key)
        if key == "/**" or key.rstrip("/").split("/")[-1] == node_name:
            params = entry.get("ros__parameters") if isinstance(entry, dict) else None
            if not isinstance(params, dict):
                raise FerError(f"{os.fspath(path)}: entry '{key}' has no 'ros__parameters' mapping")
            values.update(flatten(params))
    if not values:
        raise FerError(f"{os.fspath(path)} has no parameters for {node_name}; expected '{node_name}: ros__parameters: ...'")
    return values
