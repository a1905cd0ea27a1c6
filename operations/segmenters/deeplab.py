"""torchvision DeepLabv3: semantic segmentation of the 20 PASCAL VOC classes (people, animals,
vehicles, furniture…), so subjects other than people can be cut out.

Preprocessing and category names come from torchvision's weights enum, as torchvision's own
inference transform does it: RGB, shorter side resized to 520 px, ImageNet normalisation. The soft
alpha is the summed softmax probability of the selected classes, enlarged to the photo's size.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import cv2
import numpy as np

from operations.errors import setting
from operations.media.resize import shrink
from operations.models import (
    DEFAULT_DEVICE,
    DeviceError,
    WeightsError,
    WeightsSpec,
    load_state_dict,
    resolve,
    torch_device,
    torchvision_spec,
)
from operations.segmenters.base import Backend, BackendOption, ModelCard, Segmenter, SegmenterError

if TYPE_CHECKING:
    import torch

    from operations.segmenters.base import SegmenterSettings

# --deeplab-model → (torchvision builder, weights enum)
VARIANTS: dict[str, tuple[str, str]] = {
    "resnet101": ("deeplabv3_resnet101", "DeepLabV3_ResNet101_Weights"),
    "resnet50": ("deeplabv3_resnet50", "DeepLabV3_ResNet50_Weights"),
    "mobilenet_v3_large": ("deeplabv3_mobilenet_v3_large", "DeepLabV3_MobileNet_V3_Large_Weights"),
}
DEFAULT_VARIANT = "resnet101"  # the original tool's choice


def weights_entry(variant: str) -> Any:
    """The torchvision weights enum's default entry for a variant."""
    from torchvision.models import segmentation

    return getattr(segmentation, VARIANTS[variant][1]).DEFAULT


def select_classes(requested: Sequence[str] | None, categories: list[str]) -> list[int]:
    """Indices of the requested class names; every non-background class by default.

    Raises:
        SegmenterError: an unknown name, with the list of valid names.
    """
    valid = [c for c in categories if c != "__background__"]
    if not requested:
        return [i for i, c in enumerate(categories) if c != "__background__"]
    unknown = [name for name in requested if name not in valid]
    if unknown:
        raise SegmenterError(
            f"{setting('classes')}: unknown class {', '.join(map(repr, unknown))}; this model "
            f"knows {', '.join(valid)}"
        )
    return [categories.index(name) for name in requested]


