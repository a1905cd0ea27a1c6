"""The library's one-image API: numpy or PIL in, the same type out."""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar

import numpy as np
from PIL import Image

from operations.build import build_background, build_pipeline
from operations.options import Options, naming_flags
from operations.pipeline import GivenMask
from operations.segmenters.mediapipe import DEFAULT_MODEL as MP_DEFAULT
from operations.stages.background import Background

ImageLike = TypeVar("ImageLike", np.ndarray, Image.Image)
BackgroundLike = str | Path | np.ndarray | Image.Image | None
_DEFAULTS = Options()  # the API's defaults are the CLI's


def _as_rgb(image: np.ndarray | Image.Image) -> tuple[np.ndarray, np.ndarray | None]:
    if isinstance(image, Image.Image):
        alpha = None
        if image.mode in ("RGBA", "LA") or "transparency" in image.info:
            rgba = image.convert("RGBA")
            alpha = np.asarray(rgba.getchannel("A"), dtype=np.float32) / 255.0
        return np.asarray(image.convert("RGB")), alpha
    array = np.asarray(image)
    if array.dtype != np.uint8:
        raise ValueError(f"expected a uint8 image, got {array.dtype}")
    if array.ndim == 2:
        return np.repeat(array[..., None], 3, axis=2), None
    if array.ndim == 3 and array.shape[2] == 4:
        return np.ascontiguousarray(array[..., :3]), array[..., 3].astype(np.float32) / 255.0
    if array.ndim == 3 and array.shape[2] == 3:
        return array, None
    raise ValueError(f"expected an H×W, H×W×3 (RGB) or H×W×4 (RGBA) image, got {array.shape}")


def _as_alpha(mask: np.ndarray | Image.Image, shape: tuple[int, ...]) -> np.ndarray:
    """A caller's mask as the pipeline's alpha: ``H×W`` ``float32`` in [0, 1]."""
    if isinstance(mask, Image.Image):
        has_alpha = mask.mode in ("RGBA", "LA") or "transparency" in mask.info
        mask = np.asarray(mask.convert("RGBA").getchannel("A") if has_alpha else mask.convert("L"))
    array = np.asarray(mask)
    if array.shape != tuple(shape):
        raise ValueError(f"the mask is {array.shape}, the photo {tuple(shape)}: give it H×W")
    if array.dtype == np.uint8:
        return array.astype(np.float32) / 255.0
    return np.clip(array.astype(np.float32), 0.0, 1.0)


class BackgroundSwapper:
    """Replace photos' backgrounds one at a time, with the model loaded once.

    Args:
        background: an image file, an RGB array or a PIL image; ``None`` with ``blur=True``
            blurs each photo's own background (portrait mode).
        mode: segmentation backend name or the original ``--mode`` number.
        blur: blur the background layer.
        blur_strength: Gaussian sigma as a percentage of the photo's shorter side.
        fit: how the background is fitted to each photo: ``cover``, ``contain`` or ``stretch``.
        matting: edge refinement, ``fast``, ``quality`` or ``off``.
        mp_model: MediaPipe model, ``general`` or ``landscape``.
        device: ``auto``, ``cpu``, ``cuda`` or ``mps``.
        harmonize: move the subject's colour and light toward the background's, strength 0–1
            (``None``: off; the CLI's ``--harmonize`` alone is 0.5).
        light_wrap: let the background's light into the subject's edge, this many pixels wide
            (0: 1 % of the long side; ``None``: off).
        shadow: cast a soft drop shadow; ``shadow_offset`` (right, down), ``shadow_softness`` in
            percent of the long side, ``shadow_opacity`` 0–1.
        keep_shadow: keep the subject's own cast shadow from the photo instead (a multiply
            layer on the new background; on a transparent result, a dark layer in the alpha).
        keep_alpha: a photo with its own transparency keeps it as its mask.
        mask_threshold, mask_grow, mask_feather: the knobs on each mask (threshold 0–1, then
            grow in pixels, negative shrinks; after the edge stage, feather in pixels).

    Call it with ``mask=`` (an ``H×W`` array, 0–1 float or ``uint8``, or a PIL image, of the
    photo's shape) to use your own mask for that photo instead of the model's.

    Arrays are RGB (not OpenCV's BGR) ``uint8``; the result has the input's type.
    """

    def __init__(
        self,
        background: BackgroundLike = None,
        *,
        mode: str = _DEFAULTS.mode,
        blur: bool = False,
        blur_strength: float = _DEFAULTS.blur_strength,
        fit: str = _DEFAULTS.fit,
        matting: str = _DEFAULTS.matting,
        mp_model: str = MP_DEFAULT,
        device: str = _DEFAULTS.device,
        harmonize: float | None = None,
        light_wrap: int | None = None,
        shadow: bool = False,
        shadow_offset: tuple[float, float] = _DEFAULTS.shadow_offset,
        shadow_softness: float = _DEFAULTS.shadow_softness,
        shadow_opacity: float = _DEFAULTS.shadow_opacity,
        keep_shadow: bool = False,
        keep_alpha: bool = False,
        mask_threshold: float | None = None,
        mask_grow: int = 0,
        mask_feather: float = 0.0,
    ) -> None:
        fields: dict[str, Any] = {  # mp_model is the MediaPipe backend's own option
            "bg": Path(background) if isinstance(background, str | Path) else None,
            "mode": mode,
            "blur": blur or background is None,
            "blur_strength": blur_strength,
            "fit": fit,
            "matting": matting,
            "mp_model": mp_model,
            "device": device,
            "harmonize": harmonize,
            "light_wrap": light_wrap,
            "shadow": shadow,
            "shadow_offset": tuple(shadow_offset),
            "shadow_softness": shadow_softness,
            "shadow_opacity": shadow_opacity,
            "keep_shadow": keep_shadow,
            "keep_alpha": keep_alpha,
            "mask_threshold": mask_threshold,
            "mask_grow": mask_grow,
            "mask_feather": mask_feather,
        }
        options = Options(**fields).validated(batch=False)
        in_memory = None
        if background is not None and not isinstance(background, str | Path):
            in_memory = Background(np.ascontiguousarray(_as_rgb(background)[0]))
        recipe = options.recipe()
        with naming_flags():
            source = build_background(recipe, image=in_memory)
            self._pipeline = build_pipeline(recipe, background=source)

    def __call__(
        self, image: ImageLike, *, mask: np.ndarray | Image.Image | None = None
    ) -> ImageLike:
        rgb, alpha = _as_rgb(image)
        given = None
        if mask is not None:
            given = GivenMask(_as_alpha(mask, rgb.shape[:2]), max(rgb.shape[:2]), "given")
        result = self._pipeline.swap(rgb, alpha_in=alpha, given=given).image
        return Image.fromarray(result) if isinstance(image, Image.Image) else result

    def close(self) -> None:
        self._pipeline.close()

    def __enter__(self) -> BackgroundSwapper:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def swap_background(
    image: ImageLike, background: BackgroundLike = None, **settings: Any
) -> ImageLike:
    """Replace one photo's background. ``settings``: :class:`BackgroundSwapper`'s keywords
    (``mode``, ``blur``, ``fit``, ``matting``, ``harmonize`` …). Loads the model on every call:
    for many photos use :class:`BackgroundSwapper`, or :func:`operations.batch.run_batch` for a
    folder."""
    with BackgroundSwapper(background, **settings) as swapper:
        return swapper(image)
