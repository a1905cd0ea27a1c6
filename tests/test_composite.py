"""The alpha blend."""

from __future__ import annotations

import numpy as np
import pytest

from operations.stages.composite import blend
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
