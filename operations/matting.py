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
    pixel's foreground colour is solved from the compositing equation. Every full-resolution step
    touches only the pixels of the uncertain band around the edge, so the cost grows with the
    outline, not with the megapixels.
``quality``
    Closed-form matting (Levin et al., 2008, via pymatting) in the band of a trimap made from the
    coarse mask, at up to ``QUALITY_MAX_SIDE`` px, brought to full resolution with the guided
    filter; foreground colours from pymatting's multi-level estimator (Germer et al., 2020).
    About fifty times slower; for stills that matter.
``off``
    The coarse mask as it is; the photo's colours as they are.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from operations.images import shrink

MATTING_METHODS = ("fast", "quality", "off")
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


@dataclass
class Matte:
    """A refined alpha and the subject's colours, in the form compositing is cheapest in.

    With ``off`` the alpha is soft everywhere and the colours are the photo's. With ``fast`` and
    ``quality`` the alpha is exactly 0 or 1 except at the ``edge`` pixels, where it and the
    decontaminated colours are kept per pixel, so compositing copies the subject through a mask
    and does arithmetic on the edge alone.
    """

    alpha: np.ndarray  # H×W float32 in [0, 1]
    rgb: np.ndarray  # H×W×3 uint8: the photo
    solid: np.ndarray | None = None  # H×W uint8: 1 where α = 1 (edge pixels aside)
    edge: np.ndarray | None = None  # flat indices of the edge pixels
    edge_colours: np.ndarray | None = None  # N×3 float32 in [0, 255]: their subject colours

    @property
    def foreground(self) -> np.ndarray:
        """The subject's colours as an image: the photo, decontaminated at the edge."""
        if self.edge is None or self.edge_colours is None:
            return self.rgb
        foreground = self.rgb.copy()
        colours = np.clip(self.edge_colours + 0.5, 0, 255).astype(np.uint8)
        foreground.reshape(-1, 3)[self.edge] = colours
        return foreground

    def times(self, transparency: np.ndarray) -> Matte:
        """This matte under the photo's own transparency (transparent pixels are never subject)."""
        return Matte(self.alpha * transparency, self.foreground)


def _box(image: np.ndarray, radius: int) -> np.ndarray:
    return cv2.boxFilter(image, -1, (2 * radius + 1, 2 * radius + 1), borderType=cv2.BORDER_REFLECT)


def _guided_coefficients(
    guide: np.ndarray, source: np.ndarray, radius: int, eps: float
) -> tuple[np.ndarray, np.ndarray]:
    """Coefficients ``a`` (``h×w×3``) and ``b`` (``h×w``) of ``source ≈ a·guide + b``, averaged.

    The colour guided filter of He et al. (2013), with the 3×3 covariance inverted in closed form
    for every pixel at once. ``guide`` is ``h×w×3`` float32 in [0, 1], ``source`` ``h×w``.
    """
    mean_i = _box(guide, radius)
    mean_p = _box(source, radius)
    cov_ip = _box(guide * source[..., None], radius) - mean_i * mean_p[..., None]
    # The symmetric covariance of the guide's channels, plus eps on the diagonal.
    c = {}
    for i, j in ((0, 0), (0, 1), (0, 2), (1, 1), (1, 2), (2, 2)):
        c[i, j] = _box(guide[..., i] * guide[..., j], radius) - mean_i[..., i] * mean_i[..., j]
    for k in range(3):
        c[k, k] = c[k, k] + eps
    # Inverse by cofactors.
    inv00 = c[1, 1] * c[2, 2] - c[1, 2] * c[1, 2]
    inv01 = c[0, 2] * c[1, 2] - c[0, 1] * c[2, 2]
    inv02 = c[0, 1] * c[1, 2] - c[0, 2] * c[1, 1]
    inv11 = c[0, 0] * c[2, 2] - c[0, 2] * c[0, 2]
    inv12 = c[0, 2] * c[0, 1] - c[0, 0] * c[1, 2]
    inv22 = c[0, 0] * c[1, 1] - c[0, 1] * c[0, 1]
    det = c[0, 0] * inv00 + c[0, 1] * inv01 + c[0, 2] * inv02
    x, y, z = cov_ip[..., 0], cov_ip[..., 1], cov_ip[..., 2]
    a = (
        np.stack(
            [
                inv00 * x + inv01 * y + inv02 * z,
                inv01 * x + inv11 * y + inv12 * z,
                inv02 * x + inv12 * y + inv22 * z,
            ],
            axis=-1,
        )
        / det[..., None]
    )
    b = mean_p - (a * mean_i).sum(axis=-1)
    return _box(a, radius), _box(b, radius)


