"""The run's settings: one dataclass, validated once; every error names the option and its value."""

from __future__ import annotations

import os
import tempfile
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from operations.background import FIT_MODES
from operations.composite import DEFAULT_BLUR_STRENGTH
from operations.foreground import resolve_segmenter_name
from operations.images import DEFAULT_MAX_PIXELS, OUTPUT_FORMATS
from operations.matting import MATTING_METHODS

DEVICES = ("auto", "cpu", "cuda", "mps")
MP_MODELS = ("general", "landscape")
ENGINES = ("local", "ray")


class OptionsError(ValueError):
    """An invalid setting. ``str()`` is a one-line message naming the option and its value."""

    def __init__(self, option: str, value: object, reason: str):
        self.option, self.value, self.reason = option, value, reason
        shown = f" {str(value)!r}" if value is not None else ""
        super().__init__(f"{option}{shown}: {reason}")


def default_workers() -> int:
    """Threads that decode, composite and encode in parallel; the model takes one at a time."""
    # One more thread than cores: while one waits for the model, the cores stay busy.
    return min(8, (os.cpu_count() or 1) + 1)


@dataclass
class Options:
    """Every setting of a run. Paths may be ``None`` when the library is used image by image."""

    input: Path | None = None
    output: Path | None = None
    bg: Path | None = None
    mode: str = "mediapipe"
    prompt: str | None = None
    nst: bool = False
    blur: bool = False
    blur_strength: float = DEFAULT_BLUR_STRENGTH
    fit: str = "cover"
    matting: str = "fast"
    save_mask: bool = False
    save_cutout: bool = False
    format: str = "png"
    quality: int = 95
    overwrite: bool = False
    recursive: bool = False
    device: str = "auto"
    mp_model: str = "general"
    deeplab_model: str = "resnet101"
    yolo_model: str = "n"
    yolo_conf: float = 0.25
    classes: list[str] | None = None
    weights: Path | None = None
    offline: bool = False
    batch_size: int = 1
    nst_size: int = 384
    nst_steps: int = 60
    nst_optimizer: str = "lbfgs"
    nst_content_weight: float = 1e5
    nst_style_weight: float = 3e4
    nst_tv_weight: float = 1.0
    nst_weights: Path | None = None
    negative_prompt: str | None = None
    sd_model: str = "stable-diffusion-v1-5/stable-diffusion-v1-5"
    sd_size: int | None = None  # None: the model's native size
    seed: int = 0
    sd_steps: int = 30
    sd_guidance: float = 7.5
    bg_per_image: bool = False
    sd_attention_slicing: bool = False
    sd_cpu_offload: bool = False
    engine: str = "local"
    ray_address: str | None = None  # None: start a local Ray instance
    cpus_per_worker: float = 1.0
    gpus_per_worker: float = 0.0
    max_pixels: int = DEFAULT_MAX_PIXELS
    workers: int = field(default_factory=default_workers)
    summary: Path | None = None
    quiet: bool = False
    verbose: bool = False

    def to_dict(self) -> dict[str, object]:
        return {k: str(v) if isinstance(v, Path) else v for k, v in asdict(self).items()}

    def validated(self, *, batch: bool = True) -> Options:
        """Return a checked, normalised copy (``mode`` becomes the backend's name).

        Args:
            batch: also check what a batch run needs: the input and output folders, and a
                background source (the library's one-image API may pass an in-memory one).

        Raises:
            OptionsError: the first invalid setting.
        """
        try:
            mode = resolve_segmenter_name(self.mode)
        except ValueError as exc:
            raise OptionsError("--mode", self.mode, str(exc)) from None
        if self.prompt is not None:
            if not self.prompt.strip():
                raise OptionsError("--prompt", self.prompt, "is empty")
            if self.bg is not None:
                raise OptionsError("--prompt", self.prompt, "give --bg or --prompt, not both")
        if self.bg_per_image and self.prompt is None:
            raise OptionsError("--bg-per-image", None, "goes with --prompt")
        if self.sd_steps < 1:
            raise OptionsError("--steps", self.sd_steps, "must be at least 1")
        if self.sd_guidance < 0:
            raise OptionsError("--guidance", self.sd_guidance, "must not be negative")
        if self.sd_size is not None and not 64 <= self.sd_size <= 2048:
            raise OptionsError("--sd-size", self.sd_size, "must be between 64 and 2048 px")
        if self.nst and self.bg is None and self.prompt is None:
            raise OptionsError("--nst", None, "needs a style image: give --bg FILE or --prompt")
        if not 32 <= self.nst_size <= 4096:
            raise OptionsError("--nst-size", self.nst_size, "must be between 32 and 4096 px")
        if self.nst_steps < 1:
            raise OptionsError("--nst-steps", self.nst_steps, "must be at least 1")
        if self.nst_optimizer not in ("lbfgs", "adam"):
            raise OptionsError("--nst-optimizer", self.nst_optimizer, "choose from lbfgs, adam")
        for option, value in (("--nst-content-weight", self.nst_content_weight),
                              ("--nst-style-weight", self.nst_style_weight),
                              ("--nst-tv-weight", self.nst_tv_weight)):  # fmt: skip
            if value < 0:
                raise OptionsError(option, value, "must not be negative")
        if self.nst_weights is not None and not Path(self.nst_weights).is_file():
            raise OptionsError("--nst-weights", self.nst_weights, "no such file")
        if self.bg is not None:
            bg = Path(self.bg)
            if not bg.exists():
                raise OptionsError("--bg", bg, "no such file")
            if not bg.is_file():
                raise OptionsError("--bg", bg, "not a file")
        if not 0 < self.blur_strength <= 50:
            raise OptionsError(
                "--blur-strength", self.blur_strength, "must be > 0 and ≤ 50 (percent)"
            )
        choices = {
            "--fit": (self.fit, FIT_MODES),
            "--matting": (self.matting, MATTING_METHODS),
            "--format": (self.format, OUTPUT_FORMATS),
            "--device": (self.device, DEVICES),
            "--mp-model": (self.mp_model, MP_MODELS),
        }
        for option, (value, allowed) in choices.items():
            if value not in allowed:
                raise OptionsError(option, value, f"choose from {', '.join(allowed)}")
        if not 1 <= self.quality <= 100:
            raise OptionsError("--quality", self.quality, "must be between 1 and 100")
        if not 0 < self.yolo_conf < 1:
            raise OptionsError("--yolo-conf", self.yolo_conf, "must be between 0 and 1")
        if self.weights is not None and not Path(self.weights).is_file():
            raise OptionsError("--weights", self.weights, "no such file")
        if self.classes is not None and not [c for c in self.classes if c.strip()]:
            raise OptionsError("--classes", ",".join(self.classes), "give at least one class name")
        if self.max_pixels < 1:
            raise OptionsError("--max-pixels", self.max_pixels, "must be positive")
        if self.workers < 1:
            raise OptionsError("--workers", self.workers, "must be at least 1")
        if self.engine not in ENGINES:
            raise OptionsError("--engine", self.engine, f"choose from {', '.join(ENGINES)}")
        if self.cpus_per_worker <= 0:
            raise OptionsError("--cpus-per-worker", self.cpus_per_worker, "must be positive")
        if self.gpus_per_worker < 0:
            raise OptionsError("--gpus-per-worker", self.gpus_per_worker, "must not be negative")
        if self.batch_size < 1:
            raise OptionsError("--batch-size", self.batch_size, "must be at least 1")
        if self.quiet and self.verbose:
            raise OptionsError("--quiet", None, "cannot be combined with --verbose")
        if mode == "mediapipe" and self.device in ("cuda", "mps"):
            raise OptionsError(
                "--device",
                self.device,
                "the MediaPipe backend runs on the CPU only; use cpu or auto",
            )
        paths = {
            name: Path(value)
            for name in ("input", "output", "bg", "summary", "weights", "nst_weights")
            if (value := getattr(self, name)) is not None
        }
        # A batch gathers images from the worker threads: it needs as many of them.
        workers = max(self.workers, self.batch_size)
        checked = replace(self, mode=mode, workers=workers, **paths)
        if batch:
            checked._check_batch()
        return checked

    def _check_batch(self) -> None:
        if self.bg is None and self.prompt is None and not self.blur:
            raise OptionsError(
                "--bg", None, "nothing to put behind the subject: give --bg FILE, --prompt TEXT, "
                "or --blur alone to blur the photo's own background"
            )  # fmt: skip
        if self.input is None:
            raise OptionsError("--input", None, "is required")
        if self.output is None:
            raise OptionsError("--output", None, "is required")
        source, target = Path(self.input), Path(self.output)
        if not source.exists():
            raise OptionsError("--input", source, "no such folder")
        if not source.is_dir():
            raise OptionsError("--input", source, "not a folder")
        if target.resolve() == source.resolve():
            raise OptionsError(
                "--output", target, "is the input folder; choose another so no photo is overwritten"
            )
        if target.exists() and not target.is_dir():
            raise OptionsError("--output", target, "exists and is not a folder")
        try:
            target.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise OptionsError("--output", target, f"cannot create it: {exc.strerror}") from None
        try:  # a real write: os.access says yes to root and knows nothing of read-only mounts
            with tempfile.TemporaryFile(dir=target):
                pass
        except OSError as exc:
            raise OptionsError("--output", target, f"not writable: {exc.strerror}") from None
        if self.summary is not None:
            summary = Path(self.summary)
            if summary.is_dir():
                raise OptionsError("--summary", summary, "is a folder; give a file name")
            parent = summary.parent if str(summary.parent) else Path()
            if not parent.is_dir() or not os.access(parent, os.W_OK):
                raise OptionsError(
                    "--summary", summary, "its folder does not exist or is not writable"
                )
