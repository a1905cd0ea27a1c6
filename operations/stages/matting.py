"""Edge refinement: a segmenter's coarse soft mask → a full-resolution alpha, and the subject's
true colours at its edge (colour decontamination).

Segmenters see a small image (MediaPipe 256², DeepLabv3 520 px), so at a photo's resolution their
mask is a blurry ramp a dozen pixels wide that ignores the photo's real edges, and blending the
photo through it keeps a rim of the old background (the halo). Two methods:

``fast`` (default)
    A fast guided filter (He & Sun, 2015, arXiv:1505.00996) on the coarse mask steepened around
    0.5 (the filter's "feathering" use): the linear model ``α ≈ a·I + b`` is fitted on a copy of
    the photo reduced to the mask's size, and applied to the full-resolution pixels, so the alpha
    follows the photo's own edges, hair strands included. Colours are decontaminated by
    blur-fusion (Forte & Pitié, 2021, "Approximate fast foreground colour estimation"): local
    means of foreground and background colours are estimated on the reduced copy, and each edge
    pixel's foreground colour is solved from the compositing equation. At full resolution only
    the pixels of the uncertain band around the edge are touched, in one compiled pass
    (:mod:`operations.stages.matting_kernels`), so most of the cost grows with the outline, not with
    the megapixels: refining and compositing a 2.2 MP photo takes about 12 ms on one core.
``quality``
    Closed-form matting (Levin et al., 2008, via pymatting) in the band of a trimap made from the
    coarse mask, at up to ``QUALITY_MAX_SIDE`` px, brought to full resolution with the guided
    filter; foreground colours from pymatting's multi-level estimator (Germer et al., 2020).
    About fifty times slower; for stills that matter.
``off``
    The coarse mask as it is; the photo's colours as they are.
"""

from __future__ import annotations

import contextlib
import io
import logging
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import cv2
import numpy as np

from operations.errors import require
from operations.media.resize import shrink

log = logging.getLogger("backgroundswap")

MATTING_METHODS = ("fast", "quality", "off")
DEFAULT_METHOD = "fast"


@dataclass(frozen=True)
class MattingSettings:
    """The edge stage's settings: ``method`` is ``fast``, ``quality`` or ``off``."""

    method: str = DEFAULT_METHOD

    def __post_init__(self) -> None:
        method, methods = self.method, MATTING_METHODS
        require(method in methods, "method", method, f"choose from {', '.join(methods)}")


# Tuned on benchmarks/bench_edges.py (synthetic ground truth; see its docstring):
# The filter is fitted on a copy reduced to the segmenter's own mask size (the coarse mask holds
# no finer information); the photo's full detail comes back when the fitted linear model is
# applied to the full-resolution pixels.
RADIUS_MUL = 3  # the filter's window radius, in the segmenter's mask pixels
STEEP = 10.0  # the coarse ramp is steepened around 0.5 before filtering (the "feathering" use of
#               the guided filter): the ramp's position is kept, its width left to the photo's edges
EPS = 1e-4  # guided-filter regularisation on [0, 1] intensities: small, to follow faint edges
QUALITY_MAX_SIDE = 1024  # closed-form matting's working size (its solver grows with the band)
QUALITY_RADIUS = 2  # the filter only carries the closed-form alpha to full size: a small window
UNSURE_LOW, UNSURE_HIGH = 0.03, 0.97  # a reduced alpha strictly between these is "at the edge"
ACROSS_SHARE = 0.1  # a remove stroke this much on sure background was laid across the edge


