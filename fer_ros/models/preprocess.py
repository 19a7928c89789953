"""Face crop -> model input tensor. Training and inference both call ``to_model_input``.

The settings travel inside every checkpoint (``Preprocessing``), so a model is always fed the
way it was trained: size, channels, CLAHE, normalisation.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import cv2
import numpy as np

from fer_ros.errors import FerError


@dataclass
class Preprocessing:
    input_size: int = 48  # square side in pixels
    channels: int = 1  # 1 = grayscale, 3 = RGB
    clahe: bool = True  # contrast-limited adaptive histogram equalisation (evens out lighting)
    clahe_clip: float = 2.0
    clahe_grid: int = 4  # tiles per side; 4 on a 48 px face = 12 px tiles
    mean: float = 0.5  # after scaling pixels to [0, 1]
    std: float = 0.25
    # Where the aligner puts the 5 landmarks, in [0, 1] crop coordinates ([[x, y] * 5]); matched
    # to the training crops' framing. None = the aligner's default template.
    align_template: list | None = None

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "Preprocessing":
        unknown = set(d) - set(cls.__dataclass_fields__)
        if unknown:
            raise FerError(f"checkpoint preprocessing has unknown keys {sorted(unknown)}; was it written by a newer fer_ros?")
        return cls(**d)


def equalise(images: np.ndarray, pre: Preprocessing) -> np.ndarray:
    """Resize to the input size and apply CLAHE per image: uint8 [N,H,W] or [N,H,W,3] in, same layout out."""
    out = []
    clahe = cv2.createCLAHE(clipLimit=pre.clahe_clip, tileGridSize=(pre.clahe_grid, pre.clahe_grid)) if pre.clahe else None
    for img in images:
        if img.shape[0] != pre.input_size or img.shape[1] != pre.input_size:
            img = cv2.resize(img, (pre.input_size, pre.input_size), interpolation=cv2.INTER_AREA)
        if pre.channels == 1 and img.ndim == 3:
            img = cv2.cvtColor(img, cv2.COLOR_RGB2GRAY)
        if clahe is not None:
            if img.ndim == 2:
                img = clahe.apply(img)
            else:  # equalise lightness only, keep colour
                lab = cv2.cvtColor(img, cv2.COLOR_RGB2LAB)
                lab[..., 0] = clahe.apply(np.ascontiguousarray(lab[..., 0]))
                img = cv2.cvtColor(lab, cv2.COLOR_LAB2RGB)
        if pre.channels == 3 and img.ndim == 2:
            img = np.repeat(img[..., None], 3, axis=2)
        out.append(img)
    return np.stack(out) if out else np.zeros((0, pre.input_size, pre.input_size) + ((3,) if pre.channels == 3 else ()), np.uint8)


def normalise(images: np.ndarray, pre: Preprocessing) -> np.ndarray:
    """uint8 [N,S,S] or [N,S,S,3] -> float32 [N,C,S,S] scaled and standardised."""
    x = images.astype(np.float32) / 255.0
    x = x[:, None] if x.ndim == 3 else x.transpose(0, 3, 1, 2)
    return (x - pre.mean) / pre.std


def to_model_input(images: np.ndarray, pre: Preprocessing) -> np.ndarray:
    """The eval transform: uint8 faces (gray or RGB, any size) -> float32 [N,C,S,S]."""
    images = np.asarray(images)
    if images.dtype != np.uint8 or images.ndim not in (3, 4):
        raise FerError(f"faces must be uint8 [N,H,W] or [N,H,W,3], got {images.dtype} {images.shape}")
    return np.ascontiguousarray(normalise(equalise(images, pre), pre))
