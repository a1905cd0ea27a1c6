"""Temporal smoothing: still parts are steadied, moving parts follow at once, cuts restart."""

from __future__ import annotations

from itertools import pairwise

import numpy as np
import pytest

from operations.temporal import TemporalSmoother
from tests.helpers import random_rgb


def _noisy_alphas(count: int, seed: int = 0) -> list[np.ndarray]:
    """An edge (a horizontal ramp) whose values waver by a few per cent from frame to frame."""
    rng = np.random.default_rng(seed)
    ramp = np.tile(np.linspace(0, 1, 64, dtype=np.float32), (48, 1))
    return [
        np.clip(ramp + rng.normal(0, 0.05, ramp.shape), 0, 1).astype(np.float32)
        for _ in range(count)
    ]


def test_a_still_picture_loses_most_of_its_flicker() -> None:
    picture = random_rgb(48, 64, seed=1)
    alphas = _noisy_alphas(30)
    smoother = TemporalSmoother(0.7)
    smoothed = [smoother(a, picture) for a in alphas]
    raw = np.mean([np.abs(b - a).mean() for a, b in pairwise(alphas)])
    steady = np.mean([np.abs(b - a).mean() for a, b in pairwise(smoothed[5:])])
    assert steady < 0.5 * raw
    # Averaging, not drifting: the steadied alpha stays centred on the true ramp.
    truth = np.tile(np.linspace(0, 1, 64, dtype=np.float32), (48, 1))
    assert abs(float((smoothed[-1] - truth)[:, 8:-8].mean())) < 0.01


def test_where_the_picture_moves_the_alpha_follows_at_once() -> None:
    smoother = TemporalSmoother(0.9)
    still, moved = random_rgb(48, 64, seed=1), random_rgb(48, 64, seed=1).copy()
    moved[:, 32:] = random_rgb(48, 32, seed=2)  # the right half of the picture changed
    before = np.zeros((48, 64), np.float32)
    after = np.ones((48, 64), np.float32)
    smoother(before, still)
    result = smoother(after, moved)
    assert result[:, 40:].min() > 0.99  # moved: no ghost of the old alpha
    assert result[:, :24].max() < 0.95  # still: the old alpha weighs in


def test_a_cut_restarts_and_off_is_the_identity() -> None:
    smoother = TemporalSmoother(0.9)
    smoother(np.zeros((48, 64), np.float32), np.zeros((48, 64, 3), np.uint8))
    after_cut = smoother(np.ones((48, 64), np.float32), np.full((48, 64, 3), 255, np.uint8))
    assert after_cut.min() == 1.0
    alpha = _noisy_alphas(1)[0]
    assert TemporalSmoother(0.0)(alpha, random_rgb(48, 64)) is alpha
    # A new size (another video through the same smoother) starts afresh.
    resized = smoother(np.zeros((24, 32), np.float32), np.full((24, 32, 3), 255, np.uint8))
    assert resized.shape == (24, 32) and resized.max() == 0.0
    with pytest.raises(ValueError):
        TemporalSmoother(1.0)
