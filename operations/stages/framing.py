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

from operations.errors import require, setting
from operations.media.decode import DEFAULT_MAX_PIXELS
from operations.media.files import ImageError
from operations.stages.matting import Matte

ALIGNS = ("center", "bottom")
DEFAULT_MARGIN = 8.0  # percent of the canvas's shorter side
SPECK = 0.01  # parts of the mask smaller than this share of the largest are not subject


# A subject enlarged past this factor shows its pixels (a warning, the factor in its row); past
# MAX_ENLARGEMENT the result is a blurry square that no shop would use, and the photo fails with
# the reason instead (a 40 px speck taken for the product, a canvas far too large for the photo).
SOFT_ENLARGEMENT = 2.0
MAX_ENLARGEMENT = 16.0
MAX_ASPECT = 10  # W:H and H:W beyond 10:1 are no canvas (1:500 asked for a 600×300000 image)


@dataclass(frozen=True)
class FrameSettings:
    """Where the subject goes: a canvas of ``canvas`` px (width, height), or of the ``aspect``
    ratio at the photo's own scale, or (neither) the subject's box plus the margin. A canvas
    over ``max_pixels`` is refused."""

    canvas: tuple[int, int] | None = None
    aspect: tuple[int, int] | None = None
    margin: float = DEFAULT_MARGIN
    align: str = "center"
    max_pixels: int = DEFAULT_MAX_PIXELS

    def __post_init__(self) -> None:
        margin = self.margin
        require(0 <= margin < 50, "margin", margin, "must be at least 0 and below 50 (%)")
        require(self.align in ALIGNS, "align", self.align, f"choose from {', '.join(ALIGNS)}")
        require(self.max_pixels >= 1, "max_pixels", self.max_pixels, "must be positive")


@dataclass
class Framed:
    """A framed matte on its canvas; ``scale``: how much the subject was enlarged (or shrunk),
    ``None`` when there was no subject; ``warnings`` for the photo's row."""

    matte: Matte
    scale: float | None
    warnings: list[str]
    shade: np.ndarray | None = None  # the subject's own shadow, moved and scaled with it


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
            tall = max(box_h / (1 - 2 * share), box_w / (ratio - 2 * share))
            wide = ratio * tall
        else:
            wide = max(box_w / (1 - 2 * share), box_h / (1 / ratio - 2 * share))
            tall = wide / ratio
        width, height = max(1, round(wide)), max(1, round(tall))
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


def frame(matte: Matte, settings: FrameSettings, shade: np.ndarray | None = None) -> Framed:
    """``matte``'s subject (its colours and alpha, and its own shadow's density ``shade`` if
    given) placed on the canvas. With no subject to frame, an empty canvas of the size the
    settings ask for (the photo's own when they name none).

    Only the part of the photo that lands on the canvas is scaled: memory follows the canvas,
    not the enlargement (a 40 px subject on a 2000×2000 canvas once scaled the whole photo 42×).

    Raises:
        ImageError: the canvas would be over the pixel limit, or the subject would have to be
            enlarged more than :data:`MAX_ENLARGEMENT` times.
    """
    alpha = matte.alpha
    box = subject_box(alpha)
    if box is None:
        width, height = empty_canvas(alpha.shape, settings)
        _check_pixels(width, height, settings.max_pixels)
        empty = np.zeros((height, width), np.float32)
        return Framed(Matte(np.zeros((height, width, 3), np.uint8), soft=empty), None, [])
    placed = layout(box, settings)
    _check_pixels(placed.width, placed.height, settings.max_pixels)
    box_w, box_h = box[2] - box[0], box[3] - box[1]
    if placed.scale > MAX_ENLARGEMENT:
        raise ImageError(
            f"the subject ({box_w}×{box_h} px) would be enlarged {placed.scale:.0f}× to fill a "
            f"{placed.width}×{placed.height} canvas (at most {MAX_ENLARGEMENT:g}×): give a "
            f"smaller {setting('canvas')}, or a photo where the subject is larger"
        )
    warnings = []
    if placed.scale > SOFT_ENLARGEMENT:
        warnings.append(
            f"the subject ({box_w}×{box_h} px) is enlarged {placed.scale:.1f}× to fill the "
            "canvas: it will look soft"
        )
    height, width = alpha.shape
    s = placed.scale
    # Where the scaled photo's origin falls on the canvas (whole pixels: boxes land exactly),
    # and the part of the canvas the scaled photo covers.
    dx, dy = placed.x - round(box[0] * s), placed.y - round(box[1] * s)
    scaled_w, scaled_h = max(1, round(width * s)), max(1, round(height * s))
    cx0, cy0 = max(0, dx), max(0, dy)
    cx1, cy1 = min(placed.width, dx + scaled_w), min(placed.height, dy + scaled_h)
    canvas_rgb = np.zeros((placed.height, placed.width, 3), np.uint8)
    layers = 1 if shade is None else 2  # the shadow moves with the alpha, in one warp
    canvas = np.zeros((placed.height, placed.width, layers), np.float32)
    if cx1 > cx0 and cy1 > cy0:
        stacked = alpha if shade is None else np.dstack([alpha, shade])
        colours, part = _scaled(matte.foreground, stacked, s, dx, dy, (cx0, cy0, cx1, cy1))
        canvas_rgb[cy0:cy1, cx0:cx1] = colours
        canvas[cy0:cy1, cx0:cx1] = part.reshape(*part.shape[:2], layers)
    np.clip(canvas, 0.0, 1.0, out=canvas)
    canvas_alpha = np.ascontiguousarray(canvas[:, :, 0])
    canvas_shade = np.ascontiguousarray(canvas[:, :, 1]) if shade is not None else None
    return Framed(Matte(canvas_rgb, soft=canvas_alpha), s, warnings, canvas_shade)


