"""Face-expression datasets as uint8 arrays: FER2013 npz / csv, and ImageFolder trees.

Everything loads into one ``FaceDataset`` (images, labels, class names, optional FER+ vote
agreement) so training and evaluation never care where the faces came from.
"""
from __future__ import annotations

import csv
import hashlib
import os
import zipfile
from dataclasses import dataclass

import cv2
import numpy as np

from fer_ros.emotions import match_classes
from fer_ros.errors import FerError

FER2013_CLASSES = ["angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"]
# FER+ vote columns 0..7 in FER+ order; 8 = unknown, 9 = not a face.
FERPLUS_CLASSES = ["neutral", "happiness", "surprise", "sadness", "anger", "disgust", "fear", "contempt"]
FER2013_TO_FERPLUS = np.array([4, 5, 6, 1, 3, 2, 0])  # FER2013 class -> its FER+ vote column
LABEL_SETS = ("fer2013", "ferplus")
IMAGE_EXTS = (".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff")


@dataclass
class FaceDataset:
    images: np.ndarray  # uint8 [N, H, W] grayscale (or [N, H, W, 3])
    labels: np.ndarray  # int64 [N]
    class_names: list[str]
    agreement: np.ndarray | None = None  # float32 [N] in [0, 1]: share of annotators for the label (FER+)
    source: str = ""
    # float32 [N, C]: FER+ annotator vote distribution over class_names (rows sum to 1), for soft-target training
    soft_labels: np.ndarray | None = None
    # int64 [N]: each face's FER2013 label as an index into class_names (FER+ sets from the npz): the
    # expression the face was collected for, where FER+'s annotators often said neutral
    fer2013_labels: np.ndarray | None = None

    def __post_init__(self) -> None:
        if len(self.images) != len(self.labels):
            raise FerError(f"{self.source}: {len(self.images)} images but {len(self.labels)} labels")
        check_labels(self.labels, len(self.class_names), self.source)
        if self.soft_labels is not None and self.soft_labels.shape != (len(self.labels), len(self.class_names)):
            raise FerError(f"{self.source}: soft labels of shape {self.soft_labels.shape}, expected ({len(self.labels)}, {len(self.class_names)})")
        if self.fer2013_labels is not None:
            check_labels(self.fer2013_labels, len(self.class_names), self.source)

    def __len__(self) -> int:
        return len(self.labels)

    def subset(self, mask_or_index: np.ndarray) -> "FaceDataset":
        agreement = None if self.agreement is None else self.agreement[mask_or_index]
        soft = None if self.soft_labels is None else self.soft_labels[mask_or_index]
        fer2013 = None if self.fer2013_labels is None else self.fer2013_labels[mask_or_index]
        return FaceDataset(self.images[mask_or_index], self.labels[mask_or_index], self.class_names, agreement, self.source,
                           soft, fer2013)

    def counts(self) -> dict[str, int]:
        return {n: int((self.labels == i).sum()) for i, n in enumerate(self.class_names)}


