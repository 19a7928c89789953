"""Save and load AMS-CNN checkpoints that carry their own config, preprocessing and classes.

A checkpoint is a dict of plain types and tensors, written with ``torch.save`` and read with
``torch.load(weights_only=True)``: a tampered or foreign pickle cannot execute code, it fails
with a clear error instead.
"""
from __future__ import annotations

import os
import pickle
from dataclasses import dataclass
from importlib import resources

import torch

from fer_ros.errors import FerError
from fer_ros.models.ams_cnn import AMSCNN, AMSConfig, build_model, config_to_dict
from fer_ros.models.preprocess import Preprocessing

FORMAT = "fer_ros.ams_cnn/1"
DEFAULT_WEIGHTS = "ferplus_ams_small.pt"  # bundled in fer_ros/weights/: ferplus, chosen for real video (docs/model_cards.md)
# Bundled models by name: --weights ferplus, classifier.weights: [ferplus]. Anything else is a path.
BUNDLED = {"fer2013": "fer_ams_small.pt", "ferplus": DEFAULT_WEIGHTS}


@dataclass
class LoadedModel:
    model: AMSCNN
    preprocessing: Preprocessing
    class_names: list[str]
    path: str
    meta: dict  # training metadata (recipe, metrics) as saved; may be empty
    temperature: float = 1.0  # logits are divided by it before the softmax (fitted on validation faces)
    mirror: bool = False  # classify each face with its mirror image too: its validation faces showed that it pays
    int8: dict | None = None  # activation ranges for 8-bit inference on ONNX Runtime (fer_ros.models.int8), if calibrated


MIRROR_MODES = ("auto", "true", "false")


def use_mirror(mode: str | bool, loaded: LoadedModel) -> bool:
    """Whether ``loaded`` runs with its mirror: ``auto`` = as its checkpoint says, ``true`` / ``false`` = always / never."""
    if isinstance(mode, bool):
        return mode
    if mode not in MIRROR_MODES:
        raise FerError(f"mirror mode must be one of {', '.join(MIRROR_MODES)}; got {mode!r}")
    return loaded.mirror if mode == "auto" else mode == "true"


def default_weights_path() -> str:
    return str(resources.files("fer_ros") / "weights" / DEFAULT_WEIGHTS)


def resolve_weights(name_or_path: str | None) -> str:
    """A bundled model's name (``fer2013``, ``ferplus``) -> its file; a path stays a path; None -> the default."""
    if not name_or_path:
        return default_weights_path()
    if name_or_path in BUNDLED:
        path = str(resources.files("fer_ros") / "weights" / BUNDLED[name_or_path])
        if not os.path.isfile(path):
            raise FerError(f"bundled model '{name_or_path}' is missing from this install ({path}); reinstall fer_ros "
                           f"or pass a checkpoint path")
        return path
    return name_or_path


def save_checkpoint(path: str, model: AMSCNN, pre: Preprocessing, class_names: list[str], meta: dict | None = None,
                    half: bool = False, extra: dict | None = None) -> None:
    """Write weights + model config + preprocessing + classes (``half`` stores fp16 to halve the file)."""
    if len(class_names) != model.cfg.num_classes:
        raise FerError(f"{len(class_names)} class names for a model with {model.cfg.num_classes} outputs")
    state = {k: (v.half() if half and v.is_floating_point() else v).detach().cpu().clone() for k, v in model.state_dict().items()}
    payload = {
        "format": FORMAT,
        "model_config": config_to_dict(model.cfg),
        "preprocessing": pre.to_dict(),
        "class_names": list(class_names),
        "state_dict": state,
        "meta": meta or {},
        "temperature": 1.0,
    }
    payload.update(extra or {})
    write_payload(path, payload)


def write_payload(path: str, payload: dict) -> None:
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = f"{path}.tmp"
    torch.save(payload, tmp)
    os.replace(tmp, path)  # never leave a half-written checkpoint behind


def set_temperature(path: str, temperature: float, calibration: dict | None = None, mirror: bool | None = None) -> None:
    """Store a fitted softmax temperature (and how it was measured) in an existing checkpoint; with
    ``mirror``, also whether the model should see each face's mirror image by default."""
    if not (isinstance(temperature, (int, float)) and 0 < temperature < 100):
        raise FerError(f"temperature must be a positive number below 100, got {temperature!r}")
    payload = read_checkpoint(path)
    payload["temperature"] = float(temperature)
    if mirror is not None:
        payload["mirror"] = bool(mirror)
    payload.setdefault("meta", {})["calibration"] = {"temperature": float(temperature), **(calibration or {})}
    write_payload(path, payload)


