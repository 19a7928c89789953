"""Settings of every pipeline stage, in one place.

Each field carries its meaning, unit and valid range in ``metadata``; the ROS node declares its
parameters from these (descriptor, range, whether it may change live), `config/fer.yaml` mirrors
them, and ``validate`` rejects bad values with a message that names the field and the range.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any

from fer_ros.errors import FerError


def setting(default: Any, help: str, *, min: float | None = None, max: float | None = None,
            choices: tuple | None = None, live: bool = False) -> Any:
    """A dataclass field with its documentation and bounds (``live``: safe to change while running)."""
    meta = {"help": help, "min": min, "max": max, "choices": choices, "live": live}
    if isinstance(default, (list, dict)):
        return field(default_factory=lambda: type(default)(default), metadata=meta)
    return field(default=default, metadata=meta)


@dataclass
class DetectorConfig:
    device: str = setting("auto", "torch device for face detection (and for the classifier unless classifier.device is set): "
                                  "auto (CUDA when available), cpu, cuda or cuda:N")
    min_face_size: int = setting(40, "smallest face to find, in pixels of the full frame", min=8, max=1000, live=True)
    thresholds: list = setting([0.6, 0.7, 0.8], "MTCNN P-, R- and O-net score thresholds, each in [0, 1]", min=0.0, max=1.0)
    min_score: float = setting(0.9, "drop detections whose final score is below this", min=0.0, max=1.0, live=True)
    downscale: float = setting(1.0, "detect on the frame shrunk by this factor (1 = full size, 2 = half); boxes are mapped back", min=1.0, max=8.0, live=True)
    scale_factor: float = setting(0.709, "MTCNN image pyramid step", min=0.3, max=0.95, live=True)
    runtime: str = setting("auto", "what runs MTCNN's networks on a CPU: onnxruntime (the faster one: docs/performance.md), "
                                   "torch, or auto (onnxruntime when installed, else torch)",
                           choices=("auto", "torch", "onnxruntime"))
    background_lag: int = setting(4, "run the full-frame detection on a second thread while tracked faces are refreshed; its new "
                                     "faces join this many frames after it started (a fixed frame, so runs are repeatable); "
                                     "0 = run it on the frame itself", min=0, max=100, live=True)


@dataclass
class AlignConfig:
    use_landmarks: bool = setting(True, "similarity-align on the 5 landmarks; False always uses the expanded box crop", live=True)
    box_margin: float = setting(0.0, "fallback crop: grow the detector box by this fraction on each side (0 frames faces like FER2013)", min=0.0, max=1.0, live=True)
    template_scale: float = setting(1.0, "zoom of the landmark template (>1 crops tighter)", min=0.5, max=2.0, live=True)


@dataclass
class TrackerConfig:
    iou_threshold: float = setting(0.3, "smallest box IoU that continues a track", min=0.0, max=1.0, live=True)
    max_missed: int = setting(5, "detection rounds a track may miss before it ends (with tracker.refine every frame is a round)", min=0, max=1000, live=True)
    refine: bool = setting(True, "refresh every tracked face on every frame with MTCNN's R-Net and O-Net on a window around "
                                 "its predicted box (fresh box, landmarks and score, far cheaper than a full detection); false = carry the "
                                 "last detected box between full detections", live=True)
    max_jump: float = setting(1.0, "fast faces: a track IoU could not match takes an unmatched face of similar size whose "
                                   "centre is within this many face widths of the predicted one (0 = IoU only)",
                              min=0.0, max=10.0, live=True)


@dataclass
class SmootherConfig:
    method: str = setting("ema", "temporal smoothing of probabilities: ema or window (moving average)", choices=("ema", "window"), live=True)
    window: float = setting(0.2, "smoothing time constant (ema) or window length (window), in seconds", min=0.0, max=60.0, live=True)
    confidence_threshold: float = setting(0.4, "below this smoothed probability the label is 'uncertain' (how often faces on each side of it are right: docs/model_cards.md)", min=0.0, max=1.0, live=True)
    hysteresis: float = setting(0.3, "seconds a new emotion must dominate before the published label changes", min=0.0, max=60.0, live=True)


@dataclass
class AnnotateConfig:
    show_probabilities: bool = setting(True, "draw a per-face probability bar chart", live=True)
    show_attention: bool = setting(False, "overlay the model's spatial attention map on each face", live=True)
    show_landmarks: bool = setting(True, "draw the 5 landmarks", live=True)
    explain: bool = setting(False, "overlay a Grad-CAM heat map of each face's label: the regions that drove it (an extra "
                                   "forward and backward pass per face and model while drawing; PyTorch models only)", live=True)


@dataclass
class ClassifierConfig:
    weights: list = setting([], "checkpoint files or bundled model names (fer2013, ferplus); empty = ferplus; several = an ensemble")
    fusion: str = setting("sum", "ensemble fusion rule: sum (mean of probabilities) or product (normalised product)", choices=("sum", "product"))
    half: bool = setting(False, "half precision on CUDA")
    mirror: str = setting("auto", "also classify each face mirrored and average the two (test-time augmentation, a second "
                                  "classifier pass per face): auto = as each checkpoint says (training decides it on the "
                                  "model's validation faces; what each bundled model does: docs/model_cards.md), "
                                  "true / false = every model / none", choices=("auto", "true", "false"))
    runtime: str = setting("auto", "what runs the network on a CPU: onnxruntime (the faster one: docs/performance.md), torch (TorchScript), "
                                   "or auto (onnxruntime when installed and the network exports, else torch)",
                           choices=("auto", "torch", "onnxruntime"))
    precision: str = setting("auto", "number format of the network on ONNX Runtime: int8 (8-bit convolutions from the "
                                     "activation ranges the checkpoint carries; the faster one: docs/performance.md), fp32, "
                                     "or auto (int8 when the checkpoint carries ranges and ONNX Runtime runs it, else fp32)",
                             choices=("auto", "fp32", "int8"))
    device: str = setting("", "torch device for the classifier: auto, cpu, cuda or cuda:N; empty = the same as detector.device")
    threads: int = setting(0, "torch CPU threads of the process (set by the command or node that builds the pipeline); "
                              "0 = leave torch's default", min=0, max=256)


@dataclass
class PipelineConfig:
    detector: DetectorConfig = field(default_factory=DetectorConfig)
    align: AlignConfig = field(default_factory=AlignConfig)
    classifier: ClassifierConfig = field(default_factory=ClassifierConfig)
    tracker: TrackerConfig = field(default_factory=TrackerConfig)
    smoother: SmootherConfig = field(default_factory=SmootherConfig)
    annotate: AnnotateConfig = field(default_factory=AnnotateConfig)
    detect_every: int = setting(5, "run the full-frame detector every N frames (and on the frame after a tracked face is lost); "
                                   "in between, tracked faces are refreshed (tracker.refine) or carried", min=1, max=100, live=True)

    def validate(self) -> "PipelineConfig":
        """Check (and coerce) every setting, also ones assigned directly in Python; FerError names the first bad one."""
        for path, value, _ in list(iter_settings(self)):
            set_setting(self, path, value)
        if len(self.detector.thresholds) != 3:
            raise FerError(f"detector.thresholds must be three numbers in [0, 1], e.g. 0.6,0.7,0.8; got {self.detector.thresholds}")
        for name in ("detector.device", "classifier.device"):
            check_device_name(name, get_setting(self, name), allow_empty=name == "classifier.device")
        return self

    @classmethod
    def from_dict(cls, values: dict) -> "PipelineConfig":
        """Build from a nested dict such as config/fer.yaml's; unknown keys are errors."""
        config = cls()
        for key, value in flatten(values).items():
            set_setting(config, key, value)
        return config.validate()


