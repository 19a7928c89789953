"""One ROS parameter described from a settings dataclass field (no ROS import).

``ParamSpec`` carries a setting's ROS type, default, help, range and liveness, and converts
values between the config dataclasses and ROS: lists of numbers are double arrays, lists of
strings (``classifier.weights``) one comma-separated string, because an empty list has no type
in a ROS parameter file. ``yaml_value`` writes a value so that rcl reads back the same type.
"""
from __future__ import annotations

import array
import dataclasses
import json
from dataclasses import dataclass
from typing import Any

from fer_ros.config import iter_settings

LIST_SEPARATOR = ","


@dataclass(frozen=True)
class ParamSpec:
    """One declared ROS parameter: name, default (as a ROS value) and its documentation."""

    name: str  # dotted path, e.g. "smoother.hysteresis"
    default: Any  # ROS value: bool, int, float, str or list[float]
    kind: str  # bool | int | float | str | float_list | str_list (a comma-separated string in ROS)
    help: str
    min: float | None
    max: float | None
    choices: tuple | None
    live: bool  # may change while the node runs; otherwise read-only

    @property
    def description(self) -> str:
        """The help text plus what a user needs to type a valid value."""
        extra = []
        if self.kind == "str_list":
            extra.append("comma-separated list")
        if self.choices:
            extra.append("one of: " + ", ".join("''" if c == "" else str(c) for c in self.choices))
        if self.min is not None or self.max is not None:
            extra.append(f"range {self.min}..{self.max}")
        extra.append("live" if self.live else "read-only, set at start-up")
        return f"{self.help} ({'; '.join(extra)})"

    def accepts(self, value: Any) -> bool:
        """Whether ``value`` has this parameter's ROS type (rclpy checks it too; this does not rely on the order)."""
        if self.kind == "float_list":
            return isinstance(value, (list, tuple, array.array))  # rclpy gives array.array for double arrays
        expected = {"bool": bool, "int": int, "float": float, "str": str, "str_list": str}[self.kind]
        return isinstance(value, expected) and (expected is bool or not isinstance(value, bool))

    def to_ros(self, value: Any) -> Any:
        """Config (or YAML) value -> the value of this ROS parameter's type."""
        if self.kind == "str_list":
            return value if isinstance(value, str) else LIST_SEPARATOR.join(str(v) for v in value)
        if self.kind == "float_list":
            return [float(v) for v in value]
        if self.kind == "float" and isinstance(value, int) and not isinstance(value, bool):
            return float(value)
        if self.kind == "str" and isinstance(value, bool):  # `classifier.mirror: true` in a YAML file
            return "true" if value else "false"
        return value

    def from_ros(self, value: Any) -> Any:
        """ROS parameter value -> the config field's value (not yet range-checked)."""
        if self.kind == "str_list":
            items = value.split(LIST_SEPARATOR) if isinstance(value, str) else [str(v) for v in value]
            return [v.strip() for v in items if v.strip()]
        if self.kind == "float_list":
            return [float(v) for v in value]
        return value


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float"
    if isinstance(value, (list, tuple)):
        numeric = value and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value)
        return "float_list" if numeric else "str_list"
    return "str"


def specs_of(config: Any) -> list[ParamSpec]:
    specs = []
    for name, value, f in iter_settings(config):
        meta = f.metadata
        spec = ParamSpec(name=name, default=None, kind=_kind(value), help=meta.get("help", ""),
                         min=meta.get("min"), max=meta.get("max"), choices=meta.get("choices"),
                         live=bool(meta.get("live")))
        specs.append(dataclasses.replace(spec, default=spec.to_ros(value)))
    return specs


def yaml_value(value: Any) -> str:
    """A ROS value as YAML that rcl types back to the same ROS type (parameter files, ``-p name:=value``)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        text = repr(value)  # always has a "." or an exponent, so rcl types it as a double
        return text.replace("e", ".0e") if "e" in text and "." not in text else text
    if isinstance(value, list):
        return "[" + ", ".join(yaml_value(v) for v in value) + "]"
    return json.dumps(str(value))
