"""``--mode auto``: for each photo, the people model when it shows a person, the salient model
for anything else (animals, products, a person seen from behind).

The rule, and why it is this one:

1. Faces are looked for with MediaPipe's full-range face detector (BlazeFace, carried beside the
   selfie models: Apache-2.0, 0.7 MB, a few milliseconds), on the photo at ``FACE_SIDE`` px.
2. A face whose box's centre the people model (MediaPipe selfie segmentation, run at the same
   size) also calls person (α > 0.5) makes it a people photo: the people model segments it.
3. Otherwise the salient model does (``--salient-model``), or, when the ``salient`` extra is not
   installed, the people model, with a warning once.

The people model itself cannot tell: it answers as confidently on an elephant or a lion as on a
person (its doubt score is 0 on both), and how well its mask and the salient one agree does not
separate people from animals either. A face detector can: on the sample and evaluation photos
the full-range detector finds the face of every person facing the camera and nothing on a tiger,
an elephant, a lion or a cat (the short-range one and OpenCV's Haar cascade both take a lion's
face for a person's at some sizes). The check against the people mask keeps a face in a poster
or on a product's label from counting. A person seen from behind has no face to find and goes to
the salient model, which segments people well too.

A video is judged once, on its first frame, so that its frames do not switch model.
"""

from __future__ import annotations

import contextlib
import importlib.util
import logging
import threading
from typing import TYPE_CHECKING, ClassVar

import numpy as np

from operations.models import WeightsError, WeightsSpec, resolve
from operations.resize import shrink
from operations.segmenters.base import Backend, ModelCard, Pick, Segmenter, SegmenterError

if TYPE_CHECKING:
    from operations.segmenters.base import SegmenterSettings

log = logging.getLogger("backgroundswap")

PEOPLE, OTHER = "mediapipe", "salient"
FACE_SIDE = 640  # faces are looked for at this long side
FACE_MODEL = (
    "face_detection_full_range_sparse.tflite",
    "2c3728e6da56f21e21a320433396fb06d40d9088f2247c05e5635a688d45dfe1",
)
MIN_FACE_SCORE = 0.5  # MediaPipe's own default


def face_weights() -> WeightsSpec:
    """Where the face detector's model is looked for: the tool's model folder, then the copy this
    package carries, then MediaPipe's published file (checked by SHA-256)."""
    from operations.segmenters.mediapipe import carried_spec

    name = "MediaPipe face detection (full range)"
    return carried_spec(name, *FACE_MODEL, download_name="mediapipe-face")


class FaceFinder:
    """MediaPipe's full-range face detector (Tasks API), safe to call from several threads."""

    def __init__(self, *, offline: bool = False) -> None:
        from operations.segmenters.mediapipe import closed_at_exit, native_stderr_captured

        try:
            path = resolve(face_weights(), None, offline=offline)
        except WeightsError as exc:
            raise SegmenterError(str(exc)) from None
        self._lock = threading.Lock()
        with native_stderr_captured():  # TFLite's start-up chatter on descriptor 2
            import mediapipe
            from mediapipe.tasks.python import BaseOptions, vision

            self._image, self._format = mediapipe.Image, mediapipe.ImageFormat.SRGB
            options = vision.FaceDetectorOptions(
                base_options=BaseOptions(model_asset_path=str(path)),
                running_mode=vision.RunningMode.IMAGE,
                min_detection_confidence=MIN_FACE_SCORE,
            )
            self._detector = vision.FaceDetector.create_from_options(options)
            self._closer = closed_at_exit(self, self._detector)
            self(np.zeros((64, 64, 3), np.uint8))  # the first call starts the graph

    def __call__(self, rgb: np.ndarray) -> list[tuple[int, int, int, int]]:
        """Face boxes ``(x, y, w, h)`` in an RGB image's own pixels."""
        image = self._image(image_format=self._format, data=np.ascontiguousarray(rgb))
        with self._lock:
            found = self._detector.detect(image).detections
        boxes = (d.bounding_box for d in found)
        return [(b.origin_x, b.origin_y, b.width, b.height) for b in boxes]

    def close(self) -> None:
        from operations.segmenters.mediapipe import native_stderr_captured

        with native_stderr_captured():  # TFLite's "DestroyAccelerator" chatter
            self._closer()  # once


class AutoSegmenter(Segmenter):
    """Picks, per photo, between a people segmenter and another (see the module's rule).

    Args:
        people: the people model (also the one the faces are checked against).
        other: the model for everything else; ``None``: the people model does every photo.
    """

    name: ClassVar[str] = "auto"
    thread_safe: ClassVar[bool] = True  # its models and face finder lock themselves

    def __init__(
        self, people: Segmenter, other: Segmenter | None, faces: FaceFinder | None
    ) -> None:
        super().__init__()
        self.people, self.other, self.faces = people, other, faces
        self.mask_side = people.mask_side

    @classmethod
    def from_settings(cls, settings: SegmenterSettings) -> AutoSegmenter:
        from dataclasses import replace

        from operations.segmenters import backends, create_segmenter

        salient = backends()[OTHER]
        # The people model runs on the CPU only; the other model where the run asks.
        people = create_segmenter(PEOPLE, replace(settings, device="auto"))
        if not all(importlib.util.find_spec(m) is not None for m in salient.requires):
            log.warning(
                "--mode auto: the %s backend is not installed (pip install -r "
                "requirements-%s.txt): every photo goes to the %s model",
                OTHER,
                salient.extra,
                PEOPLE,
            )
            return cls(people, None, None)
        with contextlib.ExitStack() as undo:  # a part that fails closes the ones made
            undo.callback(people.close)
            other = create_segmenter(OTHER, settings)
            undo.callback(other.close)
            faces = FaceFinder(offline=settings.offline)
            undo.pop_all()
        return cls(people, other, faces)

    def enable_batching(self, size: int, wait: float = 0.01) -> None:
        """Nothing to do: its two models were built with the run's batching."""

    def pick(self, rgb: np.ndarray) -> Pick:
        """The model for this photo, and why (the summary records both)."""
        if self.other is None or self.faces is None:
            return Pick(self.people, f"{OTHER} not installed")
        height, width = rgb.shape[:2]
        scale = min(1.0, FACE_SIDE / max(height, width))
        size = (max(1, round(width * scale)), max(1, round(height * scale)))
        small = shrink(rgb, *size) if scale < 1 else rgb
        person = self.people(small)
        rows, cols = person.shape
        for x, y, w, h in self.faces(small):
            centre = (min(max(y + h // 2, 0), rows - 1), min(max(x + w // 2, 0), cols - 1))
            if person[centre] > 0.5:
                return Pick(self.people, "a face")
        return Pick(self.other, "no face")

    def predict(self, rgb: np.ndarray) -> np.ndarray:
        return self.pick(rgb).segmenter(rgb)

    def close(self) -> None:
        for part in (self.people, self.other, self.faces):
            if part is not None:
                part.close()


BACKEND = Backend(
    name="auto",
    summary="per photo: mediapipe when it shows a face, else salient (when installed)",
    segmenter=AutoSegmenter,
    uses=(PEOPLE, OTHER),
    devices=("cpu", "cuda"),
    models=(
        ModelCard(
            "the face check; then `0` and `3`'s own",
            f"`{FACE_MODEL[0]}` (MediaPipe's full-range face detector), carried by this package "
            "(from `mediapipe` 0.10.21's wheel)",
            "Apache-2.0",
            "`$BACKGROUNDSWAP_HOME/models/`, then the package's own copy: works offline",
        ),
    ),
)
