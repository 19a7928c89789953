"""Metrics the FER papers report: accuracy, per-class precision/recall/F1, macro-F1, confusion
matrix; plus throughput and peak memory of the classifier, stratified k-fold cross-validation
and a paired test (McNemar) to compare two checkpoints on the same faces.
"""
from __future__ import annotations

import json
import math
import os
import time

import cv2
import numpy as np
import torch

from fer_ros.errors import FerError
from fer_ros.learning.datasets import FaceDataset
from fer_ros.memory import peak_rss_mb
from fer_ros.models.calibration import reliability, save_reliability_png
from fer_ros.models.checkpoint import LoadedModel, use_mirror
from fer_ros.models.inference import class_probabilities, fuse, offline_forward
from fer_ros.models.preprocess import to_model_input


def classification_metrics(y_true: np.ndarray, y_pred: np.ndarray, class_names: list[str]) -> dict:
    """Accuracy, macro-F1, per-class precision/recall/F1/support and the confusion matrix (rows = truth)."""
    c = len(class_names)
    y_true, y_pred = np.asarray(y_true, np.int64), np.asarray(y_pred, np.int64)
    cm = np.bincount(y_true * c + y_pred, minlength=c * c).reshape(c, c) if len(y_true) else np.zeros((c, c), np.int64)
    tp = np.diag(cm).astype(float)
    precision = np.divide(tp, cm.sum(0), out=np.zeros(c), where=cm.sum(0) > 0)
    recall = np.divide(tp, cm.sum(1), out=np.zeros(c), where=cm.sum(1) > 0)
    f1 = np.divide(2 * precision * recall, precision + recall, out=np.zeros(c), where=(precision + recall) > 0)
    present = cm.sum(1) > 0  # macro-F1 over classes that occur in the truth
    return {
        "accuracy": float(tp.sum() / max(len(y_true), 1)),
        "macro_f1": float(f1[present].mean()) if present.any() else 0.0,
        "per_class": {n: {"precision": float(precision[i]), "recall": float(recall[i]), "f1": float(f1[i]),
                          "support": int(cm[i].sum())} for i, n in enumerate(class_names)},
        "confusion_matrix": cm.tolist(),
        "class_names": list(class_names),
        "samples": int(len(y_true)),
    }


@torch.inference_mode()
def predict(loaded: LoadedModel, images: np.ndarray, device: torch.device, batch_size: int = 256,
            mirror: bool = False, precision: str = "fp32") -> tuple[np.ndarray, dict]:
    """Probabilities [N, C] for uint8 faces, with throughput and peak memory of the run; ``precision``
    auto or int8 runs a checkpoint with INT8 ranges in 8 bits on ONNX Runtime, as the pipeline does."""
    loaded.model.to(device).eval()
    model = offline_forward(loaded, device, precision)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    out, start = [], time.perf_counter()
    for i in range(0, len(images), batch_size):
        x = torch.from_numpy(to_model_input(images[i:i + batch_size], loaded.preprocessing)).to(device)
        out.append(class_probabilities(model, x, mirror, loaded.temperature).probabilities.cpu().numpy())
    seconds = time.perf_counter() - start
    probs = np.concatenate(out) if out else np.zeros((0, len(loaded.class_names)), np.float32)
    perf = {"images_per_second": len(images) / seconds if seconds > 0 else 0.0, "batch_size": batch_size,
            "device": str(device), "precision": "fp32" if model is loaded.model else "int8",
            "peak_memory_mb": peak_rss_mb() if device.type == "cpu" else torch.cuda.max_memory_allocated(device) / 2**20}
    return probs, perf


def check_classes(loaded: LoadedModel, ds: FaceDataset) -> None:
    if [c.lower() for c in loaded.class_names] != [c.lower() for c in ds.class_names]:
        raise FerError(f"checkpoint classes {loaded.class_names} differ from the dataset's {ds.class_names}; "
                       "evaluate on data with the same label set (--labels)")


