"""Settings of every pipeline stage, in one place.

Each field carries its meaning, unit and valid range in ``metadata``; the ROS node declares its
parameters from these (descriptor, range, whether it may change live), `config/fer.yaml` mirrors
them, and ``validate`` rejects bad values with a message that names the field and the range.
"""
from __future__ import annotations

import dataclasses
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
    device: str = setting("auto", "torch device for detection and classification: auto (CUDA when available), cpu, cuda or cuda:N")
    min_face_size: int = setting(40, "smallest face to find, in pixels of the full frame", min=8, max=1000)
    thresholds: list = setting([0.6, 0.7, 0.8], "MTCNN P-, R- and O-net score thresholds, each in [0, 1]")
    min_score: float = setting(0.9, "drop detections whose final score is below this", min=0.0, max=1.0, live=True)
    downscale: float = setting(1.0, "detect on the frame shrunk by this factor (1 = full size, 2 = half); boxes are mapped back", min=1.0, max=8.0)
    scale_factor: float = setting(0.709, "MTCNN image pyramid step", min=0.3, max=0.95)


@dataclass
class AlignConfig:
    use_landmarks: bool = setting(True, "similarity-align on the 5 landmarks; False always uses the expanded box crop")
    box_margin: float = setting(0.0, "fallback crop: grow the detector box by this fraction on each side (0 frames faces like FER2013)", min=0.0, max=1.0)
    template_scale: float = setting(1.0, "zoom of the landmark template (>1 crops tighter)", min=0.5, max=2.0)


@dataclass
class TrackerConfig:
    iou_threshold: float = setting(0.3, "smallest box IoU that continues a track", min=0.0, max=1.0, live=True)
    max_missed: int = setting(5, "detection rounds a track may miss before it ends", min=0, max=1000, live=True)
    max_jump: float = setting(1.0, "fast faces: a track IoU could not match takes an unmatched face of similar size whose "
                                   "centre is within this many face widths of the predicted one (0 = IoU only)",
                              min=0.0, max=10.0, live=True)


@dataclass
class SmootherConfig:
    method: str = setting("ema", "temporal smoothing of probabilities: ema or window (moving average)", choices=("ema", "window"), live=True)
    window: float = setting(1.0, "smoothing time constant (ema) or window length (window), in seconds", min=0.0, max=60.0, live=True)
    confidence_threshold: float = setting(0.4, "below this smoothed probability the label is 'uncertain'", min=0.0, max=1.0, live=True)
    hysteresis: float = setting(0.5, "seconds a new emotion must dominate before the published label changes", min=0.0, max=60.0, live=True)


@dataclass
class AnnotateConfig:
    show_probabilities: bool = setting(True, "draw a per-face probability bar chart", live=True)
    show_attention: bool = setting(False, "overlay the model's spatial attention map on each face", live=True)
    show_landmarks: bool = setting(True, "draw the 5 landmarks", live=True)


@dataclass
class ClassifierConfig:
    weights: list = setting([], "checkpoint files or bundled model names (fer2013, ferplus); empty = fer2013; several = an ensemble")
    fusion: str = setting("sum", "ensemble fusion rule: sum (mean of probabilities) or product (normalised product)", choices=("sum", "product"))
    half: bool = setting(False, "half precision on CUDA")
    mirror: bool = setting(False, "also classify each face mirrored and average the two (test-time augmentation; "
                                  "twice the classifier work)")
    threads: int = setting(0, "torch CPU threads; 0 = leave torch's default", min=0, max=256)


@dataclass
class PipelineConfig:
    detector: DetectorConfig = field(default_factory=DetectorConfig)
    align: AlignConfig = field(default_factory=AlignConfig)
    classifier: ClassifierConfig = field(default_factory=ClassifierConfig)
    tracker: TrackerConfig = field(default_factory=TrackerConfig)
    smoother: SmootherConfig = field(default_factory=SmootherConfig)
    annotate: AnnotateConfig = field(default_factory=AnnotateConfig)
    detect_every: int = setting(1, "run the detector every N frames; the tracker carries boxes in between", min=1, max=100, live=True)

    def validate(self) -> "PipelineConfig":
        for path, value, f in iter_settings(self):
            _check(path, value, f)
        if len(self.detector.thresholds) != 3 or not all(0.0 <= t <= 1.0 for t in self.detector.thresholds):
            raise FerError(f"detector.thresholds must be three numbers in [0, 1], got {self.detector.thresholds}")
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


def get_field(config: Any, dotted: str) -> dataclasses.Field:
    *parents, leaf = dotted.split(".")
    for p in parents:
        config = getattr(config, p)
    return {f.name: f for f in dataclasses.fields(config)}[leaf]


def set_setting(config: Any, dotted: str, value: Any) -> None:
    """Set ``config.<dotted>`` after checking name, type and range."""
    known = {name: f for name, _, f in iter_settings(config)}
    if dotted not in known:
        raise FerError(f"unknown setting '{dotted}'; known settings: {', '.join(sorted(known))}")
    current = config
    *parents, leaf = dotted.split(".")
    for p in parents:
        current = getattr(current, p)
    old = getattr(current, leaf)
    value = _coerce(dotted, old, value)
    _check(dotted, value, known[dotted])
    setattr(current, leaf, value)


def flatten(values: dict, prefix: str = "") -> dict:
    out = {}
    for key, value in (values or {}).items():
        if isinstance(value, dict):
            out.update(flatten(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def _coerce(name: str, old: Any, value: Any) -> Any:
    try:
        if isinstance(old, bool):
            if isinstance(value, str):
                if value.lower() in ("true", "1", "yes", "on"):
                    return True
                if value.lower() in ("false", "0", "no", "off"):
                    return False
                raise ValueError(value)
            return bool(value)
        if isinstance(old, int):
            if isinstance(value, float) and not value.is_integer():
                raise ValueError(value)
            return int(value)
        if isinstance(old, float):
            return float(value)
        if isinstance(old, list):
            if isinstance(value, str):
                return [v for v in value.split(",") if v]
            return list(value)
        return str(value)
    except (TypeError, ValueError):
        raise FerError(f"setting '{name}' expects a {type(old).__name__}, got {value!r}") from None


def _check(name: str, value: Any, f: dataclasses.Field) -> None:
    meta = f.metadata
    lo, hi, choices = meta.get("min"), meta.get("max"), meta.get("choices")
    if choices and value not in choices:
        raise FerError(f"setting '{name}' must be one of {', '.join(choices)}; got {value!r}")
    if lo is not None and value < lo or hi is not None and value > hi:
        raise FerError(f"setting '{name}' must be in [{lo}, {hi}]; got {value!r}")
