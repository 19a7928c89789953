"""Controlled, seeded perturbations of face crops: how far the classifier holds up off the test set.

Each perturbation takes a uint8 face ([H, W] grey or [H, W, 3] RGB), a severity value and a
random generator, and returns a face of the same shape and dtype. The generator of face ``i``
under one condition is derived from (seed, perturbation, level, i) only, so a run is repeatable
and two models compared on a condition see exactly the same faces. The identity value of each
severity (0 % occlusion, gamma 1, ...) returns the face unchanged.

Occluders that stand for sunglasses and a mask are placed by the landmarks of the alignment
template, i.e. where the crops the model was trained on have their eyes and mouth.
"""
from __future__ import annotations

import zlib
from dataclasses import dataclass
from typing import Callable

import cv2
import numpy as np

from fer_ros.errors import FerError
from fer_ros.perception.alignment import TEMPLATE

Face = np.ndarray
Perturb = Callable[[Face, float, np.random.Generator, np.ndarray], Face]


def _float(face: Face) -> np.ndarray:
    return face.astype(np.float32)


def _uint8(values: np.ndarray) -> Face:
    return np.clip(np.rint(values), 0, 255).astype(np.uint8)


def occlude_patch(face: Face, fraction: float, rng: np.random.Generator, _template=None) -> Face:
    """A square of ``fraction`` of the face's area, at a random place inside it, in a random flat grey."""
    if fraction <= 0:
        return face
    h, w = face.shape[:2]
    side = max(1, int(round(np.sqrt(fraction * h * w))))
    top, left = rng.integers(0, h - min(side, h) + 1), rng.integers(0, w - min(side, w) + 1)
    out = face.copy()
    out[top:top + side, left:left + side] = rng.integers(0, 256)
    return out


def _band(face: Face, x1: float, x2: float, y1: float, y2: float, value: int) -> Face:
    """Fill a rectangle given in [0, 1] face units."""
    h, w = face.shape[:2]
    out = face.copy()
    out[max(0, int(round(y1 * h))):int(round(y2 * h)), max(0, int(round(x1 * w))):int(round(x2 * w))] = value
    return out


def occlude_eyes(face: Face, height: float, _rng=None, template: np.ndarray = TEMPLATE) -> Face:
    """Sunglasses: a dark band ``height`` (of the face height) tall over both template eyes."""
    if height <= 0:
        return face
    (lx, ly), (rx, ry) = template[0], template[1]
    margin = 0.45 * (rx - lx)  # reaches past the outer eye corners
    y = (ly + ry) / 2
    return _band(face, lx - margin, rx + margin, y - height / 2, y + height / 2, 15)


def occlude_mouth(face: Face, height: float, _rng=None, template: np.ndarray = TEMPLATE) -> Face:
    """A mask: a light band from ``height`` (of the face height) above the template mouth down to the chin."""
    if height <= 0:
        return face
    mouth_y = (template[3, 1] + template[4, 1]) / 2
    margin = 0.6 * (template[4, 0] - template[3, 0])
    return _band(face, template[3, 0] - margin, template[4, 0] + margin, mouth_y - height, 1.0, 200)


def gamma(face: Face, g: float, _rng=None, _template=None) -> Face:
    """Exposure: out = 255 (in / 255) ** g (g < 1 brightens, g > 1 darkens)."""
    if g == 1:
        return face
    return _uint8(255.0 * (_float(face) / 255.0) ** g)


def contrast(face: Face, factor: float, _rng=None, _template=None) -> Face:
    """Contrast about the face's mean grey (x0.3 washed out, x1.5 harsh)."""
    if factor == 1:
        return face
    x = _float(face)
    return _uint8(x.mean() + factor * (x - x.mean()))


def shadow(face: Face, strength: float, rng: np.random.Generator, _template=None) -> Face:
    """Light from one side: brightness falls linearly to (1 - strength) at the far edge of a random side."""
    if strength <= 0:
        return face
    w = face.shape[1]
    ramp = np.linspace(1.0, 1.0 - strength, w, dtype=np.float32)
    ramp = ramp if rng.integers(0, 2) else ramp[::-1]
    ramp = ramp[None, :, None] if face.ndim == 3 else ramp[None, :]
    return _uint8(_float(face) * ramp)


