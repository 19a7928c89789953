"""What scaling down the default model's neutral probability would do, before anyone ships it.

    python scripts/neutral_prior.py --data FER.npz --video CLIP.mp4 [--factors 1,0.8,0.6,0.4]

The default model's probabilities (8 bits, with the mirror, as the pipeline runs it) on the
PublicTest faces, on onset sequences of both label sets and on every face of the video are
computed once; then for each factor b the neutral probability is multiplied by b and the rest
renormalised (a logit bias of log b), and the figures a robot cares about are printed: FER+
accuracy, macro-F1 and recall, FER2013-label recall, the onset replay (right 1 s after the
peak, expressions published before the onset) and the video's worst shot (`uncertain`, label
changes a minute). An experiment, not a pipeline option: docs/experiments.md has the verdict.
"""
from __future__ import annotations

import argparse
import json
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from tune_smoother import video_figures, video_probabilities  # noqa: E402

from fer_ros.config import SmootherConfig  # noqa: E402
from fer_ros.learning.datasets import load_dataset  # noqa: E402
from fer_ros.learning.evaluation import classification_metrics, predict  # noqa: E402
from fer_ros.learning.onset import OnsetTiming, classify_sequences, make_sequences, replay  # noqa: E402
from fer_ros.models.inference import EmotionClassifier, class_map  # noqa: E402


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", required=True)
    p.add_argument("--video", required=True)
    p.add_argument("--cuts", default="21,65,185")
    p.add_argument("--factors", default="1,0.8,0.7,0.6,0.5,0.4,0.3")
    a = p.parse_args()
    torch.set_num_threads(1)
    clf = EmotionClassifier(None, torch.device("cpu"))
    names = list(clf.class_names)
    neutral = [n.lower() for n in names].index("neutral")

    def classify(images: np.ndarray) -> np.ndarray:  # as `fer-ros evaluate` runs the default
        return predict(clf.members[0], images, torch.device("cpu"), mirror=clf.mirror[0], precision="auto")[0]

    def scaled(probs: np.ndarray, b: float) -> np.ndarray:
        q = probs.copy()
        q[..., neutral] *= b
        return q / q.sum(-1, keepdims=True)

    plus, fer = load_dataset(a.data, "PublicTest", "ferplus"), load_dataset(a.data, "PublicTest", "fer2013")
    onset_plus, onset_fer = make_sequences(plus, 40, OnsetTiming()), make_sequences(fer, 40, OnsetTiming())
    probs = {"plus": classify(plus.images), "fer": classify(fer.images),
             "onset_plus": classify_sequences(clf, onset_plus), "onset_fer": classify_sequences(clf, onset_fer)}
    rows, _, fps = video_probabilities("ferplus", a.video, "auto")
    to7 = class_map(clf.members[0], fer.class_names, "ferplus")
    cuts, frames = [int(c) for c in a.cuts.split(",")], max(r[0] for r in rows) + 21
    for b in (float(f) for f in a.factors.split(",")):
        m = classification_metrics(plus.labels, scaled(probs["plus"], b).argmax(1), names)
        pred7 = to7[scaled(probs["fer"], b).argmax(1)]
        on_p = replay(scaled(probs["onset_plus"], b), onset_plus, SmootherConfig(), names)
        on_f = replay(scaled(probs["onset_fer"], b), onset_fer, SmootherConfig(), names)
        clip = video_figures([(i, t, s, scaled(q, b)) for i, t, s, q in rows], names, fps, cuts, frames, SmootherConfig())
        print(json.dumps({
            "neutral_factor": b, "ferplus_accuracy": round(m["accuracy"], 4), "macro_f1": round(m["macro_f1"], 3),
            "ferplus_recall": {k: round(v["recall"], 2) for k, v in m["per_class"].items()},
            "fer2013_recall": {n: round(float((pred7[fer.labels == k] == k).mean()), 2) for k, n in enumerate(fer.class_names)},
            "onset_ferplus_right_at_1s": round(on_p.right_at_1s, 3), "onset_ferplus_early": round(on_p.false_alarms, 3),
            "onset_fer2013_right_at_1s": round(on_f.right_at_1s, 3), "onset_fer2013_early": round(on_f.false_alarms, 3),
            "clip_uncertain_max": round(clip["uncertain_max"], 2), "clip_changes_per_min_max": round(clip["flips_max"], 1)}),
            flush=True)


if __name__ == "__main__":
    main()
