"""What a mix of fine-tuned teachers and a shipped model scores together, before distilling it.

    python scripts/teacher_ensemble.py --data FER.npz --teacher runs/A/last.pt [--teacher runs/B/last.pt]
        [--weights fer2013 --weights ferplus] [--shares 0.3,0.5]

A student distilled from a mix rarely beats what the mix itself scores, so the mix is chosen
here first. For each label set (the shipped model's), on the PublicTest faces: each teacher
alone (face + mirror), the shipped model as it runs by default (float, its own mirror setting),
and for every subset of the teachers their mean, alone and averaged with the shipped model at
each share (share = the teachers' weight). One JSON line per mix.
"""
from __future__ import annotations

import argparse
import functools
import itertools
import json
import os

import numpy as np
import torch

from fer_ros.learning.datasets import load_dataset
from fer_ros.learning.evaluation import predict
from fer_ros.learning.teacher import read_teacher, teacher_probabilities
from fer_ros.models.checkpoint import load_checkpoint


def accuracy_of(probs: np.ndarray, labels: np.ndarray) -> float:
    return round(float((probs.argmax(1) == labels).mean()), 4)


def run_name(path: str) -> str:
    """A run folder's name for RUN/last.pt, RUN/teacher.pt or RUN/probs.npz, else the file's (the GPU script's outputs)."""
    base = os.path.basename(path)
    if base in ("last.pt", "teacher.pt", "probs.npz"):
        return os.path.basename(os.path.dirname(os.path.abspath(path)))
    return base.removesuffix(".npz").removesuffix(".pt")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", required=True, help="FER2013 npz with ferplus_votes")
    p.add_argument("--teacher", action="append", required=True,
                   help="a teacher run's last.pt or teacher.pt, or the .probs.npz it wrote; repeat")
    p.add_argument("--weights", action="append", default=None, help="shipped model or checkpoint (default: both bundled)")
    p.add_argument("--shares", default="0.3,0.4,0.5,0.6", help="the teachers' weights in the mix with the model")
    a = p.parse_args()
    torch.set_num_threads(1)
    teachers = {run_name(t): read_teacher(t) for t in a.teacher}
    missing = [name for name, ck in teachers.items() if ck is None]
    if missing:
        raise SystemExit(f"error: not a teacher run file: {', '.join(missing)} (python -m fer_ros.learning.teacher writes last.pt)")
    shares = [float(s) for s in a.shares.split(",")]
    for weights in a.weights or ["fer2013", "ferplus"]:
        model = load_checkpoint(weights)
        labels = "ferplus" if len(model.class_names) == 8 else "fer2013"
        ds = load_dataset(a.data, "PublicTest", labels)
        shipped = predict(model, ds.images, torch.device("cpu"), mirror=model.mirror, precision="fp32")[0]
        probs = {name: teacher_probabilities(ck, ds.images, ds.class_names) for name, ck in teachers.items()}
        accuracy = functools.partial(accuracy_of, labels=ds.labels)
        print(json.dumps({"weights": weights, "labels": labels, "model": accuracy(shipped),
                          "teachers": {name: accuracy(q) for name, q in probs.items()}}), flush=True)
        for k in range(1, len(probs) + 1):
            for combo in itertools.combinations(probs, k):
                mean = sum(probs[name] for name in combo) / k
                print(json.dumps({"weights": weights, "teachers": list(combo), "teachers_alone": accuracy(mean),
                                  "with_model": {str(s): accuracy(s * mean + (1 - s) * shipped) for s in shares}}),
                      flush=True)


if __name__ == "__main__":
    main()
