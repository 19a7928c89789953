"""`fer-ros calibrate`: fit a checkpoint's softmax temperature on its own validation faces, decide
from the same faces whether it classifies each face with its mirror by default, and measure there
the activation ranges that let it run in 8 bits (classifier.precision).

The validation split is rebuilt from what the checkpoint recorded about its training run (data
split, label set, validation share, seed), so the temperature is fitted on faces the model was
never trained on. Accuracy does not change; the confidences do (see fer_ros.models.calibration).
"""
from __future__ import annotations

import shutil

from fer_ros.device import resolve_device
from fer_ros.learning.calibrate_checkpoint import calibrate_best
from fer_ros.learning.train_args import get_args_parser
from fer_ros.learning.train_data import to_tensors, validation_faces
from fer_ros.models.checkpoint import load_checkpoint, resolve_weights


def register(sub) -> None:
    p = sub.add_parser("calibrate", help="fit the softmax temperature of a checkpoint on its validation faces",
                       description=__doc__)
    p.add_argument("--weights", required=True, help="checkpoint to calibrate (a path or a bundled name)")
    p.add_argument("--data", required=True, help="the dataset it was trained on (FER2013 .npz/.csv or ImageFolder)")
    p.add_argument("--out", default=None, help="write the calibrated checkpoint here (default: in place)")
    p.add_argument("--device", default="cpu")
    p.set_defaults(func=run)


def run(args) -> int:
    device = resolve_device(args.device)
    path = resolve_weights(args.weights)
    loaded = load_checkpoint(path, device)
    val = validation_faces(loaded, args.data)
    targs = get_args_parser().parse_args(["--data", args.data])  # the loss terms' defaults; targets stay one-hot
    target = args.out or path
    if args.out:
        shutil.copyfile(path, args.out)
    cal = calibrate_best(target, to_tensors(val, loaded.preprocessing, targs), targs, device)
    print(f"temperature {cal['temperature']:.4f} on {cal['val_faces']} validation faces: "
          f"ECE {cal['val_ece_before']:.4f} -> {cal['val_ece_after']:.4f}; accuracy {cal['val_accuracy']:.4f}, "
          f"{cal['val_accuracy_mirrored']:.4f} with the mirror, so classifier.mirror auto is "
          f"{'on' if cal['mirror'] else 'off'} for it; "
          + (f"INT8 ranges from {cal['int8_faces']} faces and their mirrors; " if cal["int8_faces"] else "no INT8 ranges; ")
          + f"wrote {target}")
    return 0
