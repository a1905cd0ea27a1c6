"""The per-image pipeline: segment → refine → background → composite, on a segmenter with a known
answer."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from operations.background import Background, BackgroundSource
from operations.options import Options
from operations.pipeline import Pipeline
from tests.helpers import DiscSegmenter, random_rgb


def _pipeline(**settings) -> Pipeline:
    options = Options(**settings).validated(batch=False)
    return Pipeline(options, segmenter=DiscSegmenter())


def test_swap_keeps_subject_and_replaces_background(background_file: Path) -> None:
    pipeline = _pipeline(bg=background_file)
    photo = np.full((60, 80, 3), 90, np.uint8)
    result = pipeline.swap(photo)
    assert result.image.shape == photo.shape and result.image.dtype == np.uint8
    assert result.image[30, 40].tolist() == [90, 90, 90]  # disc centre: alpha 1
    assert result.image[2, 2].tolist() == [255, 0, 0]  # corner: alpha 0, left half red
    assert result.image[2, 77].tolist() == [0, 0, 255]
    assert result.warnings == []


def test_transparent_input_pixels_are_never_subject(background_file: Path) -> None:
    pipeline = _pipeline(bg=background_file)
    photo = np.full((60, 80, 3), 90, np.uint8)
    see_through = np.zeros((60, 80), np.float32)
    result = pipeline.swap(photo, alpha_in=see_through)
    assert result.alpha.max() == 0
    assert result.image[30, 30].tolist() == [255, 0, 0]  # inside the disc, left half: red
    assert result.warnings == ["no subject found: the output shows the background alone"]


def test_portrait_mode_keeps_subject_pixels() -> None:
    pipeline = _pipeline(blur=True, blur_strength=5)
    photo = random_rgb(60, 80)
    result = pipeline.swap(photo)
    np.testing.assert_array_equal(result.image[28:32, 38:42], photo[28:32, 38:42])
    assert result.image[:10, :10].std() < photo[:10, :10].std() / 2  # the background is blurred


def test_bad_photo_array_is_refused(background_file: Path) -> None:
    with pytest.raises(ValueError, match="uint8 RGB"):
        _pipeline(bg=background_file).swap(np.zeros((4, 4), np.uint8))


def test_background_object_reused_across_sizes() -> None:
    options = Options(blur=True).validated(batch=False)
    source = BackgroundSource(options, image=Background(random_rgb(30, 40)))
    pipeline = Pipeline(options, segmenter=DiscSegmenter(), background=source)
    for height, width in [(20, 20), (40, 10), (20, 20)]:
        assert pipeline.swap(random_rgb(height, width)).image.shape == (height, width, 3)
