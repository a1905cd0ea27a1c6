"""Harmonisation: identity at strength 0 and when the light does not change, a warm subject
moved toward a blue scene with its detail kept, the bound, edge colours, determinism."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from operations.stages.composite import blend, composite
from operations.stages.harmonize import MAX_CHROMA, MAX_LIGHTNESS, _lab, harmonize, measure
from operations.stages.matting import Matte, refine


def _scene(light: tuple[int, int, int], seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A textured subject (a disc) before a textured wall, both under one coloured light."""
    rng = np.random.default_rng(seed)
    height, width = 120, 160
    y, x = np.mgrid[0:height, 0:width]
    alpha = np.clip(40.5 - np.hypot(y - 60, x - 80), 0, 1).astype(np.float32)
    noise = rng.standard_normal((2, height, width))
    texture = 0.55 + 0.25 * np.sin(x / 3.0) * np.cos(y / 4.0) + 0.05 * noise[0]
    wall = 0.5 + 0.1 * noise[1]
    inside = alpha[..., None] > 0
    reflectance = np.where(inside, texture[..., None] * [0.9, 0.8, 0.7], wall[..., None])
    photo = np.clip(reflectance * np.array(light) + 0.5, 0, 255).astype(np.uint8)
    return photo, alpha


def _ssim(a: np.ndarray, b: np.ndarray) -> float:
    """Structural similarity (Wang et al., 2004) with a Gaussian window, σ = 1.5."""
    a, b = a.astype(np.float64), b.astype(np.float64)
    c1, c2 = (0.01 * 100) ** 2, (0.03 * 100) ** 2  # for L* in 0–100

    def blur(x: np.ndarray) -> np.ndarray:
        return cv2.GaussianBlur(x, (0, 0), 1.5)

    ma, mb = blur(a), blur(b)
    va, vb, cov = blur(a * a) - ma**2, blur(b * b) - mb**2, blur(a * b) - ma * mb
    ssim = ((2 * ma * mb + c1) * (2 * cov + c2)) / ((ma**2 + mb**2 + c1) * (va + vb + c2))
    return float(ssim.mean())


def test_strength_zero_and_an_unchanged_light_are_the_identity() -> None:
    photo, alpha = _scene((255, 190, 120))
    matte = Matte(photo, soft=alpha)
    assert harmonize(matte, photo, 0.0) is matte
    blue = np.full_like(photo, (60, 90, 200))
    assert harmonize(matte, blue, 0.0) is matte
    assert harmonize(matte, photo, 1.0) is matte  # the photo's own background: nothing to move


def test_a_warm_subject_on_a_blue_background_moves_toward_blue_and_keeps_its_detail() -> None:
    photo, alpha = _scene((255, 190, 120))  # shot under a warm lamp
    blue, _ = _scene((120, 160, 255), seed=1)  # the new scene, under a cold sky
    result = harmonize(Matte(photo, soft=alpha), blue, 0.5)
    before, after = _lab(photo), _lab(result.rgb)
    inside = alpha > 0.5
    assert after[..., 2][inside].mean() < before[..., 2][inside].mean() - 3  # less yellow: bluer
    plain, harmonised = blend(photo, blue, alpha), blend(result.rgb, blue, alpha)
    assert (plain[alpha == 0] == harmonised[alpha == 0]).all()  # the background is untouched
    detail = [lab[..., 0] - cv2.GaussianBlur(lab[..., 0], (0, 0), 1.6) for lab in (before, after)]
    box = np.s_[30:90, 50:110]  # inside the disc
    assert _ssim(detail[0][box], detail[1][box]) > 0.95
    # A stronger setting moves further.
    stronger = _lab(harmonize(Matte(photo, soft=alpha), blue, 1.0).rgb)
    assert stronger[..., 2][inside].mean() < after[..., 2][inside].mean()


@pytest.mark.parametrize("strength", [0.5, 1.0])
def test_the_change_is_bounded_even_for_an_extreme_background(strength: float) -> None:
    photo, alpha = _scene((255, 255, 255))
    for extreme in ((0, 0, 0), (255, 255, 255), (255, 0, 255), (0, 255, 0)):
        background = np.full_like(photo, extreme)
        adjustment = measure(photo, alpha, background, strength)
        assert abs(adjustment.da) <= strength * MAX_CHROMA + 1e-6
        assert abs(adjustment.db) <= strength * MAX_CHROMA + 1e-6
        moved = _lab(harmonize(Matte(photo, soft=alpha), background, strength).rgb) - _lab(photo)
        inside = alpha > 0.5
        assert np.abs(moved[..., 0][inside]).max() <= strength * MAX_LIGHTNESS + 0.6  # rounding
        delta = np.linalg.norm(moved, axis=2)[inside]
        assert delta.max() <= strength * np.sqrt(MAX_LIGHTNESS**2 + 2 * MAX_CHROMA**2) + 1.0


def test_refined_edges_get_the_same_adjustment_and_it_is_deterministic() -> None:
    photo, alpha = _scene((255, 190, 120))
    blue = np.full_like(photo, (70, 110, 190))
    matte = refine(photo, cv2.GaussianBlur(alpha, (0, 0), 2), "fast", mask_side=64)
    assert matte.refined and matte.edge.size
    adjusted = harmonize(matte, blue, 0.5)
    again = harmonize(matte, blue, 0.5)
    assert (adjusted.rgb == again.rgb).all() and (adjusted.edge_colours == again.edge_colours).all()
    # Every edge colour moved like the photo's pixels around it: toward blue.
    shift = _lab(adjusted.edge_colours[None])[0] - _lab(matte.edge_colours[None])[0]
    assert (shift[:, 2] < 0).mean() > 0.95
    assert (adjusted.solid == matte.solid).all() and (adjusted.edge_alpha == matte.edge_alpha).all()
    out = composite(adjusted, blue)
    assert out.shape == photo.shape


def test_no_subject_is_left_alone() -> None:
    photo, _ = _scene((255, 190, 120))
    matte = Matte(photo, soft=np.zeros(photo.shape[:2], np.float32))
    assert harmonize(matte, np.zeros_like(photo), 1.0) is matte
