"""The one-image API: numpy or PIL in, the same type out."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from operations import BackgroundSwapper, swap_background
from tests.helpers import BACKGROUND, SAMPLES


def test_api_numpy_and_pil_in_same_type_out() -> None:
    photo = Image.open(SAMPLES / "astronaut.jpg")
    out = swap_background(photo, BACKGROUND)
    assert isinstance(out, Image.Image) and out.size == photo.size and out.mode == "RGB"
    array = np.asarray(photo)
    bg = np.zeros((10, 10, 3), np.uint8)  # an in-memory, black background
    with BackgroundSwapper(bg) as swap:
        result = swap(array)
    assert isinstance(result, np.ndarray) and result.shape == array.shape
    assert result[:40, :40].max() <= 12  # the sky behind her is now black
    assert np.abs(result[95:145, 195:245].astype(int) - array[95:145, 195:245]).max() <= 3


def test_api_without_background_is_portrait_mode() -> None:
    photo = np.asarray(Image.open(SAMPLES / "grace_hopper.jpg"))
    out = swap_background(photo)
    assert out.shape == photo.shape
    assert not np.array_equal(out[:60, :60], photo[:60, :60])  # background blurred


def test_api_takes_the_scene_light_settings() -> None:
    photo = np.asarray(Image.open(SAMPLES / "grace_hopper.jpg"))
    plain = swap_background(photo, BACKGROUND)
    lit = swap_background(
        photo, BACKGROUND, harmonize=0.5, light_wrap=0, shadow=True, shadow_opacity=0.8
    )
    face = np.s_[200:260, 200:300]
    assert np.abs(lit[face].astype(int) - plain[face]).mean() > 2  # the subject is harmonised
    with pytest.raises(ValueError, match=r"--harmonize '2\.0': must be between 0 and 1"):
        swap_background(photo, BACKGROUND, harmonize=2.0)
