"""Blur: the background layer blurred, or a photo's own background blurred behind its subject
(portrait mode).

Pure functions on the pipeline's arrays: images are RGB ``uint8`` ``H×W×3``, alphas ``float32``
``H×W`` in ``[0, 1]``.
"""

from __future__ import annotations

import cv2
import numpy as np

# Gaussian sigma as a percentage of the photo's shorter side: the same look at any resolution.
DEFAULT_BLUR_STRENGTH = 1.5


def blur_sigma(height: int, width: int, strength: float) -> float:
    """Gaussian sigma in pixels: ``strength`` percent of the image's shorter side.

    Relative to the image so a batch of mixed resolutions gets the same look.
    """
    return strength / 100.0 * min(height, width)


def gaussian_blur(image: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian blur of an image (any channel count, ``uint8`` or ``float32``).

    Large sigmas are done at a reduced scale (shrink, blur, enlarge), which looks the same for a
    smooth blur and costs a fraction of a full-size kernel of ``6σ`` pixels.
    """
    if sigma <= 0:
        return image.copy()
    height, width = image.shape[:2]
    factor = max(1.0, sigma / 4.0)
    if factor <= 1.5:
        return cv2.GaussianBlur(image, (0, 0), sigma, borderType=cv2.BORDER_REFLECT)
    small_size = (max(1, round(width / factor)), max(1, round(height / factor)))
    small = cv2.resize(image, small_size, interpolation=cv2.INTER_AREA)
    small = cv2.GaussianBlur(small, (0, 0), sigma / factor, borderType=cv2.BORDER_REFLECT)
    return cv2.resize(small, (width, height), interpolation=cv2.INTER_LINEAR)


def blur_behind_subject(image: np.ndarray, alpha: np.ndarray, sigma: float) -> np.ndarray:
    """Blur the image's own background without smearing the subject into it (portrait mode).

    A plain blur of the whole photo drags the subject's colours outwards into a glow around it.
    Instead the background is blurred with the subject masked out and the result renormalised
    by the blurred mask (normalised convolution), so each pixel averages background only.
    """
    weight = 1.0 - alpha
    premultiplied = image.astype(np.float32) * weight[..., None]
    numerator = gaussian_blur(premultiplied, sigma)
    denominator = gaussian_blur(weight, sigma)[..., None]
    # Where the subject covers the whole neighbourhood there is no background to average;
    # fall back to the plain blur there (it is hidden under the subject anyway).
    plain = gaussian_blur(image, sigma).astype(np.float32)
    covered = denominator < 1e-3
    result = np.where(covered, plain, numerator / np.maximum(denominator, 1e-3))
    return np.clip(result + 0.5, 0, 255).astype(np.uint8)
