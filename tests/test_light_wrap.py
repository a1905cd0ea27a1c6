"""Light wrap: the background's light reaches only the subject's rim, as wide as asked."""

from __future__ import annotations

import numpy as np

from operations.stages.light_wrap import WRAP_OPACITY, light_wrap, wrap_width


def _square() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    alpha = np.zeros((100, 100), np.float32)
    alpha[20:80, 20:80] = 1.0
    image = np.zeros((100, 100, 3), np.uint8)  # a black subject…
    background = np.full((100, 100, 3), 200, np.uint8)  # …before a bright background
    image[alpha == 0] = 200
    return image, background, alpha


def test_the_rim_takes_the_background_light_and_the_rest_is_untouched() -> None:
    image, background, alpha = _square()
    out = light_wrap(image, background, alpha, 8)
    assert 40 < out[50, 21, 0] <= 200 * WRAP_OPACITY + 1  # just inside the edge: lit
    assert out[50, 50, 0] == 0  # deep inside: as it was
    assert (out[alpha == 0] == 200).all()  # the background: untouched
    narrow = light_wrap(image, background, alpha, 2)
    assert narrow[50, 26, 0] < out[50, 26, 0]  # a narrower wrap reaches less far in
    assert (light_wrap(image, background, alpha, 8) == out).all()  # deterministic


def test_the_default_width_follows_the_photo_size() -> None:
    assert wrap_width(1000, 1500) == 15
    assert wrap_width(100, 80) == 2
    assert wrap_width(1000, 1500, 7) == 7


def test_whiskers_and_single_strands_survive() -> None:
    """A 1-px white line (a whisker) and a soft 2-px strand, each crossing a bright red
    background away from any body, next to a solid dark body: the light may tint the thin
    structures, never erase them; the body's rim still takes the light."""
    alpha = np.zeros((120, 160), np.float32)
    image = np.zeros((120, 160, 3), np.uint8)
    background = np.zeros((120, 160, 3), np.uint8)
    background[:] = (230, 20, 20)
    alpha[20:100, 10:50] = 1.0  # the body: black
    alpha[60, 60:150] = 1.0  # a whisker: white, one pixel wide
    image[60, 60:150] = 255
    alpha[30:32, 60:150] = 0.5  # a soft strand: half transparent, white
    image[30:32, 60:150] = 255
    composite = image.astype(np.float32) * alpha[..., None] + background * (1 - alpha[..., None])
    image = np.clip(composite + 0.5, 0, 255).astype(np.uint8)
    out = light_wrap(image, background, alpha, 8).astype(int)
    whisker, strand = out[60, 70:140], out[30:32, 70:140]
    # The whisker keeps its white: its green and blue (which the red light lacks) barely drop.
    assert whisker[:, 1].min() >= 0.85 * 255 and whisker[:, 2].min() >= 0.85 * 255
    # The strand keeps at least 85 % of its contrast against the background.
    behind = background[30:32, 70:140, 1].astype(int)
    before = image[30:32, 70:140, 1].astype(int) - behind
    assert (before > 100).all() and (strand[..., 1] - behind >= 0.85 * before).all()
    assert out[60, 11, 0] > 60  # the body's rim is lit as before
