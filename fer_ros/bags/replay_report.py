"""The evaluation report of a bag replay: accuracy against ground truth, label stability,
detection rate, latency; as a JSON-ready dict, a short text summary and PNG plots.

Per-frame accuracy compares the ground truth with the published label of the frame's main
(largest) face. A frame whose face is "uncertain", or that has no face at all, counts as wrong:
the confusion matrix has two extra predicted columns for them (``uncertain``, ``no_face``), so
the matrix shows where those frames went while macro-F1 stays over the model's classes.
"""
from __future__ import annotations

import json
import os
from collections import Counter

import numpy as np

from fer_ros.bags.bagtools import Labels
from fer_ros.bags.replay import FrameRecord, ReplayResult
from fer_ros.emotions import canonical_emotion
from fer_ros.learning.evaluation import classification_metrics, save_confusion_png
from fer_ros.types import UNCERTAIN

NO_FACE = "no_face"
MAX_TRACK_PLOTS = 6  # the longest tracks get a panel each; more would be unreadable


def truth_per_frame(labels: Labels, frames: list[FrameRecord]) -> list[str | None]:
    """Canonical ground-truth label of every processed frame (None where there is none)."""
    first = frames[0].stamp if frames else 0.0
    return [labels.at(f.index, f.stamp, first, f.bag_ns) for f in frames]


def predicted_per_frame(frames: list[FrameRecord], raw: bool = False) -> list[str]:
    """Canonical label of each frame's main face ('no_face' when there is none)."""
    out = []
    for f in frames:
        face = f.main_face
        out.append(NO_FACE if face is None else canonical_emotion(face.raw_label if raw else face.label))
    return out


def accuracy_metrics(truth: list[str | None], predicted: list[str], class_names: list[str]) -> tuple[dict, dict]:
    """classification_metrics over labelled frames, and the truth labels the model has no class for."""
    names = [canonical_emotion(n) for n in class_names]
    columns = names + [UNCERTAIN, NO_FACE]
    index = {n: i for i, n in enumerate(columns)}
    ignored: Counter = Counter()
    y_true, y_pred = [], []
    for t, p in zip(truth, predicted):
        if t is None:
            continue
        if t not in names:
            ignored[t] += 1
            continue
        y_true.append(index[t])
        y_pred.append(index.get(p, index[UNCERTAIN]))
    # macro-F1 there averages over the classes present in the truth, never uncertain / no_face
    return classification_metrics(np.array(y_true), np.array(y_pred), columns), dict(ignored)


def track_stability(frames: list[FrameRecord]) -> list[dict]:
    """Per track: frames, duration and how often the published (and raw) label changed."""
    seq: dict[int, list[tuple[float, str, str]]] = {}
    for f in frames:
        for face in f.faces:
            seq.setdefault(face.track_id, []).append((f.stamp, face.label, face.raw_label))
    tracks = []
    for track_id, items in sorted(seq.items()):
        flips = sum(1 for a, b in zip(items, items[1:]) if a[1] != b[1])
        raw_flips = sum(1 for a, b in zip(items, items[1:]) if a[2] != b[2])
        duration = items[-1][0] - items[0][0]
        minutes = duration / 60.0
        tracks.append({
            "id": track_id, "frames": len(items), "start_s": items[0][0], "duration_s": duration,
            "flips": flips, "raw_flips": raw_flips,
            "flips_per_minute": flips / minutes if minutes > 0 else None,
            "labels": dict(Counter(label for _, label, _ in items).most_common()),
        })
    return tracks


def flips_per_minute(tracks: list[dict], key: str = "flips") -> float | None:
    """Label changes per track-minute, pooled over all tracks (None when no track lasted)."""
    minutes = sum(t["duration_s"] for t in tracks) / 60.0
    return sum(t[key] for t in tracks) / minutes if minutes > 0 else None


def settle_times(frames: list[FrameRecord], truth: list[str | None], predicted: list[str]) -> tuple[list[float], int]:
    """Seconds from each true label change until the main face's label first matches the new one.

    A change is a labelled frame whose truth differs from the previous labelled frame's. Changes
    the prediction never catches up with before the next change are returned as a count.
    """
    times, unsettled = [], 0
    labelled = [i for i, t in enumerate(truth) if t is not None]
    changes = [i for prev, i in zip(labelled, labelled[1:]) if truth[i] != truth[prev]]
    for n, start in enumerate(changes):
        end = changes[n + 1] if n + 1 < len(changes) else len(frames)
        hit = next((k for k in range(start, end) if truth[k] == truth[start] and predicted[k] == truth[start]), None)
        if hit is None:
            unsettled += 1
        else:
            times.append(frames[hit].stamp - frames[start].stamp)
    return times, unsettled