def rotate(face: Face, degrees: float, rng: np.random.Generator, _template=None) -> Face:
    """In-plane head roll by ``degrees`` about the centre, clockwise or anticlockwise at random."""
    if degrees == 0:
        return face
    h, w = face.shape[:2]
    angle = degrees if rng.integers(0, 2) else -degrees
    matrix = cv2.getRotationMatrix2D(((w - 1) / 2, (h - 1) / 2), angle, 1.0)
    return cv2.warpAffine(face, matrix, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def blur(face: Face, sigma: float, _rng=None, _template=None) -> Face:
    """Gaussian blur of standard deviation ``sigma`` pixels (out of focus, motion-free)."""
    if sigma <= 0:
        return face
    return cv2.GaussianBlur(face, (0, 0), sigmaX=sigma, borderType=cv2.BORDER_REFLECT)


def noise(face: Face, sigma: float, rng: np.random.Generator, _template=None) -> Face:
    """Additive Gaussian sensor noise of ``sigma`` grey levels."""
    if sigma <= 0:
        return face
    return _uint8(_float(face) + rng.normal(0.0, sigma, face.shape))


def jpeg(face: Face, quality: float, _rng=None, _template=None) -> Face:
    """A JPEG round trip at ``quality`` (1-100; 100 still loses a little)."""
    ok, data = cv2.imencode(".jpg", face, [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:
        raise FerError(f"JPEG encoding failed at quality {quality}")
    out = cv2.imdecode(data, cv2.IMREAD_UNCHANGED)
    return out.reshape(face.shape)


def low_resolution(face: Face, pixels: float, _rng=None, _template=None) -> Face:
    """A face seen at ``pixels`` x ``pixels`` (area-shrunk), then upsampled to its size again."""
    h, w = face.shape[:2]
    side = int(pixels)
    if side >= max(h, w):
        return face
    small = cv2.resize(face, (side, side), interpolation=cv2.INTER_AREA)
    return cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR).reshape(face.shape)


@dataclass(frozen=True)
class Perturbation:
    name: str
    apply: Perturb
    levels: tuple[float, ...]  # severities, mildest first
    unit: str  # what a level's number means, for tables


# The suite: name, function, severities from mild to strong, and what the number is.
SUITE = (
    Perturbation("occlusion", occlude_patch, (0.1, 0.2, 0.3, 0.4), "share of the face covered"),
    Perturbation("sunglasses", occlude_eyes, (0.15, 0.25), "band height (share of the face)"),
    Perturbation("mask", occlude_mouth, (0.15, 0.3), "band top above the mouth (share of the face)"),
    Perturbation("gamma_bright", gamma, (0.7, 0.55, 0.4), "gamma"),
    Perturbation("gamma_dark", gamma, (1.5, 2.0, 2.5), "gamma"),
    Perturbation("contrast", contrast, (1.5, 0.7, 0.5, 0.3), "contrast factor"),
    Perturbation("shadow", shadow, (0.3, 0.5, 0.7), "darkening at the far side"),
    Perturbation("rotation", rotate, (15.0, 30.0), "degrees, either way"),
    Perturbation("blur", blur, (1.0, 2.0, 3.0), "Gaussian sigma (pixels of a 48 px face)"),
    Perturbation("noise", noise, (5.0, 10.0, 20.0), "Gaussian sigma (grey levels)"),
    Perturbation("jpeg", jpeg, (50.0, 30.0, 10.0), "JPEG quality"),
    Perturbation("low_resolution", low_resolution, (40.0, 32.0, 24.0), "face side in pixels before upsampling"),
)
BY_NAME = {p.name: p for p in SUITE}


def face_rng(seed: int, name: str, level: int, index: int) -> np.random.Generator:
    """The generator of one face under one condition: fixed by these four, whatever else runs."""
    return np.random.default_rng([seed, zlib.crc32(name.encode()), level, index])


def perturb(faces: np.ndarray, name: str, level: int, seed: int = 0, template: np.ndarray | None = None) -> np.ndarray:
    """All ``faces`` ([N, H, W] or [N, H, W, 3] uint8) under perturbation ``name`` at severity ``level`` (index)."""
    if name not in BY_NAME:
        raise FerError(f"unknown perturbation '{name}'; choose one of {', '.join(BY_NAME)}")
    p = BY_NAME[name]
    if not 0 <= level < len(p.levels):
        raise FerError(f"perturbation '{name}' has severity levels 0..{len(p.levels) - 1}, got {level}")
    faces = np.asarray(faces)
    if faces.dtype != np.uint8 or faces.ndim not in (3, 4):
        raise FerError(f"faces must be uint8 [N,H,W] or [N,H,W,3], got {faces.dtype} {faces.shape}")
    template = TEMPLATE if template is None else np.asarray(template, np.float32)
    value = p.levels[level]
    out = [p.apply(face, value, face_rng(seed, name, level, i), template) for i, face in enumerate(faces)]
    return np.stack(out) if out else faces.copy()
