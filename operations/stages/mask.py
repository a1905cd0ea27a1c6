"""The subject's mask before and after the edge stage: the user's knobs, and the user's strokes.

The knobs act in the order a user reads them off the mask (docs/corrections.md):

1. ``threshold``: the mask made yes/no at that level (a model unsure of a region decides);
2. ``grow`` (negative: shrink) by that many pixels, on the mask at the photo's size;
3. the edge stage refines the result as it refines any mask (strokes, if any, are its
   constraints: :func:`rasterize` turns them into known-subject and known-background pixels);
4. ``feather``: the refined alpha softened over about that many pixels.

Pure functions over ``H×W`` ``float32`` alphas in [0, 1]; shapes and units in each docstring.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from operations.errors import require

MAX_PX = 500  # grow, shrink and feather beyond this are a mistake, not a mask's edge
STROKE_KINDS = ("keep", "remove")
MAX_RADIUS = 2000  # a brush larger than a 12-megapixel photo's short side
GREY_UP_TO = 16  # grow or shrink by a disc up to this radius; farther, by the distance to the edge
BLUR_FULL_UP_TO = 8.0  # feather at full size up to this σ; wider, on a reduced copy


@dataclass(frozen=True)
class MaskSettings:
    """The knobs on the mask (the model's, or the user's): see the module's order."""

    threshold: float | None = None  # None: the soft mask as it is
    grow: int = 0  # px; negative shrinks
    feather: float = 0.0  # px; 0: none
    keep_alpha: bool = False  # a photo with its own (not fully opaque) alpha keeps it as its mask

    def __post_init__(self) -> None:
        if self.threshold is not None:
            require(0 <= self.threshold <= 1, "threshold", self.threshold, "must be 0–1")
        require(abs(self.grow) <= MAX_PX, "grow", self.grow, f"must be within ±{MAX_PX} px")
        require(0 <= self.feather <= MAX_PX, "feather", self.feather, f"must be 0–{MAX_PX} px")

    @property
    def shapes(self) -> bool:
        """Whether the mask is changed before the edge stage."""
        return self.threshold is not None or self.grow != 0

    def scaled(self, factor: float) -> MaskSettings:
        """The same knobs for the photo shrunk by ``factor`` (a preview)."""
        return MaskSettings(
            self.threshold,
            round(self.grow * factor),
            self.feather * factor,
            self.keep_alpha,
        )


def _disk(radius: int) -> np.ndarray:
    return cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))


def shape(alpha: np.ndarray, settings: MaskSettings) -> np.ndarray:
    """The knobs that act before the edge stage: threshold, then grow or shrink.

    Args:
        alpha: ``H×W`` ``float32`` in [0, 1], at the photo's size.

    Returns:
        ``H×W`` ``float32`` in [0, 1] (``alpha`` itself when neither knob is set).
    """
    if not settings.shapes:
        return alpha
    shaped = alpha
    if settings.threshold is not None:
        shaped = (alpha >= settings.threshold).astype(np.float32)
    grow = settings.grow
    if 0 < abs(grow) <= GREY_UP_TO:  # grey dilation (erosion): a soft edge moves and stays soft
        morph = cv2.dilate if grow > 0 else cv2.erode
        return morph(shaped, _disk(abs(grow)))
    if grow != 0:  # far: by the distance to the edge (a disc this big would take minutes)
        inside = (shaped >= 0.5).astype(np.uint8)
        if grow > 0:
            away = cv2.distanceTransform(1 - inside, cv2.DIST_L2, 5)
            return np.maximum(shaped, np.clip(grow + 0.5 - away, 0.0, 1.0))
        depth = cv2.distanceTransform(inside, cv2.DIST_L2, 5)
        return np.minimum(shaped, np.clip(depth - (-grow) - 0.5, 0.0, 1.0))
    return shaped


def feather(alpha: np.ndarray, pixels: float) -> np.ndarray:
    """``alpha`` softened over about ``pixels`` pixels (a Gaussian of σ = pixels / 2).

    Args:
        alpha: ``H×W`` ``float32`` in [0, 1].
    """
    if pixels <= 0:
        return alpha
    sigma = pixels / 2.0
    if sigma <= BLUR_FULL_UP_TO:
        return cv2.GaussianBlur(
            alpha, (0, 0), sigmaX=sigma, sigmaY=sigma, borderType=cv2.BORDER_REFLECT
        )
    # A wide blur on a copy reduced so its σ is a few pixels there, then enlarged: the same
    # softness in a fraction of the time (a σ of 250 px at 12 MP takes minutes in full).
    height, width = alpha.shape
    factor = sigma / BLUR_FULL_UP_TO
    small = cv2.resize(
        alpha,
        (max(1, round(width / factor)), max(1, round(height / factor))),
        interpolation=cv2.INTER_AREA,
    )
    small = cv2.GaussianBlur(small, (0, 0), BLUR_FULL_UP_TO, borderType=cv2.BORDER_REFLECT)
    return cv2.resize(small, (width, height), interpolation=cv2.INTER_LINEAR)


@dataclass(frozen=True)
class Stroke:
    """One brush stroke in the photo's own pixels: ``keep`` (subject) or ``remove``
    (background), a round brush of ``radius`` pixels along ``points`` (``(x, y)``)."""

    kind: str
    radius: float
    points: tuple[tuple[float, float], ...]

    def __post_init__(self) -> None:
        require(self.kind in STROKE_KINDS, "kind", self.kind, "choose keep or remove")
        require(0 < self.radius <= MAX_RADIUS, "radius", self.radius, f"must be 0–{MAX_RADIUS}")
        require(len(self.points) >= 1, "points", self.points, "a stroke needs a point")

    def scaled(self, factor: float) -> Stroke:
        points = tuple((x * factor, y * factor) for x, y in self.points)
        return Stroke(self.kind, max(self.radius * factor, 0.5), points)


def rasterize(
    strokes: tuple[Stroke, ...], height: int, width: int
) -> tuple[np.ndarray, np.ndarray]:
    """The strokes as two ``H×W`` ``bool`` masks, (keep, remove), clipped to the photo; a later
    stroke wins where two cross (the last word is the user's)."""
    keep = np.zeros((height, width), np.uint8)
    remove = np.zeros((height, width), np.uint8)
    for stroke in strokes:
        paint, erase = (keep, remove) if stroke.kind == "keep" else (remove, keep)
        layer = np.zeros((height, width), np.uint8)
        # OpenCV draws in 1/8 px (shift 3), so a stroke lands where it was drawn on a zoomed page.
        points = np.round(np.asarray(stroke.points, np.float64) * 8).astype(np.int32)
        radius = round(stroke.radius * 8)
        if len(points) > 1:
            thickness = max(1, round(2 * stroke.radius))
            cv2.polylines(layer, [points.reshape(-1, 1, 2)], False, (1,), thickness, cv2.LINE_8, 3)
        for x, y in points[[0, -1]]:  # a dab, or the round caps of a line
            cv2.circle(layer, (int(x), int(y)), radius, (1,), -1, cv2.LINE_8, 3)
        paint |= layer
        erase &= 1 - layer
    return keep.astype(bool), remove.astype(bool)


def reach_of(strokes: tuple[Stroke, ...]) -> float:
    """How far inside the mask's edge a remove stroke leaves the solver to decide: its brush's
    radius (the largest of them), in the photo's pixels."""
    return max((s.radius for s in strokes if s.kind == "remove"), default=0.0)