def _percentiles(values: list[float]) -> dict:
    if not values:
        return {"p50": None, "p95": None, "mean": None, "max": None}
    a = np.asarray(values, float)
    return {"p50": float(np.percentile(a, 50)), "p95": float(np.percentile(a, 95)), "mean": float(a.mean()),
            "max": float(a.max())}


def build_report(result: ReplayResult, labels: Labels | None = None) -> dict:
    """Everything about one replay as plain JSON types."""
    frames = result.frames
    with_face = [bool(f.faces) for f in frames]
    tracks = track_stability(frames)
    stages = sorted({s for f in frames for s in f.timings_ms})
    latency = [f.latency_ms for f in frames]
    report = {
        "bag": result.bag, "image_topic": result.image_topic, "output": result.out, "written": result.written,
        "weights": result.weights, "device": result.device, "time_source": result.time_source,
        "messages": result.messages, "frames": len(frames),
        "bad_messages": result.bad.total, "bad_message_reasons": dict(result.bad.counts),
        "bad_message_examples": dict(result.bad.examples),
        "duration_s": frames[-1].stamp - frames[0].stamp if frames else 0.0,
        "faces": sum(len(f.faces) for f in frames), "tracks": len(tracks),
        "detection_rate": float(np.mean(with_face)) if frames else None,
        "flips_per_minute": flips_per_minute(tracks), "raw_flips_per_minute": flips_per_minute(tracks, "raw_flips"),
        "latency_ms": _percentiles(latency),
        "stage_ms": {s: float(np.mean([f.timings_ms.get(s, 0.0) for f in frames])) for s in stages},
        "throughput_fps": len(frames) / result.wall_s if result.wall_s > 0 else None,
        "per_track": tracks,
        "model_class_names": list(result.class_names),
    }
    report.update(ground_truth_report(result, labels))
    return report


def ground_truth_report(result: ReplayResult, labels: Labels | None) -> dict:
    """The keys that need ground truth (None without it)."""
    empty = {"labels": None, "labelled_frames": 0, "detection_rate_labelled": None, "accuracy": None,
             "macro_f1": None, "confusion_matrix": None, "class_names": None, "per_class": None,
             "raw_accuracy": None, "raw_macro_f1": None, "settle_time_s": None, "settle_times_s": [],
             "unsettled_changes": 0, "ignored_labels": {}}
    if labels is None:
        return empty
    frames = result.frames
    truth = truth_per_frame(labels, frames)
    predicted = predicted_per_frame(frames)
    metrics, ignored = accuracy_metrics(truth, predicted, result.class_names)
    raw, _ = accuracy_metrics(truth, predicted_per_frame(frames, raw=True), result.class_names)
    labelled = [f for f, t in zip(frames, truth) if t is not None]
    times, unsettled = settle_times(frames, truth, predicted)
    return {
        "labels": labels.source, "labelled_frames": len(labelled),
        "detection_rate_labelled": float(np.mean([bool(f.faces) for f in labelled])) if labelled else None,
        "accuracy": metrics["accuracy"] if metrics["samples"] else None,
        "macro_f1": metrics["macro_f1"] if metrics["samples"] else None,
        "confusion_matrix": metrics["confusion_matrix"], "class_names": metrics["class_names"],
        "per_class": metrics["per_class"], "evaluated_frames": metrics["samples"],
        "raw_accuracy": raw["accuracy"] if raw["samples"] else None,
        "raw_macro_f1": raw["macro_f1"] if raw["samples"] else None,
        "settle_time_s": float(np.mean(times)) if times else None, "settle_times_s": times,
        "unsettled_changes": unsettled, "ignored_labels": ignored,
    }


def _fmt(value, spec: str, unit: str = "") -> str:
    return "n/a" if value is None else f"{value:{spec}}{unit}"


