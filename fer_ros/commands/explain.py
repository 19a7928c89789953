"""`fer-ros explain IMAGE_OR_VIDEO`: why the model said what it said, one PNG per face.

Each face is detected and aligned as the pipeline does it, and each model (every member of an
ensemble) is shown on its own row: the crop under the Grad-CAM heat map of the predicted class
(or --class), the crop under the model's attention map, and the class probabilities.
"""
from __future__ import annotations

import os
import sys

from fer_ros.errors import FerError
from fer_ros.imageio import open_source, write_image


def register(sub) -> None:
    p = sub.add_parser("explain", help="show which face regions drove each prediction (Grad-CAM), one PNG per face",
                       description="Writes OUT/<name>_f<frame>_face<k>.png per face: the aligned crop under the Grad-CAM "
                                   "heat map, under the model's own attention map, and the class probabilities (of the "
                                   "crop as shown, without the mirror image). An ensemble gets one row per model.")
    p.add_argument("path", help="image or video file")
    p.add_argument("--out", default="explain", help="directory for the PNGs (default: ./explain)")
    p.add_argument("--class", dest="class_name", default=None, metavar="NAME",
                   help="explain this class instead of each model's prediction (e.g. happy, anger)")
    p.add_argument("--every", type=int, default=1, metavar="N", help="videos: explain every N-th frame")
    p.add_argument("--max-frames", type=int, default=0, help="videos: stop after N frames read (0 = all)")
    p.add_argument("--weights", action="append", default=None,
                   help="checkpoint or bundled model name (fer2013, ferplus); repeat for an ensemble (default: ferplus)")
    p.add_argument("--device", default="cpu", help="auto | cpu | cuda | cuda:N")
    p.set_defaults(func=run)


def run(args) -> int:
    if args.every < 1:
        raise FerError(f"--every must be a whole number of at least 1, got {args.every}")
    if args.max_frames < 0:
        raise FerError(f"--max-frames must be 0 (all) or positive, got {args.max_frames}")
    with open_source(args.path) as source:  # bad input fails before the models load
        from fer_ros.config import AlignConfig, DetectorConfig
        from fer_ros.device import resolve_device
        from fer_ros.models.checkpoint import load_checkpoint
        from fer_ros.models.gradcam import class_index_of
        from fer_ros.perception.detection import FaceDetector

        device = resolve_device(args.device)
        members = [load_checkpoint(w, device) for w in (args.weights or [None])]
        for m in members:
            class_index_of(args.class_name, m.class_names)  # an unknown --class fails before any work
        detector_config = DetectorConfig()
        detector_config.device = args.device
        detector = FaceDetector(detector_config)
        stem = os.path.splitext(os.path.basename(args.path))[0]
        written = 0
        for frame in source:
            if args.max_frames and frame.index >= args.max_frames:
                break
            if frame.index % args.every:
                continue
            for k, detection in enumerate(detector.detect(frame.image)):
                path = os.path.join(args.out, f"{stem}_f{frame.index:05d}_face{k}.png")
                write_image(path, explain_face(frame.image, detection, members, args.class_name, AlignConfig()))
                print(f"wrote {path}")
                written += 1
        if not written:
            print(f"fer-ros explain: no face found in {args.path}; nothing written", file=sys.stderr)
    return 0


def explain_face(image, detection, members, class_name, align_config):
    """The explanation picture of one detected face for every model in ``members``."""
    import numpy as np

    from fer_ros.models.gradcam import explain_crops
    from fer_ros.perception.alignment import FaceAligner
    from fer_ros.perception.explain import PANEL, explanation_picture

    crops, explanations = [], []
    for m in members:
        template = m.preprocessing.align_template
        aligner = FaceAligner(align_config, PANEL, None if template is None else np.asarray(template, np.float32))
        crop = aligner.align(image, detection).image  # large for the picture; the model input is resized from it
        crops.append(crop)
        explanations.append(explain_crops(m, [crop], class_name)[0])
    names = [os.path.splitext(os.path.basename(m.path))[0] for m in members]
    return explanation_picture(crops, explanations, [m.class_names for m in members], names)
