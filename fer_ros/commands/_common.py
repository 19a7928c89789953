"""Options shared by the commands that build a FramePipeline (detect, demo, replay, bench)."""
from __future__ import annotations

import yaml

from fer_ros.config import PipelineConfig
from fer_ros.device import set_torch_threads
from fer_ros.errors import FerError
from fer_ros.parameters.files import read_settings_file


def add_pipeline_options(p) -> None:
    p.add_argument("--config", default=None, help="YAML settings file (config/fer.yaml layout or plain nested keys)")
    p.add_argument("--weights", action="append", default=None, help="checkpoint; repeat for an ensemble (default: bundled)")
    p.add_argument("--device", default=None, help="auto | cpu | cuda | cuda:N")
    p.add_argument("--detect-every", type=int, default=None, help="run the detector every N frames")
    p.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                   help="any pipeline setting, e.g. --set smoother.hysteresis=1.0 (repeatable)")


def pipeline_config(args) -> PipelineConfig:
    """Settings from --config, then --set, then the dedicated flags (later ones win); validated."""
    values = read_settings_file(args.config) if args.config else {}
    values.update(parse_set_option(item) for item in args.set)
    if args.weights:
        values["classifier.weights"] = list(args.weights)
    if args.device:
        values["detector.device"] = args.device
    if args.detect_every is not None:
        values["detect_every"] = args.detect_every
    return PipelineConfig.from_dict(values)


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
