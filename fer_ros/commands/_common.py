"""Options shared by the commands that build a FramePipeline (detect, demo, replay, bench)."""
from __future__ import annotations

import yaml

from fer_ros.config import PipelineConfig, flatten, set_setting
from fer_ros.errors import FerError


def add_pipeline_options(p) -> None:
    p.add_argument("--config", default=None, help="YAML settings file (config/fer.yaml layout or plain nested keys)")
    p.add_argument("--weights", action="append", default=None, help="checkpoint; repeat for an ensemble (default: bundled)")
    p.add_argument("--device", default=None, help="auto | cpu | cuda | cuda:N")
    p.add_argument("--detect-every", type=int, default=None, help="run the detector every N frames")
    p.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                   help="any pipeline setting, e.g. --set smoother.hysteresis=1.0 (repeatable)")


def pipeline_config(args) -> PipelineConfig:
    """Settings from --config, then --set, then the dedicated flags; validated."""
    config = PipelineConfig()
    if args.config:
        for name, value in flatten(read_settings_file(args.config)).items():
            set_setting(config, name, value)
    for item in args.set:
        if "=" not in item:
            raise FerError(f"--set expects NAME=VALUE, got '{item}'")
        name, value = item.split("=", 1)
        set_setting(config, name.strip(), yaml.safe_load(value))
    if args.weights:
        config.classifier.weights = list(args.weights)
    if args.device:
        config.detector.device = args.device
    if args.detect_every:
        set_setting(config, "detect_every", args.detect_every)
    return config.validate()


def read_settings_file(path: str) -> dict:
    """Plain nested settings, or a ROS params file (``fer_node: ros__parameters: {...}``)."""
    try:
        with open(path) as fh:
            data = yaml.safe_load(fh) or {}
    except OSError as exc:
        raise FerError(f"cannot read settings file '{path}': {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise FerError(f"settings file '{path}' is not valid YAML: {str(exc).splitlines()[0]}") from None
    if not isinstance(data, dict):
        raise FerError(f"settings file '{path}' must hold a mapping of settings")
    for value in data.values():  # ROS layout: node_name -> ros__parameters -> settings
        if isinstance(value, dict) and "ros__parameters" in value:
            return {k: v for k, v in value["ros__parameters"].items() if k in PIPELINE_KEYS}  # node-only keys dropped
    return data


PIPELINE_KEYS = {"detector", "align", "classifier", "tracker", "smoother", "annotate", "detect_every"}
