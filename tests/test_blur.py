"""Background blur, and portrait mode's blur behind the subject."""

from __future__ import annotations

import numpy as np
import pytest

from operations.stages.blur import blur_behind_subject, blur_sigma, gaussian_blur
from tests.helpers import random_rgb


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