def set_int8(path: str, int8: dict) -> None:
    """Store the activation ranges of 8-bit inference (``fer_ros.models.int8.calibrate_ranges``) in a checkpoint."""
    payload = read_checkpoint(path)
    payload["int8"] = dict(int8)
    write_payload(path, payload)


def read_checkpoint(path: str) -> dict:
    """The raw checkpoint dict, loaded without executing any pickled code."""
    if os.path.isdir(path):
        raise FerError(f"weights '{path}' is a folder; pass the checkpoint file in it (e.g. {os.path.join(path, 'best.pt')})")
    if not os.path.isfile(path):
        raise FerError(f"weights file '{path}' not found; pass an existing checkpoint or leave weights empty for the bundled model")
    with open(path, "rb") as f:
        header = f.read(4)
    if header != b"PK\x03\x04":  # torch.save writes a zip archive; anything else is some other file
        raise FerError(f"cannot load weights '{path}': not a PyTorch checkpoint (no zip archive header; "
                       f"{'empty file' if not header else 'some other kind of file'}); pass a .pt written by `fer-ros train`")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        raise FerError(f"cannot load weights '{path}': it holds pickled Python objects that weights-only loading refuses "
                       "(not a fer_ros checkpoint, or a tampered one); pass a .pt written by `fer-ros train`") from None
    except Exception as exc:  # truncated or corrupted archive
        raise FerError(f"cannot load weights '{path}': the checkpoint is damaged ({type(exc).__name__}); "
                       "copy it again or retrain it with `fer-ros train`") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise FerError(f"'{path}' is not a fer_ros checkpoint (format {payload.get('format') if isinstance(payload, dict) else type(payload).__name__!r}, "
                       f"expected {FORMAT}); train one with `fer-ros train`")
    return payload


def load_checkpoint(path: str | None = None, device: torch.device | str = "cpu") -> LoadedModel:
    """Rebuild the model from the checkpoint's own config and load its weights strictly, in eval mode."""
    path = resolve_weights(path)
    payload = read_checkpoint(path)
    try:
        cfg = AMSConfig(**payload["model_config"])
        pre = Preprocessing.from_dict(payload["preprocessing"])
        class_names = [str(c) for c in payload["class_names"]]
        temperature = float(payload.get("temperature", 1.0))
        if not 0 < temperature < 100:
            raise ValueError(f"temperature {temperature} outside (0, 100)")
        mirror = payload.get("mirror", False)
        if not isinstance(mirror, bool):
            raise ValueError(f"mirror {mirror!r} is not true or false")
        int8 = payload.get("int8")
        if int8 is not None and not (isinstance(int8, dict) and isinstance(int8.get("ranges"), str)):
            raise ValueError("int8 is not a mapping with a ranges string")
        state = payload["state_dict"]
        if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
            raise ValueError("state_dict is not a mapping of names to tensors")
    except (KeyError, TypeError, ValueError, FerError) as exc:
        raise FerError(f"checkpoint '{path}' has a malformed header ({exc}); retrain it with `fer-ros train`") from None
    if len(class_names) != cfg.num_classes:
        raise FerError(f"checkpoint '{path}' lists {len(class_names)} class names but its model has {cfg.num_classes} outputs")
    model = build_model(cfg)
    check_state_dict(model, state, path)
    broken = [k for k, v in state.items() if v.is_floating_point() and not bool(torch.isfinite(v).all())]
    if broken:
        raise FerError(f"weights in '{path}' contain NaN or infinite values ({len(broken)} of {len(state)} tensors, "
                       f"e.g. {broken[0]}): training diverged or the file is damaged; use another checkpoint or retrain")
    model.load_state_dict({k: v.float() for k, v in state.items()}, strict=True)
    model.eval().to(device)
    return LoadedModel(model, pre, class_names, path, dict(payload.get("meta", {})), temperature, mirror, int8)


def check_state_dict(model: torch.nn.Module, state: dict, path: str) -> None:
    """Name the missing, unexpected and mis-shaped keys instead of torch's long traceback."""
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    shapes = [f"{k}: {tuple(state[k].shape)} vs model {tuple(v.shape)}" for k, v in expected.items()
              if k in state and tuple(state[k].shape) != tuple(v.shape)]
    if missing or unexpected or shapes:
        parts = []
        if missing:
            parts.append(f"missing {len(missing)} keys (e.g. {missing[:3]})")
        if unexpected:
            parts.append(f"unexpected {len(unexpected)} keys (e.g. {unexpected[:3]})")
        if shapes:
            parts.append(f"{len(shapes)} shape mismatches (e.g. {shapes[:3]})")
        raise FerError(f"weights in '{path}' do not fit the model config they carry: {'; '.join(parts)}")