def relabel(ds: FaceDataset, class_names: list[str]) -> tuple[FaceDataset, list[str]]:
    """``ds`` with labels renumbered to ``class_names`` (a model's), matched by name and its aliases.

    Returns the relabelled set and the classes of ``class_names`` that have no faces in it (CK+
    has no neutral; FER2013 has no contempt). A dataset class that names none of them is refused,
    naming its folder, because its faces could only be scored as wrong.
    """
    index = match_classes(ds.class_names, class_names)
    counts = np.bincount(ds.labels, minlength=len(ds.class_names))
    unmapped = [name for k, (name, i) in enumerate(zip(ds.class_names, index)) if i is None and counts[k]]
    if unmapped:
        folders = os.path.isdir(ds.source)
        where = ", ".join(repr(os.path.join(ds.source, n) if folders else n) for n in unmapped)
        fix = ("rename or remove those folders (a split folder such as train/ needs --split)" if folders
               else "choose the label set of the model's classes (--labels)")
        raise FerError(f"{ds.source}: class {'folders' if folders else 'names'} {where} match none of the model's classes "
                       f"({', '.join(class_names)}, or aliases such as anger, happiness, sadness, surprised); {fix}")
    lookup = np.array([-1 if i is None else i for i in index], np.int64)  # -1: a class without faces
    labels = lookup[ds.labels] if len(ds) else ds.labels
    soft = None
    if ds.soft_labels is not None:  # votes for a class the model lacks are dropped, each row renormalised
        kept = lookup >= 0
        soft = np.zeros((len(ds), len(class_names)), np.float32)
        np.add.at(soft.T, lookup[kept], ds.soft_labels.T[kept])
        total = soft.sum(1, keepdims=True)
        soft = np.where(total > 0, soft / np.where(total > 0, total, 1), np.eye(len(class_names), dtype=np.float32)[labels])
    out = FaceDataset(ds.images, labels, list(class_names), ds.agreement, ds.source, soft)
    present = set(np.unique(out.labels).tolist())
    return out, [c for i, c in enumerate(class_names) if i not in present]


def check_labels(labels: np.ndarray, num_classes: int, source: str) -> None:
    """Every label must name a class; say which range was found and how to fix it."""
    if len(labels) and (labels.min() < 0 or labels.max() >= num_classes):
        raise FerError(f"{source}: labels must be 0..{num_classes - 1}, found {int(labels.min())}..{int(labels.max())}; "
                       "fix the label data or bring the faces as an ImageFolder tree (one folder per class)")


def has_ferplus_votes(path: str) -> bool:
    """Whether ``path`` is an npz that carries FER+ votes (so an 8-class model can be scored on FER+ labels)."""
    if not (path.endswith(".npz") and os.path.isfile(path)):
        return False
    try:
        return "ferplus_votes" in np.load(path, allow_pickle=False).files
    except (ValueError, OSError, EOFError, zipfile.BadZipFile):
        return False  # load_dataset names what is wrong with the file


def load_dataset(path: str, split: str | None = None, label_set: str = "fer2013",
                 split_optional: bool = False) -> FaceDataset:
    """Dispatch on what ``path`` is: ``.npz`` (FER2013 + FER+ votes), ``.csv`` (FER2013), or a folder.

    For a folder, ``split`` names a sub-folder; when it has none, that is a FerError, or with
    ``split_optional`` (training's default split name) the folder itself is the data.
    """
    if label_set not in LABEL_SETS:
        raise FerError(f"unknown label set '{label_set}'; choose one of {', '.join(LABEL_SETS)}")
    if not os.path.exists(path):
        raise FerError(f"dataset '{path}' not found; pass a FER2013 .npz/.csv file or an ImageFolder directory")
    if os.path.isdir(path):
        if split and not os.path.isdir(os.path.join(path, split)) and not split_optional:
            subs = sorted(e.name for e in os.scandir(path) if e.is_dir())
            raise FerError(f"folder '{path}' has no sub-folder '{split}' to use as the split (its folders: "
                           f"{', '.join(subs[:10]) or 'none'}); name one of them, or drop --split to use the whole folder")
        root = os.path.join(path, split) if split and os.path.isdir(os.path.join(path, split)) else path
        return load_image_folder(root)
    if path.endswith(".npz"):
        return _not_empty(load_fer_npz(path, split, label_set))
    if path.endswith(".csv"):
        return load_fer_csv(path, split)
    raise FerError(f"cannot tell the format of '{path}': expected a .npz, a .csv or a directory with one folder per class")


def _not_empty(ds: FaceDataset) -> FaceDataset:
    if not len(ds):
        raise FerError(f"{ds.source} has no faces (FER+ labels drop faces whose top vote is unknown or not a face); "
                       "check the split and the label set")
    return ds


