"""Masked neural style transfer (Gatys et al., 2016) of a photo's background.

The objective is the original tool's: content = the photo's VGG19 ``conv4_2`` features, style =
the Gram matrices of ``relu1_1 … relu5_1`` of the style image, plus total variation; weights
1e5 / 3e4 / 1 by default. What changed:

- **masked**: content and style losses count only the background (the subject's alpha, shrunk to
  each feature map), so the subject neither shapes nor receives the style; the final composite
  keeps the subject's pixels;
- **once per run**: VGG19 and the style image's Gram targets are computed once, for every photo;
- **fast**: a capped working size (``size``, long side), coarse to fine over a small pyramid,
  L-BFGS by default (Adam as an option), early stop when the loss stops improving; the result is
  enlarged to the photo's size (it only paints the background, which is then composited).

Losses are normalised so the weights do not depend on the image size: the content loss is the
mean squared feature difference over background positions; each layer's Gram matrix is divided by
channels × background positions, and the style loss is the mean squared Gram difference averaged
over the layers; total variation is the mean absolute difference of neighbouring pixels.
Optimisation is in fp32 on every device.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import cv2
import numpy as np

from operations.errors import BackgroundSwapError, require, setting
from operations.media.resize import shrink
from operations.models import (
    DEFAULT_DEVICE,
    DeviceError,
    WeightsError,
    load_state_dict,
    resolve,
    torch_device,
    torchvision_spec,
)

if TYPE_CHECKING:
    from collections.abc import Callable

    import torch

OPTIMIZERS = ("lbfgs", "adam")
STYLE_LAYERS = {"relu1_1": 1, "relu2_1": 6, "relu3_1": 11, "relu4_1": 20, "relu5_1": 29}
CONTENT_LAYER = ("conv4_2", 21)
LAST_LAYER = 29  # relu5_1: nothing after it is needed
MEAN = (0.485, 0.456, 0.406)  # ImageNet statistics, as the VGG19 weights expect
STD = (0.229, 0.224, 0.225)


class StyleTransferError(BackgroundSwapError, RuntimeError):
    """The style network could not be set up."""


@dataclass(frozen=True)
class StyleSettings:
    """Knobs of the optimisation; the defaults are the CLI's."""

    size: int = 384  # working long side: VGG's receptive field makes the style's scale a
    #                  function of it; 384 px keeps the brush strokes coarse on a photo and a
    #                  forward+backward pass under a second on a 2-core CPU
    steps: int = 60  # optimiser iterations at the finest level (half as many per coarser level)
    levels: int = 2  # pyramid levels: 192 px, then 384 px
    optimizer: str = "lbfgs"
    content_weight: float = 1e5
    style_weight: float = 3e4
    tv_weight: float = 1.0
    adam_lr: float = 0.02  # on [0, 1] pixels (the original's 10 was on [0, 255]: 0.04)
    tolerance: float = 1e-3  # stop when the loss improves by less than this fraction

    def __post_init__(self) -> None:
        require(32 <= self.size <= 4096, "size", self.size, "must be between 32 and 4096 px")
        require(self.steps >= 1, "steps", self.steps, "must be at least 1")
        require(self.levels >= 1, "levels", self.levels, "must be at least 1")
        for name in ("content_weight", "style_weight", "tv_weight"):
            require(getattr(self, name) >= 0, name, getattr(self, name), "must not be negative")
        optimizer, known = self.optimizer, OPTIMIZERS
        require(optimizer in known, "optimizer", optimizer, f"choose from {', '.join(known)}")


def load_vgg19_features(
    weights: Path | None = None, *, offline: bool = False, device: str = "cpu"
) -> torch.nn.Module:
    """VGG19's convolutional part up to ``relu5_1``, with torchvision's ImageNet weights.

    The weights file is torchvision's own (``vgg19-dcbb9e9d.pth``), resolved like every network's
    (``weights`` → ``TORCH_HOME`` → bounded download); only its ``features.*`` tensors are used.
    """
    import torch
    from torchvision.models import VGG19_Weights, vgg19

    try:
        spec = torchvision_spec(
            "vgg19",
            VGG19_Weights.IMAGENET1K_V1,
            option=setting("nst_weights"),
            download_name="vgg19",
        )
        path = resolve(spec, weights, offline=offline)
    except WeightsError as exc:
        raise StyleTransferError(str(exc)) from None
    try:
        state = load_state_dict(path, "a torchvision VGG19 state dict")
    except WeightsError as exc:
        raise StyleTransferError(str(exc)) from None
    features = vgg19(weights=None).features[: LAST_LAYER + 1]
    wanted = {
        name: tensor
        for key, tensor in state.items()
        if key.startswith("features.")
        and int((name := key[len("features.") :]).split(".")[0]) <= LAST_LAYER
    }
    try:
        features.load_state_dict(wanted)
    except RuntimeError as exc:
        first = str(exc).splitlines()[0]
        raise StyleTransferError(f"{path} is not a torchvision VGG19 checkpoint: {first}") from None
    for module in features:
        if isinstance(module, torch.nn.ReLU):
            module.inplace = False  # conv4_2's output is read before its ReLU
    features.requires_grad_(False)
    return features.eval().to(device)


