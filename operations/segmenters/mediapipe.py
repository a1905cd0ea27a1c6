"""MediaPipe selfie segmentation: the one backend whose real model ships inside its wheel.

The model sees a small image (256×256 for ``general``, 256×144 for ``landscape``). We shrink the
photo to that size ourselves with area averaging (MediaPipe's own bilinear shrink aliases badly on
large photos and costs more), and bring the soft mask back to the photo's size with bilinear
interpolation. The mask is used as a soft alpha as it is: no threshold, no dilation, which is what
gave the original tool its halos.
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
from collections.abc import Iterator
from typing import TYPE_CHECKING, ClassVar

import cv2
import numpy as np

from operations.resize import shrink
from operations.segmenters.base import Backend, BackendOption, ModelCard, Segmenter, SegmenterError

if TYPE_CHECKING:
    from operations.segmenters.base import SegmenterSettings

# model name -> (MediaPipe's model_selection, the model's input width and height)
MODELS: dict[str, tuple[int, tuple[int, int]]] = {
    "general": (0, (256, 256)),
    "landscape": (1, (256, 144)),
}
DEFAULT_MODEL = "general"


@contextlib.contextmanager
def _native_stderr_captured() -> Iterator[list[str]]:
    """Capture what native code (TFLite, absl) writes to file descriptor 2.

    MediaPipe prints start-up chatter ("Created TensorFlow Lite XNNPACK delegate", absl warnings)
    straight to the descriptor, past Python's ``sys.stderr``. Only used while the graph is built,
    before any worker thread runs. The captured text is handed back so errors can quote it.
    """
    captured: list[str] = []
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):  # no real descriptor 2 (embedded interpreters): nothing to hide
        yield captured
        return
    with tempfile.TemporaryFile(mode="w+b") as sink:
        os.dup2(sink.fileno(), 2)
        try:
            yield captured
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            sink.seek(0)
            captured.append(sink.read().decode("utf-8", "replace"))


class MediaPipeSegmenter(Segmenter):
    """MediaPipe selfie segmentation (people), CPU only."""

    name: ClassVar[str] = "mediapipe"
    thread_safe: ClassVar[bool] = False  # one MediaPipe graph; calls must not interleave

    def __init__(self, model: str = DEFAULT_MODEL) -> None:
        super().__init__()
        if model not in MODELS:
            raise SegmenterError(f"unknown MediaPipe model {model!r}; choose from {sorted(MODELS)}")
        selection, self.input_size = MODELS[model]
        self.mask_side = max(self.input_size)
        os.environ.setdefault("GLOG_minloglevel", "2")
        with _native_stderr_captured() as log:
            try:
                from mediapipe.python.solutions.selfie_segmentation import SelfieSegmentation

                self._graph = SelfieSegmentation(model_selection=selection)
                # The first call starts the graph; do it now, while native logging is captured.
                self._segment(np.zeros((*self.input_size[::-1], 3), np.uint8))
            except Exception as exc:  # noqa: BLE001 - re-raised with MediaPipe's own log attached
                error = exc
            else:
                error = None
        if error is not None:
            detail = log[0].strip().splitlines()[-1:] if log and log[0].strip() else []
            raise SegmenterError(
                f"could not start MediaPipe selfie segmentation: {error}"
                + (f" ({detail[0]})" if detail else "")
            ) from error

    @classmethod
    def from_settings(cls, settings: SegmenterSettings) -> MediaPipeSegmenter:
        return cls(model=settings["mp_model"])

    def _segment(self, small: np.ndarray) -> np.ndarray:
        return self._graph.process(small).segmentation_mask

    def predict(self, rgb: np.ndarray) -> np.ndarray:
        height, width = rgb.shape[:2]
        small = shrink(rgb, *self.input_size)
        mask = np.clip(self._segment(np.ascontiguousarray(small)), 0.0, 1.0)
        # Bilinear interpolation stays within [0, 1]: no second clip at full size.
        return cv2.resize(mask, (width, height), interpolation=cv2.INTER_LINEAR)

    def close(self) -> None:
        graph = getattr(self, "_graph", None)
        if graph is not None:
            graph.close()
            self._graph = None


BACKEND = Backend(
    name="mediapipe",
    alias="0",
    summary="MediaPipe selfie segmentation (people; fast, CPU)",
    segmenter=MediaPipeSegmenter,
    options=(
        BackendOption(
            "--mp-model",
            DEFAULT_MODEL,
            choices=tuple(MODELS),
            help="MediaPipe model: general (256×256) or landscape (256×144, faster)",
            doc="MediaPipe's model: `general` (256×256 input, default) or `landscape` (256×144, "
            "a little faster)",
        ),
    ),
    devices=("cpu",),
    models=(
        ModelCard(
            "general, landscape",
            "inside the `mediapipe` wheel",
            "Apache-2.0",
            "nothing to fetch; works offline",
        ),
    ),
)
