"""Light wrap: the background's light bleeding a few pixels into the subject's edge, as
compositors do, so the subject sits in the scene's light instead of on top of it.

The background is blurred at the wrap's width and laid over the subject's rim, weighted by how
near the rim a pixel is: ``w = α · (1 − blur(α))`` (zero deep inside the subject and outside it,
highest just inside the edge), times ``WRAP_OPACITY``. The background pixels themselves are
untouched.
"""

from __future__ import annotations

import cv2
import numpy as np

from operations.blur import gaussian_blur

DEFAULT_WIDTH = 0.01  # of the photo's long side, when no width is given: 10 px at 1000 px
WRAP_OPACITY = 0.6  # how much of the blurred background reaches the rim's outermost pixels


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
    outside = gaussian_blur(1.0 - alpha, sigma)  # how much background is near, 0–1
    weight = np.clip(alpha * outside * (2.0 * WRAP_OPACITY), 0.0, WRAP_OPACITY)
    light = gaussian_blur(background, sigma)
    return cv2.blendLinear(light, image, weight, 1.0 - weight)