def iter_settings(config: Any, prefix: str = ""):
    """Yield (dotted.name, value, dataclass field) for every leaf setting."""
    for f in dataclasses.fields(config):
        value = getattr(config, f.name)
        name = f"{prefix}{f.name}"
        if dataclasses.is_dataclass(value):
            yield from iter_settings(value, name + ".")
        else:
            yield name, value, f


def check_device_name(name: str, value: str, allow_empty: bool = False) -> None:
    """The spelling of a device setting (auto, cpu, cuda, cuda:N); whether it exists is checked when it is used."""
    v = value.strip().lower()
    if v in ("auto", "cpu", "cuda") or (allow_empty and not v):
        return
    if v.startswith("cuda:") and v[5:].isdigit():
        return
    raise FerError(f"unknown device {value!r} for setting '{name}'; use auto, cpu, cuda or cuda:N{' (or empty)' if allow_empty else ''}")


def get_setting(config: Any, dotted: str) -> Any:
    for part in dotted.split("."):
        config = getattr(config, part)
    return config


def get_field(config: Any, dotted: str) -> dataclasses.Field:
    *parents, leaf = dotted.split(".")
    for p in parents:
        config = getattr(config, p)
    return {f.name: f for f in dataclasses.fields(config)}[leaf]


def set_setting(config: Any, dotted: str, value: Any) -> None:
    """Set ``config.<dotted>`` after checking name, type and range."""
    known = {name: f for name, _, f in iter_settings(config)}
    if dotted not in known:
        inside = sorted(n for n in known if n.startswith(dotted + "."))
        if inside:  # e.g. `detector: 5` in a YAML file, or --set detector=5
            leaves = [n[len(dotted) + 1:] for n in inside]
            raise FerError(f"unknown setting {dotted!r}: it is a section, so it cannot be {value!r}; give one of its settings "
                           f"({', '.join(leaves)}), in YAML as '{dotted}: {{{leaves[0]}: ...}}' or as --set {inside[0]}=...")
        raise FerError(f"unknown setting {dotted!r}; known settings: {', '.join(sorted(known))}")
    current = config
    *parents, leaf = dotted.split(".")
    for p in parents:
        current = getattr(current, p)
    old = getattr(current, leaf)
    value = _coerce(dotted, old, value, known[dotted])
    _check(dotted, value, known[dotted])
    setattr(current, leaf, value)


