"""Beyond one test split: several labelled sources in one table, and folders of uncropped photos
scored the way the robot sees a face (detect -> align -> classify).
"""
from __future__ import annotations

import os

import numpy as np

from fer_ros.emotions import match_classes
from fer_ros.errors import FerError
from fer_ros.imageio import read_image
from fer_ros.learning.datasets import IMAGE_EXTS
from fer_ros.learning.evaluation import classification_metrics


def out_dir(out: str | None, source: str, sources: int) -> str | None:
    """Where one source's files go: ``out`` itself for a single source, ``out/<source name>`` for several."""
    if not out or sources == 1:
        return out
    return os.path.join(out, os.path.splitext(os.path.basename(os.path.normpath(source)))[0] or "source")


def photo_folder(root: str) -> tuple[list[str], list[tuple[str, int]]]:
    """Class folder names and (photo path, class index) pairs of root/<class>/<photo>."""
    if not os.path.isdir(root):
        raise FerError(f"--photos needs a folder with one sub-folder of photos per class; '{root}' is not a folder")
    classes = sorted(d for d in os.listdir(root) if os.path.isdir(os.path.join(root, d)) and not d.startswith("."))
    photos = [(os.path.join(root, name, f), i) for i, name in enumerate(classes)
              for f in sorted(os.listdir(os.path.join(root, name))) if f.lower().endswith(IMAGE_EXTS)]
    if not photos:
        raise FerError(f"no photos ({', '.join(IMAGE_EXTS)}) in class folders under '{root}'; expected root/<class>/<photo>")
    return classes, photos


def evaluate_photos(pipeline, root: str) -> dict:
    """Score each photo's largest face as the live pipeline would; photos without a face count as wrong
    in ``accuracy_all`` and are listed, while the per-class metrics are over the faces found."""
    names = list(pipeline.class_names)
    classes, photos = photo_folder(root)
    index = match_classes(classes, names)
    unmapped = [c for c, i in zip(classes, index) if i is None]
    if unmapped:
        raise FerError(f"class folders {', '.join(repr(os.path.join(root, c)) for c in unmapped)} match none of the model's "
                       f"classes ({', '.join(names)}); rename or remove them")
    truth = np.array([index[k] for _, k in photos], np.int64)
    predicted = np.full(len(photos), -1, np.int64)
    for n, (path, _) in enumerate(photos):
        image = read_image(path)
        detections = pipeline.detector.detect(image)
        if detections:
            face = max(detections, key=lambda d: d.width * d.height)  # one face per photo: the largest
            aligned = pipeline.aligner.align(image, face)
            predicted[n] = int(np.argmax(pipeline.classifier.classify([aligned.image])[0].probabilities))
    found = predicted >= 0
    report = classification_metrics(truth[found], predicted[found], names)
    report.update({"data": root, "photos": len(photos), "faces_found": int(found.sum()),
                   "accuracy_all": float((predicted == truth).mean()),
                   "no_face": [p for (p, _), f in zip(photos, found) if not f][:50],
                   "absent_classes": [c for i, c in enumerate(names) if i not in set(truth.tolist())]})
    return report


def format_sources(reports: list[dict]) -> str:
    """One line per source: accuracy, macro-F1, ECE, faces, absent classes (and photos without a face)."""
    lines = [f"{'source':<40} {'accuracy':>8} {'macro-F1':>8} {'ECE':>6} {'faces':>6}  absent classes"]
    for r in reports:
        ece = f"{r['ece']:6.3f}" if "ece" in r else f"{'-':>6}"
        faces = f"{r['samples']}" + (f" of {r['photos']} photos (accuracy counting the rest wrong {r['accuracy_all']:.3f})"
                                     if "photos" in r else "")
        name = str(r.get("data", ""))[-40:]
        lines.append(f"{name:<40} {r['accuracy']:8.4f} {r['macro_f1']:8.4f} {ece} {faces:>6}  "
                     f"{', '.join(r.get('absent_classes') or []) or '-'}")
    return "\n".join(lines)
