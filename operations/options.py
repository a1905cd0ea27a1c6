"""The run's settings: one dataclass, validated once; every error names the option and its value.

Each default is a constant of the module that uses it (``encode.DEFAULT_QUALITY``,
``yolo.DEFAULT_CONFIDENCE``, :class:`StyleSettings`' fields…), read here; the command line takes
its defaults, choices and destinations from :class:`Options`, so each is typed in one place.
Validation only checks: the run creates what it needs (the output folder) once it starts.
"""

from __future__ import annotations

import importlib.util
import os
from dataclasses import asdict, dataclass, field, make_dataclass, replace
from pathlib import Path
from typing import Any

from operations import engines, temporal, video
from operations import text_to_image as sd
from operations.background import BG_MATCH, DEFAULT_FIT, FIT_MODES
from operations.blur import DEFAULT_BLUR_STRENGTH
from operations.decode import DEFAULT_MAX_PIXELS
from operations.encode import DEFAULT_FORMAT, DEFAULT_QUALITY, OUTPUT_FORMATS
from operations.errors import OptionsError
from operations.files import WRITABLE, find_inputs, is_video
from operations.matting import DEFAULT_METHOD as DEFAULT_MATTING
from operations.matting import MATTING_METHODS
from operations.models import DEFAULT_DEVICE, DEVICES
from operations.neural_style_transfer import OPTIMIZERS, StyleSettings
from operations.report import PAGE_NAME
from operations.segmenters import DEFAULT_SEGMENTER, backends, resolve_segmenter_name
from operations.segmenters.base import Backend
from operations.shadow import ShadowSettings

__all__ = ["Options", "OptionsError", "default_workers"]


_NST = (
    "nst_size",
    "nst_steps",
    "nst_optimizer",
    "nst_content_weight",
    "nst_style_weight",
    "nst_tv_weight",
)
_PROMPT = (
    "negative_prompt",
    "sd_model",
    "sd_size",
    "seed",
    "sd_steps",
    "sd_guidance",
    "sd_attention_slicing",
    "sd_cpu_offload",
)
_FLAGS = {"sd_steps": "--steps", "sd_guidance": "--guidance"}  # flags not named after the field


def _check_installed(option: str, value: str | None, extra: str, modules: tuple[str, ...]) -> None:
    """Stop at once, with the exact command, when an option's optional install is missing."""
    missing = [m for m in modules if importlib.util.find_spec(m) is None]
    if missing:
        raise OptionsError(
            option,
            value,
            f"needs {', '.join(missing)}, which "
            f"{'is' if len(missing) == 1 else 'are'} not installed: "
            f"pip install -r requirements-{extra}.txt "
            f"(or pip install 'backgroundswap[{extra}]')",
        )


def _check_folder_writable(option: str, path: Path) -> None:
    """A file the run will write: its folder must exist and be writable."""
    if not path.parent.is_dir() or not os.access(path.parent, os.W_OK):
        raise OptionsError(option, path, "its folder does not exist or is not writable")


def default_workers() -> int:
    """Threads that decode, composite and encode in parallel; the model takes one at a time."""
    # One more thread than cores: while one waits for the model, the cores stay busy.
    return min(8, (os.cpu_count() or 1) + 1)