def evaluate_checkpoint(loaded: LoadedModel | list[LoadedModel], ds: FaceDataset, device: torch.device,
                        mirror: str | bool = "auto", threshold: float | None = None, fusion: str = "sum",
                        precision: str = "fp32") -> tuple[dict, np.ndarray]:
    """Metrics of one checkpoint, or of an ensemble fused by ``fusion`` as the pipeline fuses it,
    on ``ds``, each member mirrored or not as ``mirror`` (auto / true / false) says for it and in
    the number format ``precision`` (fp32 / int8 / auto, as the pipeline's setting) gives it; with
    ``threshold`` (the smoother's confidence threshold) also how often the faces it would call
    ``uncertain`` are right."""
    members = loaded if isinstance(loaded, list) else [loaded]
    for member in members:
        check_classes(member, ds)
    mirrored = [use_mirror(mirror, member) for member in members]
    runs = [predict(member, ds.images, device, mirror=m, precision=precision) for member, m in zip(members, mirrored)]
    probs = fuse([p for p, _ in runs], fusion) if len(runs) > 1 else runs[0][0]
    perf = dict(runs[0][1])
    perf["images_per_second"] = 1.0 / sum(1.0 / max(r[1]["images_per_second"], 1e-9) for r in runs)
    perf["peak_memory_mb"] = max(r[1]["peak_memory_mb"] for r in runs)
    metrics = classification_metrics(ds.labels, probs.argmax(1), members[0].class_names)
    rel = reliability(probs, ds.labels)
    one = len(members) == 1
    metrics.update({"weights": members[0].path if one else [m.path for m in members], "data": ds.source,
                    "mirror": mirrored[0] if one else mirrored,
                    "precision": runs[0][1]["precision"] if one else [r[1]["precision"] for r in runs],
                    "temperature": members[0].temperature if one else [m.temperature for m in members],
                    "ece": rel["ece"], "reliability": rel, "performance": perf})
    if not one:
        metrics["fusion"] = fusion
    if threshold is not None:
        metrics["uncertain"] = uncertain_split(probs, ds.labels, threshold)
    return metrics, probs


def uncertain_split(probs: np.ndarray, labels: np.ndarray, threshold: float) -> dict:
    """Share of faces whose top probability is below ``threshold``, and how often the arg-max is
    right below and above it: 'uncertain' should mean 'probably wrong' (accuracy below 0.5)."""
    right = probs.argmax(1) == labels
    below = probs.max(1) < threshold
    return {"threshold": threshold, "share": float(below.mean()) if len(below) else 0.0,
            "accuracy_below": _mean_or_none(right[below]), "accuracy_above": _mean_or_none(right[~below])}


def _mean_or_none(values: np.ndarray) -> float | None:
    return float(values.mean()) if len(values) else None


def mcnemar(correct_a: np.ndarray, correct_b: np.ndarray) -> dict:
    """Paired test on the same samples: exact binomial on the discordant pairs (two-sided)."""
    b = int(np.sum(correct_a & ~correct_b))  # A right, B wrong
    c = int(np.sum(~correct_a & correct_b))
    n = b + c
    p = 1.0 if n == 0 else min(1.0, 2 * sum(math.comb(n, k) for k in range(0, min(b, c) + 1)) / 2**n)
    return {"a_only_correct": b, "b_only_correct": c, "p_value": p}


def stratified_folds(labels: np.ndarray, k: int, seed: int) -> list[np.ndarray]:
    """Indices of k folds with each class spread evenly over them."""
    if k < 2:
        raise FerError(f"--kfold needs at least 2 folds, got {k}")
    rng = np.random.default_rng(seed)
    folds = [[] for _ in range(k)]
    for cls in np.unique(labels):
        idx = rng.permutation(np.flatnonzero(labels == cls))
        for f, part in enumerate(np.array_split(idx, k)):
            folds[f].extend(part.tolist())
    return [np.sort(np.array(f, np.int64)) for f in folds]


def save_confusion_png(metrics: dict, path: str, title: str = "") -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cm = np.array(metrics["confusion_matrix"], float)
    norm = cm / np.maximum(cm.sum(1, keepdims=True), 1)
    names = metrics["class_names"]
    fig, ax = plt.subplots(figsize=(1.0 + 0.8 * len(names), 0.8 + 0.8 * len(names)))
    ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    for i in range(len(names)):
        for j in range(len(names)):
            ax.text(j, i, f"{int(cm[i, j])}\n{norm[i, j]:.0%}", ha="center", va="center", fontsize=7,
                    color="white" if norm[i, j] > 0.5 else "black")
    ax.set_xticks(range(len(names)), names, rotation=45, ha="right")
    ax.set_yticks(range(len(names)), names)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title or f"accuracy {metrics['accuracy']:.1%}, macro-F1 {metrics['macro_f1']:.3f}")
    save_figure(fig, path, dpi=120)


def save_figure(fig, path: str, dpi: int) -> None:
    """Lay out, write (creating the folder) and free a matplotlib figure."""
    import matplotlib.pyplot as plt

    fig.tight_layout()
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fig.savefig(path, dpi=dpi)
    plt.close(fig)


def save_report(metrics: dict, out_dir: str, stem: str = "evaluation") -> dict:
    os.makedirs(out_dir, exist_ok=True)
    paths = {"json": os.path.join(out_dir, f"{stem}.json"), "confusion_png": os.path.join(out_dir, f"{stem}_confusion.png")}
    if "reliability" in metrics:
        paths["reliability_png"] = os.path.join(out_dir, f"{stem}_reliability.png")
    with open(paths["json"], "w") as fh:
        json.dump(metrics, fh, indent=1)
    save_confusion_png(metrics, paths["confusion_png"])
    if "reliability" in metrics:
        save_reliability_png(metrics["reliability"], paths["reliability_png"])
    return paths


