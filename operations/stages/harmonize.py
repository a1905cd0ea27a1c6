"""Harmonisation: the subject's light and colour moved toward the new background's, so it looks
photographed there rather than pasted.

Method: a statistics transfer in CIE Lab (Reinhard et al., 2001, "Color transfer between
images"), made *relative* and *local*. What a subject should look like depends on the light it
was shot in, which the photo itself shows: its own background near the subject. So the change
applied to the subject is the difference between the new background near the subject and the
photo's own background near it (each weighted by ``1 − α`` in a ring around the subject, as Xue
et al., 2012, "Understanding and improving the realism of image composites", match the
surroundings rather than the whole frame):

- lightness: the ring means' difference (exposure) and the ratio of their deviations (contrast),
  applied to the subject's *illumination layer* only (its lightness blurred at ``BASE_SCALE`` of
  the photo's size), so texture and skin detail keep their amplitude;
- colour: the ring means' difference in a* and b* (the colour of the light), added to every
  subject pixel.

Bounded, so no background pushes skin into absurd colours: each pixel's lightness moves by at
most ``strength × MAX_LIGHTNESS`` L* units and its a* and b* by at most ``strength ×
MAX_CHROMA`` each: a colour difference ΔE*ab of at most ``strength × √(20² + 10² + 10²)``, 24.5
at strength 1 and 12.2 at the default 0.5 (before the sRGB gamut's clipping); the contrast gain
stays within ``GAIN_RANGE ** strength``. 0 is the identity.

Why relative rather than the subject matched to the background directly (the classical
fg→bg transfer): a subject's colours differ from its surroundings for reasons other than light
(an orange suit before a dark flag). Matched directly, the subject takes on the background's
content; ``benchmarks/bench_harmonize.py`` measures that: on photos whose subject alone was
recoloured, direct matching *raises* the subject's error at every strength, while the relative
transfer, given the subject's photo under another light, lowers it by about 60 % at 0.5. When
the photo's own background is the new one (portrait mode), the change is zero.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import cv2
import numpy as np

from operations.media.resize import shrink
from operations.stages.matting import Matte

DEFAULT_STRENGTH = 0.5  # bench_harmonize.py: most of the gain of 1.0, half its risk
MAX_LIGHTNESS = 20.0  # L* units, at strength 1
MAX_CHROMA = 10.0  # a* and b* units each, at strength 1
GAIN_RANGE = (0.8, 1.25)  # the illumination layer's contrast gain, at strength 1
BASE_SCALE = 0.01  # the illumination layer: lightness blurred at this fraction of the long side
RING = 0.08  # the surroundings: within this fraction of the long side of the subject
STATS_SIDE = 512  # statistics are measured on copies reduced to this long side


@dataclass(frozen=True)
class Adjustment:
    """What harmonisation does to a subject's Lab pixels (L in 0–100): ``L' = L + clip(base·(gain
    − 1) + offset, ±limit)``, where ``base`` is the pixel's illumination layer, so the detail
    ``L − base`` keeps its amplitude; ``a' = a + da``, ``b' = b + db``."""

    gain: float = 1.0
    offset: float = 0.0  # in L*: the mean's shift plus the gain's pivot
    da: float = 0.0
    db: float = 0.0
    limit: float = 0.0  # the most any pixel's L* may move

    @property
    def identity(self) -> bool:
        return self.gain == 1.0 and self.offset == 0.0 and self.da == 0.0 and self.db == 0.0


def _lab(rgb: np.ndarray) -> np.ndarray:
    """``uint8`` (or ``float32`` 0–255) RGB → ``float32`` Lab (L 0–100, a and b about ±128)."""
    return cv2.cvtColor(np.asarray(rgb, np.float32) * np.float32(1 / 255), cv2.COLOR_RGB2Lab)


def _rgb(lab: np.ndarray) -> np.ndarray:
    """``float32`` Lab → ``float32`` RGB 0–255 (not rounded)."""
    return cv2.cvtColor(lab, cv2.COLOR_Lab2RGB) * np.float32(255)


def _ring(alpha: np.ndarray) -> np.ndarray:
    """Weights of the surroundings: background pixels within ``RING`` of the subject."""
    radius = max(2, round(RING * max(alpha.shape)))
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))
    near = cv2.dilate((alpha > 0.5).astype(np.uint8), kernel).astype(np.float32)
    return (1.0 - alpha) * near


def _stats(lab: np.ndarray, weights: np.ndarray) -> tuple[np.ndarray, float]:
    """Weighted mean of L, a, b and the weighted deviation of L."""
    # Plain float64 sums, not a BLAS product: the result must not depend on the thread count
    # (Ray's workers run BLAS on one thread; outputs match the local engine's bit for bit).
    weights = weights.astype(np.float64)
    total = weights.sum()
    mean = (weights[..., None] * lab).sum(axis=(0, 1)) / total
    spread = float(np.sqrt((weights * (lab[..., 0] - mean[0]) ** 2).sum() / total))
    return mean, spread


def measure(
    photo: np.ndarray, alpha: np.ndarray, background: np.ndarray, strength: float
) -> Adjustment:
    """The adjustment that moves the subject from its photo's light to the background's.

    Args:
        photo: ``H×W×3`` ``uint8``: the subject's photo, with its own background.
        alpha: ``H×W`` ``float32``: the subject.
        background: ``H×W×3`` ``uint8``: the new background, fitted to the photo.
        strength: 0 (identity) to 1.
    """
    height, width = alpha.shape
    scale = min(1.0, STATS_SIDE / max(height, width))
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    if scale < 1.0:
        photo, background = shrink(photo, *size), shrink(background, *size)
        alpha = cv2.resize(alpha, size, interpolation=cv2.INTER_AREA)
    weights = _ring(alpha)
    if strength <= 0 or weights.sum() < 1.0:  # no subject, or no background around it
        return Adjustment()
    old, old_spread = _stats(_lab(photo), weights)
    new, new_spread = _stats(_lab(background), weights)
    low, high = GAIN_RANGE
    gain = float(np.clip(new_spread / max(old_spread, 1e-3), low, high)) ** strength
    shift = np.clip(
        strength * (new - old),
        -strength * np.array([MAX_LIGHTNESS, MAX_CHROMA, MAX_CHROMA]),
        strength * np.array([MAX_LIGHTNESS, MAX_CHROMA, MAX_CHROMA]),
    )
    # The gain pivots on the surroundings' mean lightness (a brighter scene lifts the subject's
    # lights more than its shadows).
    offset = float(old[0] * (1.0 - gain) + shift[0])
    return Adjustment(gain, offset, float(shift[1]), float(shift[2]), strength * MAX_LIGHTNESS)


def _apply(lab: np.ndarray, base: np.ndarray, adjustment: Adjustment) -> np.ndarray:
    """Apply to Lab pixels whose illumination layer (blurred lightness) is ``base``."""
    out = lab.copy()
    change = base * (adjustment.gain - 1.0) + adjustment.offset
    out[..., 0] += np.clip(change, -adjustment.limit, adjustment.limit)
    out[..., 1] += adjustment.da
    out[..., 2] += adjustment.db
    np.clip(out[..., 0], 0.0, 100.0, out=out[..., 0])
    return out


def harmonize(matte: Matte, background: np.ndarray, strength: float = DEFAULT_STRENGTH) -> Matte:
    """The matte with its subject's colours adjusted toward ``background``'s light.

    Only the subject's pixels (its bounding box) are converted; the edge pixels' decontaminated
    colours get the same adjustment, so compositing is unchanged otherwise.
    """
    alpha = matte.alpha
    adjustment = measure(matte.rgb, alpha, background, strength)
    if adjustment.identity:
        return matte
    photo = matte.rgb
    # The subject's bounding box (its edge pixels included, even those of alpha 0).
    rows = np.nonzero(alpha.max(axis=1) > 0)[0]
    cols = np.nonzero(alpha.max(axis=0) > 0)[0]
    top, bottom, left, right = rows[0], rows[-1] + 1, cols[0], cols[-1] + 1
    if matte.edge is not None and matte.edge.size:
        y, x = np.divmod(matte.edge, photo.shape[1])
        top, bottom = min(top, y.min()), max(bottom, y.max() + 1)
        left, right = min(left, x.min()), max(right, x.max() + 1)
    box = _lab(photo[top:bottom, left:right])
    sigma = BASE_SCALE * max(alpha.shape)
    base = cv2.GaussianBlur(box[..., 0], (0, 0), sigma, borderType=cv2.BORDER_REFLECT)
    adjusted = photo.copy()
    adjusted[top:bottom, left:right] = np.clip(_rgb(_apply(box, base, adjustment)) + 0.5, 0, 255)
    if not matte.refined:
        return Matte(adjusted, soft=matte.soft)
    # The edge pixels: their own colours, at their place in the illumination layer.
    _, edge, _, edge_colours = matte.parts()
    if not edge.size:
        return replace(matte, rgb=adjusted)
    edge_base = base[y - top, x - left][:, None]
    colours = _lab(edge_colours[None])[0]
    shifted = _rgb(_apply(colours[None], edge_base.T, adjustment))[0]
    return replace(matte, rgb=adjusted, edge_colours=np.clip(shifted, 0, 255).astype(np.float32))
