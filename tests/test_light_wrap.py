"""Light wrap: the background's light reaches only the subject's rim, as wide as asked."""

from __future__ import annotations

import numpy as np

from operations.light_wrap import WRAP_OPACITY, light_wrap, wrap_width


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
