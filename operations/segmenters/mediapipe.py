"""MediaPipe selfie segmentation: MediaPipe's Tasks API (``ImageSegmenter``) on the selfie
segmentation models, which this project carries (Apache-2.0; see ``models/README.md``).

The model sees a small image (256×256 for ``general``, 256×144 for ``landscape``). We shrink the
photo to that size ourselves with area averaging (MediaPipe's own bilinear shrink aliases badly on
large photos and costs more), and bring the soft mask (the segmenter's confidence mask) back to
the photo's size with bilinear interpolation. The mask is used as a soft alpha as it is: no
threshold, no dilation, which is what gave the original tool its halos.

The model file is resolved like every model's: ``--weights``, the tool's model cache, the copy
this package carries (so the default works offline out of the box), then MediaPipe's published
file, downloaded with a bounded time-out and checked against the carried file's SHA-256.
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
import threading
import weakref
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import cv2
import numpy as np

from operations.errors import setting
from operations.media.resize import shrink
from operations.models import WeightsError, WeightsSpec, caches_kept, models_home, resolve
from operations.segmenters.base import Backend, BackendOption, ModelCard, Segmenter, SegmenterError

if TYPE_CHECKING:
    from operations.segmenters.base import SegmenterSettings

CARRIED = Path(__file__).resolve().parent / "models"  # the files this package carries
# MediaPipe's own copies of the same files (the assets its builds fetch).
ASSETS = "https://storage.googleapis.com/mediapipe-assets/"


# model name -> (its file, the SHA-256 of the carried copy, the model's input width and height)
MODELS: dict[str, tuple[str, str, tuple[int, int]]] = {
    "general": (
        "selfie_segmentation.tflite",
        "9ee168ec7c8f2a16c56fe8e1cfbc514974cbbb7e434051b455635f1bd1462f5c",
        (256, 256),
    ),
    "landscape": (
        "selfie_segmentation_landscape.tflite",
        "a77d03f4659b9f6b6c1f5106947bf40e99d7655094b6527f214ea7d451106edd",
        (256, 144),
    ),
}
DEFAULT_MODEL = "general"


def weights_spec(model: str = DEFAULT_MODEL) -> WeightsSpec:
    """Where a selfie segmentation model is looked for (see the module's docstring)."""
    file_name, sha256, _ = MODELS[model]
    download = "mediapipe" if model == DEFAULT_MODEL else f"mediapipe-{model}"
    return carried_spec(f"MediaPipe selfie segmentation ({model})", file_name, sha256, download)


def carried_spec(name: str, file_name: str, sha256: str, download_name: str) -> WeightsSpec:
    """A MediaPipe model this package carries: ``--weights``, the tool's model folder, the
    carried copy, then MediaPipe's published file, checked by the carried copy's SHA-256."""
    return WeightsSpec(
        name=name,
        url=ASSETS + file_name,
        cache_dir=models_home(),
        option=setting("weights"),
        cache_variable="BACKGROUNDSWAP_HOME",
        sha256_prefix=sha256,
        alternates=(CARRIED,),
        download_name=download_name,
    )


def closed_at_exit(owner: object, task: Any) -> weakref.finalize:
    """Close a MediaPipe task when ``owner`` goes, or at the latest when the interpreter exits,
    before the threads MediaPipe closes through are stopped: its own finaliser runs too late then
    and prints a traceback (for a caller that never closed ``owner``). threading's exit hooks run
    last-registered first, so this one runs while MediaPipe's executor still does. Calling the
    returned finaliser closes it now (once)."""
    closer = weakref.finalize(owner, task.close)
    closer.atexit = False
    vars(threading)["_register_atexit"](closer)  # private, in threading since 3.9: not typed
    return closer


@contextlib.contextmanager
def native_stderr_captured() -> Iterator[list[str]]:
    """Capture what native code (TFLite, absl) writes to file descriptor 2.

    MediaPipe prints start-up chatter ("Created TensorFlow Lite XNNPACK delegate", absl warnings)
    straight to the descriptor, past Python's ``sys.stderr``. Only used while the segmenter is
    built, before any worker thread runs. The captured text is handed back so errors can quote it.
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
    thread_safe: ClassVar[bool] = False  # one MediaPipe task; calls must not interleave

    def __init__(
        self, model: str = DEFAULT_MODEL, *, weights: Path | None = None, offline: bool = False
    ) -> None:
        super().__init__()
        if model not in MODELS:
            raise SegmenterError(f"unknown MediaPipe model {model!r}; choose from {sorted(MODELS)}")
        self.input_size = MODELS[model][2]
        self.mask_side = max(self.input_size)
        try:
            self.path = resolve(weights_spec(model), weights, offline=offline)
        except WeightsError as exc:
            raise SegmenterError(str(exc)) from None
        os.environ.setdefault("GLOG_minloglevel", "2")
        error: Exception | None
        with native_stderr_captured() as log:
            try:
                mediapipe, BaseOptions, vision = load_mediapipe()

                self._image = mediapipe.Image
                self._format = mediapipe.ImageFormat.SRGB
                options = vision.ImageSegmenterOptions(
                    base_options=BaseOptions(model_asset_path=str(self.path)),
                    running_mode=vision.RunningMode.IMAGE,
                    output_confidence_masks=True,
                    output_category_mask=False,
                )
                self._graph = vision.ImageSegmenter.create_from_options(options)
                self._closer = closed_at_exit(self, self._graph)
                # The first call starts the graph; do it now, while native logging is captured.
                self._segment(np.zeros((*self.input_size[::-1], 3), np.uint8))
            except Exception as exc:  # noqa: BLE001 - re-raised with MediaPipe's own log attached
                error = exc
            else:
                error = None
        if error is not None:
            self.close()
            detail = log[0].strip().splitlines()[-1:] if log and log[0].strip() else []
            raise SegmenterError(
                f"could not start MediaPipe selfie segmentation ({self.path}): {error}"
                + (f" ({detail[0]})" if detail else "")
            ) from error

    @classmethod
    def from_settings(cls, settings: SegmenterSettings) -> MediaPipeSegmenter:
        return cls(settings["mp_model"], weights=settings.weights, offline=settings.offline)

    def _segment(self, small: np.ndarray) -> np.ndarray:
        image = self._image(image_format=self._format, data=np.ascontiguousarray(small))
        (confidence,) = self._graph.segment(image).confidence_masks  # the person's
        return confidence.numpy_view().reshape(small.shape[:2])

    def predict(self, rgb: np.ndarray) -> np.ndarray:
        height, width = rgb.shape[:2]
        small = shrink(rgb, *self.input_size)
        mask = np.clip(self._segment(small), 0.0, 1.0)
        # Bilinear interpolation stays within [0, 1]: no second clip at full size.
        return cv2.resize(mask, (width, height), interpolation=cv2.INTER_LINEAR)

    def close(self) -> None:
        closer = getattr(self, "_closer", None)
        if closer is not None:
            closer()  # once: MediaPipe's own finaliser fails at interpreter exit
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
    weights={
        "mediapipe": lambda: weights_spec("general"),
        "mediapipe-landscape": lambda: weights_spec("landscape"),
    },
    models=(
        ModelCard(
            "general, landscape",
            "`selfie_segmentation*.tflite`, carried by this package (from `mediapipe` 0.10.21's "
            "wheel)",
            "Apache-2.0",
            "`--weights`, then `$BACKGROUNDSWAP_HOME/models/`, then the package's own copy: "
            "works offline",
        ),
    ),
)


def load_mediapipe() -> tuple[Any, Any, Any]:
    """MediaPipe (``mediapipe``, its ``BaseOptions`` and ``vision``), imported with its import-time
    writes kept in our cache folder (it imports matplotlib, which writes a font cache)."""
    with caches_kept("MPLCONFIGDIR", "matplotlib"):
        import mediapipe
        from mediapipe.tasks.python import BaseOptions, vision
    return mediapipe, BaseOptions, vision
