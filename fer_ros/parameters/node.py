"""ROS parameters of fer_node, derived from the settings dataclasses (no ROS import).

Every field of ``fer_ros.config.PipelineConfig`` becomes a parameter named by its dotted path
(``detector.min_face_size``), and the node's own settings (``NodeSettings``) become top-level
parameters. Help text, range, choices and whether a setting may change live all come from the
field metadata, so the node's descriptors, ``config/fer.yaml`` and validation cannot drift apart.

List settings map to ROS types that rcl can type without a value: lists of numbers are double
arrays; lists of strings (``classifier.weights``) are one comma-separated string, because an
empty list has no type in a ROS parameter file.

``python -m fer_ros.parameters.node`` prints the commented ``config/fer.yaml``.
"""
from __future__ import annotations

import copy
import os
import sys
from dataclasses import dataclass
from typing import Any, Mapping

from fer_ros.config import PipelineConfig, iter_settings, set_setting, setting
from fer_ros.errors import FerError
from fer_ros.parameters.files import NODE_NAME, load_params_file
from fer_ros.parameters.spec import ParamSpec, specs_of, yaml_value

# Parameters rclpy gives every node (QoS overrides of its publishers, the simulated clock): a
# fer_node parameter file may hold them; they are passed on to the node and not checked here.
ROS_STANDARD = ("use_sim_time", "start_type_description_service")
ROS_STANDARD_PREFIXES = ("qos_overrides.",)

# One-line comments for the sections of config/fer.yaml.
SECTION_HELP = {
    "detector": "face detection (MTCNN)",
    "align": "face crop for the classifier",
    "classifier": "expression classifier (AMS-CNN checkpoints)",
    "tracker": "IoU tracker that keeps face ids across frames",
    "smoother": "temporal smoothing, confidence threshold and hysteresis of labels",
    "annotate": "drawing of the ~/annotated image",
}


@dataclass
class NodeSettings:
    """Settings of the ROS node itself (topics, outputs, diagnostics thresholds)."""

    image_topic: str = setting("/camera/image_raw", "camera topic of sensor_msgs/Image; with compressed=true the node subscribes to <image_topic>/compressed")
    compressed: bool = setting(False, "subscribe to sensor_msgs/CompressedImage (jpeg or png) on <image_topic>/compressed instead of raw images")
    camera_qos: str = setting("auto", "reliability of the camera subscription: auto matches the publishers (reliable when all of them are, else best effort; re-checked every second), or force reliable or best_effort", choices=("auto", "reliable", "best_effort"))
    publish_annotated: bool = setting(True, "publish the annotated image on ~/annotated (drawn only while somebody subscribes)", live=True)
    diagnostics_period: float = setting(1.0, "seconds between two /diagnostics messages", min=0.1, max=60.0)
    warn_latency_ms: float = setting(250.0, "mean latency from image arrival to /emotions above which diagnostics report WARN, in milliseconds", min=0.0, max=60000.0, live=True)
    error_latency_ms: float = setting(1000.0, "mean latency from image arrival to /emotions above which diagnostics report ERROR, in milliseconds", min=0.0, max=60000.0, live=True)
    warn_fps: float = setting(2.0, "processing rate below which diagnostics report WARN, in frames per second (0 = never)", min=0.0, max=1000.0, live=True)
    ros4hri: bool = setting(False, "also publish the ROS4HRI (REP-155) face topics under /humans/faces/ (tracked ids, roi, aligned face, landmarks, expression); needs the hri_msgs package")
    ros4hri_input: bool = setting(False, "classify the faces another ROS4HRI detector publishes on /humans/faces/<id>/aligned (ids from /humans/faces/tracked) instead of detecting faces in image_topic; publishes /humans/faces/<id>/expression; needs the hri_msgs package")

    def validate(self) -> "NodeSettings":
        for name, value, _ in iter_settings(self):
            set_setting(self, name, value)  # re-set to run the type and range checks
        if not self.image_topic.strip():
            raise FerError("image_topic is empty; set it to the camera topic, e.g. /camera/image_raw")
        if self.ros4hri and self.ros4hri_input:
            raise FerError("ros4hri and ros4hri_input cannot both be true: with ros4hri_input the other detector publishes "
                           "the /humans/faces/ topics and fer_node adds the expressions; set ros4hri:=false")
        if self.error_latency_ms < self.warn_latency_ms:
            raise FerError(f"error_latency_ms ({self.error_latency_ms}) must be >= warn_latency_ms ({self.warn_latency_ms})")
        return self


def pipeline_param_specs(config: PipelineConfig | None = None) -> list[ParamSpec]:
    """Parameters for every pipeline setting, defaults taken from ``config`` (or the built-in ones)."""
    return specs_of(config if config is not None else PipelineConfig())