@dataclass
class _Settings:
    """Every setting of a run. Paths may be ``None`` when the library is used image by image.

    The segmentation backends' own settings (``mp_model``, ``yolo_conf``…) are fields too,
    declared by their modules (:attr:`Backend.options`) and added by :data:`Options` below.
    """

    input: Path | None = None
    output: Path | None = None
    bg: Path | None = None
    mode: str = DEFAULT_SEGMENTER
    prompt: str | None = None
    nst: bool = False
    blur: bool = False
    blur_strength: float = DEFAULT_BLUR_STRENGTH
    fit: str = DEFAULT_FIT
    matting: str = DEFAULT_MATTING
    harmonize: float | None = None  # strength 0-1 (--harmonize alone: harmonize.DEFAULT_STRENGTH)
    light_wrap: int | None = None  # px; 0: light_wrap.DEFAULT_WIDTH of the photo's long side
    shadow: bool = False
    shadow_offset: tuple[float, float] = ShadowSettings.offset
    shadow_softness: float = ShadowSettings.softness
    shadow_opacity: float = ShadowSettings.opacity
    save_mask: bool = False
    save_cutout: bool = False
    temporal_smoothing: float = temporal.DEFAULT_STRENGTH  # videos: 0 turns it off
    video_codec: str = video.DEFAULT_VIDEO_CODEC
    video_quality: int = video.DEFAULT_VIDEO_QUALITY
    format: str = DEFAULT_FORMAT
    quality: int = DEFAULT_QUALITY
    overwrite: bool = False
    recursive: bool = False
    device: str = DEFAULT_DEVICE
    classes: list[str] | None = None
    weights: Path | None = None
    offline: bool = False
    batch_size: int = 1
    nst_size: int = StyleSettings.size
    nst_steps: int = StyleSettings.steps
    nst_optimizer: str = StyleSettings.optimizer
    nst_content_weight: float = StyleSettings.content_weight
    nst_style_weight: float = StyleSettings.style_weight
    nst_tv_weight: float = StyleSettings.tv_weight
    nst_weights: Path | None = None
    negative_prompt: str | None = None
    sd_model: str = sd.DEFAULT_MODEL
    sd_size: int | None = None  # None: the model's native size
    seed: int = sd.DEFAULT_SEED
    sd_steps: int = sd.DEFAULT_STEPS
    sd_guidance: float = sd.DEFAULT_GUIDANCE
    bg_per_image: bool = False
    bg_match: str = "cycle"  # with --bg DIR: "cycle" through it, or pair by "name"
    sd_attention_slicing: bool = False
    sd_cpu_offload: bool = False
    engine: str = engines.DEFAULT_ENGINE
    ray_address: str | None = None  # None: start a local Ray instance
    cpus_per_worker: float = 1.0
    gpus_per_worker: float = 0.0
    max_pixels: int = DEFAULT_MAX_PIXELS
    workers: int = field(default_factory=default_workers)
    summary: Path | None = None
    report: Path | bool | None = None  # True: report.html in the output folder
    quiet: bool = False
    verbose: bool = False

    def to_dict(self) -> dict[str, object]:
        return {k: str(v) if isinstance(v, Path) else v for k, v in asdict(self).items()}

    def shadow_settings(self) -> ShadowSettings:
        """The shadow these options ask for."""
        return ShadowSettings(tuple(self.shadow_offset), self.shadow_softness, self.shadow_opacity)

    def style_settings(self) -> StyleSettings:
        """The style-transfer settings these options ask for."""
        return StyleSettings(
            size=self.nst_size,
            steps=self.nst_steps,
            optimizer=self.nst_optimizer,
            content_weight=self.nst_content_weight,
            style_weight=self.nst_style_weight,
            tv_weight=self.nst_tv_weight,
        )

    def validated(self, *, batch: bool = True) -> Options:  # type: ignore[valid-type]
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
        for option, value in (
            ("--nst-content-weight", self.nst_content_weight),
            ("--nst-style-weight", self.nst_style_weight),
            ("--nst-tv-weight", self.nst_tv_weight),
        ):
            if value < 0:
                raise OptionsError(option, value, "must not be negative")
        if self.nst_weights is not None and not Path(self.nst_weights).is_file():
            raise OptionsError("--nst-weights", self.nst_weights, "no such file")
        if self.bg is not None:
            bg = Path(self.bg)
            if not bg.exists():
                raise OptionsError("--bg", bg, "no such file or folder")
            if bg.is_dir() and not find_inputs(bg):
                raise OptionsError("--bg", bg, "the folder holds no files")
            if not bg.is_file() and not bg.is_dir():
                raise OptionsError("--bg", bg, "not a file or a folder")
        if not 0 < self.blur_strength <= 50:
            raise OptionsError(
                "--blur-strength", self.blur_strength, "must be > 0 and ≤ 50 (percent)"
            )
        choices = {
            "--fit": (self.fit, FIT_MODES),
            "--matting": (self.matting, MATTING_METHODS),
            "--format": (self.format, OUTPUT_FORMATS),
            "--device": (self.device, DEVICES),
            "--nst-optimizer": (self.nst_optimizer, OPTIMIZERS),
            "--bg-match": (self.bg_match, BG_MATCH),
            "--engine": (self.engine, tuple(engines.ENGINES)),
            "--video-codec": (self.video_codec, tuple(video.VIDEO_CODECS)),
        }
        for option, (value, allowed) in choices.items():
            if value not in allowed:
                raise OptionsError(option, value, f"choose from {', '.join(allowed)}")
        if self.harmonize is not None and not 0 <= self.harmonize <= 1:
            raise OptionsError("--harmonize", self.harmonize, "must be between 0 and 1")
        if self.light_wrap is not None and not 0 <= self.light_wrap <= 1000:
            raise OptionsError(
                "--light-wrap", self.light_wrap, "must be between 0 (automatic) and 1000 px"
            )
        if len(self.shadow_offset) != 2 or any(abs(v) > 50 for v in self.shadow_offset):
            raise OptionsError(
                "--shadow-offset",
                ",".join(map(str, self.shadow_offset)),
                "give X,Y, each within ±50 (% of the long side)",
            )
        if not 0 <= self.shadow_softness <= 50:
            raise OptionsError("--shadow-softness", self.shadow_softness, "must be 0–50 (%)")
        if not 0 < self.shadow_opacity <= 1:
            raise OptionsError("--shadow-opacity", self.shadow_opacity, "must be > 0 and ≤ 1")
        if not 1 <= self.quality <= 100:
            raise OptionsError("--quality", self.quality, "must be between 1 and 100")
        if not 1 <= self.video_quality <= 100:
            raise OptionsError("--video-quality", self.video_quality, "must be between 1 and 100")
        if not 0 <= self.temporal_smoothing < 1:
            raise OptionsError(
                "--temporal-smoothing",
                self.temporal_smoothing,
                "must be at least 0 (off) and below 1",
            )
        if self.weights is not None and not Path(self.weights).is_file():
            raise OptionsError("--weights", self.weights, "no such file")
        if self.classes is not None and not [c for c in self.classes if c.strip()]:
            raise OptionsError("--classes", ",".join(self.classes), "give at least one class name")
        if self.max_pixels < 1:
            raise OptionsError("--max-pixels", self.max_pixels, "must be positive")
        if self.workers < 1:
            raise OptionsError("--workers", self.workers, "must be at least 1")
        if self.cpus_per_worker <= 0:
            raise OptionsError("--cpus-per-worker", self.cpus_per_worker, "must be positive")
        if self.gpus_per_worker < 0:
            raise OptionsError("--gpus-per-worker", self.gpus_per_worker, "must not be negative")
        if self.batch_size < 1:
            raise OptionsError("--batch-size", self.batch_size, "must be at least 1")
        if self.quiet and self.verbose:
            raise OptionsError("--quiet", None, "cannot be combined with --verbose")
        for name, backend in backends().items():
            self._check_backend(backend, chosen=name == mode)
        backend = backends()[mode]
        self._check_combinations(backend)
        if backend.extra is not None:
            _check_installed("--mode", mode, backend.extra, backend.requires)
        if self.nst:
            _check_installed("--nst", None, "torch", ("torch", "torchvision"))
        if self.prompt is not None:
            _check_installed("--prompt", None, "sd", ("torch", "diffusers", "transformers"))
        if self.engine == "ray":
            _check_installed("--engine", "ray", "ray", ("ray",))
        paths = {
            name: Path(value)
            for name in ("input", "output", "bg", "summary", "weights", "nst_weights", "report")
            if (value := getattr(self, name)) not in (None, True)
        }
        # A batch gathers images from the worker threads: it needs as many of them.
        workers = max(self.workers, self.batch_size)
        checked = replace(self, mode=mode, workers=workers, **paths)
        if batch:
            checked._check_batch()
            if checked.report is True:
                checked = replace(checked, report=checked.output_folder / PAGE_NAME)
        return checked

    def _check_combinations(self, backend: Backend) -> None:
        """An option that would be silently ignored is refused: it says what it goes with."""
        defaults = type(self)()
        image = self.bg is not None or self.prompt is not None
        lossy = (self.format in ("jpg", "webp", "same") and not self.output_file) or (
            self.output_file and Path(self.output).suffix.lower() in (".jpg", ".jpeg", ".webp")
        )
        rules = [
            (("blur_strength",), self.blur, "--blur"),
            (("bg_match",), self.bg is not None and Path(self.bg).is_dir(), "--bg DIR"),
            (("fit",), image and not self.nst, "--bg or --prompt (without --nst)"),
            (("harmonize", "shadow"), image, "a new background (--bg or --prompt)"),
            (("shadow_offset", "shadow_softness", "shadow_opacity"), self.shadow, "--shadow"),
            (("quality",), lossy, "JPEG or WebP output (--format, or -o FILE.jpg)"),
            (("format",), not self.output_file, "an output folder (-o FILE: its extension)"),
            ((*_NST, "nst_weights"), self.nst, "--nst"),
            (_PROMPT, self.prompt is not None, "--prompt"),
            (
                ("ray_address", "cpus_per_worker", "gpus_per_worker"),
                self.engine == "ray",
                "--engine ray",
            ),
            (
                ("workers",),
                self.engine == "local",
                "--engine local (Ray's workers are sized by --cpus-per-worker)",
            ),
            (("weights",), backend.weights != {}, f"a backend with weights, not {backend.name}"),
        ]
        for names, applies, goes_with in rules:
            for name in names:
                value = getattr(self, name)
                if not applies and value != getattr(defaults, name):
                    flag = _FLAGS.get(name, "--" + name.replace("_", "-"))
                    shown_value = None if isinstance(value, bool) else value  # a flag: its name
                    raise OptionsError(flag, shown_value, f"goes with {goes_with}")

    def _check_backend(self, backend: Backend, *, chosen: bool) -> None:
        """A backend's own settings, as it declares them; for the chosen one, what it can run
        with. Another backend's setting changed from its default would be silently ignored:
        refused instead."""
        for option in backend.options:
            value = getattr(self, option.field)
            if not chosen:
                if value != option.default:
                    raise OptionsError(option.flag, value, f"goes with --mode {backend.name}")
                continue
            if option.choices is not None and value not in option.choices:
                raise OptionsError(option.flag, value, f"choose from {', '.join(option.choices)}")
            reason = option.check(value) if option.check is not None else None
            if reason is not None:
                raise OptionsError(option.flag, value, reason)
        if not chosen:
            return
        if self.device != "auto" and self.device not in backend.devices:
            where = "the CPU" if backend.devices == ("cpu",) else ", ".join(backend.devices)
            use = " or ".join(backend.devices)
            reason = f"the {backend.name} backend runs on {where} only; use {use}, or auto"
            raise OptionsError("--device", self.device, reason)
        if self.classes is not None and not backend.classes:
            aware = " or ".join(b.name for b in backends().values() if b.classes)
            reason = f"the {backend.name} backend has no classes; they go with --mode {aware}"
            raise OptionsError("--classes", ",".join(self.classes), reason)

    @property
    def output_file(self) -> bool:
        """One photo in and ``--output`` names a file (``result.png``), not a folder."""
        if self.input is None or self.output is None or not Path(self.input).is_file():
            return False
        target = Path(self.output)
        return not target.is_dir() and target.suffix != ""

    @property
    def report_page(self) -> Path | None:
        """The review page to write, if any (``--report``)."""
        if not self.report:
            return None
        return self.output_folder / PAGE_NAME if self.report is True else Path(self.report)

    @property
    def output_folder(self) -> Path:
        """Where the outputs go: ``--output``, or the folder of ``--output FILE``."""
        assert self.output is not None
        target = Path(self.output)
        return target.parent if self.output_file else target

    def _check_batch(self) -> None:
        if self.bg is None and self.prompt is None and not self.blur:
            raise OptionsError(
                "--bg",
                None,
                "nothing to put behind the subject: give --bg FILE, --prompt TEXT, "
                "or --blur alone to blur the photo's own background",
            )
        if self.input is None:
            raise OptionsError("--input", None, "is required")
        if self.output is None:
            raise OptionsError("--output", None, "is required")
        source, target = Path(self.input), Path(self.output)
        if not source.exists() and not source.is_symlink():
            raise OptionsError("--input", source, "no such file or folder")
        if source.is_file():  # one photo in: one file out (-o FILE) or into a folder (-o DIR)
            if self.recursive:
                raise OptionsError("--recursive", None, "goes with a folder of photos")
            if target.exists() and target.resolve() == source.resolve():
                raise OptionsError("--output", target, "is the input photo; choose another name")
            if self.output_file and is_video(source):
                wanted = video.VIDEO_CODECS[self.video_codec].extension
                if target.suffix.lower() != wanted:
                    raise OptionsError(
                        "--output",
                        target,
                        f"a video comes out as {wanted} with "
                        f"--video-codec {self.video_codec}; name it so, or give "
                        "a folder",
                    )
            elif self.output_file and target.suffix.lower() not in WRITABLE:
                raise OptionsError(
                    "--output",
                    target,
                    "cannot write this kind of file; use "
                    f"{', '.join(sorted(set(WRITABLE)))}, or a folder",
                )
        elif not source.is_dir():
            raise OptionsError("--input", source, "not a photo or a folder")
        elif target.resolve() == source.resolve():
            raise OptionsError(
                "--output", target, "is the input folder; choose another so no photo is overwritten"
            )
        if not self.output_file and target.exists() and not target.is_dir():
            raise OptionsError("--output", target, "exists and is not a folder")
        if self.report not in (None, True, False):
            page = Path(self.report)
            if page.suffix.lower() not in (".html", ".htm"):
                raise OptionsError("--report", page, "name an .html file")
            # The output folder is created when the run starts; any other must exist.
            if page.parent.resolve() != self.output_folder.resolve():
                _check_folder_writable("--report", page)
        if self.summary is not None:
            summary = Path(self.summary)
            try:
                os.stat(summary)
            except FileNotFoundError:
                pass
            except OSError as exc:  # a name too long for the file system, say
                raise OptionsError("--summary", summary, str(exc.strerror)) from None
            if summary.is_dir():
                raise OptionsError("--summary", summary, "is a folder; give a file name")
            _check_folder_writable("--summary", summary)


# The run's settings class: the core settings above plus every registered backend's own,
# declared in the backend's module, so adding a backend touches no file but its own.
Options = make_dataclass(
    "Options",
    [(o.field, Any, field(default=o.default)) for b in backends().values() for o in b.options],
    bases=(_Settings,),
    namespace={"__doc__": _Settings.__doc__, "__module__": __name__},
)
