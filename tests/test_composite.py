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


def test_an_edge_is_blended_at_its_own_pixels_only() -> None:
    from operations.stages.composite import blend_edge

    background = random_rgb(6, 8, 4)
    out = background.copy()
    index = np.array([3, 17, 40], np.int64)  # flat pixel indices
    alpha = np.array([0.0, 0.5, 1.0], np.float32)
    colours = np.array([[255, 255, 255], [100.4, 0.6, 250], [12.5, 99.49, 0]], np.float32)
    blend_edge(out, background, index, alpha, colours)
    flat, before = out.reshape(-1, 3), background.reshape(-1, 3)
    assert (flat[3] == before[3]).all()  # α 0: the background's pixel
    expected = np.floor(colours[1] * 0.5 + before[17] * 0.5 + 0.5)
    assert (flat[17] == expected).all()  # α ½: the mean, rounded
    assert flat[40].tolist() == [13, 99, 0]  # α 1: the colour, rounded half up
    others = np.setdiff1d(np.arange(48), index)
    assert (flat[others] == before[others]).all()  # nothing else touched


def test_the_edge_blend_is_the_same_bytes_with_or_without_the_compiled_kernels(
    monkeypatch,
) -> None:
    import sys

    from operations.stages import matting_kernels
    from operations.stages.composite import blend_edge

    rng = np.random.default_rng(5)
    background = random_rgb(120, 90, 6)
    index = np.sort(rng.choice(120 * 90, 4000, replace=False)).astype(np.int64)
    alpha = rng.random(4000, dtype=np.float32)
    alpha[:300], alpha[300:600] = 0.0, 1.0
    colours = (rng.random((4000, 3), dtype=np.float32) * 255).astype(np.float32)
    colours[:200] = np.round(colours[:200]) + 0.5  # halves: rounded the same way by both
    compiled = background.copy()
    matting_kernels.blend_edge(compiled, background, index, alpha, colours)
    # A salient photo's run: the kernels not loaded, the array arithmetic does it.
    monkeypatch.delitem(sys.modules, "operations.stages.matting_kernels")
    arrays = background.copy()
    blend_edge(arrays, background, index, alpha, colours)
    assert "operations.stages.matting_kernels" not in sys.modules  # it did not load them
    np.testing.assert_array_equal(arrays, compiled)
