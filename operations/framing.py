"""Framing: the subject cropped to its box and placed on a canvas of a chosen size, with the
same margin on every photo (a shop's 2000×2000 white squares, 8 % margin).

The box is the subject's (alpha > ½), specks apart: parts smaller than ``SPECK`` of the largest
are not counted, so a stray speck of mask does not drag the frame out. The subject is scaled to
fit the canvas inside the margin (``margin`` percent of the canvas's shorter side, on every
side) and centred, or stood on the bottom margin (``align="bottom"``, for products on a floor).
The background (an image, a colour, or nothing) then fills the whole canvas.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from operations.matting import Matte

ALIGNS = ("center", "bottom")
DEFAULT_MARGIN = 8.0  # percent of the canvas's shorter side
SPECK = 0.01  # parts of the mask smaller than this share of the largest are not subject


@dataclass(frozen=True)
class FrameSettings:
    """Where the subject goes: a canvas of ``canvas`` px (width, height), or of the ``aspect``
    ratio at the photo's own scale, or (neither) the subject's box plus the margin."""

    canvas: tuple[int, int] | None = None
    aspect: tuple[int, int] | None = None
    margin: float = DEFAULT_MARGIN
    align: str = "center"


def subject_box(alpha: np.ndarray) -> tuple[int, int, int, int] | None:
    """The subject's box ``(x0, y0, x1, y1)`` (ends exclusive), specks apart; ``None`` when the
    mask holds no subject."""
    mask = (alpha > 0.5).astype(np.uint8)
    count, _, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
    if count <= 1:
        return None
    parts = stats[1:]
    kept = parts[parts[:, cv2.CC_STAT_AREA] >= SPECK * parts[:, cv2.CC_STAT_AREA].max()]
    left, top = kept[:, cv2.CC_STAT_LEFT], kept[:, cv2.CC_STAT_TOP]
    right = left + kept[:, cv2.CC_STAT_WIDTH]
    bottom = top + kept[:, cv2.CC_STAT_HEIGHT]
    return int(left.min()), int(top.min()), int(right.max()), int(bottom.max())


@dataclass(frozen=True)
class Layout:
    """The canvas's size and where the subject's box lands on it: ``canvas = scale · (p − box
    corner) + (x, y)``."""

    width: int
    height: int
    scale: float
    x: int
    y: int


def layout(box: tuple[int, int, int, int], settings: FrameSettings) -> Layout:
    """The canvas and the subject's place on it, for a subject of this box."""
    x0, y0, x1, y1 = box
    box_w, box_h = x1 - x0, y1 - y0
    share = settings.margin / 100.0
    if settings.canvas is not None:
        width, height = settings.canvas
    else:  # at the photo's own scale: the smallest canvas of the ratio that holds box + margin
        ratio = settings.aspect[0] / settings.aspect[1] if settings.aspect else box_w / box_h
        # With the margin a share of the shorter side: wide canvases are limited by their height.
        if ratio >= 1:
            height = max(box_h / (1 - 2 * share), box_w / (ratio - 2 * share))
            width = ratio * height
        else:
            width = max(box_w / (1 - 2 * share), box_h / (1 / ratio - 2 * share))
            height = width / ratio
        width, height = max(1, round(width)), max(1, round(height))
    margin = share * min(width, height)
    scale = min((width - 2 * margin) / box_w, (height - 2 * margin) / box_h)
    placed_w, placed_h = round(box_w * scale), round(box_h * scale)
    x = (width - placed_w) // 2
    y = (
        (height - placed_h) // 2
        if settings.align == "center"
        else round(height - margin) - placed_h
    )
    return Layout(width, height, scale, x, y)


def frame(matte: Matte, settings: FrameSettings) -> Matte:
    """``matte``'s subject (its colours and alpha) placed on the canvas; unchanged when the
    mask holds no subject to frame."""
    alpha = matte.alpha
    box = subject_box(alpha)
    if box is None:
        return matte
    placed = layout(box, settings)
    height, width = alpha.shape
    size = (max(1, round(width * placed.scale)), max(1, round(height * placed.scale)))
    # Area averaging when shrinking (no aliasing in fine hair), bilinear when enlarging.
    method = cv2.INTER_AREA if placed.scale < 1 else cv2.INTER_LINEAR
    colours = cv2.resize(matte.foreground, size, interpolation=method)
    alpha = cv2.resize(alpha, size, interpolation=method)
    # Where the scaled photo's origin falls on the canvas (whole pixels: boxes land exactly).
    dx = placed.x - round(box[0] * placed.scale)
    dy = placed.y - round(box[1] * placed.scale)
    canvas_rgb = np.zeros((placed.height, placed.width, 3), np.uint8)
    canvas_alpha = np.zeros((placed.height, placed.width), np.float32)
    # The overlap of the scaled photo and the canvas, in both frames of reference.
    sx0, sy0 = max(0, -dx), max(0, -dy)
    cx0, cy0 = max(0, dx), max(0, dy)
    w = min(size[0] - sx0, placed.width - cx0)
    h = min(size[1] - sy0, placed.height - cy0)
    if w > 0 and h > 0:
        canvas_rgb[cy0 : cy0 + h, cx0 : cx0 + w] = colours[sy0 : sy0 + h, sx0 : sx0 + w]
        canvas_alpha[cy0 : cy0 + h, cx0 : cx0 + w] = alpha[sy0 : sy0 + h, sx0 : sx0 + w]
    np.clip(canvas_alpha, 0.0, 1.0, out=canvas_alpha)
    return Matte(canvas_rgb, soft=canvas_alpha)


def parse_canvas(text: str) -> tuple[tuple[int, int] | None, tuple[int, int] | None]:
    """``2000x2000`` → a size; ``4:5`` → an aspect ratio. (size, aspect), one of them set.

    Raises:
        ValueError: neither.
    """
    cleaned = text.strip().lower().replace("×", "x")
    for separator, kind in (("x", "size"), (":", "aspect")):
        if separator in cleaned:
            first, _, second = cleaned.partition(separator)
            try:
                a, b = int(first), int(second)
            except ValueError:
                break
            if a > 0 and b > 0:
                return ((a, b), None) if kind == "size" else (None, (a, b))
    raise ValueError(f"give WxH (2000x2000) or an aspect W:H (4:5), not {text!r}")