def _working_size(height: int, width: int, side: int) -> tuple[int, int]:
    scale = side / max(height, width)
    return max(16, round(width * scale)), max(16, round(height * scale))


class StyleTransfer:
    """Restyles photos' backgrounds in one style image's style; built once per run."""

    def __init__(
        self,
        style_rgb: np.ndarray,
        settings: StyleSettings | None = None,
        *,
        weights: Path | None = None,
        offline: bool = False,
        device: str = DEFAULT_DEVICE,
        network: torch.nn.Module | None = None,
    ) -> None:
        import torch

        self.settings = settings or StyleSettings()  # checked when it was made
        try:
            self.device = torch.device(torch_device(device))
        except DeviceError as exc:
            raise StyleTransferError(str(exc)) from None
        self.network = (
            network
            if network is not None
            else load_vgg19_features(weights, offline=offline, device=str(self.device))
        )
        self.network = self.network.to(self.device).float().eval()
        self._mean = torch.tensor(MEAN, device=self.device).view(1, 3, 1, 1)
        self._std = torch.tensor(STD, device=self.device).view(1, 3, 1, 1)
        self._lock = threading.Lock()
        self.style_targets_computed = 0
        self.style_targets = self._style_targets(style_rgb)

    # --- features and losses -----------------------------------------------------------------

    def _tensor(self, rgb: np.ndarray) -> torch.Tensor:
        import torch

        array = torch.from_numpy(np.ascontiguousarray(rgb.transpose(2, 0, 1)))
        return (array.float() / 255.0).unsqueeze(0).to(self.device)

    def _features(self, image: torch.Tensor) -> dict[int, torch.Tensor]:
        wanted = {*STYLE_LAYERS.values(), CONTENT_LAYER[1]}
        x = (image - self._mean) / self._std
        out: dict[int, torch.Tensor] = {}
        for index, layer in enumerate(self.network.children()):
            x = layer(x)
            if index in wanted:
                out[index] = x
            if index >= LAST_LAYER:
                break
        return out

    @staticmethod
    def _gram(features: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        _, channels, height, width = features.shape
        flat = features.reshape(channels, height * width)
        if mask is None:
            return flat @ flat.T / (channels * height * width)
        weight = mask.reshape(1, height * width)
        positions = weight.sum().clamp_min(1.0)
        return (flat * weight) @ flat.T / (channels * positions)

    def _style_targets(self, style_rgb: np.ndarray) -> dict[int, torch.Tensor]:
        import torch

        width, height = _working_size(style_rgb.shape[0], style_rgb.shape[1], self.settings.size)
        style = (
            shrink(style_rgb, width, height)
            if style_rgb.shape[1] > width
            else cv2.resize(style_rgb, (width, height), interpolation=cv2.INTER_CUBIC)
        )
        self.style_targets_computed += 1
        with torch.no_grad():
            features = self._features(self._tensor(style))
            return {i: self._gram(features[i]) for i in STYLE_LAYERS.values()}

    @staticmethod
    def _mask_for(mask: torch.Tensor, features: torch.Tensor) -> torch.Tensor:
        import torch.nn.functional as F

        return F.adaptive_avg_pool2d(mask, (features.shape[-2], features.shape[-1]))

    def loss(
        self,
        image: torch.Tensor,
        content: dict[int, torch.Tensor],
        mask: torch.Tensor | None,
        targets: dict[int, torch.Tensor] | None = None,
    ) -> torch.Tensor:
        """The weighted objective for ``image`` (``1×3×h×w`` in [0, 1])."""
        settings = self.settings
        targets = targets if targets is not None else self.style_targets
        features = self._features(image)
        index = CONTENT_LAYER[1]
        difference = (features[index] - content[index]) ** 2
        if mask is None:
            content_loss = difference.mean()
        else:
            weight = self._mask_for(mask, difference)
            channels = difference.shape[1]
            content_loss = (difference * weight).sum() / (weight.sum().clamp_min(1.0) * channels)
        style_loss: Any = 0.0  # a tensor once the first layer's term is added
        for layer in STYLE_LAYERS.values():
            layer_mask = None if mask is None else self._mask_for(mask, features[layer])
            gram = self._gram(features[layer], layer_mask)
            style_loss = style_loss + ((gram - targets[layer]) ** 2).mean()
        style_loss = style_loss / len(STYLE_LAYERS)
        tv = (image[..., 1:, :] - image[..., :-1, :]).abs().mean() + (
            image[..., :, 1:] - image[..., :, :-1]
        ).abs().mean()
        return (
            settings.content_weight * content_loss
            + settings.style_weight * style_loss
            + settings.tv_weight * tv
        )

    # --- optimisation --------------------------------------------------------------------------

    def optimise(
        self,
        image: torch.Tensor,
        content: dict[int, torch.Tensor],
        mask: torch.Tensor | None,
        steps: int,
        progress: Any = None,
        targets: dict[int, torch.Tensor] | None = None,
    ) -> tuple[torch.Tensor, list[float]]:
        """Minimise the loss from ``image``; return the best image found and every step's loss."""
        import torch

        settings = self.settings
        x = image.detach().clone().requires_grad_(True)
        history: list[float] = []
        best: dict[str, Any] = {"loss": float("inf"), "image": image.detach()}

        def evaluate() -> torch.Tensor:
            optimiser.zero_grad()
            value = self.loss(x, content, mask, targets)
            value.backward()
            history.append(value.item())
            if history[-1] < best["loss"]:  # keep the best image seen, not merely the last
                best.update(loss=history[-1], image=x.detach().clamp(0.0, 1.0))
            if progress is not None:
                progress.update()
            return value

        # torch types a closure as returning a float; the optimisers take the loss tensor.
        closure = cast("Callable[[], float]", evaluate)
        if settings.optimizer == "lbfgs":
            optimiser: torch.optim.Optimizer = torch.optim.LBFGS(
                [x], lr=1.0, history_size=20, tolerance_change=0.0, line_search_fn="strong_wolfe"
            )
            # A step is one evaluation of the loss, for both optimisers. L-BFGS runs in chunks
            # of 10 (its memory carries over), with the pixels clamped to [0, 1] between chunks
            # and an early stop once a chunk no longer improves the loss.
            remaining = steps
            while remaining > 0:
                before = len(history)
                chunk = min(10, remaining)
                optimiser.param_groups[0].update(max_iter=chunk, max_eval=chunk)
                optimiser.step(closure)
                with torch.no_grad():
                    x.clamp_(0.0, 1.0)
                remaining -= len(history) - before
                if len(history) == before or self._converged(history, before):
                    break
        else:
            optimiser = torch.optim.Adam([x], lr=settings.adam_lr)
            for step in range(steps):
                optimiser.step(closure)
                with torch.no_grad():
                    x.clamp_(0.0, 1.0)
                if step >= 20 and self._converged(history, len(history) - 20):
                    break
        return best["image"], history

    def _converged(self, history: list[float], start: int) -> bool:
        if start <= 0 or start >= len(history):
            return False
        previous, now = history[start - 1], history[-1]
        return previous - now < self.settings.tolerance * abs(previous)

    def stylize(
        self, rgb: np.ndarray, alpha: np.ndarray | None = None, style_rgb: np.ndarray | None = None
    ) -> np.ndarray:
        """The photo's background repainted in the style, at the photo's size (``uint8``).

        Args:
            rgb: ``H×W×3`` ``uint8`` photo.
            alpha: ``H×W`` subject alpha; its background (``1 − α``) is what the losses see.
                ``None`` restyles the whole image.
            style_rgb: a style for this photo alone, instead of the run's (its Gram targets
                are computed now).
        """
        import torch
        from tqdm import tqdm

        settings = self.settings
        height, width = rgb.shape[:2]
        sizes = [
            _working_size(height, width, max(32, settings.size >> level))
            for level in reversed(range(settings.levels))
        ]
        steps = [max(5, settings.steps >> level) for level in reversed(range(settings.levels))]
        with (
            self._lock,
            tqdm(
                total=sum(steps), desc="style transfer", unit="step", leave=False, disable=None
            ) as bar,
        ):
            targets = None if style_rgb is None else self._style_targets(style_rgb)
            current: torch.Tensor | None = None
            for (w, h), level_steps in zip(sizes, steps, strict=True):
                photo = self._tensor(shrink(rgb, w, h) if width > w else cv2.resize(rgb, (w, h)))
                mask = None
                if alpha is not None:
                    background = 1.0 - cv2.resize(alpha, (w, h), interpolation=cv2.INTER_AREA)
                    mask = torch.from_numpy(background).to(self.device)[None, None].float()
                with torch.no_grad():
                    content = self._features(photo)
                start = (
                    photo
                    if current is None
                    else torch.nn.functional.interpolate(
                        current, (h, w), mode="bilinear", align_corners=False
                    )
                )
                current, _ = self.optimise(start, content, mask, level_steps, bar, targets)
        assert current is not None  # settings.levels ≥ 1
        result = current[0].permute(1, 2, 0).clamp(0, 1).mul(255).round().byte().cpu().numpy()
        return cv2.resize(result, (width, height), interpolation=cv2.INTER_CUBIC)
