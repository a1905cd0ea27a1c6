"""Resizing helpers: the fast area shrink agrees with OpenCV's direct one."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from operations.media.decode import decode
from operations.media.resize import resize, shrink
from tests.helpers import SAMPLES, random_rgb


@pytest.mark.parametrize(("size", "bound"), [((1600, 1200), 2.0), ((1601, 1203), 4.0)])
def test_shrink_matches_a_direct_area_resize(size: tuple[int, int], bound: float) -> None:
    # A real photo at a camera's size; odd sizes lose a row or column per halving (the bound).
    photo = cv2.resize(
        decode(SAMPLES / "grace_hopper.jpg").rgb, size, interpolation=cv2.INTER_CUBIC
    )
    fast = shrink(photo, 256, 192).astype(int)
    direct = cv2.resize(photo, (256, 192), interpolation=cv2.INTER_AREA).astype(int)
    assert fast.shape == direct.shape == (192, 256, 3)
    assert np.abs(fast - direct).mean() < bound  # grey levels


def test_resize_averages_when_shrinking_and_interpolates_when_enlarging() -> None:
    stripes = np.zeros((8, 8, 3), np.uint8)
    stripes[:, ::2] = 255
    assert (resize(stripes, 4, 4) == 128).all()  # area averaging: no aliasing
    grown = resize(random_rgb(4, 4), 16, 16)
    expected = cv2.resize(random_rgb(4, 4), (16, 16), interpolation=cv2.INTER_CUBIC)
    np.testing.assert_array_equal(grown, expected)
