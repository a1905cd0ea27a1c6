"""Temporal smoothing: still parts are steadied, moving parts follow at once, cuts restart."""

from __future__ import annotations

from itertools import pairwise

import cv2
import numpy as np
import pytest

from operations.stages.composite import composite
from operations.stages.matting import Matte, refine
from operations.stages.temporal import TemporalSmoother
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


def _refined_clip(count: int, *, moving: bool, seed: int = 0) -> list[tuple[np.ndarray, Matte]]:
    """Frames of a bright disc on a dark ground (sensor noise on each), optionally drifting,
    and each frame's refined matte (a blurred disc as the coarse mask, as a segmenter gives)."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:90, 0:160]
    clip = []
    for index in range(count):
        centre = 80 + (index * 1.5 if moving else 0)
        disc = (np.hypot(y - 45, x - centre) < 30).astype(np.float32)
        picture = 40 + 170 * disc[..., None] + rng.normal(0, 3, (90, 160, 3))
        rgb = np.clip(picture, 0, 255).astype(np.uint8)
        coarse = cv2.GaussianBlur(disc, (0, 0), 3.0)
        clip.append((rgb, refine(rgb, coarse, "fast", mask_side=40)))
    return clip


@pytest.mark.parametrize("moving", [False, True])
def test_a_refined_matte_is_smoothed_in_its_own_form_as_the_full_alpha_is(moving: bool) -> None:
    """The sparse path (only the pixels that can change) gives the full-frame formula's alpha
    and composite: alpha within the snap's few thousandths, composite within one level."""
    clip = _refined_clip(12, moving=moving)
    full, sparse = TemporalSmoother(0.7), TemporalSmoother(0.7)
    background = np.full((90, 160, 3), (20, 200, 90), np.uint8)
    for rgb, matte in clip:
        expected = full(matte.alpha, rgb)
        smoothed = sparse.matte(matte, rgb)
        assert smoothed.refined  # composited through its mask, the edge alone blended
        assert np.abs(smoothed.alpha - expected).max() < 0.006
        dense = composite(Matte(matte.foreground, soft=expected), background).astype(int)
        assert np.abs(composite(smoothed, background).astype(int) - dense).max() <= 1
    # Smoothing did something: the last frame's alpha is not its own matte's.
    assert np.abs(smoothed.alpha - clip[-1][1].alpha).max() > 0.01


def test_a_still_clip_leaves_no_growing_tail_of_soft_pixels() -> None:
    clip = _refined_clip(40, moving=False)
    smoother = TemporalSmoother(0.7)
    sizes = [len(smoother.matte(matte, rgb).edge) for rgb, matte in clip]
    own = max(len(matte.edge) for _, matte in clip)
    assert max(sizes[20:]) <= 1.5 * own, (sizes, own)
    assert abs(sizes[-1] - sizes[20]) <= 0.2 * own  # steady, not creeping


def test_soft_and_refined_mattes_follow_one_another() -> None:
    """A frame with no edge to refine (a soft matte) between refined ones: the average carries
    across, in either form."""
    clip = _refined_clip(6, moving=False)
    full, mixed = TemporalSmoother(0.7), TemporalSmoother(0.7)
    for index, (rgb, matte) in enumerate(clip):
        if index == 3:
            matte = Matte(rgb, soft=matte.alpha)
        expected = full(matte.alpha, rgb)
        assert np.abs(mixed.matte(matte, rgb).alpha - expected).max() < 0.006
    assert TemporalSmoother(0.0).matte(matte, rgb) is matte