class DeepLabSegmenter(Segmenter):
    """DeepLabv3 (ResNet-101, ResNet-50 or MobileNetV3-Large) from torchvision."""

    name: ClassVar[str] = "deeplab"
    thread_safe: ClassVar[bool] = False
    mask_side = 520

    def __init__(
        self,
        variant: str = DEFAULT_VARIANT,
        *,
        weights: Path | None = None,
        classes: Sequence[str] | None = None,
        device: str = DEFAULT_DEVICE,
        offline: bool = False,
        model: torch.nn.Module | None = None,
    ) -> None:
        super().__init__()
        import torch
        from torchvision.models import segmentation

        if variant not in VARIANTS:
            raise SegmenterError(
                f"{setting('deeplab_model')} {variant!r}: choose from {', '.join(VARIANTS)}"
            )
        entry = weights_entry(variant)
        self.categories: list[str] = list(entry.meta["categories"])
        self.class_indices = select_classes(classes, self.categories)
        transform = entry.transforms()
        self.resize = int(transform.resize_size[0])
        self.mean = np.array(transform.mean, np.float32) * 255.0
        self.std = np.array(transform.std, np.float32) * 255.0
        try:
            self.device = torch.device(torch_device(device))
        except DeviceError as exc:
            raise SegmenterError(str(exc)) from None
        if model is None:
            builder = getattr(segmentation, VARIANTS[variant][0])
            try:
                path = resolve(_weights(variant), weights, offline=offline)
            except WeightsError as exc:
                raise SegmenterError(str(exc)) from None
            what = f"a DeepLabv3 {variant} state dict"
            try:
                state = load_state_dict(path, what)
            except WeightsError as exc:
                raise SegmenterError(str(exc)) from None
            aux = any(key.startswith("aux_classifier.") for key in state)
            model = builder(
                weights=None, weights_backbone=None, num_classes=len(self.categories), aux_loss=aux
            )
            try:
                model.load_state_dict(state)
            except RuntimeError as exc:
                first = str(exc).splitlines()[0]
                raise SegmenterError(f"{path} is not {what}: {first}") from None
        self.model = model.eval().to(self.device)
        # Half precision on CUDA: convolutions and softmax are safe in fp16 there; the CPU stays
        # in fp32 (fp16 convolutions on the CPU are slow or unsupported).
        self.half = self.device.type == "cuda"
        if self.half:
            self.model.half()

    @classmethod
    def from_settings(cls, settings: SegmenterSettings) -> DeepLabSegmenter:
        return cls(
            settings["deeplab_model"],
            weights=settings.weights,
            classes=settings.classes,
            device=settings.device,
            offline=settings.offline,
        )

    def _tensor(self, rgb: np.ndarray) -> torch.Tensor:
        import torch

        height, width = rgb.shape[:2]
        scale = self.resize / min(height, width)
        size = (max(1, round(width * scale)), max(1, round(height * scale)))
        if scale < 1:
            small = shrink(rgb, *size)
        else:
            small = cv2.resize(rgb, size, interpolation=cv2.INTER_LINEAR)
        normalised = (small.astype(np.float32) - self.mean) / self.std
        tensor = torch.from_numpy(normalised.transpose(2, 0, 1)).unsqueeze(0)
        return tensor.to(self.device, dtype=torch.float16 if self.half else torch.float32)

    def _probabilities(self, batch: torch.Tensor) -> np.ndarray:
        """The selected classes' summed softmax probability (``N×h×w``), network resolution."""
        import torch

        with torch.inference_mode():
            logits = self.model(batch)["out"].float()
            probs = torch.softmax(logits, dim=1)[:, self.class_indices].sum(dim=1)
            return probs.clamp_(0.0, 1.0).cpu().numpy().astype(np.float32)

    def predict(self, rgb: np.ndarray) -> np.ndarray:
        return self.predict_batch([rgb])[0]

    def predict_batch(self, images: list[np.ndarray]) -> list[np.ndarray]:
        """One network call per group of images that share a size (a camera's batch usually)."""
        import torch

        tensors = [self._tensor(rgb) for rgb in images]
        results: list[np.ndarray | None] = [None] * len(images)
        groups: dict[tuple[int, ...], list[int]] = {}
        for index, tensor in enumerate(tensors):
            groups.setdefault(tuple(tensor.shape), []).append(index)
        for indices in groups.values():
            probs = self._probabilities(torch.cat([tensors[i] for i in indices]))
            for i, prob in zip(indices, probs, strict=True):
                height, width = images[i].shape[:2]
                results[i] = cv2.resize(prob, (width, height), interpolation=cv2.INTER_LINEAR)
        return results  # type: ignore[return-value]


def _weights(variant: str) -> WeightsSpec:
    return torchvision_spec(
        VARIANTS[variant][0], weights_entry(variant), download_name=f"deeplab-{variant}"
    )


BACKEND = Backend(
    name="deeplab",
    alias="1",
    summary="torchvision DeepLabv3 (20 VOC classes: people, animals, vehicles…)",
    segmenter=DeepLabSegmenter,
    options=(
        BackendOption(
            "--deeplab-model",
            DEFAULT_VARIANT,
            choices=tuple(VARIANTS),
            help="DeepLabv3 backbone",
            doc="DeepLabv3 backbone (default `{default}`, the original tool's)",
        ),
    ),
    devices=("cpu", "cuda", "mps"),
    classes=True,
    extra="torch",
    requires=("torch", "torchvision"),
    weights={f"deeplab-{v}": functools.partial(_weights, v) for v in VARIANTS},
    models=(
        ModelCard(
            "resnet101, resnet50, mobilenet_v3_large",
            "torchvision's `COCO_WITH_VOC_LABELS_V1` (`deeplabv3_resnet101_coco-586e9e4e.pth`, …)",
            "BSD-3-Clause (torchvision)",
            "`--weights FILE`, then `$TORCH_HOME/hub/checkpoints/` "
            "(default `~/.cache/torch/hub/checkpoints/`)",
        ),
    ),
)
