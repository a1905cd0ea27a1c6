"""The segmenter registry and the base class's batcher."""

from __future__ import annotations

import time

import numpy as np
import pytest

from tests import helpers
from tests.helpers import BACKEND, DiscSegmenter


class CountingSegmenter(DiscSegmenter):
    """Records the size of every model call."""

    thread_safe = False

    def __init__(self) -> None:
        super().__init__()
        self.batches: list[int] = []

    def predict_batch(self, images: list[np.ndarray]) -> list[np.ndarray]:
        self.batches.append(len(images))
        time.sleep(0.02)  # a model call takes a while: others queue up meanwhile
        return [self.predict(image) for image in images]


def test_concurrent_calls_are_batched_and_each_caller_gets_its_own_answer() -> None:
    from concurrent.futures import ThreadPoolExecutor

    segmenter = CountingSegmenter()
    segmenter.enable_batching(4)
    images = [np.zeros((10 + i, 20, 3), np.uint8) for i in range(24)]
    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(segmenter, images))
    for image, result in zip(images, results, strict=True):
        assert result.shape == image.shape[:2]  # answers are not mixed up between callers
        np.testing.assert_array_equal(result, segmenter.predict(image))
    assert sum(segmenter.batches) == 24
    assert max(segmenter.batches) <= 4 and max(segmenter.batches) > 1


def test_a_failing_batch_fails_each_of_its_callers() -> None:
    from concurrent.futures import ThreadPoolExecutor

    class Broken(CountingSegmenter):
        def predict_batch(self, images):
            raise RuntimeError("out of memory")

    segmenter = Broken()
    segmenter.enable_batching(3)
    with ThreadPoolExecutor(3) as pool:
        futures = [pool.submit(segmenter, np.zeros((4, 4, 3), np.uint8)) for _ in range(3)]
    for future in futures:
        with pytest.raises(RuntimeError, match="out of memory"):
            future.result()


# --- registry ----------------------------------------------------------------------------------


def test_mode_numbers_and_names_resolve_to_the_backend() -> None:
    from operations.segmenters import resolve_segmenter_name, segmenter_choices

    assert [resolve_segmenter_name(m) for m in ("0", "1", "2")] == ["mediapipe", "deeplab", "yolo"]
    assert resolve_segmenter_name(" YOLO ") == "yolo"
    assert set(segmenter_choices()) >= {"0", "mediapipe", "1", "deeplab", "2", "yolo"}
    with pytest.raises(ValueError, match=r"unknown mode 'sam'.*mediapipe"):
        resolve_segmenter_name("sam")


def test_registering_a_taken_name_or_number_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    from operations import segmenters

    monkeypatch.setattr(segmenters, "BACKEND_MODULES", list(segmenters.BACKEND_MODULES))
    monkeypatch.setattr(segmenters, "_loaded", None)
    taken = type(BACKEND)(name="yolo", summary="", segmenter=DiscSegmenter)
    monkeypatch.setattr(helpers, "BACKEND", taken)
    with pytest.raises(ValueError, match="'yolo' is already registered"):
        segmenters.register_backend("tests.helpers")
    assert "tests.helpers" not in segmenters.BACKEND_MODULES  # refused, not half-registered


def test_a_registered_backend_is_created_with_its_declared_options(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from operations import segmenters

    monkeypatch.setattr(segmenters, "BACKEND_MODULES", list(segmenters.BACKEND_MODULES))
    monkeypatch.setattr(segmenters, "_loaded", None)
    segmenters.register_backend("tests.helpers")
    assert "7 | disc" in segmenters.segmenter_help()
    assert segmenters.resolve_segmenter_name("7") == "disc"
    from operations.options import Options

    options = Options(mode="7", batch_size=3)
    segmenter = segmenters.create_segmenter(options.mode, options.recipe().segmenter)
    assert isinstance(segmenter, DiscSegmenter)
    assert segmenter._batcher is not None  # --batch-size reaches the batcher
    assert segmenter(np.zeros((8, 8, 3), np.uint8)).shape == (8, 8)


def test_the_docs_model_table_is_the_declarations() -> None:
    from operations.segmenters import model_table
    from scripts.make_tables import between
    from tests.helpers import ROOT

    page = (ROOT / "docs" / "models.md").read_text(encoding="utf-8")
    start, end = between(page, "model-table")
    assert page[start:end] == model_table(), "run python scripts/make_tables.py --write"
