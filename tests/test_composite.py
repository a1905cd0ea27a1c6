from __future__ import annotations

import numpy as np
import pytest

from operations.composite import blend, blur_behind_subject, blur_sigma, gaussian_blur
from tests.helpers import random_rgb


def test_blend_exact_at_zero_one_and_half() -> None:
    fg = np.full((4, 6, 3), (200, 100, 50), np.uint8)
    bg = np.full((4, 6, 3), (100, 0, 250), np.uint8)
    alpha = np.zeros((4, 6), np.float32)
    alpha[:, 2:4] = 0.5
    alpha[:, 4:] = 1.0
    out = blend(fg, bg, alpha)
    assert out.dtype == np.uint8 and out.shape == fg.shape
    assert (out[:, :2] == (100, 0, 250)).all()  # alpha 0: background exactly
    assert (out[:, 2:4] == (150, 50, 150)).all()  # alpha 0.5: the exact mean
    assert (out[:, 4:] == (200, 100, 50)).all()  # alpha 1: foreground exactly


def test_blend_matches_float_formula_on_random_data() -> None:
    fg, bg = random_rgb(32, 32, 1), random_rgb(32, 32, 2)
    alpha = np.random.default_rng(3).random((32, 32), dtype=np.float32)
    expected = fg * alpha[..., None] + bg * (1 - alpha[..., None])
    assert np.abs(blend(fg, bg, alpha).astype(np.float64) - expected).max() <= 0.51


def test_blend_rejects_mismatched_shapes() -> None:
    with pytest.raises(ValueError, match="shape mismatch"):
        blend(random_rgb(4, 4), random_rgb(4, 5), np.zeros((4, 4), np.float32))


def test_blur_sigma_is_relative_to_the_short_side() -> None:
    assert blur_sigma(1000, 3000, 1.5) == pytest.approx(15.0)
    assert blur_sigma(100, 50, 10) == pytest.approx(5.0)


@pytest.mark.parametrize("sigma", [2.0, 40.0])  # direct kernel, and the shrink-blur-enlarge path
def test_gaussian_blur_keeps_flat_images_and_smooths_noise(sigma: float) -> None:
    flat = np.full((120, 160, 3), 77, np.uint8)
    np.testing.assert_array_equal(gaussian_blur(flat, sigma), flat)
    noisy = random_rgb(120, 160)
    blurred = gaussian_blur(noisy, sigma)
    assert blurred.shape == noisy.shape and blurred.dtype == np.uint8
    assert blurred.std() < noisy.std() / 4


def test_portrait_blur_does_not_smear_the_subject_outwards() -> None:
    # A red square subject on a blue background; a plain blur spreads red into the blue.
    image = np.zeros((100, 100, 3), np.uint8)
    image[..., 2] = 255
    image[35:65, 35:65] = (255, 0, 0)
    alpha = np.zeros((100, 100), np.float32)
    alpha[35:65, 35:65] = 1.0
    sigma = 6.0
    plain = gaussian_blur(image, sigma)
    ours = blur_behind_subject(image, alpha, sigma)
    ring = (slice(28, 33), slice(40, 60))  # background just above the subject
    assert plain[ring][..., 0].mean() > 30  # the glow we avoid
    assert ours[ring][..., 0].max() <= 1
    assert ours[ring][..., 2].min() >= 254
