"""Backgrounds generated from a text prompt with Stable Diffusion (diffusers).

Non-interactive (a token comes from ``HF_TOKEN`` or the Hugging Face login cache, never a prompt
on the terminal), reproducible (a fixed default seed), cached (each image is saved in the output
folder with its parameters and reused on a rerun), shaped like the photos (generated at their
aspect ratio, rounded to what the model accepts, capped at its native size, then fitted like any
background), and never waiting on the network without a bound.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
import urllib.error
import urllib.request
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, PngImagePlugin

from operations.errors import BackgroundSwapError, require, setting
from operations.media.decode import DEFAULT_MAX_PIXELS, decode
from operations.media.files import write_atomic
from operations.models import (
    DEFAULT_DEVICE,
    DEFAULT_TIMEOUT,
    DeviceError,
    download_command,
    offline_from_environment,
    torch_device,
)

log = logging.getLogger("backgroundswap")

DEFAULT_MODEL = "stable-diffusion-v1-5/stable-diffusion-v1-5"  # CreativeML OpenRAIL-M licence
# --around: an inpainting model paints everything but the subject (CreativeML OpenRAIL-M too).
DEFAULT_INPAINT_MODEL = "stable-diffusion-v1-5/stable-diffusion-inpainting"
DEFAULT_STRENGTH = 1.0  # --around: 1 paints the background anew; less keeps some of the photo's
INPAINT_CHANNELS = 9  # an inpainting UNet's input: latents 4, mask 1, the kept image's latents 4
# The subject kept by --around: its mask (α > 0.5) dilated by this share of the photo's long side
# (at least KEEP_MIN px), so the painting never reaches into the subject's own edge.
KEEP_DILATION, KEEP_MIN = 0.005, 3
DEFAULT_STEPS = 30
DEFAULT_GUIDANCE = 7.5
DEFAULT_SEED = 0
CACHE_FOLDER = "generated-backgrounds"  # inside the output folder


@dataclass(frozen=True)
class PromptSettings:
    """What generating backgrounds from a prompt reads."""

    prompt: str
    negative_prompt: str | None = None
    model: str = DEFAULT_MODEL  # a diffusers model id or a local pipeline folder
    size: int | None = None  # long side to generate at; None: the model's native size
    seed: int = DEFAULT_SEED
    steps: int = DEFAULT_STEPS
    guidance: float = DEFAULT_GUIDANCE
    per_image: bool = False  # one background per photo (seed + its index), not one per run
    around: bool = False  # paint the background around each photo's subject (inpainting)
    strength: float = DEFAULT_STRENGTH  # with around: how far from the photo the painting goes
    attention_slicing: bool = False
    cpu_offload: bool = False
    device: str = DEFAULT_DEVICE
    offline: bool = False

    def __post_init__(self) -> None:
        require(bool(self.prompt.strip()), "prompt", self.prompt, "is empty")
        require(self.steps >= 1, "steps", self.steps, "must be at least 1")
        require(self.guidance >= 0, "guidance", self.guidance, "must not be negative")
        size = self.size
        require(size is None or 64 <= size <= 2048, "size", size, "must be between 64 and 2048 px")
        require(0 < self.strength <= 1, "strength", self.strength, "must be > 0 and ≤ 1")


class GenerationError(BackgroundSwapError, RuntimeError):
    """The diffusion pipeline could not be loaded or run; the message says how to fix it."""


@dataclass(frozen=True)
class GenerationRequest:
    """Everything that determines a generated image (and so its cache key)."""

    prompt: str
    negative_prompt: str | None
    model: str
    seed: int
    steps: int
    guidance: float
    width: int
    height: int
    around: str | None = None  # painted around a subject: the photo's and mask's digest
    strength: float | None = None

    def parameters(self) -> dict[str, object]:
        """The request's fields, without the painting-around ones when it paints none (so a
        plain request's key and PNG text are what they were before those existed)."""
        fields = asdict(self)
        if self.around is None:
            del fields["around"], fields["strength"]
        return fields

    def key(self) -> str:
        text = json.dumps(self.parameters(), sort_keys=True)
        return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def generation_size(height: int, width: int, native: int, multiple: int = 8) -> tuple[int, int]:
    """(width, height) at the photo's aspect ratio: long side ``native``, multiples of ``multiple``.

    The model was trained at ``native`` px: larger repeats subjects, smaller loses detail. The
    short side follows the photo's aspect ratio, rounded to the model's size step.
    """
    scale = native / max(height, width)
    w = max(multiple, round(width * scale / multiple) * multiple)
    h = max(multiple, round(height * scale / multiple) * multiple)
    return min(w, native), min(h, native)


