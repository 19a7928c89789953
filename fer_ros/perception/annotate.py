"""Draw a FrameResult onto a copy of the frame: boxes, labels, landmarks, bars, attention, Grad-CAM.

Everything is drawn with OpenCV in RGB order, and every size derives from the frame size so the
same picture is readable on a 320x240 robot camera and on a 1280x720 video.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import cv2
import numpy as np

from fer_ros.config import AnnotateConfig
from fer_ros.types import UNCERTAIN, FaceResult, FrameResult, RGBImage, as_rgb_image

# RGB colours keyed by the first 3 letters of a class name, so FER2013 ("Happy") and FER+
# ("happiness") names share a colour.
EMOTION_COLOURS = {
    "ang": (230, 40, 40),  # anger: red
    "dis": (60, 170, 60),  # disgust: green
    "fea": (160, 80, 220),  # fear: purple
    "hap": (250, 210, 30),  # happiness: yellow
    "sad": (50, 110, 240),  # sadness: blue
    "sur": (255, 140, 0),  # surprise: orange
    "neu": (220, 220, 220),  # neutral: light grey
    "con": (150, 100, 50),  # contempt: brown
}
UNKNOWN_PALETTE = [(0, 200, 200), (200, 0, 200), (120, 200, 0), (255, 120, 160)]
GREY = (150, 150, 150)
ATTENTION_ALPHA = 0.4  # weight of the heat map where it is blended over the face


@dataclass
class _Style:
    """Sizes for one frame, from its shorter side (480 px -> scale 1)."""

    scale: float
    font: float
    text_thickness: int
    thin: int
    thick: int
    dot: int

    @classmethod
    def for_image(cls, width: int, height: int) -> "_Style":
        s = min(width, height) / 480.0
        return cls(scale=s, font=max(0.3, 0.5 * s), text_thickness=max(1, round(s)),
                   thin=max(1, round(s)), thick=max(2, round(2.5 * s)), dot=max(1, round(2 * s)))


def emotion_colour(label: str, class_names: list[str] | None = None) -> tuple[int, int, int]:
    """RGB colour of an emotion label; grey for "uncertain", a palette colour for unknown names."""
    key = label.strip().lower()[:3]
    if label == UNCERTAIN or not key:
        return GREY
    if key in EMOTION_COLOURS:
        return EMOTION_COLOURS[key]
    index = class_names.index(label) if class_names and label in class_names else sum(map(ord, label))
    return UNKNOWN_PALETTE[index % len(UNKNOWN_PALETTE)]


def annotate(image: RGBImage, result: FrameResult, config: AnnotateConfig,
             explainer: Callable[[RGBImage, list[FaceResult]], list] | None = None) -> RGBImage:
    """Return a new RGB image with ``result`` drawn on it; ``image`` itself is not touched.

    ``explainer`` (``fer_ros.models.gradcam.FaceExplainer``) gives each face's Grad-CAM heat map and
    crop matrix; it is called only when ``config.explain`` is on, so drawing costs nothing more otherwise.
    """
    canvas = as_rgb_image(image).copy()
    height, width = canvas.shape[:2]
    style = _Style.for_image(width, height)
    if config.explain and explainer is not None and result.faces:
        for heat, matrix in explainer(image, result.faces):
            _draw_heat_in_crop(canvas, heat, matrix)
    for face in result.faces:
        box = _int_box(face.bbox, width, height)
        if box is None:
            continue
        colour = emotion_colour(face.label, result.class_names) if face.detected else GREY
        if config.show_attention and face.attention is not None:
            _draw_attention(canvas, face.bbox, face.attention)
        _draw_box(canvas, box, colour, face, style)
        if config.show_landmarks:
            _draw_landmarks(canvas, face.landmarks, style)
        _draw_label(canvas, box, _label_text(face), colour, style)
        if config.show_probabilities and len(face.probabilities) == len(result.class_names):
            _draw_bars(canvas, box, face.probabilities, result.class_names, style)
    header = f"frame {result.frame_index}  faces {len(result.faces)}"
    _text_with_background(canvas, header, (0, 0), (0, 0, 0), (255, 255, 255), style)
    return canvas


def _label_text(face: FaceResult) -> str:
    return f"id {face.track_id} {face.label} {face.confidence:.2f}"


def _int_box(bbox: np.ndarray, width: int, height: int) -> tuple[int, int, int, int] | None:
    """The box clipped to the frame in integer pixels; None if non-finite or fully outside."""
    bbox = np.asarray(bbox, dtype=np.float64)
    if bbox.shape != (4,) or not np.all(np.isfinite(bbox)):
        return None
    x1, y1 = int(np.clip(np.floor(bbox[0]), 0, width - 1)), int(np.clip(np.floor(bbox[1]), 0, height - 1))
    x2, y2 = int(np.clip(np.ceil(bbox[2]), 0, width - 1)), int(np.clip(np.ceil(bbox[3]), 0, height - 1))
    if x2 <= x1 or y2 <= y1:
        return None
    return x1, y1, x2, y2


def _draw_box(canvas: RGBImage, box, colour, face: FaceResult, style: _Style) -> None:
    """Solid thick when the label is stable, thin when not, dashed when the box was carried over."""
    x1, y1, x2, y2 = box
    thickness = style.thick if face.stable else style.thin
    if face.detected:
        cv2.rectangle(canvas, (x1, y1), (x2, y2), colour, thickness, cv2.LINE_AA)
        return
    dash = max(4, round(8 * style.scale))
    corners = [(x1, y1), (x2, y1), (x2, y2), (x1, y2), (x1, y1)]
    for (ax, ay), (bx, by) in zip(corners, corners[1:]):
        length = max(abs(bx - ax), abs(by - ay))
        for start in range(0, length, 2 * dash):
            end = min(start + dash, length)
            p = (ax + (bx - ax) * start // length, ay + (by - ay) * start // length)
            q = (ax + (bx - ax) * end // length, ay + (by - ay) * end // length)
            cv2.line(canvas, p, q, colour, thickness, cv2.LINE_AA)


def _draw_landmarks(canvas: RGBImage, landmarks: np.ndarray, style: _Style) -> None:
    for x, y in np.asarray(landmarks, dtype=np.float64).reshape(-1, 2):
        if np.isfinite(x) and np.isfinite(y) and abs(x) < 1e6 and abs(y) < 1e6:
            cv2.circle(canvas, (int(round(x)), int(round(y))), style.dot, (0, 255, 255), -1, cv2.LINE_AA)


def _text_with_background(canvas: RGBImage, text: str, origin: tuple[int, int], background, foreground,
                          style: _Style, font_scale: float | None = None) -> tuple[int, int]:
    """Draw ``text`` on a filled box whose top-left is ``origin`` (moved inside the frame); returns its size."""
    height, width = canvas.shape[:2]
    font_scale = style.font if font_scale is None else font_scale
    (tw, th), baseline = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, font_scale, style.text_thickness)
    pad = max(1, round(2 * style.scale))
    box_w, box_h = tw + 2 * pad, th + baseline + 2 * pad
    x = int(np.clip(origin[0], 0, max(0, width - box_w)))
    y = int(np.clip(origin[1], 0, max(0, height - box_h)))
    cv2.rectangle(canvas, (x, y), (x + box_w, y + box_h), background, -1)
    cv2.putText(canvas, text, (x + pad, y + pad + th), cv2.FONT_HERSHEY_SIMPLEX, font_scale, foreground,
                style.text_thickness, cv2.LINE_AA)
    return box_w, box_h


def _draw_label(canvas: RGBImage, box, text: str, colour, style: _Style) -> None:
    """Label above the box, or inside its top edge when there is no room above."""
    x1, y1, _, _ = box
    (_, th), baseline = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, style.font, style.text_thickness)
    label_h = th + baseline + 2 * max(1, round(2 * style.scale))
    top = y1 - label_h if y1 - label_h >= 0 else y1
    luminance = 0.299 * colour[0] + 0.587 * colour[1] + 0.114 * colour[2]
    _text_with_background(canvas, text, (x1, top), colour, (0, 0, 0) if luminance > 128 else (255, 255, 255), style)


def _draw_bars(canvas: RGBImage, box, probabilities: np.ndarray, class_names: list[str], style: _Style) -> None:
    """A bar per class (3-letter names) beside the box: right if it fits, else left, else inside."""
    height, width = canvas.shape[:2]
    font = style.font * 0.8
    (name_w, text_h), _ = cv2.getTextSize("WWW", cv2.FONT_HERSHEY_SIMPLEX, font, style.text_thickness)
    row_h = text_h + max(2, round(4 * style.scale))
    bar_w = max(20, round(60 * style.scale))
    gap = max(2, round(4 * style.scale))
    panel_w, panel_h = name_w + gap + bar_w + 2 * gap, row_h * len(class_names) + gap
    x1, y1, x2, _ = box
    if x2 + gap + panel_w <= width:
        left = x2 + gap
    elif x1 - gap - panel_w >= 0:
        left = x1 - gap - panel_w
    else:
        left = x1
    left = int(np.clip(left, 0, max(0, width - panel_w)))
    top = int(np.clip(y1, 0, max(0, height - panel_h)))
    region = canvas[top:top + panel_h, left:left + panel_w]
    region[:] = (region * 0.4).astype(np.uint8)  # darken so the bars read on any background
    for i, (name, p) in enumerate(zip(class_names, np.asarray(probabilities, dtype=np.float64))):
        p = float(np.clip(p, 0.0, 1.0)) if np.isfinite(p) else 0.0
        row_top = top + gap + i * row_h
        cv2.putText(canvas, name[:3], (left + gap, row_top + text_h), cv2.FONT_HERSHEY_SIMPLEX, font,
                    (255, 255, 255), style.text_thickness, cv2.LINE_AA)
        bar_left = left + gap + name_w + gap
        bar_right = bar_left + max(1, round(bar_w * p))
        cv2.rectangle(canvas, (bar_left, row_top + 1), (bar_right, row_top + text_h), emotion_colour(name, class_names), -1)


def _draw_attention(canvas: RGBImage, bbox: np.ndarray, attention: np.ndarray) -> None:
    """Blend the attention map, stretched over the whole box, as a JET heat map at ATTENTION_ALPHA.

    The map is resized to the unclipped box and then cut to the frame, so a face half outside the
    frame shows the half of the map that belongs to its visible half.
    """
    attention = np.asarray(attention, dtype=np.float32)
    bbox = np.asarray(bbox, dtype=np.float64)
    if attention.ndim != 2 or attention.size == 0 or not np.all(np.isfinite(bbox)):
        return
    height, width = canvas.shape[:2]
    bx1, by1 = int(np.floor(bbox[0])), int(np.floor(bbox[1]))
    bw, bh = int(np.ceil(bbox[2])) - bx1, int(np.ceil(bbox[3])) - by1
    x1, y1 = max(bx1, 0), max(by1, 0)
    x2, y2 = min(bx1 + bw, width), min(by1 + bh, height)
    if bw <= 0 or bh <= 0 or bw > 8 * width or bh > 8 * height or x2 <= x1 or y2 <= y1:
        return
    heat = cv2.resize(np.nan_to_num(np.clip(attention, 0.0, 1.0)), (bw, bh), interpolation=cv2.INTER_LINEAR)
    heat = heat[y1 - by1:y2 - by1, x1 - bx1:x2 - bx1]
    coloured = cv2.applyColorMap((heat * 255).astype(np.uint8), cv2.COLORMAP_JET)
    coloured = cv2.cvtColor(coloured, cv2.COLOR_BGR2RGB)  # applyColorMap answers in BGR
    region = canvas[y1:y2, x1:x2]
    region[:] = cv2.addWeighted(region, 1.0 - ATTENTION_ALPHA, coloured, ATTENTION_ALPHA, 0.0)


def _draw_heat_in_crop(canvas: RGBImage, heat: np.ndarray, matrix: np.ndarray) -> None:
    """Blend a heat map given over an aligned crop back onto the frame where that crop came from.

    ``matrix`` maps frame pixels to crop pixels; only the bounding box of the crop's footprint in
    the frame is warped, so a small face costs a small warp.
    """
    heat = np.asarray(heat, dtype=np.float32)
    matrix = np.asarray(matrix, dtype=np.float64)
    if heat.ndim != 2 or heat.size == 0 or matrix.shape != (2, 3) or not np.all(np.isfinite(matrix)):
        return
    inverse = cv2.invertAffineTransform(matrix)
    side_x, side_y = heat.shape[1], heat.shape[0]
    corners = np.array([[0, 0, 1], [side_x, 0, 1], [0, side_y, 1], [side_x, side_y, 1]], np.float64) @ inverse.T
    height, width = canvas.shape[:2]
    x1, y1 = (max(int(np.floor(v)), 0) for v in corners.min(0))
    x2, y2 = min(int(np.ceil(corners[:, 0].max())), width), min(int(np.ceil(corners[:, 1].max())), height)
    if x2 <= x1 or y2 <= y1:
        return
    local = matrix.copy()
    local[:, 2] += matrix[:, :2] @ np.array([x1, y1], np.float64)  # region pixel (u, v) = frame pixel (u + x1, v + y1)
    flags = cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP
    warped = cv2.warpAffine(np.nan_to_num(np.clip(heat, 0.0, 1.0)), local, (x2 - x1, y2 - y1), flags=flags)
    inside = cv2.warpAffine(np.ones_like(heat), local, (x2 - x1, y2 - y1), flags=flags)[..., None]
    coloured = cv2.cvtColor(cv2.applyColorMap((warped * 255).astype(np.uint8), cv2.COLORMAP_JET), cv2.COLOR_BGR2RGB)
    region = canvas[y1:y2, x1:x2]
    alpha = ATTENTION_ALPHA * inside
    region[:] = (region * (1.0 - alpha) + coloured * alpha).astype(np.uint8)
