from __future__ import annotations

import numpy as np
import pytest
from PIL import ImageCms

from operations.background import Background, convert_profile, fit_background


def _halves(height: int = 100, width: int = 200) -> np.ndarray:
    image = np.zeros((height, width, 3), np.uint8)
    image[:, : width // 2] = (255, 0, 0)
    image[:, width // 2 :] = (0, 0, 255)
    return image


def test_cover_fills_and_centre_crops_without_distortion() -> None:
    out = fit_background(_halves(), 100, 100, "cover")  # 2:1 into 1:1 -> keep the middle half
    assert out.shape == (100, 100, 3)
    assert (out[:, :48] == (255, 0, 0)).all() and (out[:, 52:] == (0, 0, 255)).all()
    # Enlarging: a 20×10 source covering 300×100 scales by 15 (not 10 then stretched).
    small = np.zeros((10, 20, 3), np.uint8)
    small[:, 9:11] = 255  # a 2 px line in the middle
    out = fit_background(small, 300, 100, "cover")
    white = np.flatnonzero(out[50, :, 0] > 127)
    assert out.shape == (100, 300, 3)
    assert 27 <= len(white) <= 33 and abs(white.mean() - 149.5) < 2  # 2 px × 15, centred


def test_contain_shows_everything_with_bars() -> None:
    out = fit_background(_halves(), 100, 100, "contain")
    assert out.shape == (100, 100, 3)
    assert (out[:25] == 0).all() and (out[75:] == 0).all()  # black bars top and bottom
    assert (out[30:70, :48] == (255, 0, 0)).all() and (out[30:70, 52:] == (0, 0, 255)).all()


def test_stretch_distorts_to_the_exact_size() -> None:
    out = fit_background(_halves(), 50, 80, "stretch")
    assert out.shape == (80, 50, 3)
    assert (out[:, :24] == (255, 0, 0)).all() and (out[:, 26:] == (0, 0, 255)).all()


def test_unknown_fit_mode() -> None:
    with pytest.raises(ValueError, match="cover, contain, stretch"):
        fit_background(_halves(), 10, 10, "tile")


def test_fitted_backgrounds_are_cached_and_read_only() -> None:
    background = Background(_halves())
    first = background.fitted(64, 48)
    assert background.fitted(64, 48) is first
    assert background.fitted(48, 64) is not first
    with pytest.raises(ValueError):
        first[0, 0] = 0  # shared between images: writing to it must fail loudly


def test_background_is_converted_to_the_photo_profile() -> None:
    srgb = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    image = _halves()
    assert convert_profile(image, None, None) is image
    same = convert_profile(image, srgb, None)  # an explicit sRGB tag is the same space
    assert np.abs(same.astype(int) - image).max() <= 2
