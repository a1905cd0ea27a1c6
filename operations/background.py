"""Background sources and fitting a background to a photo's size.

A background is decoded once per run. Photos come in a handful of sizes, so the background
fitted to each size (and converted to each photo's colour profile) is cached.
"""

from __future__ import annotations

import io
import threading
from collections import OrderedDict
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageCms

from operations.images import DEFAULT_MAX_PIXELS, decode

FIT_MODES = ("cover", "contain", "stretch")


def _resize(image: np.ndarray, width: int, height: int) -> np.ndarray:
    # Area averaging when shrinking (no aliasing), cubic when enlarging (sharper than linear).
    shrinking = width * height < image.shape[0] * image.shape[1]
    interpolation = cv2.INTER_AREA if shrinking else cv2.INTER_CUBIC
    return cv2.resize(image, (width, height), interpolation=interpolation)


def fit_background(image: np.ndarray, width: int, height: int, mode: str = "cover") -> np.ndarray:
    """Fit ``image`` (``h×w×3``) to ``height×width×3``.

    Modes:
        cover: scale to fill, centre-crop the overflow; never distorts (default).
        contain: scale to fit inside, centre, pad with black; never distorts or crops.
        stretch: resize to the exact size, distorting the aspect ratio (the original tool).
    """
    src_h, src_w = image.shape[:2]
    if mode == "stretch":
        return _resize(image, width, height)
    if mode == "cover":
        scale = max(width / src_w, height / src_h)
        crop_w = min(src_w, max(1, round(width / scale)))
        crop_h = min(src_h, max(1, round(height / scale)))
        x0, y0 = (src_w - crop_w) // 2, (src_h - crop_h) // 2
        return _resize(image[y0 : y0 + crop_h, x0 : x0 + crop_w], width, height)
    if mode == "contain":
        scale = min(width / src_w, height / src_h)
        new_w = min(width, max(1, round(src_w * scale)))
        new_h = min(height, max(1, round(src_h * scale)))
        canvas = np.zeros((height, width, 3), np.uint8)
        x0, y0 = (width - new_w) // 2, (height - new_h) // 2
        canvas[y0 : y0 + new_h, x0 : x0 + new_w] = _resize(image, new_w, new_h)
        return canvas
    raise ValueError(f"unknown fit mode {mode!r}; choose from {', '.join(FIT_MODES)}")


def convert_profile(rgb: np.ndarray, source: bytes | None, target: bytes | None) -> np.ndarray:
    """Convert RGB pixels from one ICC profile to another (``None`` means sRGB)."""
    if source == target:
        return rgb

    def load(icc: bytes | None) -> ImageCms.ImageCmsProfile:
        if icc is None:
            return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB"))
        return ImageCms.ImageCmsProfile(io.BytesIO(icc))

    converted = ImageCms.profileToProfile(
        Image.fromarray(rgb), load(source), load(target), outputMode="RGB"
    )
    return np.asarray(converted)


class Background:
    """A background image, with its fitted versions cached per (size, fit, colour profile)."""

    def __init__(self, rgb: np.ndarray, icc_profile: bytes | None = None, cache_size: int = 8):
        self.rgb = rgb
        self.icc_profile = icc_profile
        self._cache: OrderedDict[tuple[int, int, str, bytes | None], np.ndarray] = OrderedDict()
        self._cache_size = cache_size
        self._lock = threading.Lock()

    @classmethod
    def from_file(cls, path: Path, *, max_pixels: int = DEFAULT_MAX_PIXELS) -> Background:
        decoded = decode(path, max_pixels=max_pixels)
        return cls(decoded.rgb, decoded.icc_profile)

    def fitted(
        self, width: int, height: int, fit: str = "cover", icc_profile: bytes | None = None
    ) -> np.ndarray:
        """The background at ``height×width``, in the colours of ``icc_profile``. Read-only."""
        key = (width, height, fit, icc_profile)
        with self._lock:
            if key in self._cache:
                self._cache.move_to_end(key)
                return self._cache[key]
            rgb = fit_background(self.rgb, width, height, fit)
            rgb = convert_profile(rgb, self.icc_profile, icc_profile)
            rgb.flags.writeable = False  # shared between images: nobody may paint on it
            self._cache[key] = rgb
            if len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)
            return rgb
