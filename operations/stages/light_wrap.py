"""Light wrap: the background's light bleeding a few pixels into the subject's edge, as
compositors do, so the subject sits in the scene's light instead of on top of it.

The background is blurred at the wrap's width and laid over the subject's rim, weighted by how
near the rim a pixel is and by how much subject there is around it: with ``m = blur(α)`` (the
subject's share of a pixel's surroundings), ``w = α · (1 − m) · min(1, m / SOLID)²`` times
``2 · WRAP_OPACITY``, at most ``WRAP_OPACITY``: zero deep inside the subject (m = 1) and outside
it (α = 0), highest just inside a solid edge (m ≈ ½). A thin structure — a whisker, a single
strand of hair — has little subject around it (small m), so the light only tints it: a weight
of ``1 − m`` alone would wash it out into the background. The background pixels themselves are
untouched.
"""

from __future__ import annotations

import cv2
import numpy as np

from operations.stages.blur import gaussian_blur

DEFAULT_WIDTH = 0.01  # of the photo's long side, when no width is given: 10 px at 1000 px
WRAP_OPACITY = 0.6  # how much of the blurred background reaches the rim's outermost pixels
# The subject's share of a pixel's surroundings from which it counts as the rim of a solid body
# (a straight edge has about ½); below it, a thin structure, the wrap fades with its square.
SOLID = 0.4


def wrap_width(height: int, width: int, pixels: int | None = None) -> int:
    """The wrap's width in pixels: ``pixels`` if given (> 0), else ``DEFAULT_WIDTH`` of the long
    side (at least 2)."""
    return pixels if pixels else max(2, round(DEFAULT_WIDTH * max(height, width)))


def light_wrap(
    image: np.ndarray, background: np.ndarray, alpha: np.ndarray, pixels: int
) -> np.ndarray:
    """Wrap ``background``'s light ``pixels`` wide into the subject's edge of ``image``.

    Args:
        image: ``H×W×3`` ``uint8``: the composite.
        background: ``H×W×3`` ``uint8``: what is behind the subject.
        alpha: ``H×W`` ``float32``: the subject.
        pixels: the wrap's width (the blur's sigma is half of it).
    """
    sigma = max(0.5, pixels / 2.0)
    mass = gaussian_blur(alpha, sigma)  # how much of the surroundings is subject, 0–1
    solid = np.minimum(mass * np.float32(1.0 / SOLID), 1.0) ** 2
    weight = np.clip(alpha * (1.0 - mass) * solid * (2.0 * WRAP_OPACITY), 0.0, WRAP_OPACITY)
    light = gaussian_blur(background, sigma)
    return cv2.blendLinear(light, image, weight, 1.0 - weight)
