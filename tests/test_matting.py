from __future__ import annotations

from typing import NamedTuple

import cv2
import numpy as np
import pytest

from operations.build import build_background, build_pipeline
from operations.media.decode import decode
from operations.options import Options
from operations.stages.background import Background
from operations.stages.composite import blend, composite
from operations.stages.matting import refine
from tests.helpers import SAMPLES, DiscSegmenter


class Case(NamedTuple):
    image: np.ndarray
    truth: np.ndarray  # the true alpha
    coarse: np.ndarray  # what a segmenter with a mask_side² mask would give
    mask_side: int
    disc: np.ndarray  # the disc's alpha alone, without the strands


def _synthetic(size: int = 384, mask_side: int = 64, seed: int = 0):
    """A blue disc with thin strands over a green background."""
    rng = np.random.default_rng(seed)
    disc = np.zeros((size, size), np.float32)
    cv2.circle(disc, (size // 2, size // 2 + 20), size // 3, 1.0, -1, cv2.LINE_AA, shift=0)
    disc = cv2.GaussianBlur(disc, (0, 0), 1.5)  # a soft edge a few pixels wide
    truth = disc.copy()
    strands = np.zeros((size, size), np.uint8)
    for _ in range(12):
        x = int(rng.integers(size // 3, 2 * size // 3))
        points = np.array([[x, size // 2 - 30], [x + int(rng.integers(-15, 15)), 8]], np.int32)
        cv2.polylines(strands, [points], False, 255, 1, cv2.LINE_AA)
    truth = np.maximum(truth, strands.astype(np.float32) / 255.0)
    subject = np.array([30, 40, 220], np.float32)  # blue
    old = np.array([40, 220, 60], np.float32)  # green
    a = truth[..., None]
    image = np.clip(subject * a + old * (1 - a) + 0.5, 0, 255).astype(np.uint8)
    small = cv2.resize(truth, (mask_side, mask_side), interpolation=cv2.INTER_AREA)
    small = cv2.GaussianBlur(small, (0, 0), 1.0)
    coarse = np.clip(cv2.resize(small, (size, size), interpolation=cv2.INTER_LINEAR), 0, 1)
    return Case(image, truth, coarse, mask_side, disc)


@pytest.mark.parametrize("method", ["fast", "quality"])
def test_refined_alpha_is_closer_to_the_truth_than_the_coarse_mask(method: str) -> None:
    image, truth, coarse, mask_side, _ = _synthetic()
    matte = refine(image, coarse, method, mask_side=mask_side)
    assert matte.alpha.shape == truth.shape and matte.alpha.dtype == np.float32
    assert matte.alpha.min() >= 0.0 and matte.alpha.max() <= 1.0
    coarse_sad = np.abs(coarse - truth).sum()
    refined_sad = np.abs(matte.alpha - truth).sum()
    assert refined_sad < 0.5 * coarse_sad, (refined_sad, coarse_sad)


def test_decontamination_removes_the_old_background_colour() -> None:
    image, truth, coarse, mask_side, disc = _synthetic()
    matte = refine(image, coarse, "fast", mask_side=mask_side)
    edge = (disc > 0.2) & (disc < 0.8) & (truth == disc)  # the disc's soft rim, strands apart
    true_green = 40  # the subject's own green
    excess_in_photo = image[edge][:, 1].astype(float).mean() - true_green
    excess_in_subject = matte.foreground[edge][:, 1].astype(float).mean() - true_green
    assert excess_in_photo > 60  # the edge pixels carry much of the old green background
    assert abs(excess_in_subject) < 0.3 * excess_in_photo  # at least 70 % of it is removed
    # Away from the edge (beyond the filter's reach, about two windows) the subject is solid and
    # its colours are the photo's own. The window's radius is 3 mask pixels: 18 px here.
    reach = 2 * 18 + 9
    solid = cv2.erode((truth >= 1.0).astype(np.uint8), np.ones((reach, reach), np.uint8)) > 0
    assert solid.sum() > 3000
    np.testing.assert_array_equal(matte.foreground[solid], image[solid])
    assert (matte.alpha[solid] == 1.0).all()


def test_refine_on_a_real_photo_stays_in_range() -> None:
    from operations.segmenters.mediapipe import MediaPipeSegmenter

    rgb = decode(SAMPLES / "grace_hopper.jpg").rgb
    with MediaPipeSegmenter() as segmenter:
        coarse = segmenter.predict(rgb)
    matte = refine(rgb, coarse, "fast", mask_side=segmenter.mask_side)
    assert matte.alpha.shape == rgb.shape[:2]
    assert matte.alpha.min() >= 0.0 and matte.alpha.max() <= 1.0
    assert matte.alpha[200:260, 230:290].min() == 1.0  # her face stays solid
    assert matte.alpha[:30, :30].max() == 0.0  # the flag's corner stays background


def test_fast_composite_equals_the_blend_of_its_matte() -> None:
    image, _, coarse, mask_side, _ = _synthetic(seed=3)
    matte = refine(image, coarse, "fast", mask_side=mask_side)
    background = np.random.default_rng(1).integers(0, 256, image.shape, dtype=np.uint8)
    fast = composite(matte, background).astype(int)
    reference = blend(matte.foreground, background, matte.alpha).astype(int)
    assert np.abs(fast - reference).max() <= 1  # the masked path is the same blend, to rounding


def test_matting_off_reproduces_the_plain_soft_blend_exactly() -> None:
    image = _synthetic().image
    background = np.full_like(image, 128)
    options = Options(matting="off").validated(batch=False)
    pipeline = build_pipeline(
        options.recipe(),
        segmenter=DiscSegmenter(),
        background=build_background(options.recipe(), image=Background(background)),
    )
    result = pipeline.swap(image)
    coarse = DiscSegmenter().predict(image)
    np.testing.assert_array_equal(result.alpha, coarse)
    np.testing.assert_array_equal(result.image, blend(image, background, coarse))


def test_no_edge_means_nothing_to_refine() -> None:
    image = np.full((40, 50, 3), 200, np.uint8)
    for value in (0.0, 1.0):
        coarse = np.full((40, 50), value, np.float32)
        matte = refine(image, coarse, "fast")
        np.testing.assert_array_equal(matte.alpha, coarse)
        assert matte.foreground is image


def test_transparency_multiplies_the_refined_alpha() -> None:
    image, _, coarse, mask_side, _ = _synthetic()
    matte = refine(image, coarse, "fast", mask_side=mask_side)
    half = np.full(coarse.shape, 0.5, np.float32)
    halved = matte.times(half)
    np.testing.assert_allclose(halved.alpha, matte.alpha * 0.5)
    np.testing.assert_array_equal(halved.foreground, matte.foreground)


def test_unknown_method() -> None:
    with pytest.raises(ValueError, match="fast"):
        refine(np.zeros((4, 4, 3), np.uint8), np.zeros((4, 4), np.float32), "magic")


def test_block_starts_agree_with_opencvs_nearest_enlargement() -> None:
    from operations.stages.matting import _block_starts

    for small, full in ((256, 777), (218, 1365), (256, 1600), (3, 5), (7, 7), (1, 9)):
        starts = _block_starts(small, full)
        ramp = np.arange(small, dtype=np.uint8)[None, :].repeat(2, axis=0)
        enlarged = cv2.resize(ramp, (full, 2), interpolation=cv2.INTER_NEAREST)[0]
        assert starts[0] == 0 and starts[-1] == full
        np.testing.assert_array_equal(np.repeat(np.arange(small), np.diff(starts)), enlarged)


@pytest.mark.parametrize("method", ["fast", "off"])
def test_peak_is_the_alphas_maximum(method: str) -> None:
    image, _, coarse, mask_side, _ = _synthetic()
    for scale in (1.0, 0.5, 0.0):
        matte = refine(image, coarse * scale, method, mask_side=mask_side)
        assert matte.peak() == pytest.approx(float(matte.alpha.max()))


@pytest.mark.parametrize("method", ["fast", "quality"])
@pytest.mark.parametrize("shape", [(1, 1), (1, 5), (2, 3), (7, 300), (300, 2)])
def test_refine_handles_tiny_and_thin_images(method: str, shape: tuple[int, int]) -> None:
    rng = np.random.default_rng(5)
    image = rng.integers(0, 256, (*shape, 3), dtype=np.uint8)
    coarse = rng.random(shape).astype(np.float32)
    matte = refine(image, coarse, method)
    assert matte.alpha.shape == shape
    assert matte.alpha.min() >= 0.0 and matte.alpha.max() <= 1.0
    assert composite(matte, image).shape == image.shape


def _steps_at_block_boundaries(alpha: np.ndarray, side: int) -> float:
    """Mean |Δα| of neighbours on either side of the reduced grid's block boundaries over the
    same inside blocks, in the edge band (benchmarks/bench_blocks.py's measure): about 1 for an
    alpha made pixel by pixel, more where decisions were made per block."""
    from operations.stages.matting import _block_starts, _work_size

    height, width = alpha.shape
    work_w, work_h = _work_size(height, width, side)
    soft = (alpha > 0.02) & (alpha < 0.98)
    sums = np.zeros(4)
    for axis, length, reduced in ((1, width, work_w), (0, height, work_h)):
        boundary = np.zeros(length - 1, bool)
        boundary[_block_starts(reduced, length)[1:-1] - 1] = True
        step = np.abs(np.diff(alpha, axis=axis))
        if axis == 1:
            band, across = soft[:, 1:] | soft[:, :-1], boundary[None, :]
        else:
            band, across = soft[1:] | soft[:-1], boundary[:, None]
        sums += [
            step[band & across].sum(),
            (band & across).sum(),
            step[band & ~across].sum(),
            (band & ~across).sum(),
        ]
    return (sums[0] / sums[1]) / (sums[2] / sums[3])


def test_the_fast_path_decides_each_pixel_not_each_block() -> None:
    """Light strands run through dark hair to its edge: a block whose mean colour is sure
    subject holds pixels (the strands) whose own alpha is far from 1. Decided per block (the
    reduced mask's blocks enlarged), each strand's alpha jumps at the block boundaries; decided
    per pixel, it does not (measured: 1.155 block-wise, 0.99 per pixel)."""
    height, width = 900, 1500
    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:height, 0:width]
    hair = np.hypot((x - 750) / 500, (y - 450) / 380) < 1
    strands = np.sin(np.arctan2(y - 450, (x - 750) * 380 / 500) * 260) > 0.93
    grey = np.where(hair, np.where(strands, 200.0, 35.0), 215.0) + rng.normal(0, 3, hair.shape)
    rgb = np.clip(np.dstack([grey, grey * 0.92, grey * 0.85]), 0, 255).astype(np.uint8)
    small = cv2.resize(hair.astype(np.float32), (256, 154), interpolation=cv2.INTER_AREA)
    coarse = cv2.resize(
        cv2.GaussianBlur(small, (0, 0), 1.0), (width, height), interpolation=cv2.INTER_LINEAR
    )
    matte = refine(rgb, coarse, "fast", mask_side=256)
    assert _steps_at_block_boundaries(matte.alpha, 256) < 1.05
    # The matte's parts agree: soft pixels listed, solid where α is 1, nothing else.
    alpha = matte.alpha
    assert set(np.flatnonzero((alpha > 0) & (alpha < 1))) == set(matte.edge)
    np.testing.assert_array_equal(matte.solid == 1, alpha == 1)


def test_quality_says_it_compiles_before_pymatting_is_imported(monkeypatch, caplog) -> None:
    """pymatting compiles its functions as it is imported (a minute, the first time): the
    message must come before the import, not after it (once, 90 s passed in silence)."""
    import logging
    import sys

    from operations.stages import matting

    said_before: list[bool] = []

    class Watch:  # told of every import: notes whether the message came first
        @staticmethod
        def find_spec(name, path=None, target=None):
            if name == "pymatting":
                said_before.append("compiling closed-form matting" in caplog.text)
            return None  # the usual finders import it

    monkeypatch.setattr(matting, "_compiled_before", lambda folder, pattern: False)
    for name in [m for m in sys.modules if m == "pymatting" or m.startswith("pymatting.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setattr(sys, "meta_path", [Watch(), *sys.meta_path])
    with caplog.at_level(logging.INFO, logger="backgroundswap"):
        matting.warm_up("quality")
    # The last look is the import (a lookup of where it lies may come before it).
    assert said_before and said_before[-1]


def test_a_fine_mask_far_smaller_than_the_photo_is_refitted_to_its_edges() -> None:
    """A model that saw 320² gives, on a 1600-px photo, a 5× enlarged, blurred alpha: it is
    carried to the photo's own edge (steeper where the photo's edge is), and never grows into
    what the model called background."""
    from operations.stages.matting import FINE_LOW, sharpened

    height, width = 900, 1600
    x = np.arange(width)
    edge = (x < 800).astype(np.float32)  # a sharp vertical edge at x = 800
    rgb = np.repeat((40 + 180 * (1 - edge))[None, :, None], height, axis=0)
    rgb = np.repeat(rgb, 3, axis=2).astype(np.uint8)  # dark subject left, light ground right
    small = cv2.resize(np.tile(edge, (height, 1)), (320, 180), interpolation=cv2.INTER_AREA)
    blurred = cv2.resize(cv2.GaussianBlur(small, (0, 0), 1.0), (width, height))
    result = sharpened(rgb, blurred, 320)

    def soft(a: np.ndarray) -> int:
        return int(((a[450] > 0.05) & (a[450] < 0.95)).sum())

    def step(a: np.ndarray) -> float:  # across the photo's own edge
        return float(a[450, 799] - a[450, 800])

    assert soft(blurred) >= 15 and step(blurred) < 0.1  # a 5× ramp, smooth over the edge
    assert step(result) > 0.5 and soft(result) <= 12  # the photo's edge, in the alpha
    assert result[450, 780] > 0.97 and (result[450, 830:] == 0).all()
    assert (result[blurred <= FINE_LOW] == 0).all()  # nothing grown
    same = refine(rgb, blurred, "fast", fine=True, mask_side=320).alpha
    assert step(same) > 0.5  # refine does it when the photo is ≥ 2× the model's input
    untouched = refine(rgb, blurred, "fast", fine=True, mask_side=1024).alpha
    assert step(untouched) < 0.1  # and keeps the model's alpha when it is not