def hub_cache_dir() -> Path:
    """Where huggingface_hub caches models (``HF_HUB_CACHE`` / ``HF_HOME``)."""
    from huggingface_hub import constants

    return Path(constants.HF_HUB_CACHE)


def _bound_hub_waits(timeout: float) -> None:
    """Set huggingface_hub's own network waits to our bound (it reads them at import)."""
    os.environ.setdefault("HF_HUB_ETAG_TIMEOUT", str(int(timeout)))
    os.environ.setdefault("HF_HUB_DOWNLOAD_TIMEOUT", str(int(timeout)))


def _reachable(url: str, timeout: float) -> str | None:
    """None when ``url``'s server answers within ``timeout`` seconds, else the reason."""
    try:
        with urllib.request.urlopen(url, timeout=timeout):
            return None
    except urllib.error.HTTPError:
        return None  # it answered (401/404 are answers: from_pretrained reports them)
    except (TimeoutError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        return f"no answer within {timeout:g} s" if "timed out" in str(reason) else str(reason)


class BackgroundGenerator:
    """A diffusers text-to-image (or, with ``inpaint``, inpainting) pipeline, loaded once per
    run."""

    def __init__(
        self,
        model: str = DEFAULT_MODEL,
        *,
        device: str = DEFAULT_DEVICE,
        offline: bool = False,
        attention_slicing: bool = False,
        cpu_offload: bool = False,
        progress: bool = True,
        timeout: float = DEFAULT_TIMEOUT,
        inpaint: bool = False,
    ) -> None:
        import torch

        try:
            self.device = torch_device(device)
        except DeviceError as exc:
            raise GenerationError(str(exc)) from None
        # fp16 on CUDA halves memory and time; the CPU computes in fp32 (no CUDA autocast there).
        dtype = torch.float16 if self.device == "cuda" else torch.float32
        self.model = model
        self.pipeline = self._load(
            model, dtype, offline or offline_from_environment(), timeout, inpaint
        )
        if inpaint:
            channels = int(self.pipeline.unet.config.in_channels)
            if channels != INPAINT_CHANNELS:
                raise GenerationError(not_inpainting(model, channels))
        if attention_slicing:
            self.pipeline.enable_attention_slicing()
        if cpu_offload and self.device == "cuda":
            self.pipeline.enable_model_cpu_offload()
        else:
            self.pipeline.to(self.device)
        self.pipeline.set_progress_bar_config(
            disable=not progress, leave=False, desc="generating background"
        )
        self.native = int(self.pipeline.unet.config.sample_size) * int(
            getattr(self.pipeline, "vae_scale_factor", 8)
        )
        self.multiple = int(getattr(self.pipeline, "vae_scale_factor", 8))
        self._lock = threading.Lock()

    @staticmethod
    def _load(model: str, dtype: object, offline: bool, timeout: float, inpaint: bool) -> Any:
        _bound_hub_waits(timeout)
        import diffusers
        import transformers
        from diffusers import AutoPipelineForInpainting, AutoPipelineForText2Image

        kind = AutoPipelineForInpainting if inpaint else AutoPipelineForText2Image

        # Loading chatter (component bars, "accelerate" advice) is not for a batch tool's output.
        diffusers.utils.logging.set_verbosity_error()
        diffusers.utils.logging.disable_progress_bar()
        transformers.utils.logging.set_verbosity_error()
        transformers.utils.logging.disable_progress_bar()

        def load(local_only: bool) -> object:
            return kind.from_pretrained(
                model,
                dtype=dtype,
                local_files_only=local_only,
                safety_checker=None,
                requires_safety_checker=False,
            )

        fix = (
            f"fetch it ahead with `{download_command(f'sd --sd-model {model}')}` on a machine with "
            f"network access (it lands in {hub_cache_dir()}; set HF_HOME to move it), or give "
            f"{setting('sd_model')} a local pipeline folder"
        )
        try:
            return load(local_only=True)  # a local folder, or already in the hub cache
        except (OSError, ValueError) as exc:
            if Path(model).exists():
                raise GenerationError(
                    f"{setting('sd_model')} {model!r}: not a diffusers pipeline: {exc}"
                ) from None
            if offline:
                raise GenerationError(
                    f"Stable Diffusion model {model!r} is not cached ({hub_cache_dir()}) and "
                    f"downloads are off ({setting('offline')} or HF_HUB_OFFLINE): {fix}"
                ) from None
        problem = _reachable(f"https://huggingface.co/api/models/{model}", timeout)
        if problem is not None:
            raise GenerationError(
                f"Stable Diffusion model {model!r} is not cached ({hub_cache_dir()}) and "
                f"huggingface.co cannot be reached ({problem}): {fix}"
            )
        try:
            return load(local_only=False)
        except Exception as exc:  # noqa: BLE001 - hub errors come in many types
            raise GenerationError(f"could not download {model!r}: {exc}. To fix: {fix}") from None

    def generate(self, request: GenerationRequest) -> np.ndarray:
        """One image for the request (``height×width×3`` ``uint8`` RGB), deterministic per seed."""
        return self._run(request)

    def paint_around(
        self, request: GenerationRequest, rgb: np.ndarray, paint: np.ndarray
    ) -> np.ndarray:
        """Everything of ``rgb`` where ``paint`` is set, painted anew from the request's prompt
        (``rgb`` and ``paint`` at the request's size; ``uint8`` RGB out, the same size)."""
        return self._run(
            request,
            image=Image.fromarray(rgb),
            mask_image=Image.fromarray(paint.astype(np.uint8) * 255),
            strength=request.strength,
        )

    def _run(self, request: GenerationRequest, **inputs: object) -> np.ndarray:
        import torch

        generator = torch.Generator(device="cpu").manual_seed(request.seed)
        with self._lock:
            image = self.pipeline(
                prompt=request.prompt,
                negative_prompt=request.negative_prompt,
                width=request.width,
                height=request.height,
                num_inference_steps=request.steps,
                guidance_scale=request.guidance,
                generator=generator,
                output_type="np",
                **inputs,
            ).images[0]
        return np.clip(np.rint(image * 255.0), 0, 255).astype(np.uint8)


def not_inpainting(model: str, channels: int) -> str:
    """Why a model cannot paint around a subject, and the fix."""
    return (
        f"{setting('sd_model')} {model!r}: a text-to-image model, not an inpainting one (its UNet "
        f"takes {channels} channels, not {INPAINT_CHANNELS}): {setting('around')} needs an "
        f"inpainting model, such as {DEFAULT_INPAINT_MODEL} (the default) or an SDXL inpainting "
        f"one; or drop {setting('around')}"
    )


def model_in_channels(model: str) -> int | None:
    """The UNet's input channels from a local or cached pipeline's config (``None``: unknown
    without loading it)."""
    config = _config(model, "unet")
    try:
        return int(config["in_channels"]) if config else None
    except (KeyError, TypeError, ValueError):
        return None


def keep_mask(alpha: np.ndarray) -> np.ndarray:
    """The subject kept by ``--around``: ``α > 0.5``, dilated a little (``H×W`` ``bool``)."""
    import cv2

    height, width = alpha.shape
    radius = max(KEEP_MIN, round(KEEP_DILATION * max(height, width)))
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))
    return cv2.dilate((alpha > 0.5).astype(np.uint8), kernel) > 0


