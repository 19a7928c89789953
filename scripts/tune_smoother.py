"""Sweep smoother settings over onset sequences and a real video, classifying each frame once.

    python scripts/tune_smoother.py --data FER.npz --video CLIP.mp4 --cuts 21,65,185 --weights fer2013 [--weights ferplus]

For each model: the onset figures (published label right 1 s after the peak, median delay,
false alarms before the onset) on sequences made from the PublicTest faces, and per shot of the
video the share of face frames published as uncertain and the published label changes per
minute. One line per setting; the package defaults are marked.
"""
from __future__ import annotations

import argparse
import itertools
import json
import os
from types import SimpleNamespace

import numpy as np

from fer_ros.config import PipelineConfig, SmootherConfig
from fer_ros.imageio import open_source
from fer_ros.learning.datasets import load_dataset
from fer_ros.learning.onset import OnsetTiming, classify_sequences, make_sequences, replay
from fer_ros.measure.stability import shot_stability
from fer_ros.perception.smoothing import EmotionSmoother


def video_probabilities(weights: str, video: str, mirror: str) -> tuple[list, list[str], float]:
    """(frame, track, stamp, raw probabilities) of every face of the video, and the model's classes."""
    from fer_ros.pipeline import FramePipeline

    config = PipelineConfig()
    config.classifier.weights = weights.split(",")
    config.classifier.mirror = mirror
    rows = []
    with open_source(video) as source, FramePipeline(config) as pipeline:
        fps = source.fps or 25.0
        for frame in source:
            result = pipeline.process(frame.image, frame.stamp)
            rows.extend((result.frame_index, f.track_id, result.stamp, f.raw_probabilities) for f in result.faces)
        names = pipeline.classifier.class_names
    return rows, names, fps


def video_figures(rows: list, names: list[str], fps: float, cuts: list[int], frames: int, cfg: SmootherConfig) -> dict:
    """The clip's worst shot under ``cfg``: the probabilities replayed through a smoother, then the
    per-shot figures of `fer-ros stability` (fer_ros.measure.stability) on the labels it publishes."""
    sm = EmotionSmoother(cfg, names)
    results = [SimpleNamespace(faces=[]) for _ in range(frames)]
    for i, t, s, p in rows:
        published = sm.update(t, p, s)
        results[i].faces.append(SimpleNamespace(track_id=t, label=published.label, confidence=published.confidence,
                                                raw_label=names[int(np.argmax(p))]))
    shots = [s for s in shot_stability(results, cuts, fps) if s.face_frames]
    return {"uncertain_max": max(s.uncertain_fraction for s in shots),
            "flips_max": max(s.label_flips_per_minute for s in shots)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", required=True)
    p.add_argument("--video", required=True)
    p.add_argument("--cuts", default="21,65,185")
    p.add_argument("--weights", action="append", required=True)
    p.add_argument("--per-class", type=int, default=40)
    p.add_argument("--windows", default="0.1,0.2,0.3,0.5,1.0")
    p.add_argument("--hysteresis", default="0.1,0.2,0.3,0.5")
    p.add_argument("--thresholds", default="0.0,0.3,0.35,0.4,0.45,0.5,0.55")
    p.add_argument("--mirror", default="auto", help="classifier.mirror for every model")
    p.add_argument("--cache", default="", help="folder for the classified frames, reused by later sweeps")
    p.add_argument("--json", default="")
    a = p.parse_args()
    import torch

    from fer_ros.models.inference import EmotionClassifier

    cuts = [int(c) for c in a.cuts.split(",")]
    onset = make_sequences(load_dataset(a.data, "PublicTest", "fer2013"), a.per_class, OnsetTiming())
    out = []
    for w in a.weights:
        cache = os.path.join(a.cache, w.replace(",", "+").replace("/", "_") + f"_{a.mirror}.npz") if a.cache else ""
        if cache and os.path.exists(cache):
            z = np.load(cache)
            probs, names, fps = z["probs"], z["names"].tolist(), float(z["fps"])
            rows = [(int(i), int(t), float(s), p) for i, t, s, p in zip(z["frame"], z["track"], z["stamp"], z["raw"])]
        else:
            clf = EmotionClassifier(w.split(","), torch.device("cpu"), mirror=a.mirror)
            probs = classify_sequences(clf, onset)
            rows, names, fps = video_probabilities(w, a.video, a.mirror)
            if cache:
                frame, track, stamp, raw = zip(*rows)
                np.savez(cache, probs=probs, names=np.array(names), fps=fps, frame=frame, track=track, stamp=stamp,
                         raw=np.stack(raw))
        frames = max(r[0] for r in rows) + 1 + 20
        grid = (a.windows, a.hysteresis, a.thresholds)
        for win, hys, thr in itertools.product(*(map(float, s.split(",")) for s in grid)):
            cfg = SmootherConfig(window=win, hysteresis=hys, confidence_threshold=thr)
            r = replay(probs, onset, cfg, names)
            v = video_figures(rows, names, fps, cuts, frames, cfg)
            row = {"weights": w, "window": win, "hysteresis": hys, "threshold": thr, **v,
                   **{k: getattr(r, k) for k in ("right_at_1s", "uncertain_at_1s", "median_delay_s", "false_alarms",
                                                 "raw_right_at_peak")}}
            out.append(row)
            default = SmootherConfig()
            mark = " *" if cfg == default else ""
            print(f"{w:>8} win {win:4.2f} hys {hys:4.2f} thr {thr:4.2f} | onset right@1s {r.right_at_1s:.3f} "
                  f"unc {r.uncertain_at_1s:.3f} delay {r.median_delay_s:.2f}s alarms {r.false_alarms:.2f} "
                  f"raw {r.raw_right_at_peak:.3f} | clip unc max {v['uncertain_max']:.2f} flips max {v['flips_max']:5.1f}{mark}",
                  flush=True)
    if a.json:
        with open(a.json, "w") as fh:
            json.dump(out, fh, indent=1)


if __name__ == "__main__":
    main()
