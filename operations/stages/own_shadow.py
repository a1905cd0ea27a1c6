"""The subject's own shadow (``--keep-shadow``): the shadow it casts on the surface it stands
on, found in the photo and carried onto the new background.

A shadow is where the backdrop is darker than it would be without the subject. The backdrop's
brightness without it is a smooth surface (a studio sweep, a table, a floor lit from above): a
low-order polynomial of the position, fitted to the log-brightness of the background's pixels
robustly (pixels darker than the fit are shadow, not backdrop, and are given no weight as the
fit is iterated). The shadow's *density* is then ``1 − brightness / backdrop`` — its softness
and strength as photographed, and no colour (only the brightness ratio is taken: the new
background is multiplied by ``1 − density``, or on a transparent result the density is a black
layer in the alpha).

Only what belongs to the subject is kept: the dark regions that touch it or come within
:data:`NEAR` of it, and of the backdrop's own colour (a shadow dims every channel alike; a part
of the subject the model missed has a colour of its own), with their faint penumbra joined to
them; a darkening elsewhere (a vignette, another object's shadow) is left behind, as is every
pixel below the backdrop's own noise. Where the method cannot work it says so and
keeps nothing rather than guess: a backdrop that is not smooth (a textured floor, a scene:
its variation is larger than :data:`BUSY`), or a shadow that climbs above the subject's lower
half (a shadow on a wall behind it, not on the floor it stands on).

The backdrop is fitted on a view of at most :data:`WORK_SIDE` px (it is smooth); the density is
measured at the photo's own resolution, so a crisp contact shadow stays crisp.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from operations.errors import render, setting

WORK_SIDE = 640  # the fit's and the decisions' view, long side in px
NEAR = 0.03  # a shadow region must come this close to the subject (share of the long side)
BUSY = 0.045  # the backdrop's spread (log-brightness, robust) above which nothing is kept
WALL = 0.35  # the share of the shadow above the subject's lower half that means "a wall"
MIN_DENSITY = 0.04  # a darkening below this (or below 3 × the backdrop's noise) is no shadow
MIN_BACKDROP = 0.05  # the share of the photo that must be backdrop to find anything on it
NEUTRAL = 0.05  # a shadow's colour: within this of the backdrop's chromaticity (L1, shares)


@dataclass(frozen=True)
class OwnShadow:
    """What was found: ``density`` ``H×W`` ``float32`` in [0, 1] (``None``: no shadow kept),
    and why nothing was kept where the method could not work."""

    density: np.ndarray | None
    warning: str | None = None


def find_shadow(rgb: np.ndarray, alpha: np.ndarray) -> OwnShadow:
    """The shadow the subject (``alpha``, ``H×W`` in [0, 1]) casts in ``rgb`` (``H×W×3``
    ``uint8``)."""
    height, width = alpha.shape
    scale = min(1.0, WORK_SIDE / max(height, width))
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    small_rgb = cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)
    small_alpha = cv2.resize(alpha.astype(np.float32), size, interpolation=cv2.INTER_AREA)
    subject = small_alpha > 0.5
    if not subject.any():
        return OwnShadow(None)
    # The backdrop: clear of the subject and of its edge's colour spill.
    ring = cv2.dilate(
        (small_alpha > 0.02).astype(np.uint8), cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (7, 7))
    )
    backdrop = ring == 0
    if backdrop.mean() < MIN_BACKDROP:
        return OwnShadow(None)
    log_light = _log_light(small_rgb, 1.0, small_alpha <= 0.02)
    fit, spread, plain = _fit_backdrop(log_light, backdrop)
    if spread > BUSY:
        return OwnShadow(
            None,
            render(
                f"{setting('keep_shadow')} kept no shadow: the backdrop is not plain (a "
                "textured floor or a scene), and a shadow on it cannot be told from the floor"
            ),
        )
    threshold = max(MIN_DENSITY, 3.0 * spread)
    # Measured up to the subject's edge (a contact shadow is a few pixels thin), not in it.
    clear = small_alpha <= 0.02
    dark = (1.0 - np.exp(log_light - fit)) * clear
    neutral = _neutral(small_rgb, clear, plain)
    kept = _touching((dark > threshold) & neutral, subject, max(2, round(NEAR * max(size))))
    # Its penumbra, fainter than the noise floor but joined to it (hysteresis): the shadow fades
    # out as photographed instead of ending at the threshold's line.
    kept = _touching((dark > threshold / 3) & neutral, kept, 0)
    if not kept.any():
        return OwnShadow(None)
    if _climbs(dark * kept, subject):
        return OwnShadow(
            None,
            render(
                f"{setting('keep_shadow')} kept no shadow: the darkening around the subject "
                "climbs above its lower half (a shadow on a wall behind it?), not one on a floor"
            ),
        )
    # Into the ring left out of the fit: the shadow goes on up to the subject's edge.
    kept = cv2.dilate(kept.astype(np.uint8), cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (9, 9)))
    return OwnShadow(_density(rgb, alpha, fit, kept.astype(bool) & ~subject, threshold, scale))


def _log_light(rgb: np.ndarray, sigma: float, clear: np.ndarray) -> np.ndarray:
    """The log of the brightness (sRGB-encoded luma, as the composite is made), a little
    blurred against the sensor's noise; the blur takes from the ``clear`` pixels only (the
    backdrop's), so the subject's own colours never darken the backdrop beside it."""
    grey = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY).astype(np.float32)
    if sigma > 0:
        weight = clear.astype(np.float32)
        spread = cv2.GaussianBlur(weight, (0, 0), sigma)
        blurred = cv2.GaussianBlur(grey * weight, (0, 0), sigma)
        grey = np.where(spread > 1e-3, blurred / np.maximum(spread, 1e-3), grey)
    return np.log((grey + 1.0) / 256.0)


def _basis(height: int, width: int) -> np.ndarray:
    """The smooth surfaces' terms at every pixel (``H×W×6``): 1, x, y, x², xy, y² on [-1, 1]."""
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    xs, ys = xs / max(1, width - 1) * 2 - 1, ys / max(1, height - 1) * 2 - 1
    return np.stack([np.ones_like(xs), xs, ys, xs * xs, xs * ys, ys * ys], axis=-1)


