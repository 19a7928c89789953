"""Options shared by the commands that build a FramePipeline (detect, demo, replay, bench)."""
from __future__ import annotations

from pathlib import Path

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
        set_setting(config, *parse_set_option(item))
    if args.weights:
        config.classifier.weights = list(args.weights)
    if args.device:
        config.detector.device = args.device
    if args.detect_every is not None:
        set_setting(config, "detect_every", args.detect_every)
    return config.validate()


def build_pipeline(config: PipelineConfig):
    """The command's pipeline, after the process-wide torch thread count (``classifier.threads``) is set."""
    from fer_ros.pipeline import FramePipeline  # torch and the models load here, after the arguments are checked

    set_torch_threads(config.classifier.threads)
    return FramePipeline(config)


def parse_set_option(item: str) -> tuple[str, object]:
    """``NAME=VALUE`` of ``--set``; VALUE is read as YAML (``1.0``, ``true``, ``[a, b]``), else kept as text."""
    name, sep, text = item.partition("=")
    if not sep or not name.strip():
        raise FerError(f"--set expects NAME=VALUE, e.g. --set smoother.hysteresis=1.0; got {item!r}")
    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError:
        value = text  # e.g. "[0.6" : the setting's own check names what is wrong with it
    return name.strip(), text if value is None else value


def read_settings_file(path: str) -> dict:
    """Flat settings from a ROS params file (config/fer.yaml layout) or a plain nested YAML mapping."""
    try:
        data = yaml.safe_load(Path(path).read_bytes().decode("utf-8"))
    except OSError as exc:
        raise FerError(f"cannot read settings file {path}: {exc.strerror or exc}; check the --config path") from None
    except UnicodeDecodeError:
        raise FerError(f"settings file {path} is not text (not UTF-8); give a YAML file such as config/fer.yaml") from None
    except yaml.YAMLError as exc:
        raise FerError(f"settings file {path} is not valid YAML: {' '.join(str(exc).split())}") from None
    if data is None:
        return {}  # an empty file (or only comments) changes nothing
    if not isinstance(data, dict):
        raise FerError(f"settings file {path} is YAML but not a mapping of settings (it is a {type(data).__name__}); "
                       "write 'section: {name: value}' as in config/fer.yaml")
    if any(isinstance(v, dict) and "ros__parameters" in v for v in data.values()):
        values = load_params_file(path)  # names unreadable entries; picks the fer_node entries like rcl does
        return {k: v for k, v in values.items() if k.split(".")[0] in PIPELINE_KEYS}  # node-only keys dropped
    return flatten(data)


PIPELINE_KEYS = {"detector", "align", "classifier", "tracker", "smoother", "annotate", "detect_every"}
