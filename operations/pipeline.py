"""The per-image pipeline and the batch loop.

:class:`Pipeline` holds what is built once per run (segmenter, background) and offers a pure
per-image step, :meth:`Pipeline.swap`, plus its file-to-file form, :meth:`Pipeline.process_file`.
:func:`run_batch` streams a folder through it: a few threads decode, composite and encode in
parallel while the model segments one image at a time, with a bounded number of images in flight.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import cv2
import numpy as np

from operations import __version__
from operations.background import Background
from operations.composite import blur_behind_subject, blur_sigma, composite, gaussian_blur
from operations.foreground import Segmenter, create_segmenter
from operations.images import (
    EncodeSettings,
    ImageError,
    allow_pixels,
    decode,
    encode,
    find_inputs,
    plan_outputs,
    write_atomic,
)
from operations.matting import Matte, refine
from operations.matting import warm_up as warm_up_matting
from operations.options import Options, OptionsError

if TYPE_CHECKING:
    from operations.neural_style_transfer import StyleTransfer
    from operations.text_to_image import PromptBackgrounds

log = logging.getLogger("backgroundswap")

MASK_SUFFIX = ".mask.png"
CUTOUT_SUFFIX = ".cutout.png"
# An alpha whose strongest pixel is below this found no subject: say so instead of failing.
NO_SUBJECT_ALPHA = 0.05

Status = Literal["ok", "skipped", "failed"]


@dataclass
class SwapResult:
    """One image's result: the composite, and the matte it was made with."""

    image: np.ndarray  # H×W×3 uint8
    matte: Matte
    warnings: list[str] = field(default_factory=list)

    @property
    def alpha(self) -> np.ndarray:
        return self.matte.alpha

    def cutout(self) -> np.ndarray:
        """The subject as ``H×W×4`` RGBA ``uint8`` (straight alpha, decontaminated colours)."""
        alpha8 = np.clip(self.alpha * 255.0 + 0.5, 0, 255).astype(np.uint8)
        return np.dstack([self.matte.foreground, alpha8])


@dataclass(frozen=True)
class Job:
    """One input file and the files it produces (main output first)."""

    source: Path
    relative: Path
    outputs: tuple[Path, ...]
    index: int = 0  # position in the sorted input list (per-image seeds count from it)

    @property
    def output(self) -> Path:
        return self.outputs[0]


@dataclass
class FileResult:
    input: str
    output: str | None
    status: Status
    seconds: float = 0.0
    error: str | None = None
    warnings: list[str] = field(default_factory=list)
    extra: dict[str, object] = field(default_factory=dict)  # e.g. a generated background, seed


@dataclass
class BatchResult:
    files: list[FileResult]
    seconds: float
    interrupted: bool = False
    background: dict[str, object] | None = None  # the generated background shared by the run

    def count(self, status: Status) -> int:
        return sum(1 for f in self.files if f.status == status)

    @property
    def exit_code(self) -> int:
        """0: every file done (now or before); 1: any failed; 130: interrupted."""
        if self.interrupted:
            return 130
        return 1 if self.count("failed") else 0

    def summary_line(self) -> str:
        done = self.count("ok")
        rate = f" ({done / self.seconds:.2f} images/s)" if done and self.seconds > 0 else ""
        return (
            f"{done} written, {self.count('skipped')} skipped (output exists), "
            f"{self.count('failed')} failed in {self.seconds:.1f} s{rate}"
        )