def _sample(mask: np.ndarray) -> tuple[slice, slice]:
    """A grid that takes at most ~20,000 of ``mask``'s pixels into a fit."""
    step = max(1, int(np.sqrt(mask.sum() / 20000)))
    return slice(None, None, step), slice(None, None, step)


def _fit_backdrop(
    log_light: np.ndarray, backdrop: np.ndarray
) -> tuple[np.ndarray, float, np.ndarray]:
    """The backdrop's smooth log-brightness everywhere (``H×W``), fitted on ``backdrop``'s
    pixels with those darker than the fit (shadow) given no weight; the robust spread of the
    backdrop around it; and the pixels the fit ended on (the backdrop proper)."""
    basis = _basis(*log_light.shape)
    grid = _sample(backdrop)
    rows = basis[grid][backdrop[grid]]
    values = log_light[grid][backdrop[grid]]
    weights = np.ones(len(values), np.float32)
    coefficients = np.zeros(basis.shape[-1], np.float32)
    spread, cut = 0.0, 0.02
    for _ in range(8):
        weighted = rows * weights[:, None]
        coefficients = np.linalg.lstsq(weighted, values * weights, rcond=None)[0]
        residual = values - rows @ coefficients
        inliers = residual[weights > 0]
        spread = float(1.4826 * np.median(np.abs(inliers - np.median(inliers))))
        cut = max(2.5 * spread, 0.02)
        # Darker than the backdrop: shadow; much brighter: a highlight, a reflection.
        weights = ((residual > -cut) & (residual < 2 * cut)).astype(np.float32)
        if weights.sum() < rows.shape[1] * 4:
            break
    fit = (basis @ coefficients).astype(np.float32)
    residual = log_light - fit
    return fit, spread, backdrop & (residual > -cut) & (residual < 2 * cut)