def save_generated(path: Path, rgb: np.ndarray, request: GenerationRequest) -> None:
    """Save a generated background as PNG with its parameters in text chunks."""
    info = PngImagePlugin.PngInfo()
    for key, value in request.parameters().items():
        info.add_text(key, "" if value is None else str(value))
    image = Image.fromarray(rgb)
    write_atomic(path, lambda f: image.save(f, format="PNG", pnginfo=info))


def fetch_pipeline(model: str, *, timeout: float = DEFAULT_TIMEOUT) -> Path:
    """Download a diffusers pipeline into the Hugging Face cache (``download sd``)."""
    problem = _reachable(f"https://huggingface.co/api/models/{model}", timeout)
    if problem is not None:
        raise GenerationError(f"huggingface.co cannot be reached ({problem})")
    _bound_hub_waits(timeout)
    from diffusers import DiffusionPipeline

    try:
        return Path(DiffusionPipeline.download(model))
    except Exception as exc:  # noqa: BLE001 - hub errors come in many types
        raise GenerationError(f"could not download {model!r}: {exc}") from None


class PromptBackgrounds:
    """Backgrounds from a prompt: cached in the output folder, generated only when missing.

    The diffusion pipeline is loaded on first need, so a rerun whose backgrounds are all cached
    never loads (or downloads) it.
    """

    def __init__(self, settings: PromptSettings, folder: Path, *, progress: bool = True) -> None:
        self.settings = settings
        self.folder = folder
        self.progress = progress
        self._generator: BackgroundGenerator | None = None
        self._lock = threading.Lock()
        self.native: int | None = None

    def _pipeline(self) -> BackgroundGenerator:
        with self._lock:
            if self._generator is None:
                o = self.settings
                self._generator = BackgroundGenerator(
                    o.model,
                    device=o.device,
                    offline=o.offline,
                    attention_slicing=o.attention_slicing,
                    cpu_offload=o.cpu_offload,
                    progress=self.progress,
                    inpaint=o.around,
                )
                if self._generator.device == "cpu":
                    log.warning(
                        "generating backgrounds on the CPU: minutes per image at the model's "
                        "native size (a GPU takes seconds); --device cuda uses one"
                    )
            return self._generator

    def ensure_ready(self) -> None:
        """Load the diffusion pipeline now (raising :class:`GenerationError` if it cannot be)."""
        self._pipeline()

    def request(self, height: int, width: int, seed: int) -> GenerationRequest:
        o = self.settings
        native = o.size or self._native()
        gen_w, gen_h = generation_size(height, width, native)
        return GenerationRequest(
            o.prompt,
            o.negative_prompt,
            o.model,
            seed,
            o.steps,
            o.guidance,
            gen_w,
            gen_h,
        )

    def _native(self) -> int:
        """The model's native size, read from its config without loading its weights."""
        if self.native is None:
            self.native = model_native_size(self.settings.model)
            if self.native is None:  # config not readable without the pipeline: load it
                self.native = self._pipeline().native
        return self.native

    def around(self, rgb: np.ndarray, keep: np.ndarray, seed: int) -> tuple[np.ndarray, Path]:
        """The photo's background painted around its subject (``keep``), at the photo's size:
        cached, or generated now at the model's native size and the photo's aspect ratio."""
        import cv2

        from operations.media.resize import shrink

        height, width = keep.shape
        size = self.request(height, width, seed)
        digest = hashlib.sha256(rgb.tobytes() + np.packbits(keep).tobytes())
        digest.update(f"{height}x{width}".encode())
        request = GenerationRequest(
            **{
                **asdict(size),
                "around": digest.hexdigest()[:16],
                "strength": self.settings.strength,
            }
        )
        path = self.folder / CACHE_FOLDER / f"bg-{request.key()}.png"
        if path.is_file():
            return decode(path, max_pixels=DEFAULT_MAX_PIXELS).rgb, path
        small = shrink(rgb, request.width, request.height)
        paint = cv2.resize(
            (~keep).astype(np.uint8), (request.width, request.height), interpolation=cv2.INTER_AREA
        )
        painted = self._pipeline().paint_around(request, small, paint > 0)
        background = cv2.resize(painted, (width, height), interpolation=cv2.INTER_CUBIC)
        save_generated(path, background, request)
        return background, path

    def get(self, height: int, width: int, seed: int) -> tuple[np.ndarray, Path]:
        """The background for a photo of this size and this seed: cached, or generated now."""
        request = self.request(height, width, seed)
        path = self.folder / CACHE_FOLDER / f"bg-{request.key()}.png"
        if path.is_file():
            return decode(path, max_pixels=DEFAULT_MAX_PIXELS).rgb, path
        rgb = self._pipeline().generate(request)
        save_generated(path, rgb, request)
        return rgb, path


def _config(model: str, component: str) -> dict | None:
    """A pipeline component's ``config.json``, from a local folder or the hub cache."""
    try:
        from huggingface_hub import try_to_load_from_cache

        local = Path(model) / component / "config.json"
        if local.is_file():
            return json.loads(local.read_text())
        cached = try_to_load_from_cache(model, f"{component}/config.json")
        return json.loads(Path(cached).read_text()) if isinstance(cached, str) else None
    except (ImportError, OSError, ValueError):  # no huggingface_hub (the sd extra): unknown
        return None


def model_native_size(model: str) -> int | None:
    """``sample_size × 2^(len(vae blocks) − 1)`` from a local or cached pipeline's configs."""
    unet, vae = _config(model, "unet"), _config(model, "vae")
    if not unet or not vae:
        return None
    try:
        return int(unet["sample_size"]) * 2 ** (len(vae["block_out_channels"]) - 1)
    except (KeyError, TypeError, ValueError):
        return None