def read_fer_arrays(path: str, layout: str = "the FER2013 npz layout (images, labels, usage[, ferplus_votes])"
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray | None]:
    """images, labels, usage and the FER+ votes (None where absent) of a FER2013 npz, checked row
    for row; anything else is a one-line FerError saying it is not ``layout``."""
    try:
        data = np.load(path, allow_pickle=False)
        images, usage = data["images"], data["usage"]
        labels, votes = data["labels"], data["ferplus_votes"] if "ferplus_votes" in data.files else None
    except (KeyError, ValueError, OSError, EOFError, zipfile.BadZipFile) as exc:
        raise FerError(f"'{path}' is not {layout}: {exc}") from None
    check_npz_arrays(path, images, labels, usage, votes)
    check_labels(labels, len(FER2013_CLASSES), path)  # before the labels index the FER+ votes
    return images, labels, usage, votes


def load_fer_npz(path: str, split: str | None, label_set: str) -> FaceDataset:
    images, labels, usage, votes = read_fer_arrays(path)
    keep = np.ones(len(images), bool) if split is None else usage == split
    if split is not None and not keep.any():
        raise FerError(f"split '{split}' not in '{path}'; splits there: {', '.join(sorted(map(str, set(usage.tolist()))))}")
    if label_set == "ferplus":
        if votes is None:
            raise FerError(f"'{path}' has no ferplus_votes; use --labels fer2013")
        v = votes[:, :8].astype(np.float32)
        keep &= (votes[:, 9] < 5) & (v.sum(1) > 0) & (votes[:, :8].argmax(1) == votes[:, :10].argmax(1))
        fer2013 = FER2013_TO_FERPLUS[labels]  # FER2013's label, as a FER+ class
        labels = v.argmax(1).astype(np.int64)
        agreement = v.max(1) / np.maximum(votes.sum(1), 1)
        soft = vote_distribution(v, labels)
        names = FERPLUS_CLASSES
    else:
        agreement = soft = fer2013 = None
        if votes is not None:  # share of FER+ annotators agreeing with the FER2013 label
            agreement = votes[np.arange(len(labels)), FER2013_TO_FERPLUS[labels]] / np.maximum(votes.sum(1), 1)
            soft = vote_distribution(votes[:, FER2013_TO_FERPLUS].astype(np.float32), labels)
        names = FER2013_CLASSES
    agreement = None if agreement is None else agreement.astype(np.float32)[keep]
    soft = None if soft is None else soft[keep]
    fer2013 = None if fer2013 is None else fer2013[keep].astype(np.int64)
    return FaceDataset(images[keep], labels[keep].astype(np.int64), list(names), agreement, f"{path}[{split or 'all'}]",
                       soft, fer2013)


def check_npz_arrays(path: str, images: np.ndarray, labels: np.ndarray, usage: np.ndarray, votes: np.ndarray | None) -> None:
    """One row per face in every array, integer labels, FER+'s ten vote columns: else a FerError naming the array."""
    n = len(images) if images.ndim else -1
    problems = []
    if labels.ndim != 1 or not np.issubdtype(labels.dtype, np.integer):
        problems.append(f"labels must be whole numbers, one per face (got {labels.dtype} of shape {labels.shape})")
    for name, array in (("labels", labels), ("usage", usage)) + ((("ferplus_votes", votes),) if votes is not None else ()):
        if array.ndim == 0 or len(array) != n:
            problems.append(f"{name} has {len(array) if array.ndim else 0} rows for {n} images")
    if votes is not None and (votes.ndim != 2 or votes.shape[1] != 10 or not np.issubdtype(votes.dtype, np.number)):
        problems.append(f"ferplus_votes must be [N, 10] counts (8 emotions, unknown, not a face), got {votes.dtype} {votes.shape}")
    if problems:
        raise FerError(f"'{path}' is not the FER2013 npz layout: {'; '.join(problems)}")