def format_report(m: dict) -> str:
    lines = [f"accuracy {m['accuracy']:.4f}   macro-F1 {m['macro_f1']:.4f}   ({m['samples']} faces)"
             + (f"   ECE {m['ece']:.4f} ({_temperature_text(m)})" if "ece" in m else ""),
             f"{'class':>10} {'prec':>6} {'recall':>6} {'f1':>6} {'n':>6}"]
    if m.get("class_map"):
        lines.insert(1, "dataset classes read as: " + ", ".join(f"{d} -> {c}" for d, c in m["class_map"].items()))
    if m.get("absent_classes"):
        lines.insert(1, f"no faces of: {', '.join(m['absent_classes'])} (macro-F1 is over the classes present)")
    for name, v in m["per_class"].items():
        lines.append(f"{name:>10} {v['precision']:6.3f} {v['recall']:6.3f} {v['f1']:6.3f} {v['support']:6d}")
    if m.get("uncertain"):
        u = m["uncertain"]
        below, above = ("-" if v is None else f"{v:.1%}" for v in (u["accuracy_below"], u["accuracy_above"]))
        lines.append(f"below confidence {u['threshold']:.2f} ('uncertain'): {u['share']:.1%} of faces, right {below}; "
                     f"above: right {above}")
    lines.append("confusion matrix (rows true, columns predicted):")
    lines += ["  " + " ".join(f"{x:5d}" for x in row) for row in m["confusion_matrix"]]
    if "performance" in m:
        p = m["performance"]
        lines.append(f"throughput {p['images_per_second']:.0f} faces/s on {p['device']} in {p.get('precision', 'fp32')} "
                     f"(batch {p['batch_size']}), "
                     f"peak memory {p['peak_memory_mb']:.0f} MB")
    return "\n".join(lines)


def _temperature_text(m: dict) -> str:
    t = m.get("temperature", 1.0)
    if isinstance(t, list):
        return f"{m.get('fusion', 'sum')} rule of {len(t)} models, temperatures " + ", ".join(f"{x:.3f}" for x in t)
    return f"temperature {t:.3f}"


def through_pipeline(pipeline, ds: FaceDataset, upscale: int = 4, pad: float = 0.5, limit: int = 0, seed: int = 0) -> dict:
    """Does the live path (detect -> align -> classify) see what training saw?

    Each dataset face is upscaled to camera-like size and padded, then detected, aligned and
    classified like a camera frame; reported next to the direct-crop accuracy on the same faces.
    """
    if upscale < 1:
        raise FerError(f"--upscale must be a whole number of at least 1, got {upscale}")
    idx = np.arange(len(ds))
    if limit and limit < len(ds):
        idx = np.sort(np.random.default_rng(seed).choice(idx, limit, replace=False))
    classifier, names = pipeline.classifier, pipeline.class_names
    direct = np.array([c.probabilities.argmax() for c in classifier.classify([
        np.repeat(ds.images[i][..., None], 3, 2) for i in idx])])
    live, detected = np.full(len(idx), -1), np.zeros(len(idx), bool)
    for k, i in enumerate(idx):
        face = cv2_upscale(ds.images[i], upscale, pad)
        dets = pipeline.detector.detect(face)
        if dets:
            detected[k] = True
            aligned = pipeline.aligner.align(face, dets[0])
            live[k] = classifier.classify([aligned.image])[0].probabilities.argmax()
    y = ds.labels[idx]
    paired = mcnemar(live[detected] == y[detected], direct[detected] == y[detected])  # is the gap more than noise?
    return {
        "faces": int(len(idx)), "upscale": upscale, "detection_rate": float(detected.mean()),
        "direct_accuracy": float((direct == y).mean()),
        "direct_accuracy_on_detected": float((direct[detected] == y[detected]).mean()) if detected.any() else 0.0,
        "pipeline_accuracy_on_detected": float((live[detected] == y[detected]).mean()) if detected.any() else 0.0,
        "pipeline_accuracy_all": float((live == y).mean()),
        "pipeline_macro_f1_on_detected": classification_metrics(y[detected], live[detected], names)["macro_f1"],
        "only_pipeline_right": paired["a_only_correct"], "only_direct_right": paired["b_only_correct"],
        "gap_p_value": paired["p_value"],
    }


def cv2_upscale(gray48: np.ndarray, upscale: int, pad: float) -> np.ndarray:
    """A 48x48 grey face as a camera-like RGB frame: cubic upscale, then a mid-grey margin."""
    size = gray48.shape[0] * upscale
    big = cv2.resize(gray48, (size, size), interpolation=cv2.INTER_CUBIC)
    m = int(size * pad)
    big = cv2.copyMakeBorder(big, m, m, m, m, cv2.BORDER_CONSTANT, value=110)
    return np.ascontiguousarray(np.repeat(big[..., None], 3, 2))
