"""Explanation pictures: the aligned crop under its Grad-CAM heat map, beside the model's own
attention map and a bar chart of the class probabilities; one row per model of an ensemble.

Drawn with OpenCV in RGB order, like the annotated frames, so no plotting library is needed.
"""
from __future__ import annotations

import cv2
import numpy as np

from fer_ros.models.gradcam import Explanation
from fer_ros.perception.annotate import emotion_colour
from fer_ros.types import RGBImage

HEAT_ALPHA = 0.45  # weight of the heat map where it is blended over the face
PANEL = 192  # side of each picture in pixels: a 48 px crop is shown 4x
CHART_WIDTH = 240
TITLE_HEIGHT = 22
WHITE, BLACK = (255, 255, 255), (0, 0, 0)


def heat_overlay(crop: np.ndarray, heat: np.ndarray, alpha: float = HEAT_ALPHA) -> RGBImage:
    """``crop`` (gray or RGB uint8) with ``heat`` ([0, 1], any size) as a JET colour map blended over it."""
    rgb = crop if crop.ndim == 3 else cv2.cvtColor(crop, cv2.COLOR_GRAY2RGB)
    heat = cv2.resize(np.clip(np.nan_to_num(heat), 0.0, 1.0).astype(np.float32), (rgb.shape[1], rgb.shape[0]))
    coloured = cv2.cvtColor(cv2.applyColorMap((heat * 255).astype(np.uint8), cv2.COLORMAP_JET), cv2.COLOR_BGR2RGB)
    return cv2.addWeighted(rgb, 1.0 - alpha, coloured, alpha, 0.0)


def _enlarge(image: RGBImage, side: int = PANEL) -> RGBImage:
    return cv2.resize(image, (side, side), interpolation=cv2.INTER_CUBIC)


def _titled(image: RGBImage, title: str) -> RGBImage:
    """``image`` under a black strip holding ``title``."""
    strip = np.zeros((TITLE_HEIGHT, image.shape[1], 3), np.uint8)
    cv2.putText(strip, title, (4, TITLE_HEIGHT - 7), cv2.FONT_HERSHEY_SIMPLEX, 0.42, WHITE, 1, cv2.LINE_AA)
    return np.vstack([strip, image])


def bar_chart(probabilities: np.ndarray, class_names: list[str], highlight: int, height: int = PANEL,
              width: int = CHART_WIDTH) -> RGBImage:
    """One horizontal bar per class with its name and percentage; the explained class is outlined."""
    chart = np.full((height, width, 3), 30, np.uint8)
    row = height // max(len(class_names), 1)
    name_w, bar_w = 78, width - 78 - 44
    for i, (name, p) in enumerate(zip(class_names, np.asarray(probabilities, np.float64))):
        p = float(np.clip(p, 0.0, 1.0)) if np.isfinite(p) else 0.0
        top, bottom = i * row + 3, (i + 1) * row - 3
        cv2.putText(chart, name[:10], (4, bottom - 4), cv2.FONT_HERSHEY_SIMPLEX, 0.4, WHITE, 1, cv2.LINE_AA)
        right = name_w + max(1, round(bar_w * p))
        cv2.rectangle(chart, (name_w, top), (right, bottom), emotion_colour(name, class_names), -1)
        if i == highlight:
            cv2.rectangle(chart, (name_w - 2, top - 2), (name_w + bar_w + 2, bottom + 2), WHITE, 1)
        cv2.putText(chart, f"{p:.0%}", (name_w + bar_w + 4, bottom - 4), cv2.FONT_HERSHEY_SIMPLEX, 0.4, WHITE, 1,
                    cv2.LINE_AA)
    return chart


def explanation_row(crop: np.ndarray, e: Explanation, class_names: list[str], name: str) -> RGBImage:
    """[crop + Grad-CAM | crop + attention | probabilities] for one model."""
    predicted = int(np.argmax(e.probabilities))
    cam = _titled(_enlarge(heat_overlay(crop, e.heatmap)), f"Grad-CAM: {class_names[e.class_index]}")
    att = _titled(_enlarge(heat_overlay(crop, e.attention)), "attention")
    chart = _titled(bar_chart(e.probabilities, class_names, e.class_index),
                    f"{name[:22]}: {class_names[predicted]} {e.probabilities[predicted]:.0%}")
    return np.hstack([cam, att, chart])


def explanation_picture(crops: list[np.ndarray], explanations: list[Explanation], class_names: list[list[str]],
                        names: list[str]) -> RGBImage:
    """One face, one row per model (each model sees its own crop), rows stacked."""
    rows = [explanation_row(c, e, n, m) for c, e, n, m in zip(crops, explanations, class_names, names)]
    width = max(r.shape[1] for r in rows)
    rows = [np.pad(r, ((0, 0), (0, width - r.shape[1]), (0, 0))) for r in rows]
    return np.ascontiguousarray(np.vstack(rows))