@dataclass
class Matte:
    """A refined alpha and the subject's colours, in the form compositing is cheapest in.

    Either ``soft`` holds an alpha that may be fractional anywhere (``off``, or a photo with no
    edge to refine) and the colours are the photo's; or (``fast`` and ``quality``) the alpha is
    exactly 0 or 1 (``solid``) except at the ``edge`` pixels, where it and the decontaminated
    colours are kept per pixel, so compositing copies the subject through a mask and does
    arithmetic on the edge alone. The full ``alpha`` is only made when it is asked for.
    """

    rgb: np.ndarray  # H×W×3 uint8: the photo
    soft: np.ndarray | None = None  # H×W float32 in [0, 1]: the alpha, when it is soft anywhere
    solid: np.ndarray | None = None  # H×W uint8: 1 where α = 1 (edge pixels aside)
    edge: np.ndarray | None = None  # flat indices of the edge pixels, in raster order
    edge_alpha: np.ndarray | None = None  # N float32 in [0, 1]: their alpha
    edge_colours: np.ndarray | None = None  # N×3 float32 in [0, 255]: their subject colours
    opaque: bool = False  # some pixel outside the edge is wholly subject (α = 1)

    @property
    def refined(self) -> bool:
        return self.soft is None

    @cached_property
    def alpha(self) -> np.ndarray:
        """The alpha, ``H×W`` ``float32`` in [0, 1]."""
        if self.soft is not None:
            return self.soft
        solid, edge, edge_alpha, _ = self.parts()
        alpha = solid.astype(np.float32)
        alpha.reshape(-1)[edge] = edge_alpha
        return alpha

    def parts(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """A refined matte's ``solid``, ``edge``, ``edge_alpha`` and ``edge_colours`` (all set
        where ``soft`` is not)."""
        parts = self.solid, self.edge, self.edge_alpha, self.edge_colours
        if parts[0] is None or parts[1] is None or parts[2] is None or parts[3] is None:
            raise ValueError("a refined matte without its edge")
        return parts[0], parts[1], parts[2], parts[3]

    def peak(self) -> float:
        """The alpha's largest value (without making the full alpha)."""
        if self.soft is not None:
            return float(self.soft.max(initial=0.0))
        if self.opaque:
            return 1.0
        return float(self.parts()[2].max(initial=0.0))

    @property
    def foreground(self) -> np.ndarray:
        """The subject's colours as an image: the photo, decontaminated at the edge."""
        if not self.refined:
            return self.rgb
        _, edge, _, edge_colours = self.parts()
        foreground = self.rgb.copy()
        colours = np.clip(edge_colours + 0.5, 0, 255).astype(np.uint8)
        foreground.reshape(-1, 3)[edge] = colours
        return foreground

    def times(self, transparency: np.ndarray) -> Matte:
        """This matte under the photo's own transparency (transparent pixels are never subject)."""
        return Matte(self.foreground, soft=self.alpha * transparency)


def _box(image: np.ndarray, radius: int) -> np.ndarray:
    return cv2.boxFilter(image, -1, (2 * radius + 1, 2 * radius + 1), borderType=cv2.BORDER_REFLECT)


# The guide's channel pairs whose products the colour guided filter averages.
_PAIRS = ((0, 0), (0, 1), (0, 2), (1, 1), (1, 2), (2, 2))


def _box_planes(planes: list[np.ndarray], radius: int) -> list[np.ndarray]:
    # Plane by plane: measured, OpenCV's box filter on a merged 13-channel image is 6× slower.
    return [_box(plane, radius) for plane in planes]


def _guided_coefficients(
    guide: list[np.ndarray], source: np.ndarray, radius: int, eps: float
) -> list[np.ndarray]:
    """Coefficients ``a`` (3 planes) and ``b`` of ``source ≈ a·guide + b``, averaged.

    The colour guided filter of He et al. (2013), with the 3×3 covariance inverted in closed form
    for every pixel at once. ``guide`` is three ``h×w`` float32 planes in [0, 1], ``source``
    ``h×w``. Planes rather than ``h×w×3`` arrays: every step then runs on contiguous memory.
    """
    products = [guide[i] * source for i in range(3)] + [guide[i] * guide[j] for i, j in _PAIRS]
    means = _box_planes([*guide, source, *products], radius)
    mean_i, mean_p = means[0:3], means[3]
    cov_ip = [means[4 + i] - mean_i[i] * mean_p for i in range(3)]
    # The symmetric covariance of the guide's channels, plus eps on the diagonal.
    c = {}
    for k, (i, j) in enumerate(_PAIRS):
        c[i, j] = means[7 + k] - mean_i[i] * mean_i[j]
        if i == j:
            c[i, j] += eps
    # Inverse by cofactors.
    inv00 = c[1, 1] * c[2, 2] - c[1, 2] * c[1, 2]
    inv01 = c[0, 2] * c[1, 2] - c[0, 1] * c[2, 2]
    inv02 = c[0, 1] * c[1, 2] - c[0, 2] * c[1, 1]
    inv11 = c[0, 0] * c[2, 2] - c[0, 2] * c[0, 2]
    inv12 = c[0, 2] * c[0, 1] - c[0, 0] * c[1, 2]
    inv22 = c[0, 0] * c[1, 1] - c[0, 1] * c[0, 1]
    det = c[0, 0] * inv00 + c[0, 1] * inv01 + c[0, 2] * inv02
    x, y, z = (cov / det for cov in cov_ip)
    a = [
        inv00 * x + inv01 * y + inv02 * z,
        inv01 * x + inv11 * y + inv12 * z,
        inv02 * x + inv12 * y + inv22 * z,
    ]
    b = mean_p - a[0] * mean_i[0] - a[1] * mean_i[1] - a[2] * mean_i[2]
    return _box_planes([*a, b], radius)


def _block_starts(small: int, full: int) -> np.ndarray:
    """``small + 1`` ints: reduced row ``i`` covers full rows ``starts[i]`` to ``starts[i + 1]``.

    Taken from OpenCV's own nearest-neighbour enlargement of a ramp, so the band's pixels and
    the solid mask (enlarged by OpenCV) agree to the pixel.
    """
    ramp = np.arange(small, dtype=np.int32)[:, None]
    source_of = cv2.resize(ramp, (1, full), interpolation=cv2.INTER_NEAREST)[:, 0]
    return np.searchsorted(source_of, np.arange(small + 1)).astype(np.int64)


def _work_size(height: int, width: int, side: int) -> tuple[int, int]:
    scale = min(1.0, side / max(height, width))
    return max(1, round(width * scale)), max(1, round(height * scale))


def refine(
    rgb: np.ndarray,
    coarse: np.ndarray,
    method: str = DEFAULT_METHOD,
    *,
    mask_side: int = 256,
    fine: bool = False,
) -> Matte:
    """Refine a segmenter's soft alpha to the photo's edges and decontaminate the edge colours.

    Args:
        rgb: ``H×W×3`` ``uint8`` photo.
        coarse: ``H×W`` ``float32`` alpha from a segmenter, at the photo's size.
        method: ``fast``, ``quality`` or ``off``.
        mask_side: the long side of the segmenter's own mask; it sets how wide the uncertain band
            around the edge is at the photo's resolution.
        fine: the mask is a fine one (a salient model's matte-like alpha): its alpha is kept,
            and only the colours of its soft pixels are worked (:func:`refine_fine`).

    Returns:
        The refined alpha and the foreground colours (the photo itself with ``off``).
    """
    if method == "off":
        return Matte(rgb, soft=coarse)
    if method not in MATTING_METHODS:
        raise ValueError(f"unknown matting method {method!r}; choose from {MATTING_METHODS}")
    if fine:
        return refine_fine(rgb, coarse, method, mask_side=mask_side)
    height, width = coarse.shape
    side = QUALITY_MAX_SIDE if method == "quality" else mask_side
    work_w, work_h = _work_size(height, width, side)
    # The coarse mask is smooth (an enlarged low-resolution mask): plain bilinear reduction is
    # exact enough for it and costs a fraction of area averaging at full size.
    coarse_small = cv2.resize(coarse, (work_w, work_h), interpolation=cv2.INTER_LINEAR)
    unsure = (coarse_small > UNSURE_LOW) & (coarse_small < UNSURE_HIGH)
    if not unsure.any():  # no edge at all (empty or full mask): nothing to refine
        return Matte(rgb, soft=coarse)
    guide = list(cv2.split(shrink(rgb, work_w, work_h).astype(np.float32) * np.float32(1 / 255)))
    radius = max(2, round(RADIUS_MUL * max(work_h, work_w) / mask_side))
    if method == "fast":
        source = np.clip((coarse_small - 0.5) * STEEP + 0.5, 0.0, 1.0)
        coefficients = _guided_coefficients(guide, source, radius, EPS)
    else:  # closed-form matting places the edge; the filter only carries it to full size
        source = _closed_form(cv2.merge(guide), coarse_small, mask_side)
        coefficients = _guided_coefficients(guide, source, QUALITY_RADIUS, EPS)
    # The refined alpha at the reduced size says where the edge now is (hair strands included):
    # only pixels near its soft part need work at full resolution.
    a, b = coefficients[:3], coefficients[3]
    alpha_small = a[0] * guide[0] + a[1] * guide[1] + a[2] * guide[2] + b
    interior = _interior(coarse_small, radius)
    np.maximum(alpha_small, interior, out=alpha_small)
    np.clip(alpha_small, 0.0, 1.0, out=alpha_small)
    # Sure, and the same for every full-resolution pixel of its block: a reduced pixel whose
    # whole 3×3 neighbourhood (every tap the bilinear sampling of its block can reach) is
    # subject, or is background. Every other block is the band, decided pixel by pixel (a
    # decision per block steps at the blocks' edges: rectangles in hair at 1:1).
    three = np.ones((3, 3), np.uint8)
    sure_solid = cv2.erode((alpha_small >= UNSURE_HIGH).astype(np.uint8), three)
    sure_empty = cv2.erode((alpha_small <= UNSURE_LOW).astype(np.uint8), three)
    band = ~np.logical_or(sure_solid, sure_empty)
    solid = cv2.resize(sure_solid, (width, height), interpolation=cv2.INTER_NEAREST)
    maps = [*coefficients, interior]
    if method == "fast":  # blur-fusion needs the local subject and background colours
        maps += _colour_means(guide, alpha_small, 3 * radius)
    index, edge_alpha, colours = _edge(rgb, cv2.merge(maps), band, solid)
    matte = Matte(
        rgb,
        solid=solid,
        edge=index,
        edge_alpha=edge_alpha,
        edge_colours=colours,
        opaque=bool((alpha_small >= UNSURE_HIGH).any()),
    )
    if method == "quality":
        colours = _foreground_ml(rgb, matte.alpha).reshape(-1, 3)[index].astype(np.float32)
        matte.edge_colours = colours
    return matte


def solve_with_strokes(
    rgb: np.ndarray,
    coarse: np.ndarray,
    keep: np.ndarray,
    remove: np.ndarray,
    *,
    mask_side: int = 256,
    fine: bool = False,
    max_side: int = QUALITY_MAX_SIDE,
    reach: float = 0.0,
) -> Matte:
    """The matte re-solved with the user's strokes as known pixels: closed-form matting (Levin
    et al. 2008, which was made for scribbles) on a trimap of the mask's sure parts and the
    strokes, at up to ``max_side`` pixels, carried to full size by a guided filter; then the
    subject's colours at its soft pixels as for a fine mask (:func:`refine_fine`).

    A *keep* pixel is known subject. A *remove* pixel is known background where the mask was
    sure of it, deep inside what it took for subject (a second person, an object), and
    *unknown* where the mask was soft or within ``reach`` (the remove brush's radius) inside
    its edge, so the solver, now seeing background beside it, decides from the colours: a
    remove stroke across hair takes the old background out of the hair and leaves its strands
    (a brush laid across an edge covers both sides of it), while a region painted over whole
    goes (a stroke is taken as laid across the edge when :data:`ACROSS_SHARE` of it lies on
    the mask's sure background).

    Args:
        rgb: ``H×W×3`` ``uint8`` photo.
        coarse: ``H×W`` ``float32`` mask (the model's or the user's, knobs applied).
        keep, remove: ``H×W`` ``bool`` (:func:`operations.stages.mask.rasterize`).
        mask_side: the model's mask size (how wide a coarse mask's unsure band is).
        fine: the mask is a fine one: its soft pixels are the unknown band as they are.
    """
    height, width = coarse.shape
    work_w, work_h = _work_size(height, width, max_side)
    coarse_small = cv2.resize(coarse, (work_w, work_h), interpolation=cv2.INTER_AREA)
    # A stroke thinner than a reduced pixel still counts there.
    keep_small = shrink(keep.astype(np.float32), work_w, work_h) > 0.25
    remove_small = shrink(remove.astype(np.float32), work_w, work_h) > 0.25
    guide = list(cv2.split(shrink(rgb, work_w, work_h).astype(np.float32) * np.float32(1 / 255)))
    if fine:
        trimap = np.where(coarse_small >= UNSURE_HIGH, 1.0, 0.5)
        trimap[coarse_small <= UNSURE_LOW] = 0.0
    else:
        trimap = _trimap(coarse_small, max(2, round(max(work_w, work_h) / mask_side)))
    unsure = (coarse_small > UNSURE_LOW) & (coarse_small < UNSURE_HIGH)
    inside = (coarse_small > 0.5).astype(np.uint8)
    depth = cv2.distanceTransform(inside, cv2.DIST_L2, 5)  # from the mask's edge, inward
    near_edge = (depth > 0) & (depth <= reach * work_w / width)
    # A stroke laid across the mask's edge (a share of it on sure background) cleans that edge;
    # one painted inside what the mask took for subject says all of it is background.
    count, labels = cv2.connectedComponents(remove_small.astype(np.uint8))
    outside = np.bincount(labels[coarse_small <= UNSURE_LOW], minlength=count)
    across = (outside >= ACROSS_SHARE * np.bincount(labels.ravel(), minlength=count))[labels]
    decide = remove_small & (unsure | (near_edge & across))  # the solver's, from the colours
    trimap[remove_small] = 0.0
    trimap[decide] = 0.5
    trimap[keep_small] = 1.0
    alpha_small = _solved_trimap(cv2.merge(guide), trimap)
    coefficients = _guided_coefficients(guide, alpha_small, QUALITY_RADIUS, EPS)
    planes = cv2.split(rgb.astype(np.float32) * np.float32(1 / 255))
    alpha = cv2.resize(coefficients[3], (width, height), interpolation=cv2.INTER_LINEAR)
    for plane, a in zip(planes, coefficients[:3], strict=True):
        alpha += cv2.resize(a, (width, height), interpolation=cv2.INTER_LINEAR) * plane
    del planes
    np.clip(alpha, 0.0, 1.0, out=alpha)
    # The strokes hold to the pixel at full size, but where a remove stroke crosses the mask's
    # edge (hair), which the solver decided.
    decided = cv2.resize(decide.astype(np.uint8), (width, height), interpolation=cv2.INTER_NEAREST)
    alpha[remove & (decided == 0)] = 0.0
    alpha[keep] = 1.0
    return refine_fine(rgb, alpha, "fast")


def _solved_trimap(guide: np.ndarray, trimap: np.ndarray) -> np.ndarray:
    """Closed-form alpha in a trimap's unknown (0.5) pixels; the trimap itself where there is
    nothing to solve (no unknown pixel, or no known subject or background to solve from)."""
    from pymatting import estimate_alpha_cf

    if not ((trimap == 0.5).any() and (trimap == 1.0).any() and (trimap == 0.0).any()):
        return np.where(trimap == 0.5, 0.0, trimap).astype(np.float32)
    # pymatting prints its solver's notices ("PERFORMANCE WARNING…") on stdout: not ours to show.
    with contextlib.redirect_stdout(io.StringIO()):
        alpha = estimate_alpha_cf(guide.astype(np.float64), trimap.astype(np.float64))
    return np.clip(alpha, 0.0, 1.0).astype(np.float32)


def _interior(coarse_small: np.ndarray, radius: int) -> np.ndarray:
    """The subject's interior, eroded by the filter's window: ``float32`` 1 inside, else 0.

    Where a whole filter window lies inside the subject the filter has nothing to snap to, and
    in flat colour it returns the window's mean, which dips below 1 near the edge: the interior
    stays solid.
    """
    kernel = cv2.getStructuringElement(cv2.MORPH_RECT, (2 * radius + 1, 2 * radius + 1))
    interior = cv2.erode((coarse_small > 0.5 + 0.5 / STEEP).astype(np.uint8), kernel)
    return interior.astype(np.float32)


# A fine mask's alpha is the model's: below and above these it is taken as exactly 0 and 1 (a
# faint haze of a few percent over the background, or a subject a few percent transparent,
# is the model's noise, not a matte).
FINE_LOW, FINE_HIGH = 0.02, 0.98
# Blur-fusion's two passes (Forte & Pitié 2021): a wide window gathers the local background and
# subject colours (a tail's or a mane's whole width), a small one refines them. As fractions of
# the photo's long side, at least these many pixels. Swept on benchmarks/bench_real_edges.py's
# known-truth composites (real U²-Netp cut-outs over three backgrounds, nine photos): the
# composite's error moves by 1 % from 0.02 to 0.1 wide and 0.002 to 0.016 narrow; these were best.
FUSION_WIDE, FUSION_NARROW = 0.04, 0.008
FUSION_WIDE_MIN, FUSION_NARROW_MIN = 8, 3
# A photo this many times the model's input or more: the model's alpha, enlarged, has lost the
# photo's edges (a 320² U²-Netp map on a 1620-px photo is 5× enlarged), and is given the
# photo's detail back (:func:`sharpened`). Measured on known truth (real cut-outs from ISNet's
# far sharper alpha, composited at 1080-1920 px, segmented by U²-Netp; 12 photos, 48
# composites): composite error 15.61 → 14.69, alpha SAD 55.8 → 53.7, gradient error 0.79 →
# 0.67; radius 2 (at the model's scale) and ε 1e-4 against radius 1 and 3 and ε 1e-3, and
# against the guided filter's own output (15.26: it blurs where the photo is flat).
SHARPEN_AT = 2.0
SHARPEN_RADIUS, SHARPEN_EPS = 2, 1e-4
SHARPEN_STRIP = 256  # rows of the photo worked at once


def sharpened(rgb: np.ndarray, alpha: np.ndarray, mask_side: int) -> np.ndarray:
    """A fine mask, enlarged from a much smaller model input, given the photo's own edges: the
    photo's detail where it explains the alpha, ``α + ā·(I − Ī)`` with ``ā`` the guided
    filter's averaged slope (He et al.) and ``Ī`` the guide's local mean, both fitted at the
    model's scale and sampled bilinearly at each full-resolution pixel near the soft band.
    Where the photo is flat ``ā`` is 0 and the model's alpha is kept as it is (the guided
    filter's own output, ``ā·I + b̄``, would blur it there: a wider ramp). It never grows the
    subject: where the enlarged alpha says background (≤ ``FINE_LOW``), the result does too.

    Args:
        rgb: ``H×W×3`` ``uint8`` photo.
        alpha: ``H×W`` ``float32``: the model's alpha, enlarged to the photo.
        mask_side: the long side of the model's input.
    """
    height, width = alpha.shape
    work_w, work_h = _work_size(height, width, mask_side)
    small = cv2.resize(alpha, (work_w, work_h), interpolation=cv2.INTER_AREA)
    soft = (small > FINE_LOW) & (small < FINE_HIGH)
    if not soft.any():
        return alpha
    guide = list(cv2.split(shrink(rgb, work_w, work_h).astype(np.float32) * np.float32(1 / 255)))
    slope = _guided_coefficients(guide, small, SHARPEN_RADIUS, SHARPEN_EPS)[:3]
    mean = [_box(plane, SHARPEN_RADIUS) for plane in guide]
    # Wherever the slope reaches: its averaging spreads it 2r beyond the alpha's soft pixels,
    # bilinear sampling one more (a band cut short would step at its blocks' edges).
    reach = 2 * (2 * SHARPEN_RADIUS + 1) + 1
    band = cv2.dilate(soft.astype(np.uint8), np.ones((reach, reach), np.uint8))
    band = cv2.resize(band, (width, height), interpolation=cv2.INTER_NEAREST)
    out = alpha.copy()
    # A strip of rows at a time: every pixel's arithmetic is its own, and the band's indices,
    # samples and colours (about 30 bytes a pixel of it) are held for one strip, not the photo.
    for top in range(0, height, SHARPEN_STRIP):
        rows, cols = np.nonzero(band[top : top + SHARPEN_STRIP])
        if not rows.size:
            continue
        rows += top
        sampled = _Sampler(rows, cols, (work_h, work_w), (height, width))
        pixels = rgb[rows, cols].astype(np.float32) * np.float32(1 / 255)
        detail = sum(sampled(slope[c]) * (pixels[:, c] - sampled(mean[c])) for c in range(3))
        out[rows, cols] = np.clip(alpha[rows, cols] + detail, 0.0, 1.0)
    out[alpha <= FINE_LOW] = 0.0  # never grown into what the model calls background
    return out


def refine_fine(
    rgb: np.ndarray, alpha: np.ndarray, method: str = DEFAULT_METHOD, *, mask_side: int = 0
) -> Matte:
    """A fine mask's matte: the model's alpha, kept (near 0 and near 1 snapped), and the
    subject's colours solved from ``I = αF + (1 − α)B`` at its soft pixels.

    A salient model's 1024² alpha already follows hair and fur; snapping it to the photo's edges
    (what a coarse mask needs) grows the subject into smooth background and turns soft strands
    solid. So the alpha is left as the model gave it, and the work goes into the colours: the
    old background is taken out of every semi-transparent pixel, wide bands (a tail, curls, fur
    against the sky) included. ``fast``: blur-fusion, two passes (Forte & Pitié 2021,
    "Approximate Fast Foreground Colour Estimation"); ``quality``: pymatting's multi-level
    estimator (Germer et al. 2020). Only the box around the soft pixels is worked.

    Args:
        rgb: ``H×W×3`` ``uint8`` photo.
        alpha: ``H×W`` ``float32`` model alpha at the photo's size.
        method: ``fast`` or ``quality``.
        mask_side: the long side of the model's input; a photo :data:`SHARPEN_AT` times it or
            more has its alpha refitted to its own edges first (:func:`sharpened`).
    """
    if mask_side and max(alpha.shape) >= SHARPEN_AT * mask_side:
        alpha = sharpened(rgb, alpha, mask_side)
    solid = (alpha >= FINE_HIGH).astype(np.uint8)
    soft = (alpha > FINE_LOW) & (alpha < FINE_HIGH)
    opaque = bool(solid.any())
    if not soft.any():
        empty = np.empty(0, np.int64)
        return Matte(
            rgb,
            solid=solid,
            edge=empty,
            edge_alpha=np.empty(0, np.float32),
            edge_colours=np.empty((0, 3), np.float32),
            opaque=opaque,
        )
    height, width = alpha.shape
    wide = max(FUSION_WIDE_MIN, round(FUSION_WIDE * max(height, width)))
    rows, cols = np.nonzero(soft.any(axis=1))[0], np.nonzero(soft.any(axis=0))[0]
    # The soft pixels' box, with a wide window's margin: the colours it averages are all inside.
    y0, y1 = max(0, rows[0] - wide), min(height, rows[-1] + wide + 1)
    x0, x1 = max(0, cols[0] - wide), min(width, cols[-1] + wide + 1)
    box = (slice(y0, y1), slice(x0, x1))
    crop = np.where(soft[box], alpha[box], solid[box]).astype(np.float32, copy=False)
    photo = rgb[y0:y1, x0:x1]
    inside = soft[y0:y1, x0:x1]
    at = np.flatnonzero(inside)
    if method == "quality":
        colours = _foreground_ml(photo, crop).astype(np.float32).reshape(-1, 3)[at]
    else:
        narrow = max(FUSION_NARROW_MIN, round(FUSION_NARROW * max(height, width)))
        colours = blur_fusion(photo, crop, wide, narrow, at)
    local_rows, local_cols = np.divmod(at, x1 - x0)
    index = (local_rows + y0).astype(np.int64) * width + (local_cols + x0)
    return Matte(
        rgb,
        solid=solid,
        edge=index,
        edge_alpha=crop.reshape(-1)[at],
        edge_colours=colours,
        opaque=opaque,
    )


def blur_fusion(
    rgb: np.ndarray, alpha: np.ndarray, wide: int, narrow: int, at: np.ndarray
) -> np.ndarray:
    """The subject's colours at the soft pixels ``at``, by blur-fusion's two passes (Forte &
    Pitié 2021): local means of subject and background colours, then each pixel's colour
    solved from the compositing equation.

    The means are taken over the pixels sure to be subject (α = 1) and sure to be background
    (α = 0): a soft pixel holds both colours, and weighting the means by α and 1 − α, as the
    paper does without a mask's sure parts, bleeds the old background into the subject's mean
    and back (measured on real photos: a dark rim of old background around a lion's light
    mane strands; the old-background share of the soft pixels 0.222 → 0.179 with ISNet, 0.189
    → 0.154 with U²-Netp: benchmarks/bench_real_edges.py). Where a window holds too few sure
    pixels (a wide soft band: curls, a tail) the α-weighted means stand in.

    Args:
        rgb: ``h×w×3`` ``uint8``.
        alpha: ``h×w`` ``float32``: 1 (sure subject), 0 (sure background), or soft.
        wide, narrow: the two passes' window radii, in pixels.
        at: the soft pixels' flat indices.

    Returns:
        ``N×3`` ``float32`` colours in [0, 255], one row per index of ``at``.
    """
    # The wide pass's means are smooth at its window's scale: they are made on a copy reduced
    # to an eighth of its radius and sampled at the soft pixels (measured on real photos: the
    # same old-background share, the colours within 1.5 levels on average of the full-size
    # pass's, 1.6× faster). Only the soft pixels' means are ever read: no full-size mean is
    # made (a 6 MP photo's four were 290 MB).
    step = max(1, wide // 8)
    mean_f, mean_b = _local_means(_colours(rgb), alpha, wide, step, at)
    assert mean_b is not None
    # A sure subject pixel solves to its own colour and a background one weighs nothing in the
    # next means: only the soft pixels are solved.
    subject = _colours(rgb, at, _solved(rgb, alpha, mean_f, mean_b, at))
    # The narrow pass (the subject's means alone) too, once its window is wide enough to be
    # smooth at an eighth of it (a photo of 2000 px and more): on a 3000×2000 bike with 278,000
    # soft pixels (spokes), 2.1 s → 0.3 s, its colours 3.8 levels apart on average and alike at
    # 1:1; below that size it is made at full size as before.
    mean_f, _ = _local_means(subject, alpha, narrow, max(1, narrow // 8), at, both=False)
    return _solved(rgb, alpha, mean_f, mean_b, at)


# A window whose sure subject (or background) pixels cover this share of it takes its mean
# from them alone; below it, α-weighted means are blended in.
SURE_SHARE = 0.05


def _colours(
    rgb: np.ndarray, at: np.ndarray | None = None, solved: np.ndarray | None = None
) -> Callable[[tuple[int, int] | None], np.ndarray]:
    """The photo's colours in ``float32`` (``solved``, ``N×3``, written at the pixels ``at``),
    as :func:`_local_means` asks for them: at full size (``None``), or reduced to a ``(w, h)``
    by area averaging, made one channel at a time (4 bytes a pixel of the photo at once rather
    than 12; the same numbers, OpenCV's area reduction working channel by channel)."""

    def made(size: tuple[int, int] | None) -> np.ndarray:
        if size is None:
            image = rgb.astype(np.float32)
            if solved is not None:
                image.reshape(-1, 3)[at] = solved
            return image
        planes = []
        for channel in range(3):
            plane = rgb[..., channel].astype(np.float32)
            if solved is not None:
                plane.reshape(-1)[at] = solved[:, channel]
            planes.append(cv2.resize(plane, size, interpolation=cv2.INTER_AREA))
        return np.stack(planes, axis=-1)

    return made


def _local_means(
    colours_of: Callable[[tuple[int, int] | None], np.ndarray],
    alpha: np.ndarray,
    radius: int,
    step: int,
    at: np.ndarray,
    *,
    both: bool = True,
) -> tuple[np.ndarray, np.ndarray | None]:
    """The local means of the subject's colours (``colours_of``: see :func:`_colours`) and
    (``both``) of the background's, over a ``(2·radius + 1)²`` window around each soft pixel
    ``at`` (``N×3``), made on a copy ``step`` times smaller and sampled bilinearly where the
    pixels fall in it. ``alpha``: ``h×w``, 1 where the subject is sure, 0 where the background
    is."""
    height, width = alpha.shape
    size = (max(1, width // step), max(1, height // step)) if step > 1 else None

    def reduced(values: np.ndarray) -> np.ndarray:
        return values if size is None else cv2.resize(values, size, interpolation=cv2.INTER_AREA)

    def sure(background: bool) -> np.ndarray:
        """1 at the sure background's (or subject's) pixels, else 0, at the working size: made
        when needed, one at a time (a full-size pair was 8 bytes a pixel of the photo)."""
        return reduced(((alpha <= 0.0) if background else (alpha >= 1.0)).astype(np.float32))

    colours = colours_of(size)
    weight = reduced(alpha)[..., None]
    if step > 1:
        radius = max(1, round(radius / step))
    window = (2 * radius + 1, 2 * radius + 1)

    def mean(values: np.ndarray) -> np.ndarray:
        blurred = cv2.blur(values, window, borderType=cv2.BORDER_REFLECT)
        return blurred if blurred.ndim == values.ndim else blurred[..., None]

    def local(soft: np.ndarray, certain: np.ndarray) -> np.ndarray:
        share = mean(certain)
        from_sure = mean(colours * certain[..., None])
        from_sure /= share[..., None] + 1e-5
        blended = mean(colours * soft)
        blended /= mean(soft[..., 0])[..., None] + 1e-5
        trust = np.clip(share * (1.0 / SURE_SHARE), 0.0, 1.0)
        from_sure -= blended
        from_sure *= trust[..., None]
        blended += from_sure
        return blended

    at_soft: Callable[[np.ndarray], np.ndarray] = (
        (lambda means: means.reshape(-1, 3)[at])
        if step == 1
        else _Sampler(*np.divmod(at, width), weight.shape[:2], (height, width))
    )

    subject = at_soft(local(weight, sure(background=False)))
    background = at_soft(local(1.0 - weight, sure(background=True))) if both else None
    return subject, background


class _Sampler:
    """Reduced maps (``h×w`` or ``h×w×C``, of a ``full``-sized image) read at chosen full-size
    pixels, bilinearly, as enlarging them with :func:`cv2.resize` would give those pixels: the
    pixels' centres in the reduced maps are laid out once, in rows of 4096 (:func:`cv2.remap`
    takes maps under 32767 a side), and every map is read through them."""

    def __init__(
        self,
        rows: np.ndarray,
        cols: np.ndarray,
        small: tuple[int, int],
        full: tuple[int, int],
    ) -> None:
        self.count = rows.size
        shape = (-(-self.count // 4096), 4096)

        def laid_out(values: np.ndarray) -> np.ndarray:
            out = np.zeros(shape[0] * shape[1], np.float32)
            out[: self.count] = values
            return out.reshape(shape)

        self.at_x = laid_out((cols + 0.5) * (small[1] / full[1]) - 0.5)
        self.at_y = laid_out((rows + 0.5) * (small[0] / full[0]) - 0.5)

    def __call__(self, small: np.ndarray) -> np.ndarray:
        """``small`` at the pixels: ``N`` values, or ``N×C``."""
        remapped = cv2.remap(
            small, self.at_x, self.at_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
        )
        if small.ndim == 2:
            return remapped.reshape(-1)[: self.count]
        return remapped.reshape(-1, small.shape[2])[: self.count]


def _solved(
    image: np.ndarray, alpha: np.ndarray, f: np.ndarray, b: np.ndarray, at: np.ndarray
) -> np.ndarray:
    """Blur-fusion's solve of ``I = αF + (1 − α)B`` for ``F`` at the pixels ``at``, given the
    local means there (``f``, ``b``: ``N×3``): ``F̄ + α(I − αF̄ − (1 − α)B̄)``."""
    a = alpha.reshape(-1)[at][:, None]
    # In place on the gathered pixels (a new array), in the formula's own order: one N×3
    # temporary at a time rather than five.
    solved = image.reshape(-1, 3)[at].astype(np.float32, copy=False)
    solved -= a * f
    solved -= (1.0 - a) * b
    solved *= a
    solved += f
    return np.clip(solved, 0.0, 255.0, out=solved)


def _edge(
    rgb: np.ndarray, maps: np.ndarray, band: np.ndarray, solid: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The band's pixels at full resolution, each decided on its own: ``solid`` written where
    it is 1, and the soft ones' flat indices, alpha and subject colours returned."""
    from operations.stages import matting_kernels

    row_start = _block_starts(band.shape[0], rgb.shape[0])
    col_start = _block_starts(band.shape[1], rgb.shape[1])
    room = matting_kernels.band_size(band, row_start, col_start)
    index = np.empty(room, np.int64)
    alpha = np.empty(room, np.float32)
    colours = np.empty((room, 3), np.float32)
    count = matting_kernels.edge_pixels(
        np.ascontiguousarray(rgb),
        np.ascontiguousarray(maps),
        band,
        row_start,
        col_start,
        UNSURE_LOW,
        UNSURE_HIGH,
        solid,
        index,
        alpha,
        colours,
    )
    return index[:count], alpha[:count], colours[:count]


def _compiled_before(package_dir: Path, pattern: str) -> bool:
    """Whether numba's disk cache holds compiled functions matching ``pattern``."""
    return any(package_dir.rglob(f"__pycache__/{pattern}"))


def warm_up(method: str = DEFAULT_METHOD) -> None:
    """Compile the refinement's kernels now (or load them from numba's disk cache), saying so
    when it is the first time on this machine, so no photo waits for it in silence.

    Ours take a second or two the first time; pymatting's (``quality``) about forty seconds.
    Afterwards loading takes a fraction of that. Called when a pipeline is built.
    """
    # Looked for beside this module, whose package holds the kernels: importing them would
    # import numba (0.15 s, and 0.2-0.3 s more to load the kernels a run then uses), which a
    # salient photo's run never needs. Once compiled, each kernel loads from numba's cache when
    # first used (loading them all here took 0.9 s of every run's start).
    if not _compiled_before(Path(__file__).parent, "matting_kernels.*.nbi"):
        from operations.stages.matting_kernels import blend_edge, smooth_edges

        log.info("compiling the edge refinement's kernels (once on this machine: a few seconds)")
        rgb, coarse = _warm_up_scene()
        matte = refine(rgb, coarse, "fast", mask_side=rgb.shape[0] // 2)
        blend_edge(rgb.copy(), rgb, matte.edge, matte.edge_alpha, matte.edge_colours)
        edges = (matte.solid, matte.edge, matte.edge_alpha)  # a video's temporal smoothing's
        smooth_edges(rgb, *edges, matte.edge_colours, *edges, np.zeros((2, 2), np.float32), 0.0)
    if method == "quality":
        _warm_up_pymatting()


def _warm_up_scene() -> tuple[np.ndarray, np.ndarray]:
    """A 24-pixel photo of a square and its blurred mask: every path of the edge stage."""
    rgb = np.zeros((24, 24, 3), np.uint8)
    rgb[6:18, 6:18] = 200
    return rgb, cv2.GaussianBlur((rgb[..., 0] > 0).astype(np.float32), (0, 0), 2.0)


def _warm_up_pymatting() -> None:
    """Compile (or load) pymatting's functions, saying so the first time on this machine."""
    import importlib.util

    # Looked up without importing it: pymatting compiles its functions as it is imported.
    spec = importlib.util.find_spec("pymatting")
    folders = spec.submodule_search_locations if spec is not None else None
    if folders and not _compiled_before(Path(next(iter(folders))), "*.nbi"):
        log.info("compiling closed-form matting (pymatting; once on this machine: about a minute)")
    rgb, coarse = _warm_up_scene()
    refine(rgb, coarse, "quality", mask_side=rgb.shape[0] // 2)


def _colour_means(guide: list[np.ndarray], alpha: np.ndarray, radius: int) -> list[np.ndarray]:
    """Local mean colours (3 planes each) of the subject (α-weighted) and of the background
    ((1 − α)-weighted)."""
    # One box filter for all: the means of α·I, α and I give the (1 − α)-weighted ones too.
    means = _box_planes([*(plane * alpha for plane in guide), alpha, *guide], radius)
    weighted, mean_i = means[0:3], means[4:7]
    to_f = 1.0 / np.maximum(means[3], 1e-4)
    to_b = 1.0 / np.maximum(1.0 - means[3], 1e-4)
    mean_f = [plane * to_f for plane in weighted]
    mean_b = [(mean - plane) * to_b for mean, plane in zip(mean_i, weighted, strict=True)]
    return mean_f + mean_b


def _trimap(coarse: np.ndarray, margin: int) -> np.ndarray:
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * margin + 1, 2 * margin + 1))
    sure_fg = cv2.erode((coarse > 0.9).astype(np.uint8), kernel)
    sure_bg = cv2.erode((coarse < 0.1).astype(np.uint8), kernel)
    trimap = np.full(coarse.shape, 0.5, np.float64)
    trimap[sure_fg == 1] = 1.0
    trimap[sure_bg == 1] = 0.0
    return trimap


def _closed_form(guide: np.ndarray, coarse: np.ndarray, mask_side: int) -> np.ndarray:
    """Closed-form alpha (Levin et al.) in the unknown band of a trimap made from ``coarse``."""
    margin = max(2, round(max(coarse.shape) / mask_side))
    trimap = _trimap(coarse, margin)
    if not ((trimap == 0.5).any() and (trimap == 1.0).any() and (trimap == 0.0).any()):
        return coarse  # nothing to solve: the mask is all subject or all background
    return _solved_trimap(guide, trimap)


def _foreground_ml(rgb: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    from pymatting import estimate_foreground_ml

    if rgb.shape[0] * rgb.shape[1] < 2:  # pymatting's pyramid divides by zero on one pixel
        return rgb
    foreground = estimate_foreground_ml(rgb.astype(np.float64) / 255.0, alpha.astype(np.float64))
    # Keep the photo's own pixels where the subject is opaque: only edges change.
    out = np.clip(foreground * 255.0 + 0.5, 0, 255).astype(np.uint8)
    opaque = alpha >= UNSURE_HIGH
    out[opaque] = rgb[opaque]
    return out
