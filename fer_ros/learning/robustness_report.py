"""Run the perturbation suite over a test set: accuracy and macro-F1 per condition, the drop from
clean, a McNemar test per condition against a second model, a table and one plot.
"""
from __future__ import annotations

import json
import os

import numpy as np

from fer_ros.learning.evaluation import classification_metrics, mcnemar, predict, save_figure
from fer_ros.learning.robustness import SUITE, perturb
from fer_ros.models.checkpoint import LoadedModel, use_mirror
from fer_ros.models.inference import fuse


def predict_labels(members: list[LoadedModel], images: np.ndarray, device, mirror: str | bool, fusion: str,
                   precision: str = "fp32") -> np.ndarray:
    """Arg-max class per face of one model or of an ensemble fused as the pipeline fuses it."""
    probs = [predict(m, images, device, mirror=use_mirror(mirror, m), precision=precision)[0] for m in members]
    return (fuse(probs, fusion) if len(probs) > 1 else probs[0]).argmax(1)


def run_models(members: list[LoadedModel], ds, device, mirror: str | bool, fusion: str, seed: int = 0,
               compared: tuple[LoadedModel, object] | None = None, precision: str = "fp32") -> dict:
    """The suite for ``members`` (one model or an ensemble) on ``ds``; ``compared``: (second model, ``ds``
    relabelled to its classes). Occluders sit where the first model's alignment template puts eyes and mouth."""
    models = [{"members": members, "labels": ds.labels, "class_names": members[0].class_names, "device": device,
               "mirror": mirror, "fusion": fusion, "precision": precision}]
    if compared is not None:
        other, other_ds = compared
        models.append({"members": [other], "labels": other_ds.labels, "class_names": other.class_names, "device": device,
                       "mirror": mirror, "fusion": "sum", "precision": precision})
    report = run_suite(models, ds.images, seed, members[0].preprocessing.align_template)
    report["weights"], report["data"] = [m.path for m in members], ds.source
    if compared is not None:
        report["compare_weights"] = compared[0].path
    return report


def _scores(labels: np.ndarray, predicted: np.ndarray, class_names: list[str]) -> dict:
    m = classification_metrics(labels, predicted, class_names)
    return {"accuracy": m["accuracy"], "macro_f1": m["macro_f1"]}


def run_suite(models: list[dict], images: np.ndarray, seed: int = 0, template=None,
              perturbations: list[str] | None = None) -> dict:
    """``models``: one or two dicts of ``members``, ``labels`` (their class indices of the faces), ``class_names``,
    ``device``, ``mirror``, ``fusion``, ``precision``. Every model sees the same perturbed faces; the first is reported, a
    second is compared with it (McNemar on the faces each gets right)."""
    chosen = [p for p in SUITE if perturbations is None or p.name in perturbations]

    def row(correct: list[np.ndarray], predicted: list[np.ndarray]) -> dict:
        out = _scores(models[0]["labels"], predicted[0], models[0]["class_names"])
        if len(models) > 1:
            other = _scores(models[1]["labels"], predicted[1], models[1]["class_names"])
            out["compare"] = {**other, **mcnemar(correct[0], correct[1])}
        return out

    def predictions(faces: np.ndarray) -> tuple[list, list]:
        predicted = [predict_labels(m["members"], faces, m["device"], m["mirror"], m["fusion"], m["precision"]) for m in models]
        return [p == m["labels"] for p, m in zip(predicted, models)], predicted

    clean = row(*predictions(images))
    conditions = []
    for p in chosen:
        for level, value in enumerate(p.levels):
            result = row(*predictions(perturb(images, p.name, level, seed, template)))
            result.update({"perturbation": p.name, "level": level + 1, "value": value, "unit": p.unit,
                           "accuracy_drop": clean["accuracy"] - result["accuracy"],
                           "macro_f1_drop": clean["macro_f1"] - result["macro_f1"]})
            conditions.append(result)
    return {"faces": int(len(images)), "seed": seed, "clean": clean, "conditions": conditions}


def format_table(report: dict) -> str:
    """One line per condition: accuracy, macro-F1, drops (and the second model with McNemar p when compared)."""
    clean = report["clean"]
    compare = "compare" in clean
    head = f"{'perturbation':<15} {'level':>5} {'value':>6} {'acc':>6} {'drop':>6} {'F1':>6} {'drop':>6}"
    head += f" | {'acc B':>6} {'F1 B':>6} {'p':>8}" if compare else ""
    lines = [f"robustness on {report['faces']} faces (seed {report['seed']})", head]

    def line(name, level, value, r):
        text = (f"{name:<15} {level:>5} {value:>6} {r['accuracy']:6.3f} {r.get('accuracy_drop', 0.0):+6.3f} "
                f"{r['macro_f1']:6.3f} {r.get('macro_f1_drop', 0.0):+6.3f}")
        if compare:
            c = r["compare"]
            text += f" | {c['accuracy']:6.3f} {c['macro_f1']:6.3f} {c['p_value']:8.2g}"
        return text

    lines.append(line("clean", "-", "-", clean))
    lines += [line(r["perturbation"], r["level"], f"{r['value']:g}", r) for r in report["conditions"]]
    return "\n".join(lines)


def save_plot(report: dict, path: str, title: str = "") -> None:
    """Accuracy against severity level, one line per perturbation, the clean accuracy dashed."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 5))
    names = list(dict.fromkeys(r["perturbation"] for r in report["conditions"]))
    cmap = plt.get_cmap("tab20")
    for k, name in enumerate(names):
        rows = [r for r in report["conditions"] if r["perturbation"] == name]
        ax.plot([0] + [r["level"] for r in rows], [report["clean"]["accuracy"]] + [r["accuracy"] for r in rows],
                marker="o", color=cmap(k % 20), label=f"{name} ({', '.join(format(r['value'], 'g') for r in rows)})")
    ax.axhline(report["clean"]["accuracy"], color="black", linestyle="--", linewidth=1, label="clean")
    ax.set_xlabel("severity level (0 = clean)")
    ax.set_ylabel("accuracy")
    ax.set_xticks(range(0, 1 + max((r["level"] for r in report["conditions"]), default=0)))
    ax.set_ylim(0, 1)
    ax.grid(alpha=0.3)
    models = " + ".join(os.path.splitext(os.path.basename(w))[0] for w in report.get("weights", []))
    ax.set_title(title or f"{models + ': ' if models else ''}accuracy under perturbation ({report['faces']} faces)")
    ax.legend(fontsize=7, loc="lower left", ncol=2)
    save_figure(fig, path, dpi=110)


def save(report: dict, out_dir: str, title: str = "") -> dict:
    """robustness.json and robustness.png in ``out_dir``; returns their paths."""
    os.makedirs(out_dir, exist_ok=True)
    paths = {"robustness_json": os.path.join(out_dir, "robustness.json"),
             "robustness_png": os.path.join(out_dir, "robustness.png")}
    with open(paths["robustness_json"], "w") as fh:
        json.dump(report, fh, indent=1)
    save_plot(report, paths["robustness_png"], title)
    return paths
