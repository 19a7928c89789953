"""Calibrate a trained checkpoint in place on its own validation faces: the softmax temperature
(see fer_ros.models.calibration), whether it classifies each face with its mirror by default, and
the activation ranges of 8-bit inference (see fer_ros.models.int8).
Run at the end of training and by `fer-ros calibrate`.
"""
from __future__ import annotations

import argparse
import copy

import numpy as np
import torch

from fer_ros.learning.epoch import evaluate
from fer_ros.learning.progress import log
from fer_ros.learning.train_data import Tensors
from fer_ros.models.calibration import fit_temperature, reliability, softmax
from fer_ros.models.checkpoint import LoadedModel, load_checkpoint, set_int8, set_temperature
from fer_ros.models.inference import class_probabilities, fold_batchnorm
from fer_ros.models.int8 import CALIBRATION_FACES, calibrate_ranges, int8_available
from fer_ros.models.runtime import export_onnx

MIRROR_MIN_GAIN = 0.005  # a second classifier pass per face must buy at least half a point on the validation faces


def calibrate_best(best_path: str, val_t: Tensors, args: argparse.Namespace, device: torch.device) -> dict:
    """Fit the temperature of the checkpoint at ``best_path`` on the validation faces and store it
    there, with whether the model classifies each face with its mirror by default: when that gains
    at least MIRROR_MIN_GAIN of validation accuracy."""
    loaded = load_checkpoint(best_path, device)
    logits = evaluate(loaded.model, val_t, args, device)["logits"]
    y = val_t.y.numpy()
    temperature = fit_temperature(logits, y)
    one_pass = float(np.mean(logits.argmax(1) == y))
    mirrored = float(np.mean(mirrored_probabilities(loaded, val_t, device, temperature).argmax(1) == y))
    calibration = {"val_ece_before": reliability(softmax(logits), y)["ece"],
                   "val_ece_after": reliability(softmax(logits, temperature), y)["ece"], "val_faces": len(y),
                   "val_accuracy": one_pass, "val_accuracy_mirrored": mirrored}
    mirror = mirrored - one_pass >= MIRROR_MIN_GAIN
    set_temperature(best_path, temperature, calibration, mirror=mirror)
    int8 = int8_calibration(loaded, val_t)
    if int8 is not None:
        set_int8(best_path, int8)
    log(f"temperature {temperature:.3f} fitted on {len(y)} validation faces: "
        f"ECE {calibration['val_ece_before']:.4f} -> {calibration['val_ece_after']:.4f}; accuracy {one_pass:.4f}, "
        f"with the mirror {mirrored:.4f}: mirror {'on' if mirror else 'off'} by default")
    return {"temperature": temperature, "mirror": mirror, "int8_faces": int8["faces"] if int8 else 0, **calibration}


def int8_calibration(loaded: LoadedModel, t: Tensors, batch_size: int = 100) -> dict | None:
    """INT8 activation ranges over the first validation faces and their mirror images; None (and
    why, in the log) where ONNX Runtime's quantiser is missing or the network does not export."""
    if not int8_available():
        log("INT8 ranges not measured: ONNX Runtime's quantiser is not installed (pip install onnxruntime onnx)")
        return None
    faces = t.x[:CALIBRATION_FACES].float()
    batches = (torch.cat([faces[i:i + batch_size], faces[i:i + batch_size].flip(-1)]).numpy()
               for i in range(0, len(faces), batch_size))
    model = fold_batchnorm(copy.deepcopy(loaded.model).cpu().eval())
    try:
        graph = export_onnx(model, model.cfg.in_chans, model.cfg.input_size)
        return {**calibrate_ranges(graph, batches), "faces": len(faces)}
    except Exception as exc:  # an operator the exporter lacks: the model still runs in float
        log(f"INT8 ranges not measured ({type(exc).__name__}: {exc}); the model runs in float")
        return None


@torch.inference_mode()
def mirrored_probabilities(loaded: LoadedModel, t: Tensors, device: torch.device, temperature: float,
                           batch_size: int = 256) -> np.ndarray:
    """Calibrated probabilities of each validation face averaged with its mirror image's."""
    out = [class_probabilities(loaded.model, t.x[i:i + batch_size].to(device), True, temperature).probabilities.cpu().numpy()
           for i in range(0, len(t.y), batch_size)]
    return np.concatenate(out) if out else np.zeros((0, len(loaded.class_names)), np.float32)
