"""Options shared by the commands that build a FramePipeline (detect, demo, replay, bench)."""
from __future__ import annotations

import yaml

from fer_ros.config import PipelineConfig, flatten, set_setting
from fer_ros.device import set_torch_threads
from fer_ros.errors import FerError
from fer_ros.ros.params import load_params_file


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
        for name, value in read_settings_file(args.config).items():
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


def build_pipeline(config: PipelineConfig):
    """The command's pipeline, after the process-wide torch thread count (``classifier.threads``) is set."""
    from fer_ros.pipeline import FramePipeline  # torch and the models load here, after the arguments are checked

    set_torch_threads(config.classifier.threads)
    return FramePipeline(config)


def read_settings_file(path: str) -> dict:
    """Flat settings from a ROS params file (config/fer.yaml layout) or a plain nested YAML file."""
    try:
        values = load_params_file(path)  # also names unreadable or invalid files
    except FerError as exc:
        if "no parameters for" not in str(exc) and "is not a ROS parameter file" not in str(exc):
            raise
        return flatten(yaml.safe_load(open(path)) or {})
    return {k: v for k, v in values.items() if k.split(".")[0] in PIPELINE_KEYS}  # node-only keys dropped


PIPELINE_KEYS = {"detector", "align", "classifier", "tracker", "smoother", "annotate", "detect_every"}