class Pipeline:
    """Everything that is the same for every image, built once; then one image at a time."""

    def __init__(
        self,
        options: Options,
        *,
        segmenter: Segmenter | None = None,
        background: Background | None = None,
    ) -> None:
        self.options = options
        if background is None and options.bg is not None:
            try:
                background = Background.from_file(Path(options.bg), max_pixels=options.max_pixels)
            except ImageError as exc:
                raise OptionsError("--bg", options.bg, str(exc)) from None
        self.background: Background | None = None
        self.style: StyleTransfer | None = None
        self._style_lock = threading.Lock()
        self.prompted: PromptBackgrounds | None = None
        if options.prompt is not None and background is None:
            from operations.text_to_image import PromptBackgrounds

            folder = Path(options.output) if options.output is not None else Path.cwd()
            self.prompted = PromptBackgrounds(options, folder, progress=not options.quiet)
        elif options.nst and background is None:
            raise OptionsError("--nst", None, "needs a style image: give --bg FILE or --prompt")
        self.segmenter = segmenter if segmenter is not None else create_segmenter(options)
        if options.matting != "off":
            warm_up_matting()
        if background is not None:
            self.set_background(background)
        self.encode_settings = EncodeSettings(quality=options.quality)

    def set_background(self, background: Background) -> None:
        """Use ``background`` for every photo (with ``--nst``, as the style image)."""
        self.background = background
        if self.options.nst:
            self._style_network(background.rgb)

    def _style_network(self, style_rgb: np.ndarray) -> StyleTransfer:
        """The style-transfer network, built once; its first style's Gram targets with it."""
        with self._style_lock:
            if self.style is None:
                from operations.neural_style_transfer import StyleSettings, StyleTransfer

                o = self.options
                settings = StyleSettings(size=o.nst_size, steps=o.nst_steps,
                                         optimizer=o.nst_optimizer,
                                         content_weight=o.nst_content_weight,
                                         style_weight=o.nst_style_weight,
                                         tv_weight=o.nst_tv_weight)  # fmt: skip
                self.style = StyleTransfer(style_rgb, settings, weights=o.nst_weights,
                                           offline=o.offline, device=o.device)  # fmt: skip
            return self.style

    def close(self) -> None:
        self.segmenter.close()

    def __enter__(self) -> Pipeline:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _background_for(
        self,
        rgb: np.ndarray,
        matte: Matte,
        icc_profile: bytes | None,
        background: Background | None,
    ) -> np.ndarray:
        height, width = rgb.shape[:2]
        sigma = blur_sigma(height, width, self.options.blur_strength) if self.options.blur else 0.0
        if self.options.nst and background is not None:  # own background, repainted in the style
            network = self._style_network(background.rgb)
            style = None if background is self.background else background.rgb
            styled = network.stylize(rgb, matte.alpha, style_rgb=style)
            return gaussian_blur(styled, sigma) if sigma else styled
        if background is None:  # portrait mode: the photo's own background, blurred
            return blur_behind_subject(rgb, matte.alpha, sigma)
        fitted = background.fitted(width, height, self.options.fit, icc_profile)
        return gaussian_blur(fitted, sigma) if sigma else fitted

    def swap(
        self,
        rgb: np.ndarray,
        *,
        alpha_in: np.ndarray | None = None,
        icc_profile: bytes | None = None,
        background: Background | None = None,
    ) -> SwapResult:
        """Replace the background of one image.

        Args:
            rgb: ``H×W×3`` ``uint8`` RGB photo.
            alpha_in: the photo's own transparency, if it has any; transparent pixels are never
                subject.
            icc_profile: the photo's colour profile; the background is converted into it.
            background: this photo's own background, instead of the run's.
        """
        if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
            raise ValueError(f"expected an H×W×3 uint8 RGB image, got {rgb.dtype} {rgb.shape}")
        coarse = self.segmenter(rgb)
        matte = refine(rgb, coarse, self.options.matting, mask_side=self.segmenter.mask_side)
        if alpha_in is not None:
            matte = matte.times(alpha_in)
        warnings = []
        if matte.peak() < NO_SUBJECT_ALPHA:
            warnings.append("no subject found: the output shows the background alone")
        behind = self._background_for(rgb, matte, icc_profile,
                                      background or self.background)  # fmt: skip
        image = composite(matte, behind)
        return SwapResult(image, matte, warnings)

    def process_file(self, job: Job) -> FileResult:
        """Decode, swap and write one file. Failures come back as a result, never raised."""
        start = time.perf_counter()
        try:
            decoded = decode(job.source, max_pixels=self.options.max_pixels)
            background, extra = None, {}
            if self.prompted is not None and self.options.bg_per_image:
                seed = self.options.seed + job.index
                height, width = decoded.rgb.shape[:2]
                generated, path = self.prompted.get(height, width, seed)
                background, extra = Background(generated), {"background": str(path), "seed": seed}
            result = self.swap(decoded.rgb, alpha_in=decoded.alpha,
                               icc_profile=decoded.icc_profile, background=background)  # fmt: skip
            settings = self.encode_settings
            encode(result.image, job.output, icc_profile=decoded.icc_profile,
                   exif=decoded.exif, settings=settings)  # fmt: skip
            extras = iter(job.outputs[1:])
            if self.options.save_mask:
                mask = np.clip(result.alpha * 255.0 + 0.5, 0, 255).astype(np.uint8)
                encode(mask, next(extras), settings=settings)
            if self.options.save_cutout:
                encode(result.cutout(), next(extras),
                       icc_profile=decoded.icc_profile, settings=settings)  # fmt: skip
        except (ImageError, OSError) as exc:
            reason = str(exc) if isinstance(exc, ImageError) else f"{type(exc).__name__}: {exc}"
            return FileResult(str(job.source), None, "failed", time.perf_counter() - start, reason)
        except Exception as exc:
            log.debug("unexpected error on %s", job.source, exc_info=True)
            reason = f"unexpected {type(exc).__name__}: {exc}"
            return FileResult(str(job.source), None, "failed", time.perf_counter() - start, reason)
        return FileResult(str(job.source), str(job.output), "ok", time.perf_counter() - start,
                          warnings=result.warnings, extra=extra)  # fmt: skip


