"""Work items: one source file, the files it produces, and its own "process me" step.

A job is what an engine runs and what the summary reports on. :class:`PhotoJob` is a photo;
other kinds of source (a video) are other :class:`Job` subclasses with their own
:meth:`Job.process`, and the batch, the engines and the summary treat them all alike.
"""

from __future__ import annotations

import logging
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import numpy as np

from operations.decode import decode
from operations.encode import EncodeSettings, encode
from operations.files import ImageError

if TYPE_CHECKING:
    from operations.pipeline import Pipeline

log = logging.getLogger("backgroundswap")

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


@dataclass(frozen=True)
class Job(ABC):
    """One source file and the files it produces (main output first)."""

    source: Path
    relative: Path  # the source's path inside the input folder
    outputs: tuple[Path, ...]
    index: int = 0  # position in the sorted input list (per-photo seeds count from it)

    @property
    def output(self) -> Path:
        return self.outputs[0]

    def done(self) -> bool:
        """Every output exists (an earlier run finished it; outputs appear only when complete)."""
        return all(path.exists() for path in self.outputs)

    @abstractmethod
    def process(self, pipeline: Pipeline) -> FileResult:
        """Read the source, run it through ``pipeline``, write the outputs atomically.

        Failures come back as a ``failed`` result with a one-line reason, never raised.
        """


@dataclass(frozen=True)
class PhotoJob(Job):
    """A photo: decode → :meth:`Pipeline.swap` → encode, plus the mask and cut-out if asked."""

    def process(self, pipeline: Pipeline) -> FileResult:
        start = time.perf_counter()
        options = pipeline.options
        try:
            decoded = decode(self.source, max_pixels=options.max_pixels)
            result = pipeline.swap(decoded.rgb, alpha_in=decoded.alpha,
                                   icc_profile=decoded.icc_profile, index=self.index)  # fmt: skip
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
        except (ImageError, OSError) as exc:
            reason = str(exc) if isinstance(exc, ImageError) else f"{type(exc).__name__}: {exc}"
            return FileResult(str(self.source), None, "failed", time.perf_counter() - start, reason)
        except Exception as exc:
            log.debug("unexpected error on %s", self.source, exc_info=True)
            reason = f"unexpected {type(exc).__name__}: {exc}"
            return FileResult(str(self.source), None, "failed", time.perf_counter() - start, reason)
        return FileResult(str(self.source), str(self.output), "ok", time.perf_counter() - start,
                          warnings=result.warnings, extra=result.extra)  # fmt: skip