def node_param_specs(settings: NodeSettings | None = None) -> list[ParamSpec]:
    return specs_of(settings if settings is not None else NodeSettings())


def param_specs() -> list[ParamSpec]:
    """Every parameter fer_node declares: the node's own first, then the pipeline's."""
    return node_param_specs() + pipeline_param_specs()


def settings_from_params(values: Mapping[str, Any]) -> tuple[PipelineConfig, NodeSettings]:
    """Validated configs from flat ROS parameter values; names not given keep their defaults."""
    pipeline, node = PipelineConfig(), NodeSettings()
    _apply(pipeline, node, values)
    return pipeline.validate(), node.validate()


def apply_params(pipeline: PipelineConfig, node: NodeSettings, values: Mapping[str, Any]) -> None:
    """Apply live parameter changes in place, all or nothing.

    The changes are first applied to copies and validated, so an invalid value leaves the
    running configuration untouched. In place, because pipeline stages hold references to
    their config objects and read them on every frame.
    """
    trial_pipeline, trial_node = copy.deepcopy(pipeline), copy.deepcopy(node)
    _apply(trial_pipeline, trial_node, values)
    trial_pipeline.validate()
    trial_node.validate()
    _apply(pipeline, node, values)


def _apply(pipeline: PipelineConfig, node: NodeSettings, values: Mapping[str, Any]) -> None:
    specs = {s.name: (s, pipeline) for s in pipeline_param_specs()}
    specs.update({s.name: (s, node) for s in node_param_specs()})
    for name, value in values.items():
        if name not in specs and is_ros_standard(name):
            continue
        if name not in specs:
            raise FerError(f"unknown fer_node parameter '{name}'; known: {', '.join(sorted(specs))}")
        spec, target = specs[name]
        set_setting(target, name, spec.from_ros(value))


def is_ros_standard(name: str) -> bool:
    """Whether ``name`` is a parameter rclpy declares itself (``use_sim_time``, ``qos_overrides.*``)."""
    return name in ROS_STANDARD or name.startswith(ROS_STANDARD_PREFIXES)


def load_fer_yaml(path: str | os.PathLike) -> tuple[PipelineConfig, NodeSettings]:
    """Read config/fer.yaml (or a user copy) into validated configs."""
    try:
        return settings_from_params(load_params_file(path))
    except FerError as exc:
        raise FerError(f"{path}: {exc}") from None


def param_arguments(values: Mapping[str, Any]) -> list[str]:
    """``-p name:=value`` command-line arguments for ROS parameter values, typed as they are.

    What fer.launch.py hands the node instead of a parameter file: nothing to write or clean
    up, and ``-p`` applies to the node in any namespace.
    """
    arguments: list[str] = []
    for name, value in values.items():
        arguments += ["-p", f"{name}:={yaml_value(value)}"]
    return arguments


def nest(values: Mapping[str, Any]) -> dict[str, Any]:
    """``{"a.b": 1}`` -> ``{"a": {"b": 1}}``, the layout of ROS parameter files."""
    out: dict[str, Any] = {}
    for name, value in values.items():
        *parents, leaf = name.split(".")
        node = out
        for p in parents:
            node = node.setdefault(p, {})
        node[leaf] = value
    return out


def render_params_yaml(node_name: str = NODE_NAME) -> str:
    """The commented parameter file: every parameter with its default, meaning, unit and range."""
    lines = [
        f"# Parameters of {node_name}: every setting of the node and of its pipeline, at its default.",
        "# Generated from the settings in fer_ros/config.py and fer_ros/parameters/node.py:",
        "#   python -m fer_ros.parameters.node > config/fer.yaml",
        "# 'live' settings can be changed while running, e.g.",
        f"#   ros2 param set /{node_name} smoother.hysteresis 1.0",
        "# the others are read once at start-up.",
        f"{node_name}:",
        "  ros__parameters:",
    ]
    section = None
    for spec in param_specs():
        *parents, leaf = spec.name.split(".")
        group = ".".join(parents) or None
        if group != section and group is not None:
            indent = "    " + "  " * (len(parents) - 1)
            lines.append(f"{indent}{parents[-1]}:  # {SECTION_HELP.get(group, group)}")
        section = group
        indent = "    " + "  " * len(parents)
        lines.append(f"{indent}{leaf}: {yaml_value(spec.default)}  # {spec.description}")
    return "\n".join(lines) + "\n"


def main() -> int:
    sys.stdout.write(render_params_yaml())
    return 0


if __name__ == "__main__":
    sys.exit(main())