def vote_distribution(votes: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Annotator votes [N, C] -> distributions; a row without votes becomes the one-hot of its label."""
    total = votes.sum(1, keepdims=True)
    onehot = np.eye(votes.shape[1], dtype=np.float32)[labels]
    return np.where(total > 0, votes / np.maximum(total, 1), onehot).astype(np.float32)


def load_fer_csv(path: str, split: str | None) -> FaceDataset:
    """The original Kaggle ``fer2013.csv``: emotion,pixels,Usage."""
    images, labels = [], []
    with open(path, newline="") as fh:
        reader = csv.DictReader(fh)
        if not reader.fieldnames or not {"emotion", "pixels"} <= set(reader.fieldnames):
            raise FerError(f"'{path}' lacks the FER2013 header 'emotion,pixels,Usage' (found {reader.fieldnames})")
        for n, row in enumerate(reader, start=2):
            if split is not None and row.get("Usage") != split:
                continue
            try:
                px = np.array(row["pixels"].split(), dtype=np.uint8)
                images.append(px.reshape(48, 48))
                labels.append(int(row["emotion"]))
            except ValueError:
                raise FerError(f"'{path}' line {n}: pixels must be 2304 numbers 0..255 and emotion an integer 0..6") from None
    if not images:
        raise FerError(f"no rows in '{path}'" + (f" with Usage '{split}'" if split else ""))
    return FaceDataset(np.stack(images), np.array(labels, np.int64), list(FER2013_CLASSES), None, path)


def load_image_folder(root: str, size: int = 48) -> FaceDataset:
    """One sub-folder per class (how users bring RAF-DB, AffectNet, CK+, KDEF); faces are already cropped."""
    classes = sorted(d for d in os.listdir(root) if os.path.isdir(os.path.join(root, d)) and not d.startswith("."))
    if not classes:
        raise FerError(f"'{root}' has no class folders; expected root/<class_name>/<image files>")
    images, labels = [], []
    for i, name in enumerate(classes):
        for fname in sorted(os.listdir(os.path.join(root, name))):
            if not fname.lower().endswith(IMAGE_EXTS):
                continue
            img = cv2.imread(os.path.join(root, name, fname), cv2.IMREAD_GRAYSCALE)
            if img is None:
                raise FerError(f"cannot read image '{os.path.join(root, name, fname)}'; remove or replace it")
            images.append(cv2.resize(img, (size, size), interpolation=cv2.INTER_AREA))
            labels.append(i)
    if not images:
        raise FerError(f"no images ({', '.join(IMAGE_EXTS)}) under '{root}'")
    return FaceDataset(np.stack(images), np.array(labels, np.int64), classes, None, root)


def image_hashes(images: np.ndarray) -> np.ndarray:
    """A content hash per image, to find pixel-identical duplicates across splits."""
    return np.array([hashlib.blake2b(img.tobytes(), digest_size=8).hexdigest() for img in images])


def split_train_val(ds: FaceDataset, val_fraction: float, seed: int) -> tuple[FaceDataset, FaceDataset]:
    """Hold out a validation set so that pixel-identical duplicates never straddle the split."""
    hashes = image_hashes(ds.images)
    unique = np.unique(hashes)
    rng = np.random.default_rng(seed)
    val_hashes = set(rng.choice(unique, size=int(round(len(unique) * val_fraction)), replace=False).tolist())
    is_val = np.array([h in val_hashes for h in hashes])
    return ds.subset(~is_val), ds.subset(is_val)


def drop_duplicates_of(ds: FaceDataset, reference: FaceDataset) -> FaceDataset:
    """Rows of ``ds`` whose pixels do not appear in ``reference`` (FER2013 PublicTest vs Training)."""
    seen = set(image_hashes(reference.images).tolist())
    return ds.subset(np.array([h not in seen for h in image_hashes(ds.images)]))