def flatten(values: dict, prefix: str = "") -> dict:
    """``{"a": {"b": 1}}`` -> ``{"a.b": 1}``; FerError when ``values`` is not a mapping."""
    if values is None:
        return {}
    if not isinstance(values, dict):
        raise FerError(f"settings must be a mapping of names to values{' under ' + prefix[:-1] if prefix else ''}, "
                       f"got a {type(values).__name__}")
    out = {}
    for key, value in values.items():
        if isinstance(value, dict):
            out.update(flatten(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def _coerce(name: str, old: Any, value: Any, f: dataclasses.Field) -> Any:
    """``value`` (from YAML, a ROS parameter or ``--set``) as the type of the setting's current value ``old``."""
    try:
        if isinstance(old, list):
            default = f.default_factory() if f.default_factory is not dataclasses.MISSING else []
            return _coerce_list(type(default[0]) if default else str, value)
        return _coerce_scalar(old, value)
    except (TypeError, ValueError, OverflowError):
        raise FerError(f"setting '{name}' expects a {_kind(old)}, got {value!r}") from None


def _coerce_scalar(old: Any, value: Any) -> Any:
    if isinstance(old, bool):
        if isinstance(value, str):
            if value.strip().lower() in ("true", "1", "yes", "on"):
                return True
            if value.strip().lower() in ("false", "0", "no", "off"):
                return False
        elif isinstance(value, (bool, int)) and value in (0, 1):
            return bool(value)
        raise ValueError(value)
    if isinstance(old, (int, float)):
        if isinstance(value, bool) or not isinstance(value, (int, float, str)):
            raise TypeError(value)  # True is not a number here, nor is a list
        number = float(value)
        if not math.isfinite(number):
            raise ValueError(value)
        if isinstance(old, int):
            if not number.is_integer():
                raise ValueError(value)
            return int(number)
        return number
    if isinstance(value, (list, dict, tuple, set)):
        raise TypeError(value)
    if isinstance(value, bool):  # YAML's and ROS's true for a setting such as classifier.mirror (auto/true/false)
        return "true" if value else "false"
    return str(value)


def _coerce_list(element: type, value: Any) -> list:
    """A list setting from a list, or from one comma-separated string ("0.6,0.7,0.8" or "a.pt, b.pt")."""
    if isinstance(value, str):
        value = [v.strip() for v in value.split(",") if v.strip()]
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        value = [value]
    elif isinstance(value, (dict, bool, str, bytes)) or not hasattr(value, "__iter__"):
        raise TypeError(value)
    value = list(value)
    if any(isinstance(v, (list, tuple, dict, set)) or v is None for v in value):
        raise TypeError(value)
    return [str(v) if element is str else _coerce_scalar(element(), v) for v in value]


def _kind(old: Any) -> str:
    if isinstance(old, list):
        return "comma-separated list" if not old or isinstance(old[0], str) else "list of numbers, e.g. 0.6,0.7,0.8"
    return {bool: "bool (true or false)", int: "whole number", float: "number", str: "string"}.get(type(old), type(old).__name__)


def _check(name: str, value: Any, f: dataclasses.Field) -> None:
    """Choices and range (of each element, for a list setting)."""
    meta = f.metadata
    lo, hi, choices = meta.get("min"), meta.get("max"), meta.get("choices")
    if choices and value not in choices:
        raise FerError(f"setting '{name}' must be one of {', '.join(choices)}; got {value!r}")
    for v in value if isinstance(value, list) else [value]:
        if lo is not None and v < lo or hi is not None and v > hi:
            raise FerError(f"setting '{name}' must be in [{lo}, {hi}]{' (each value)' if isinstance(value, list) else ''}; got {value!r}")