def _neutral(rgb: np.ndarray, clear: np.ndarray, backdrop: np.ndarray) -> np.ndarray:
    """Where the colour is the backdrop's, only darker or lighter: its chromaticity (each
    channel's share of the sum) within :data:`NEUTRAL` of the backdrop's own, fitted smooth on
    ``backdrop``'s pixels. A shadow dims every channel alike; a part of the subject the model
    missed (an arm against the sky) has a colour of its own."""
    shares = rgb.astype(np.float32) / (rgb.astype(np.float32).sum(axis=2, keepdims=True) + 3.0)
    weight = cv2.GaussianBlur(clear.astype(np.float32), (0, 0), 1.0)[..., None]
    blurred = cv2.GaussianBlur(shares * clear[..., None], (0, 0), 1.0)
    shares = np.where(weight > 1e-3, blurred / np.maximum(weight, 1e-3), shares)
    basis = _basis(*clear.shape)
    grid = _sample(backdrop)
    rows = basis[grid][backdrop[grid]]
    distance = np.zeros(clear.shape, np.float32)
    for channel in range(2):  # the third share is the rest
        values = shares[..., channel]
        coefficients = np.linalg.lstsq(rows, values[grid][backdrop[grid]], rcond=None)[0]
        distance += np.abs(values - basis @ coefficients)
    return distance < NEUTRAL


def _touching(candidates: np.ndarray, subject: np.ndarray, near: int) -> np.ndarray:
    """The regions of ``candidates`` that touch the subject or come within ``near`` px."""
    count, labels = cv2.connectedComponents(candidates.astype(np.uint8), connectivity=8)
    if count <= 1:
        return np.zeros_like(candidates)
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * near + 1, 2 * near + 1))
    zone = cv2.dilate(subject.astype(np.uint8), kernel).astype(bool)
    wanted = np.unique(labels[zone & candidates])
    return np.isin(labels, wanted[wanted > 0])


def _climbs(dark: np.ndarray, subject: np.ndarray) -> bool:
    """Whether much of the shadow lies above the subject's lower half (on a wall)."""
    rows = np.nonzero(subject.any(axis=1))[0]
    middle = (rows[0] + rows[-1]) / 2
    mass = dark.sum()
    return bool(mass > 0 and dark[: int(middle)].sum() > WALL * mass)


def _density(
    rgb: np.ndarray,
    alpha: np.ndarray,
    small_fit: np.ndarray,
    small_kept: np.ndarray,
    threshold: float,
    scale: float,
) -> np.ndarray:
    """The shadow's density at the photo's resolution: the backdrop fit (smooth) enlarged, the
    brightness measured at full size, kept where the view kept it (its edge softened), below
    the threshold faded out; under the subject, continued from around it (so its edge has no
    bright seam between subject and shadow)."""
    height, width = alpha.shape
    fit = cv2.resize(small_fit, (width, height), interpolation=cv2.INTER_LINEAR)
    sigma = max(0.7, 0.0004 * max(height, width))  # the sensor's noise, not the shadow's edge
    dark = np.clip(1.0 - np.exp(_log_light(rgb, sigma, alpha <= 0.02) - fit), 0.0, 1.0)
    grow = max(1, round(2 / scale))  # a view's pixel, and the penumbra just past it
    kept = cv2.resize(small_kept.astype(np.uint8), (width, height), interpolation=cv2.INTER_NEAREST)
    kept = cv2.dilate(kept, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * grow + 1,) * 2))
    kept = cv2.GaussianBlur(kept.astype(np.float32), (0, 0), grow)
    low = threshold / 3  # the penumbra's floor (see find_shadow)
    fade = np.clip((dark - low) / (threshold - low), 0.0, 1.0)  # 0 at the floor, 1 at threshold
    density = dark * fade * fade * (3 - 2 * fade) * kept
    # Under the subject and its soft edge: the density around it, carried in.
    clear = np.clip(1.0 - alpha * 1.05, 0.0, 1.0).astype(np.float32) ** 2
    reach = max(2.0, 0.01 * max(height, width))
    carried = cv2.GaussianBlur(density * clear, (0, 0), reach)
    weight = cv2.GaussianBlur(clear, (0, 0), reach)
    under = np.divide(carried, weight, out=np.zeros_like(carried), where=weight > 1e-3)
    density = density * clear + under * (1.0 - clear)
    return np.clip(density, 0.0, 1.0).astype(np.float32)


def multiply(background: np.ndarray, density: np.ndarray) -> np.ndarray:
    """``background`` (``H×W×3`` ``uint8``) under the shadow: multiplied by ``1 − density``."""
    light = (1.0 - density)[..., None]
    return np.clip(background * light + 0.5, 0, 255).astype(np.uint8)
