"""The scene's look: the subject over its background, with the scene's light on it if asked —
colours harmonised toward the background's (:mod:`operations.stages.harmonize`), a drop shadow
on the background (:mod:`operations.stages.shadow`), the background's light wrapped into the
subject's edge (:mod:`operations.stages.light_wrap`). With none of them, a plain composite."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from operations.errors import require, setting
from operations.stages.composite import composite
from operations.stages.harmonize import harmonize
from operations.stages.light_wrap import light_wrap, wrap_width
from operations.stages.matting import Matte
from operations.stages.own_shadow import multiply
from operations.stages.shadow import ShadowSettings, cast_shadow, shadow_alpha


@dataclass(frozen=True)
class LookSettings:
    """What the scene's light does; every step is off by default."""

    harmonize: float | None = None  # strength 0–1
    light_wrap: int | None = None  # px; 0: light_wrap.DEFAULT_WIDTH of the photo's long side
    shadow: ShadowSettings | None = None  # a made-up drop shadow
    keep_shadow: bool = False  # the subject's own shadow, found in the photo

    def __post_init__(self) -> None:
        strength, width = self.harmonize, self.light_wrap
        require(
            strength is None or 0 <= strength <= 1, "harmonize", strength, "must be between 0 and 1"
        )
        reason = "must be between 0 (automatic) and 1000 px"
        require(width is None or 0 <= width <= 1000, "light_wrap", width, reason)
        both = self.shadow is not None and self.keep_shadow
        require(not both, "keep_shadow", True, f"give it or {setting('shadow')}, not both")


def finish(
    matte: Matte, behind: np.ndarray, look: LookSettings, shade: np.ndarray | None = None
) -> np.ndarray:
    """``matte``'s subject over ``behind`` (``H×W×3`` ``uint8``), in the scene's light;
    ``shade``: the subject's own shadow's density (:mod:`operations.stages.own_shadow`)."""
    subject = harmonize(matte, behind, look.harmonize) if look.harmonize else matte
    if look.shadow is not None:
        behind = cast_shadow(behind, matte.alpha, look.shadow)
    if shade is not None:
        behind = multiply(behind, shade)
    image = composite(subject, behind)
    if look.light_wrap is not None:
        height, width = behind.shape[:2]
        image = light_wrap(image, behind, matte.alpha, wrap_width(height, width, look.light_wrap))
    return image


def finish_transparent(
    matte: Matte, look: LookSettings, shade: np.ndarray | None = None
) -> np.ndarray:
    """``matte``'s subject on nothing: an ``H×W×4`` ``uint8`` RGBA cut-out (straight alpha,
    decontaminated colours); with a shadow (made up, or the subject's own: ``shade``), the
    shadow is a semi-transparent black layer under the subject, as product photographers
    expect."""
    alpha = matte.alpha
    colours = matte.foreground
    if look.shadow is not None:
        shade = shadow_alpha(alpha, look.shadow)
    if shade is None:
        alpha8 = np.clip(alpha * 255.0 + 0.5, 0, 255).astype(np.uint8)
        return np.dstack([colours, alpha8])
    total = alpha + shade * (1.0 - alpha)  # the subject over its shadow, "over" in alpha
    # Straight colour: the subject's share of the total (the shadow is black).
    share = np.divide(alpha, total, out=np.zeros_like(alpha), where=total > 1e-6)
    rgb = np.clip(colours * share[..., None] + 0.5, 0, 255).astype(np.uint8)
    return np.dstack([rgb, np.clip(total * 255.0 + 0.5, 0, 255).astype(np.uint8)])
