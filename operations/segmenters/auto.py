"""``--mode auto``: for each photo, the people model when it shows a person, the salient model
for anything else (animals, products, a person seen from behind).

The rule, and why it is this one:

1. Faces are looked for with MediaPipe's full-range face detector (BlazeFace, carried beside the
   selfie models: Apache-2.0, 0.7 MB, a few milliseconds), on the photo at ``FACE_SIDE`` px.
2. Each face found is confirmed as a person's on a crop of the photo around it (twice its size,
   at ``CROP_SIDE`` px) by MediaPipe's face landmarker: its own short-range face detector must
   find a face there (score ≥ ``CONFIRM_DETECTION``) and its face mesh must say a face is
   present (≥ ``CONFIRM_PRESENCE``). Both are models trained on people's faces alone, carried
   from the same release (1.5 MB together), and add about 6 ms per face found.
3. A confirmed face whose box's centre the people model (MediaPipe selfie segmentation, run at
   the same size) also calls person (α > 0.5) makes it a people photo: the people model
   segments it.
4. Otherwise the salient model does (``--salient-model``), or, when the ``salient`` extra is not
   installed, the people model, with a warning once.

The people model itself cannot tell: it answers as confidently on an elephant or a lion as on a
person, and how well its mask and the salient one agree does not separate people from animals
either. The full-range detector alone is not enough: it took a bear's and an Afghan hound's
faces for people's (0.65, above its default threshold), and its six keypoints come out in human
proportions whatever the face. Measured (benchmarks/bench_auto.py; 149 photos: 22 of people, 56
close-up human faces, 23 animals, 43 close-up animal faces, 5 objects): with the confirmation
no animal goes to the people model, and every person whose face the full-range detector finds
and which is not blurred does (the photos of people lost are three whose faces a data set had
blurred for privacy). The check against the people mask keeps a face in a poster or on a
product's label from counting. A person seen from behind has no face to find and goes to the
salient model, which segments people well too.

A video is judged once, on its first frame, so that its frames do not switch model.
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import logging
import threading
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

import cv2
import numpy as np

from operations.media.resize import shrink
from operations.models import WeightsError, WeightsSpec, resolve
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
# The confirmation (see the rule): the landmarker's short-range detector and face mesh, both from
# mediapipe 0.10.21's wheel (its face_detection and face_landmark modules), made into the bundle
# its Tasks API reads, in memory.
CONFIRM_MODELS = {
    "face_detector.tflite": (
        "face_detection_short_range.tflite",
        "bbff11cebd1eb27a1e004cae0b0e63ec8c551cbf34a4451148b4908b8db3eca8",
    ),
    "face_landmarks_detector.tflite": (
        "face_landmark.tflite",
        "1055cb9d4a9ca8b8c688902a3a5194311138ba256bcc94e336d8373a5f30c814",
    ),
}
CROP_SIDE = 256  # a face is confirmed on a crop twice its size, at this side
CONFIRM_DETECTION = 0.8  # people's faces 0.82-0.95 there; a hound's 0.77
CONFIRM_PRESENCE = 0.95  # people's faces all above; animals' 0 (a hound's 0.9)


def face_weights() -> WeightsSpec:
    """Where the face detector's model is looked for: the tool's model folder, then the copy this
    package carries, then MediaPipe's published file (checked by SHA-256)."""
    from operations.segmenters.mediapipe import carried_spec

    name = "MediaPipe face detection (full range)"
    return carried_spec(name, *FACE_MODEL, download_name="mediapipe-face")


def confirm_weights() -> list[WeightsSpec]:
    """The confirmation's two models, resolved like the face detector's."""
    from operations.segmenters.mediapipe import carried_spec

    return [
        carried_spec(f"MediaPipe {name}", file_name, sha256, download_name="mediapipe-face")
        for name, (file_name, sha256) in CONFIRM_MODELS.items()
    ]


