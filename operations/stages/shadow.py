"""Shadow: a soft drop shadow cast by the subject's alpha onto the new background, so it stands
on the scene instead of floating over it (useful for product photos).

The alpha is moved by ``offset`` and blurred by ``softness`` (both in percent of the photo's long
side, so every resolution gets the same look) and darkens the background by up to ``opacity``.
It is cast on the background layer, before the subject is composited over it, so it never
darkens the subject itself.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from operations.errors import require
from operations.stages.blur import gaussian_blur


@dataclass(frozen=True)
class ShadowSettings:
    offset: tuple[float, float] = (1.0, 1.5)  # right, down; percent of the long side
    softness: float = 2.0  # blur sigma, percent of the long side
    opacity: float = 0.5  # darkening under a fully opaque subject's shadow, 0–1

    def __post_init__(self) -> None:
        offset = self.offset
        within = len(offset) == 2 and all(abs(v) <= 50 for v in offset)
        shown = ",".join(map(str, offset))
        require(within, "offset", shown, "give X,Y, each within ±50 (% of the long side)")
        require(0 <= self.softness <= 50, "softness", self.softness, "must be 0–50 (%)")
        require(0 < self.opacity <= 1, "opacity", self.opacity, "must be > 0 and ≤ 1")


def shadow_alpha(alpha: np.ndarray, settings: ShadowSettings) -> np.ndarray:
    """The shadow's own opacity, ``H×W`` ``float32`` in [0, 1]: ``alpha`` moved and blurred,
    times the settings' opacity."""
    height, width = alpha.shape
    side = max(height, width) / 100.0
    dx, dy = settings.offset[0] * side, settings.offset[1] * side
    moved = cv2.warpAffine(
        alpha,
        np.array([[1, 0, dx], [0, 1, dy]], np.float32),
        (width, height),
        flags=cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_CONSTANT,
    )
    shade = gaussian_blur(moved, settings.softness * side) * np.float32(settings.opacity)
    return np.clip(shade, 0.0, 1.0)


def cast_shadow(background: np.ndarray, alpha: np.ndarray, settings: ShadowSettings) -> np.ndarray:
    """``background`` darkened by the shadow of ``alpha`` (``H×W×3`` ``uint8`` out)."""
    light = 1.0 - shadow_alpha(alpha, settings)
    return np.clip(background * light[..., None] + 0.5, 0, 255).astype(np.uint8)