def plan_jobs(options: Options) -> list[Job]:
    """List the input files and name their outputs (see :func:`operations.images.plan_outputs`).

    Raises:
        OptionsError: the input folder holds no files.
    """
    assert options.input is not None and options.output is not None
    source, target = Path(options.input), Path(options.output)
    relatives = find_inputs(source, recursive=options.recursive, exclude=[target])
    if not relatives:
        hint = "" if options.recursive else " (sub-folders are read with --recursive)"
        raise OptionsError("--input", source, f"holds no files{hint}")
    extras = [MASK_SUFFIX] * options.save_mask + [CUTOUT_SUFFIX] * options.save_cutout
    plan = plan_outputs(relatives, options.format, extras)
    return [
        Job(source / rel, rel, tuple(target / name for name in plan[rel]), index)
        for index, rel in enumerate(relatives)
    ]


def _bounded_map(
    pool: ThreadPoolExecutor, fn: Callable[[Job], FileResult], jobs: Iterable[Job], window: int
) -> Iterable[tuple[Job, FileResult]]:
    """Like ``pool.map`` but with at most ``window`` jobs in flight, so memory stays bounded."""
    pending: dict[Future[FileResult], Job] = {}
    for job in jobs:
        if len(pending) >= window:
            done, _ = wait(pending, return_when=FIRST_COMPLETED)
            for future in done:
                yield pending.pop(future), future.result()
        pending[pool.submit(fn, job)] = job
    while pending:
        done, _ = wait(pending, return_when=FIRST_COMPLETED)
        for future in done:
            yield pending.pop(future), future.result()


