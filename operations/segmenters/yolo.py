"""Ultralytics YOLOv8-seg: instance segmentation of the 80 COCO classes.

The alpha is the union of **all** instances of the selected classes (the original tool took the
first only), soft: each instance's mask probability is computed from the network's prototypes
without the 0.5 threshold, the letterbox padding is removed, and it is enlarged to the photo's
size, where edge refinement takes over.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import cv2
import numpy as np

from operations.errors import setting
from operations.models import (
    DEFAULT_DEVICE,
    DeviceError,
    WeightsError,
    WeightsSpec,
    first_line,
    models_home,
    onnx_metadata,
    resolve,
    torch_device,
)
from operations.segmenters.base import Backend, BackendOption, ModelCard, Segmenter, SegmenterError

if TYPE_CHECKING:
    from operations.segmenters.base import SegmenterSettings

SIZES = ("n", "s", "m", "l", "x")
DEFAULT_SIZE = "n"
RELEASE_URL = "https://github.com/ultralytics/assets/releases/download/v8.4.0"
DEFAULT_CONFIDENCE = 0.25
IMAGE_SIZE = 640  # the network's input (long side); its mask prototypes are a quarter of it


def import_ultralytics() -> None:
    """Import Ultralytics without its process-wide side effects on the rest of the tool."""
    # We fetch weights ourselves with bounded waits; YOLO_OFFLINE stops Ultralytics' own network
    # use (its online check, downloads with minutes of retries, analytics events).
    os.environ.setdefault("YOLO_OFFLINE", "1")
    # Ultralytics writes a settings.json on import, by default the user's global one, which
    # also pins its weights folder to the working folder of the first run: ours goes in our
    # own folder instead (unless the user chose one), and our weights in our model folder.
    os.environ.setdefault("YOLO_CONFIG_DIR", str(models_home().parent / "ultralytics"))
    os.environ.setdefault("YOLO_VERBOSE", "False")
    import torch
    from PIL import Image

    pil_open, threads = Image.open, torch.get_num_threads()
    omp = os.environ.get("OMP_NUM_THREADS")
    import ultralytics  # noqa: F401

    # Importing it replaces PIL.Image.open, for the whole process, with a wrapper that runs
    # `pip install pi-heif` when Pillow cannot identify a file. A batch meets such files on
    # purpose (and reports them); we pass the network arrays, so the wrapper is undone.
    Image.open = pil_open
    # It also sets OMP_NUM_THREADS=1 ("for training"), which would make every later torch model
    # in the process (DeepLab, VGG19) run on one core.
    if omp is None:
        os.environ.pop("OMP_NUM_THREADS", None)
    torch.set_num_threads(threads)


def weights_spec(size: str) -> WeightsSpec:
    """Where ``yolov8{size}-seg.pt`` is cached (our model folder, whatever the working folder)
    and fetched from."""
    return WeightsSpec(
        name=f"yolov8{size}-seg",
        url=f"{RELEASE_URL}/yolov8{size}-seg.pt",
        cache_dir=models_home(),
        option=f"{setting('weights')} (or {setting('yolo_model')} PATH)",
        cache_variable="BACKGROUNDSWAP_HOME",
        download_name=f"yolo-{size}",
    )


def soft_union(masks: np.ndarray) -> np.ndarray:
    """Union of soft instance masks (``N×H×W`` in [0, 1]): the per-pixel maximum.

    The maximum, not ``1 − Π(1 − m)``: two overlapping half-sure instances stay half-sure
    instead of adding up to a confident subject.
    """
    if masks.shape[0] == 0:
        return np.zeros(masks.shape[1:], np.float32)
    return masks.max(axis=0).astype(np.float32)


def _soft_predictor_class():
    """Ultralytics' segmentation predictor with the masks left soft, at the photo's size."""
    import torch
    from ultralytics.engine.results import Results
    from ultralytics.models.yolo.segment.predict import SegmentationPredictor
    from ultralytics.utils import ops

    class SoftMaskPredictor(SegmentationPredictor):
        def construct_result(self, pred, img, orig_img, img_path, proto):
            masks = None
            if pred.shape[0]:
                # Instance probabilities from the prototypes, cropped to each box (as Ultralytics
                # does), at the network's input size; then the letterbox is removed and they are
                # enlarged to the photo's size — without the 0.5 threshold.
                channels, proto_h, proto_w = proto.shape
                logits = pred[:, 6:] @ proto.float().view(channels, -1)
                soft = logits.sigmoid().view(-1, proto_h, proto_w)
                in_h, in_w = img.shape[2:]
                boxes = pred[:, :4].clone()
                boxes[:, [0, 2]] *= proto_w / in_w
                boxes[:, [1, 3]] *= proto_h / in_h
                soft = ops.crop_mask(soft, boxes)
                soft = torch.nn.functional.interpolate(
                    soft[None], (in_h, in_w), mode="bilinear", align_corners=False
                )
                masks = ops.scale_masks(soft, orig_img.shape[:2])[0].clamp_(0, 1)
            pred[:, :4] = ops.scale_boxes(img.shape[2:], pred[:, :4], orig_img.shape)
            return Results(
                orig_img, path=img_path, names=self.model.names, boxes=pred[:, :6], masks=masks
            )

    return SoftMaskPredictor


class YoloSegmenter(Segmenter):
    """YOLOv8-seg from Ultralytics (sizes n, s, m, l, x, or any -seg checkpoint)."""

    name: ClassVar[str] = "yolo"
    thread_safe: ClassVar[bool] = False
    mask_side = IMAGE_SIZE // 4

    def __init__(
        self,
        model: str = DEFAULT_SIZE,
        *,
        weights: Path | None = None,
        classes: Sequence[str] | None = None,
        confidence: float = DEFAULT_CONFIDENCE,
        device: str = DEFAULT_DEVICE,
        offline: bool = False,
    ) -> None:
        super().__init__()
        import_ultralytics()
        from ultralytics import YOLO

        try:
            self.device = torch_device(device)
        except DeviceError as exc:
            raise SegmenterError(str(exc)) from None
        if model in SIZES:
            try:
                path = resolve(weights_spec(model), weights, offline=offline)
            except WeightsError as exc:
                raise SegmenterError(str(exc)) from None
        else:  # a checkpoint path given to --yolo-model
            path = Path(weights or model).expanduser()
            if not path.is_file():
                raise SegmenterError(
                    f"{setting('yolo_model')} {model!r}: choose {', '.join(SIZES)} or a "
                    "path to a -seg checkpoint"
                )
        if path.suffix.lower() == ".onnx":  # an export says its task in its metadata
            task = onnx_metadata(path).get("task")
            if task not in (None, "segment"):
                raise SegmenterError(
                    f"{path} is a {task} model (its ONNX metadata says so); a -seg model is needed"
                )
        try:
            self.model = YOLO(str(path), task="segment")
        except Exception as exc:  # noqa: BLE001 - Ultralytics raises many types for bad files
            raise SegmenterError(
                f"{path} is not a YOLO -seg checkpoint Ultralytics can load: {first_line(exc)}"
            ) from None
        if self.model.task != "segment":
            raise SegmenterError(f"{path} is a {self.model.task} model; a -seg model is needed")
        self.names: dict[int, str] = dict(self.model.names)
        self.class_ids = self._select(classes)
        self.confidence = confidence
        self.half = self.device == "cuda"
        self._predictor = _soft_predictor_class()
        # The first prediction sets Ultralytics' predictor up, and its device selection sets
        # torch's CPU threads to cores − 1 (a training default): set up now, then undo that.
        import torch

        threads = torch.get_num_threads()
        try:
            self.instance_masks(np.zeros((64, 64, 3), np.uint8))
        except Exception as exc:  # noqa: BLE001 - whatever a model that loads but cannot run raises
            reason = f"{type(exc).__name__}: {first_line(exc)}"
            raise SegmenterError(f"{path} loads but cannot run: {reason}") from None
        finally:
            torch.set_num_threads(threads)

    def _select(self, classes: Sequence[str] | None) -> list[int] | None:
        if not classes:
            return None  # every class, as the original did
        by_name = {name: index for index, name in self.names.items()}
        unknown = [c for c in classes if c not in by_name]
        if unknown:
            raise SegmenterError(
                f"{setting('classes')}: unknown class {', '.join(map(repr, unknown))}; this model "
                f"knows {', '.join(by_name)}"
            )
        return [by_name[c] for c in classes]

    @classmethod
    def from_settings(cls, settings: SegmenterSettings) -> YoloSegmenter:
        return cls(
            settings["yolo_model"],
            weights=settings.weights,
            classes=settings.classes,
            confidence=settings["yolo_conf"],
            device=settings.device,
            offline=settings.offline,
        )

    def instance_masks(self, rgb: np.ndarray) -> np.ndarray:
        """Soft masks (``N×H×W`` float32) of the selected classes' instances, at ``rgb``'s size."""
        return self._instance_masks([rgb])[0]

    def _instance_masks(self, images: list[np.ndarray]) -> list[np.ndarray]:
        # Ultralytics letterboxes one photo, or a batch of one shape, to its own stride-padded
        # rectangle, but a batch of mixed shapes to the full square: a photo's mask would
        # depend on the photos batched with it. Each shape is a call of its own.
        by_shape: dict[tuple[int, ...], list[int]] = {}
        for index, rgb in enumerate(images):
            by_shape.setdefault(rgb.shape[:2], []).append(index)
        masks: list[np.ndarray] = [np.empty(0)] * len(images)
        for indices in by_shape.values():
            found = self._same_shape_masks([images[i] for i in indices])
            for index, instance_masks in zip(indices, found, strict=True):
                masks[index] = instance_masks
        return masks

    def _same_shape_masks(self, images: list[np.ndarray]) -> list[np.ndarray]:
        bgr = [cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR) for rgb in images]  # Ultralytics wants BGR
        results: Any = self.model.predict(  # Ultralytics types it loosely: Results each
            bgr,
            predictor=self._predictor,
            conf=self.confidence,
            classes=self.class_ids,
            imgsz=IMAGE_SIZE,
            device=self.device,
            quantize=16 if self.half else 32,
            batch=len(bgr),
            verbose=False,
        )
        masks = []
        for rgb, result in zip(images, results, strict=True):
            if result.masks is None:
                masks.append(np.zeros((0, *rgb.shape[:2]), np.float32))
            else:
                masks.append(result.masks.data.float().cpu().numpy())
        return masks

    def predict(self, rgb: np.ndarray) -> np.ndarray:
        return soft_union(self.instance_masks(rgb))

    def predict_batch(self, images: list[np.ndarray]) -> list[np.ndarray]:
        return [soft_union(masks) for masks in self._instance_masks(images)]


def _confidence(value: float) -> str | None:
    return None if 0 < value < 1 else "must be between 0 and 1"


BACKEND = Backend(
    name="yolo",
    alias="2",
    summary="Ultralytics YOLOv8-seg (80 COCO classes, every instance)",
    segmenter=YoloSegmenter,
    options=(
        BackendOption(
            "--yolo-model",
            DEFAULT_SIZE,
            metavar="n|s|m|l|x|PATH",
            help="YOLOv8-seg size, or a -seg checkpoint file",
            doc="YOLOv8-seg size, or any `-seg` checkpoint file (default `{default}`)",
        ),
        BackendOption(
            "--yolo-conf",
            DEFAULT_CONFIDENCE,
            type=float,
            metavar="0-1",
            check=_confidence,
            help="keep instances at least this confident",
            doc="YOLO: keep instances at least this confident (default {default})",
        ),
    ),
    devices=("cpu", "cuda", "mps"),
    classes=True,
    extra="torch",
    requires=("torch", "ultralytics"),
    weights={f"yolo-{s}": functools.partial(weights_spec, s) for s in SIZES},
    models=(
        ModelCard(
            "n, s, m, l, x (or a `-seg` checkpoint)",
            "`yolov8{n,s,m,l,x}-seg.pt` from Ultralytics' assets",
            "AGPL-3.0 (Ultralytics)",
            "`--weights FILE` or `--yolo-model PATH`, then `$BACKGROUNDSWAP_HOME/models/` (default "
            "`~/.cache/backgroundswap/models/`)",
        ),
    ),
)