def _bundle(paths: list[Path]) -> bytes:
    """The face landmarker's ``.task`` file (a zip of its models under the names its graph
    reads), made in memory from the carried files."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as bundle:
        for name, path in zip(CONFIRM_MODELS, paths, strict=True):
            bundle.write(path, name)
    return buffer.getvalue()


class FaceFinder:
    """People's faces: MediaPipe's full-range face detector, each face it finds confirmed by the
    face landmarker on a crop around it (see the module's rule). Safe to call from several
    threads."""

    def __init__(self, *, offline: bool = False) -> None:
        from operations.segmenters.mediapipe import (
            closed_at_exit,
            load_mediapipe,
            native_stderr_captured,
        )

        try:
            path = resolve(face_weights(), None, offline=offline)
            confirm = [resolve(spec, None, offline=offline) for spec in confirm_weights()]
        except WeightsError as exc:
            raise SegmenterError(str(exc)) from None
        self._lock = threading.Lock()
        with native_stderr_captured():  # TFLite's start-up chatter on descriptor 2
            mediapipe, BaseOptions, vision = load_mediapipe()

            self._image, self._format = mediapipe.Image, mediapipe.ImageFormat.SRGB
            options = vision.FaceDetectorOptions(
                base_options=BaseOptions(model_asset_path=str(path)),
                running_mode=vision.RunningMode.IMAGE,
                min_detection_confidence=MIN_FACE_SCORE,
            )
            self._detector = vision.FaceDetector.create_from_options(options)
            self._closers = [closed_at_exit(self, self._detector)]
            marks = vision.FaceLandmarkerOptions(
                base_options=BaseOptions(model_asset_buffer=_bundle(confirm)),
                running_mode=vision.RunningMode.IMAGE,
                num_faces=1,
                min_face_detection_confidence=CONFIRM_DETECTION,
                min_face_presence_confidence=CONFIRM_PRESENCE,
            )
            self._landmarker = vision.FaceLandmarker.create_from_options(marks)
            self._closers.append(closed_at_exit(self, self._landmarker))
            blank = np.zeros((64, 64, 3), np.uint8)
            self(blank, blank)  # the first calls start the graphs
            self._confirmed(blank)

    def __call__(
        self, small: np.ndarray, photo: np.ndarray | None = None
    ) -> list[tuple[int, int, int, int]]:
        """The boxes ``(x, y, w, h)``, in ``small``'s pixels, of the faces found in ``small``
        (the photo at ``FACE_SIDE``) that are confirmed as people's on ``photo`` (the photo at
        its own size; default ``small``)."""
        photo = small if photo is None else photo
        image = self._image(image_format=self._format, data=np.ascontiguousarray(small))
        with self._lock:
            found = self._detector.detect(image).detections
        scale = photo.shape[1] / small.shape[1]  # small's pixels to the photo's
        boxes = []
        for detection in found:
            b = detection.bounding_box
            box = (b.origin_x, b.origin_y, b.width, b.height)
            if self._confirmed(_crop(photo, box, scale)):
                boxes.append(box)
        return boxes

    def _confirmed(self, crop: np.ndarray) -> bool:
        """The landmarker finds a face in the crop, and its mesh says one is present."""
        image = self._image(image_format=self._format, data=np.ascontiguousarray(crop))
        with self._lock:
            return bool(self._landmarker.detect(image).face_landmarks)

    def close(self) -> None:
        from operations.segmenters.mediapipe import native_stderr_captured

        with native_stderr_captured():  # TFLite's "DestroyAccelerator" chatter
            for closer in self._closers:
                closer()  # once


def _crop(photo: np.ndarray, box: tuple[int, int, int, int], scale: float) -> np.ndarray:
    """A square of the photo twice the face's size around it, at ``CROP_SIDE`` px."""
    x, y, w, h = (v * scale for v in box)
    side = 2.0 * max(w, h)
    cx, cy = x + w / 2, y + h / 2
    height, width = photo.shape[:2]
    x0, y0 = int(max(0, cx - side / 2)), int(max(0, cy - side / 2))
    x1, y1 = int(min(width, cx + side / 2)), int(min(height, cy + side / 2))
    if x1 - x0 < 2 or y1 - y0 < 2:
        return np.zeros((CROP_SIDE, CROP_SIDE, 3), np.uint8)
    area = cv2.INTER_AREA if x1 - x0 > CROP_SIDE else cv2.INTER_LINEAR
    return cv2.resize(photo[y0:y1, x0:x1], (CROP_SIDE, CROP_SIDE), interpolation=area)


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
        for x, y, w, h in self.faces(small, rgb):
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
            f"`{FACE_MODEL[0]}` (MediaPipe's full-range face detector), confirmed by "
            + " and ".join(f"`{file}`" for file, _ in CONFIRM_MODELS.values())
            + " (its face landmarker), carried by this package (from `mediapipe` 0.10.21's "
            "wheel)",
            "Apache-2.0",
            "`$BACKGROUNDSWAP_HOME/models/`, then the package's own copy: works offline",
        ),
    ),
)