def run_batch(
    options: Options, *, pipeline: Pipeline | None = None, progress: bool | None = None
) -> BatchResult:
    """Process a folder. Returns every file's result; writes ``options.summary`` if set.

    Args:
        options: validated batch options (see :meth:`Options.validated`).
        pipeline: an already built pipeline to reuse (the caller closes it).
        progress: show a progress bar; ``None`` shows it on a terminal unless ``options.quiet``.

    Raises:
        OptionsError: bad settings that only show once the run starts (empty folder, bad --bg).
    """
    from tqdm import tqdm

    start = time.perf_counter()
    started_at = datetime.now(UTC).isoformat(timespec="seconds")
    allow_pixels(options.max_pixels)
    jobs = plan_jobs(options)
    results: dict[Path, FileResult] = {}
    todo = []
    for job in jobs:
        if not options.overwrite and all(p.exists() for p in job.outputs):
            results[job.source] = FileResult(str(job.source), str(job.output), "skipped")
        else:
            todo.append(job)
    if results:
        log.info("%d of %d files already have outputs; skipping them (--overwrite redoes them)",
                 len(results), len(jobs))  # fmt: skip
    owned = pipeline is None
    interrupted = False
    shared_background = None
    if todo and options.engine == "ray":
        from operations.distributed import run_batch_ray

        results, shared_background = run_batch_ray(options, todo, results)
        for job in todo:
            if job.source in results:
                _report(job, results[job.source])
    elif todo:
        pipeline = pipeline or Pipeline(options)
        shared_background = _prepare_generated_background(pipeline, todo)
        show = (not options.quiet) if progress is None else progress
        bar = tqdm(total=len(todo), unit="img", disable=None if show else True,
                   dynamic_ncols=True)  # fmt: skip
        pool = ThreadPoolExecutor(max_workers=options.workers, thread_name_prefix="bgswap")
        # The batch is parallel across images; OpenCV's own threads inside each call would only
        # contend with ours (measured: ~5 % slower on 2 cores). Restored afterwards.
        cv_threads = cv2.getNumThreads()
        if options.workers > 1:
            cv2.setNumThreads(1)
        try:
            window = 2 * options.workers
            for job, result in _bounded_map(pool, pipeline.process_file, todo, window):
                results[job.source] = result
                _report(job, result)
                bar.update()
        except KeyboardInterrupt:
            interrupted = True
            log.error("interrupted: finishing the images in progress; rerun to resume")
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
            cv2.setNumThreads(cv_threads)
            bar.close()
            if owned:
                pipeline.close()
    ordered = [results[job.source] for job in jobs if job.source in results]
    batch = BatchResult(ordered, time.perf_counter() - start, interrupted, shared_background)
    if options.summary is not None:
        write_summary(batch, options, Path(options.summary), started_at)
    return batch


def _report(job: Job, result: FileResult) -> None:
    if result.status == "failed":
        log.error("failed %s: %s", job.relative, result.error)
    for warning in result.warnings:
        log.warning("%s: %s", job.relative, warning)
    log.debug("%s -> %s in %.2f s", job.relative, result.output, result.seconds)


def generate_run_background(
    prompted: PromptBackgrounds, todo: list[Job], seed: int
) -> tuple[np.ndarray, Path] | None:
    """The run's one generated background (cached or new), at the first readable photo's aspect.

    ``None`` when no photo's size can be read (they will all fail and be reported).
    """
    from PIL import Image

    for job in todo:
        try:
            with Image.open(job.source) as first:
                width, height = first.size
        except OSError:
            continue
        return prompted.get(height, width, seed)
    return None


def _prepare_generated_background(pipeline: Pipeline, todo: list[Job]) -> dict | None:
    """With ``--prompt``: generate (or load) the run's background, at the first photo's aspect.

    With ``--bg-per-image`` each photo gets its own in :meth:`Pipeline.process_file`; the
    diffusion pipeline is loaded here anyway, so a missing model stops the run before any file.
    """
    prompted = pipeline.prompted
    if prompted is None or pipeline.background is not None:
        return None
    if pipeline.options.bg_per_image:
        prompted.ensure_ready()
        return None
    generated = generate_run_background(prompted, todo, pipeline.options.seed)
    if generated is None:
        return None
    rgb, path = generated
    pipeline.set_background(Background(rgb))
    log.info("background: %s", path)
    return {"background": str(path), "seed": pipeline.options.seed}


def write_summary(batch: BatchResult, options: Options, path: Path, started_at: str) -> None:
    """Write the run's JSON report (atomically, like every output)."""
    report = {
        "version": __version__,
        "started": started_at,
        "seconds": round(batch.seconds, 3),
        "interrupted": batch.interrupted,
        "counts": {s: batch.count(s) for s in ("ok", "skipped", "failed")},
        "generated_background": batch.background,
        "options": options.to_dict(),
        "files": [{**asdict(f), "seconds": round(f.seconds, 4)} for f in batch.files],
    }
    data = json.dumps(report, indent=2, ensure_ascii=False).encode("utf-8")
    write_atomic(path, lambda f: f.write(data))