def format_summary(r: dict) -> str:
    """A few lines for the terminal."""
    lat = r["latency_ms"]
    reasons = ", ".join(f"{k} {v}" for k, v in r["bad_message_reasons"].items())
    lines = [
        f"{r['frames']} frames from {r['image_topic']} ({r['messages']} messages, {r['bad_messages']} skipped"
        + (f": {reasons}" if reasons else "") + ")",
        f"faces {r['faces']} in {r['tracks']} tracks; detection rate {_fmt(r['detection_rate'], '.1%')}",
        f"label flips {_fmt(r['flips_per_minute'], '.1f')}/min per track "
        f"(raw {_fmt(r['raw_flips_per_minute'], '.1f')}/min)",
        f"latency p50 {_fmt(lat['p50'], '.1f', ' ms')}, p95 {_fmt(lat['p95'], '.1f', ' ms')}; "
        f"throughput {_fmt(r['throughput_fps'], '.1f', ' fps')} on {r['device']}",
    ]
    if r["labels"] is not None:
        lines.append(f"ground truth {r['labels']}: {r['labelled_frames']} labelled frames, detection rate on them "
                     f"{_fmt(r['detection_rate_labelled'], '.1%')}")
        lines.append(f"accuracy {_fmt(r['accuracy'], '.3f')}, macro-F1 {_fmt(r['macro_f1'], '.3f')} "
                     f"(raw, before smoothing: {_fmt(r['raw_accuracy'], '.3f')}, {_fmt(r['raw_macro_f1'], '.3f')}); "
                     f"settle time {_fmt(r['settle_time_s'], '.2f', ' s')} over {len(r['settle_times_s'])} changes"
                     f", {r['unsettled_changes']} never settled")
        if r["ignored_labels"]:
            lines.append(f"labels the model has no class for (not scored): {r['ignored_labels']}")
    if r["output"]:
        lines.append(f"output bag {r['output']}: " + ", ".join(f"{t} {n}" for t, n in r["written"].items()))
    return "\n".join(lines)


def save_report(report: dict, result: ReplayResult, labels: Labels | None, out_dir: str) -> dict:
    """report.json, timeline.png and (with ground truth) confusion.png in ``out_dir``."""
    os.makedirs(out_dir, exist_ok=True)
    paths = {"json": os.path.join(out_dir, "report.json"), "timeline_png": os.path.join(out_dir, "timeline.png")}
    truth = truth_per_frame(labels, result.frames) if labels is not None else None
    plot_timeline(result, truth, paths["timeline_png"])
    if report.get("confusion_matrix") is not None and report.get("evaluated_frames"):
        paths["confusion_png"] = os.path.join(out_dir, "confusion.png")
        save_confusion_png(report, paths["confusion_png"],
                           f"accuracy {report['accuracy']:.1%}, macro-F1 {report['macro_f1']:.3f} (main face)")
    with open(paths["json"], "w") as fh:
        json.dump(report, fh, indent=1)
    return paths


def plot_timeline(result: ReplayResult, truth: list[str | None] | None, path: str) -> None:
    """True vs published (and raw) label over time, one panel per track (the longest ones)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    frames = result.frames
    names = [canonical_emotion(n) for n in result.class_names]
    extra = sorted({t for t in truth or [] if t is not None and t not in names})
    categories = names + extra + [UNCERTAIN]
    y = {n: i for i, n in enumerate(categories)}
    t0 = frames[0].stamp if frames else 0.0
    tracks = sorted(track_stability(frames), key=lambda t: -t["frames"])[:MAX_TRACK_PLOTS]
    panels = max(len(tracks), 1)
    fig, axes = plt.subplots(panels, 1, figsize=(10, 1.2 + 1.6 * panels), sharex=True, squeeze=False)
    for ax, track in zip(axes[:, 0], tracks or [None]):
        if truth is not None:
            tt = [(f.stamp - t0, y[t]) for f, t in zip(frames, truth) if t is not None]
            if tt:
                ax.step(*zip(*tt), where="post", color="black", lw=2.5, alpha=0.35, label="true")
        if track is not None:
            points = [(f.stamp - t0, face) for f in frames for face in f.faces if face.track_id == track["id"]]
            xs = [p[0] for p in points]
            ax.plot(xs, [y.get(canonical_emotion(face.label), y[UNCERTAIN]) for _, face in points],
                    marker=".", lw=1.2, color="tab:blue", label="published")
            ax.scatter(xs, [y.get(canonical_emotion(face.raw_label), y[UNCERTAIN]) for _, face in points],
                       s=6, color="tab:orange", alpha=0.6, label="raw", zorder=3)
            ax.set_title(f"track {track['id']}: {track['frames']} frames, {track['flips']} label changes", fontsize=9)
        else:
            ax.set_title("no face tracked", fontsize=9)
        ax.set_yticks(range(len(categories)), categories, fontsize=7)
        ax.set_ylim(-0.5, len(categories) - 0.5)
        ax.grid(axis="y", alpha=0.3)
    axes[0, 0].legend(loc="upper right", fontsize=7, ncol=3)
    axes[-1, 0].set_xlabel("seconds since the first frame")
    fig.tight_layout()
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