def _scaled(
    rgb: np.ndarray,
    alpha: np.ndarray,
    scale: float,
    dx: int,
    dy: int,
    window: tuple[int, int, int, int],
) -> tuple[np.ndarray, np.ndarray]:
    """The photo's colours and alpha scaled by ``scale`` and placed at ``(dx, dy)``, as the
    canvas ``window`` (x0, y0, x1, y1) shows them: as :func:`cv2.resize` of the whole photo
    would, area-averaged when shrinking and bilinear when enlarging, but an enlargement is made
    from the part of the photo the window shows alone."""
    x0, y0, x1, y1 = window
    if scale < 1:  # the whole photo, shrunk: no larger than it already is
        size = (max(1, round(rgb.shape[1] * scale)), max(1, round(rgb.shape[0] * scale)))
        colours = cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)
        part = cv2.resize(alpha, size, interpolation=cv2.INTER_AREA)
        return colours[y0 - dy : y1 - dy, x0 - dx : x1 - dx], part[
            y0 - dy : y1 - dy, x0 - dx : x1 - dx
        ]
    # cv2.resize maps a scaled pixel j to the photo's (j + ½)/scale − ½: the same map, from the
    # window's pixels, on the photo's part it reaches (a pixel wider for the interpolation).
    height, width = alpha.shape[:2]  # alpha may carry the shadow as a second layer
    px0 = max(0, int(np.floor((x0 - dx + 0.5) / scale - 0.5)) - 1)
    py0 = max(0, int(np.floor((y0 - dy + 0.5) / scale - 0.5)) - 1)
    px1 = min(width, int(np.ceil((x1 - dx + 0.5) / scale - 0.5)) + 2)
    py1 = min(height, int(np.ceil((y1 - dy + 0.5) / scale - 0.5)) + 2)
    shift_x = dx - x0 - 0.5 + 0.5 * scale + scale * px0
    shift_y = dy - y0 - 0.5 + 0.5 * scale + scale * py0
    matrix = np.array([[scale, 0.0, shift_x], [0.0, scale, shift_y]], np.float64)
    size = (x1 - x0, y1 - y0)

    def warp(image: np.ndarray) -> np.ndarray:
        return cv2.warpAffine(
            image[py0:py1, px0:px1],
            matrix,
            size,
            flags=cv2.INTER_LINEAR,
            borderMode=cv2.BORDER_REPLICATE,
        )

    return warp(rgb), warp(alpha)


def empty_canvas(shape: tuple[int, int], settings: FrameSettings) -> tuple[int, int]:
    """(width, height) of the canvas of a photo with no subject: the canvas asked for, else the
    photo's own size cut to the aspect asked for, else the photo's own size."""
    if settings.canvas is not None:
        return settings.canvas
    height, width = shape
    if settings.aspect is not None:
        ratio = settings.aspect[0] / settings.aspect[1]
        if width / height > ratio:
            width = max(1, round(height * ratio))
        else:
            height = max(1, round(width / ratio))
    return width, height


def _check_pixels(width: int, height: int, limit: int) -> None:
    if width * height > limit:
        raise ImageError(
            f"the canvas would be {width}×{height} = {width * height / 1e6:.0f} MP, over the "
            f"pixel limit of {limit / 1e6:.0f} MP: give a smaller {setting('canvas')} (or raise "
            f"{setting('max_pixels')})"
        )


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
                if kind == "aspect" and max(a / b, b / a) > MAX_ASPECT:
                    raise ValueError(
                        f"an aspect of {a}:{b} is beyond {MAX_ASPECT}:1 either way: no canvas"
                    )
                return ((a, b), None) if kind == "size" else (None, (a, b))
    raise ValueError(f"give WxH (2000x2000) or an aspect W:H (4:5), not {text!r}")