def _sample(image: np.ndarray, rows: np.ndarray, cols: np.ndarray, scale: tuple[float, float]):
    """Bilinearly sample a reduced map at full-resolution pixel centres (``rows``, ``cols``)."""
    count = rows.size
    width = 8192  # cv2.remap's maps must be under 32767 on each side: fold the list into rows
    padded = -(-count // width) * width
    map_x = np.zeros(padded, np.float32)
    map_y = np.zeros(padded, np.float32)
    map_x[:count] = (cols + 0.5) / scale[1] - 0.5
    map_y[:count] = (rows + 0.5) / scale[0] - 0.5
    shape = (padded // width, width)
    sampled = cv2.remap(image, map_x.reshape(shape), map_y.reshape(shape), cv2.INTER_LINEAR,
                        borderMode=cv2.BORDER_REPLICATE)  # fmt: skip
    return sampled.reshape(padded, *image.shape[2:])[:count]


@dataclass
class _Band:
    """The uncertain pixels around the edge, as flat indices and coordinates at full size."""

    index: np.ndarray
    rows: np.ndarray
    cols: np.ndarray


def _band(alpha_small: np.ndarray, shape: tuple[int, int]) -> _Band:
    # Not widened: measured, a band one reduced pixel wider costs time and gains nothing.
    unsure = ((alpha_small > UNSURE_LOW) & (alpha_small < UNSURE_HIGH)).astype(np.uint8)
    full = cv2.resize(unsure, (shape[1], shape[0]), interpolation=cv2.INTER_NEAREST)
    index = np.flatnonzero(full)
    rows, cols = np.divmod(index, shape[1])
    return _Band(index, rows, cols)


def _work_size(height: int, width: int, side: int) -> tuple[int, int]:
    scale = min(1.0, side / max(height, width))
    return max(1, round(width * scale)), max(1, round(height * scale))


def refine(
    rgb: np.ndarray, coarse: np.ndarray, method: str = "fast", *, mask_side: int = 256
) -> Matte:
    """Refine a coarse alpha to the photo's edges and decontaminate the edge colours.

    Args:
        rgb: ``H×W×3`` ``uint8`` photo.
        coarse: ``H×W`` ``float32`` alpha from a segmenter, at the photo's size.
        method: ``fast``, ``quality`` or ``off``.
        mask_side: the long side of the segmenter's own mask; it sets how wide the uncertain band
            around the edge is at the photo's resolution.

    Returns:
        The refined alpha and the foreground colours (the photo itself with ``off``).
    """
    if method == "off":
        return Matte(coarse, rgb)
    if method not in MATTING_METHODS:
        raise ValueError(f"unknown matting method {method!r}; choose from {MATTING_METHODS}")
    height, width = coarse.shape
    side = QUALITY_MAX_SIDE if method == "quality" else mask_side
    work_w, work_h = _work_size(height, width, side)
    scale = (height / work_h, width / work_w)
    guide = shrink(rgb, work_w, work_h).astype(np.float32) / 255.0
    # The coarse mask is smooth (an enlarged low-resolution mask): plain bilinear reduction is
    # exact enough for it and costs a fraction of area averaging at full size.
    coarse_small = cv2.resize(coarse, (work_w, work_h), interpolation=cv2.INTER_LINEAR)
    radius = max(2, round(RADIUS_MUL * max(work_h, work_w) / mask_side))
    unsure = (coarse_small > UNSURE_LOW) & (coarse_small < UNSURE_HIGH)
    if not unsure.any():  # no edge at all (empty or full mask): nothing to refine
        return Matte(coarse, rgb)
    if method == "fast":
        source = np.clip((coarse_small - 0.5) * STEEP + 0.5, 0.0, 1.0)
        mean_a, mean_b = _guided_coefficients(guide, source, radius, EPS)
    else:  # closed-form matting places the edge; the filter only carries it to full size
        source = _closed_form(guide, coarse_small, mask_side)
        mean_a, mean_b = _guided_coefficients(guide, source, QUALITY_RADIUS, EPS)
    # The refined alpha at the reduced size says where the edge now is (hair strands included):
    # only pixels near its soft part need work at full resolution.
    alpha_small = np.clip((mean_a * guide).sum(axis=-1) + mean_b, 0.0, 1.0)
    # Where a whole filter window lies inside the subject the filter has nothing to snap to, and
    # in flat colour it returns the window's mean, which dips below 1 near the edge. The
    # subject's interior, eroded by the window radius, stays solid.
    kernel = cv2.getStructuringElement(cv2.MORPH_RECT, (2 * radius + 1, 2 * radius + 1))
    interior = cv2.erode((coarse_small > 0.5 + 0.5 / STEEP).astype(np.uint8), kernel)
    interior = interior.astype(np.float32)
    np.maximum(alpha_small, interior, out=alpha_small)
    solid = cv2.resize((alpha_small > 0.5).astype(np.uint8), (width, height),
                       interpolation=cv2.INTER_NEAREST)  # fmt: skip
    alpha = solid.astype(np.float32)
    band = _band(alpha_small, (height, width))
    if band.index.size == 0:
        return Matte(alpha, rgb, solid, band.index, np.zeros((0, 3), np.float32))
    # Bilinear lookups of the reduced maps at the band's full-resolution pixels.
    at = _sample(np.dstack([mean_a, mean_b, interior]), band.rows, band.cols, scale)
    pixels = rgb.reshape(-1, 3)[band.index].astype(np.float32) * np.float32(1 / 255)
    refined = at[:, 0] * pixels[:, 0] + at[:, 1] * pixels[:, 1] + at[:, 2] * pixels[:, 2]
    refined += at[:, 3]
    np.maximum(refined, at[:, 4], out=refined)
    np.clip(refined, 0.0, 1.0, out=refined)
    alpha.reshape(-1)[band.index] = refined
    if method == "quality":
        colours = _foreground_ml(rgb, alpha).reshape(-1, 3)[band.index].astype(np.float32)
    else:
        # Only partly transparent pixels need their colours solved; elsewhere F is the photo.
        colours = pixels * np.float32(255)
        mixed = np.flatnonzero((refined > 1 / 255) & (refined < 254 / 255))
        if mixed.size == 0:
            return Matte(alpha, rgb, solid, band.index, colours)
        mean_f, mean_b_colour = _colour_means(guide, alpha_small, 3 * radius)
        means = _sample(np.dstack([mean_f, mean_b_colour]), band.rows[mixed], band.cols[mixed],
                        scale)  # fmt: skip
        colours[mixed] = _blur_fusion(pixels[mixed], refined[mixed], means[:, :3], means[:, 3:])
    return Matte(alpha, rgb, solid, band.index, colours)


def _colour_means(
    guide: np.ndarray, alpha: np.ndarray, radius: int
) -> tuple[np.ndarray, np.ndarray]:
    """Local mean colours of the subject (α-weighted) and of the background ((1 − α)-weighted)."""
    weight = alpha[..., None]
    mean_f = _box(guide * weight, radius) / np.maximum(_box(alpha, radius), 1e-4)[..., None]
    mean_b = (
        _box(guide * (1.0 - weight), radius)
        / np.maximum(_box(1.0 - alpha, radius), 1e-4)[..., None]
    )
    return mean_f, mean_b


def _blur_fusion(
    pixels: np.ndarray, alpha: np.ndarray, mean_f: np.ndarray, mean_b: np.ndarray
) -> np.ndarray:
    """Foreground colours (``float32`` in [0, 255]) of edge pixels by blur-fusion (Forte & Pitié).

    ``F = F̄ + α (I − α F̄ − (1 − α) B̄)``: the local subject colour, corrected by what of the pixel
    the local colours do not explain. Composited back over ``B̄`` it reproduces the pixel, and
    where α = 1 it is the pixel itself. All arrays are per band pixel, colours in [0, 1].
    """
    a = alpha[:, None]
    solved = mean_f + a * (pixels - a * mean_f - (1.0 - a) * mean_b)
    solved *= 255.0
    return np.clip(solved, 0.0, 255.0, out=solved)


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
    from pymatting import estimate_alpha_cf

    margin = max(2, round(max(coarse.shape) / mask_side))
    trimap = _trimap(coarse, margin)
    if not ((trimap == 0.5).any() and (trimap == 1.0).any() and (trimap == 0.0).any()):
        return coarse  # nothing to solve: the mask is all subject or all background
    alpha = estimate_alpha_cf(guide.astype(np.float64), trimap)
    return np.clip(alpha, 0.0, 1.0).astype(np.float32)


def _foreground_ml(rgb: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    from pymatting import estimate_foreground_ml

    foreground = estimate_foreground_ml(rgb.astype(np.float64) / 255.0, alpha.astype(np.float64))
    # Keep the photo's own pixels where the subject is opaque: only edges change.
    out = np.clip(foreground * 255.0 + 0.5, 0, 255).astype(np.uint8)
    opaque = alpha >= UNSURE_HIGH
    out[opaque] = rgb[opaque]
    return out
