"""Work items: one source file, the files it produces, and its own "process me" step.

A job is what an engine runs and what the summary reports on. :class:`PhotoJob` is a photo;
other kinds of source (a video) are other :class:`Job` subclasses with their own
:meth:`Job.process`, and the batch, the engines and the summary treat them all alike.
"""

from __future__ import annotations

import logging
import threading
import time
import warnings
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import numpy as np

from operations.decode import decode
from operations.encode import EncodeSettings, encode
from operations.files import ImageError, claimed
from operations.report import Thumbnails, write_thumbnails

if TYPE_CHECKING:
    from operations.options import Options
    from operations.pipeline import Pipeline, SwapResult

log = logging.getLogger("backgroundswap")

# The warnings raised while this thread works on a job (see capture_warnings).
_current = threading.local()
_NOISE = (DeprecationWarning, PendingDeprecationWarning, FutureWarning)


def capture_warnings(*, verbose: bool = False) -> None:
    """Route library warnings (Python's ``warnings``) away from the terminal: deprecations and
    other notices meant for developers are dropped (shown with ``verbose``); the rest become
    the warnings of the job they were raised in (its summary row, logged with the file's name),
    or, raised outside any job, one log line. The command line calls this once."""
    warnings.simplefilter("always")  # every file's own warning, not only the first one's
    warnings.filterwarnings("ignore", message=r"(?i).*\bdeprecat")  # "…is deprecated" notices
    for category in _NOISE:
        warnings.filterwarnings("ignore", category=category)

    def show(message, category, filename, lineno, file=None, line=None) -> None:
        text = f"{category.__name__}: {str(message).strip().splitlines()[0]}"
        found = getattr(_current, "warnings", None)
        if found is not None:
            found.append(text)
        elif verbose:
            log.warning("%s (%s:%s)", text, filename, lineno)
        else:
            log.debug("%s (%s:%s)", text, filename, lineno)

    warnings.showwarning = show
    if verbose:  # show the developers' notices too, once each
        for category in _NOISE:
            warnings.simplefilter("default", category)


MASK_SUFFIX = ".mask.png"
CUTOUT_SUFFIX = ".cutout.png"

Status = Literal["ok", "skipped", "failed"]


@dataclass
class FileResult:
    """What became of one job: its status, time, and any error or warnings (the summary's row)."""

    input: str
    output: str | None
    status: Status
    seconds: float = 0.0
    error: str | None = None
    warnings: list[str] = field(default_factory=list)
    extra: dict[str, object] = field(default_factory=dict)  # e.g. a generated background, seed
    doubt: float | None = None  # how likely the result is wrong, 0-1 (see operations.doubt)
    flags: list[str] = field(default_factory=list)  # the doubt's reasons
    signals: dict[str, float] = field(default_factory=dict)  # what the doubt was measured from


@dataclass(frozen=True)
class Job(ABC):
    """One source file and the files it produces (main output first)."""

    source: Path
    relative: Path  # the source's path inside the input folder
    outputs: tuple[Path, ...]
    index: int = 0  # position in the sorted input list (per-photo seeds count from it)
    planned: float = 0.0  # when the batch planned it (time.time()): later outputs are another run's

    @property
    def output(self) -> Path:
        return self.outputs[0]

    def done(self, since: float | None = None) -> bool:
        """Every output exists (outputs appear only when complete); with ``since``, every one
        was written since then (by another run, while this one ran)."""
        try:
            times = [path.stat().st_mtime for path in self.outputs]
        except OSError:
            return False
        return since is None or min(times) >= since

    def process(self, pipeline: Pipeline) -> FileResult:
        """Claim the job, then :meth:`work` on it, unless another run has it or has just done it.

        Two runs on one output folder (or machines on shared storage) split the work this way:
        each skips the jobs the other holds or finished since it planned its own.
        """
        with claimed(self.output) as claim:
            if isinstance(claim, str):
                return FileResult(str(self.source), str(self.output), "skipped",
                                  warnings=[f"in progress in another run ({claim})"])  # fmt: skip
            if self.done(None if not pipeline.options.overwrite else self.planned):
                return FileResult(str(self.source), str(self.output), "skipped",
                                  warnings=["done by another run meanwhile"])  # fmt: skip
            return self.work(pipeline)

    @abstractmethod
    def work(self, pipeline: Pipeline) -> FileResult:
        """Read the source, run it through ``pipeline``, write the outputs atomically.

        Failures come back as a ``failed`` result with a one-line reason, never raised.
        """


@dataclass(frozen=True)
class PhotoJob(Job):
    """A photo: decode → :meth:`Pipeline.swap` → encode, plus the mask and cut-out if asked."""

    def work(self, pipeline: Pipeline) -> FileResult:
        start = time.perf_counter()
        options = pipeline.options
        _current.warnings = caught = []  # library warnings raised while working on this photo
        try:
            decoded = decode(self.source, max_pixels=options.max_pixels)
            result = pipeline.swap(decoded.rgb, alpha_in=decoded.alpha,
                                   icc_profile=decoded.icc_profile, index=self.index,
                                   name=self.relative.stem)  # fmt: skip
            settings = EncodeSettings(quality=options.quality)
            encode(result.image, self.output, icc_profile=decoded.icc_profile,
                   exif=decoded.exif, settings=settings)  # fmt: skip
            side_files = iter(self.outputs[1:])
            if options.save_mask:
                mask = np.clip(result.alpha * 255.0 + 0.5, 0, 255).astype(np.uint8)
                encode(mask, next(side_files), settings=settings)
            if options.save_cutout:
                encode(result.cutout(), next(side_files),
                       icc_profile=decoded.icc_profile, settings=settings)  # fmt: skip
            if options.report_page is not None:
                self._thumbnails(options, decoded.rgb, result, caught)
        except (ImageError, OSError) as exc:
            reason = str(exc) if isinstance(exc, ImageError) else f"{type(exc).__name__}: {exc}"
            return FileResult(str(self.source), None, "failed", time.perf_counter() - start,
                              reason, caught)  # fmt: skip
        except Exception as exc:
            log.debug("unexpected error on %s", self.source, exc_info=True)
            reason = f"unexpected {type(exc).__name__}: {exc}"
            return FileResult(str(self.source), None, "failed", time.perf_counter() - start,
                              reason, caught)  # fmt: skip
        finally:
            _current.warnings = None
        doubt = result.doubt.to_dict() if result.doubt is not None else {}
        return FileResult(str(self.source), str(self.output), "ok", time.perf_counter() - start,
                          warnings=caught + result.warnings, extra=result.extra,
                          **doubt)  # fmt: skip

    def _thumbnails(self, options: Options, photo: np.ndarray, result: SwapResult,
                    warnings: list[str]) -> None:  # fmt: skip
        """The review page's thumbnails, made while the images are in memory; a failure costs
        the page a picture, not the photo its result."""
        thumbs = Thumbnails.for_output(options.report_page, options.output_folder, self.output)
        try:
            write_thumbnails(thumbs, photo, result.image, result.alpha)
        except OSError as exc:
            warnings.append(f"no thumbnail for the review page: {exc.strerror or exc}")
