#!/usr/bin/env python3
"""Is test-time averaging over small shifts worth its forward passes?

Averages a checkpoint's calibrated probabilities over the face shifted by up to 2 px (edge
padding), with and without its mirror, on FER2013 PublicTest, and prints accuracy and ECE per
view set. An experiment, not a pipeline option: see docs/experiments.md, "Inference-time options".

    .venv/bin/python scripts/shift_tta.py --weights fer2013
    .venv/bin/python scripts/shift_tta.py --weights ferplus --labels ferplus
"""
from __future__ import annotations

import argparse

import numpy as np
import torch

from fer_ros.learning.datasets import load_dataset, relabel
from fer_ros.learning.evaluation import predict
from fer_ros.models.calibration import reliability
from fer_ros.models.checkpoint import load_checkpoint

VIEW_SETS = {  # name -> [(dx, dy, mirrored)]; passes per face = views, twice for mirrored ones
    "centre (1 pass)": [(0, 0, False)],
    "centre + mirror (2)": [(0, 0, True)],
    "centre + diagonal ±1 px (3)": [(0, 0, False), (1, 1, False), (-1, -1, False)],
    "centre + 4 shifts ±2 px (5)": [(0, 0, False), (2, 0, False), (-2, 0, False), (0, 2, False), (0, -2, False)],
    "the 5 above, each + mirror (10)": [(0, 0, True), (2, 0, True), (-2, 0, True), (0, 2, True), (0, -2, True)],
}


def shifted(images: np.ndarray, dx: int, dy: int, pad: int = 2) -> np.ndarray:
    """Faces moved by (dx, dy) pixels, the uncovered border repeated from the edge."""
    h, w = images.shape[1:3]
    p = np.pad(images, ((0, 0), (pad, pad), (pad, pad)), mode="edge")
    return np.ascontiguousarray(p[:, pad + dy:pad + dy + h, pad + dx:pad + dx + w])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--weights", default="fer2013")
    ap.add_argument("--labels", default="fer2013", choices=["fer2013", "ferplus"])
    ap.add_argument("--data", default="../shared/data/fer2013/fer2013_train_val.npz")
    ap.add_argument("--split", default="PublicTest")
    args = ap.parse_args()
    torch.set_num_threads(1)
    model = load_checkpoint(args.weights)
    ds, _ = relabel(load_dataset(args.data, args.split, args.labels), model.class_names)
    cpu, cache = torch.device("cpu"), {}
    for name, views in VIEW_SETS.items():
        for view in views:
            if view not in cache:
                dx, dy, mirror = view
                cache[view] = predict(model, shifted(ds.images, dx, dy), cpu, mirror=mirror)[0]
        probs = np.mean([cache[v] for v in views], axis=0)
        accuracy = float((probs.argmax(1) == ds.labels).mean())
        print(f"{name:34s} accuracy {accuracy:.4f}  ECE {reliability(probs, ds.labels)['ece']:.4f}")


if __name__ == "__main__":
    main()
