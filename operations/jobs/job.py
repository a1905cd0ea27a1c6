"""Work items: one source file, the files it produces, and its own "process me" step.

A job is what an engine runs and what the summary reports on. :class:`PhotoJob` is a photo;
other kinds of source (a video: :mod:`operations.jobs.video_job`) are other :class:`Job` subclasses
with their own :meth:`Job.work`, and the batch, the engines and the summary treat them all
alike. What a job reads of the run is its :class:`JobSettings`.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar, Literal

import numpy as np

from operations.errors import BackgroundSwapError, require
from operations.jobs import corrections
from operations.jobs.corrections import Correction
from operations.jobs.ledger import InputRecord, Ledger, Made, digest_bytes
from operations.jobs.report import Thumbnails, write_thumbnails
from operations.media.decode import DEFAULT_MAX_PIXELS, decode, decode_mask, pixel_count
from operations.media.encode import DEFAULT_QUALITY, EncodeSettings, encoder
from operations.media.files import (
    PREFIX,
    ImageError,
    SourceChanged,
    StagedOutputs,
    Written,
    changed,
    check_names,
    mask_for,
    output_claim,
    output_of_temporary,
    printable,
    read_whole,
)
from operations.media.video import (
    DEFAULT_VIDEO_CODEC,
    DEFAULT_VIDEO_FORMAT,
    DEFAULT_VIDEO_QUALITY,
)
from operations.pipeline import GivenMask
from operations.stages.temporal import DEFAULT_STRENGTH as DEFAULT_SMOOTHING
from operations.warning_capture import collecting

if TYPE_CHECKING:
    from operations.pipeline import Pipeline, SwapResult

log = logging.getLogger("backgroundswap")


@dataclass(frozen=True)
class JobSettings:
    """What a job reads of the run: how to read its source and write its outputs."""

    max_pixels: int = DEFAULT_MAX_PIXELS  # refuse larger images (decompression bombs)
    quality: int = DEFAULT_QUALITY  # JPEG/WebP
    save_mask: bool = False
    save_cutout: bool = False
    overwrite: bool = False  # redo outputs that exist
    report_page: Path | None = None  # the review page whose thumbnails jobs write
    output_folder: Path | None = None  # where the outputs go (thumbnails are named from it)
    video_codec: str = DEFAULT_VIDEO_CODEC
    video_format: str = DEFAULT_VIDEO_FORMAT  # transparent videos' container (cut-outs)
    video_quality: int = DEFAULT_VIDEO_QUALITY
    temporal_smoothing: float = DEFAULT_SMOOTHING  # videos: 0 turns it off
    workers: int = 1  # a video's threads for its frames
    ledger: bool = False  # record what each job read and wrote (a watched folder's ledger)
    masks: Path | None = None  # the user's masks, by the photo's name (--masks)

    def __post_init__(self) -> None:
        require(self.max_pixels >= 1, "max_pixels", self.max_pixels, "must be positive")
        for name in ("quality", "video_quality"):
            value = getattr(self, name)
            require(1 <= value <= 100, name, value, "must be between 1 and 100")
        smoothing = self.temporal_smoothing
        require(
            0 <= smoothing < 1,
            "temporal_smoothing",
            smoothing,
            "must be at least 0 (off) and below 1",
        )
        require(self.workers >= 1, "workers", self.workers, "must be at least 1")


Status = Literal["ok", "skipped", "failed"]
Progress = Callable[[int, int], None]  # (steps done, steps expected; 0: unknown)


class Interrupted(BackgroundSwapError):
    """Raised by a progress callback to stop a long job (a video) when the run is interrupted:
    the job fails and its outputs are not written; a rerun redoes it."""


class Cancel:
    """Stops jobs from writing once the run stops waiting for them (a second Ctrl-C): a job
    about to commit its outputs gives them up instead (:class:`Interrupted`), and
    :meth:`set` returns once the commits already under way have finished, so what is on disk
    is what the run counts (``committed``: the jobs whose outputs were placed)."""

    def __init__(self) -> None:
        self._lock = threading.Condition()
        self._cancelled = False
        self._active = 0
        self.committed: set[Job] = set()

    @contextlib.contextmanager
    def commit(self, job: Job) -> Iterator[None]:
        """Around a job's commit: refused once cancelled; waited for by :meth:`set`."""
        with self._lock:
            if self._cancelled:
                raise Interrupted
            self._active += 1
        done = False
        try:
            yield
            done = True
        finally:
            with self._lock:
                self._active -= 1
                if done:
                    self.committed.add(job)
                self._lock.notify_all()

    def set(self) -> None:
        """No job commits from now on; returns once the commits under way are done."""
        with self._lock:
            self._cancelled = True
            while self._active:
                self._lock.wait()


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


# A write that failed for want of room: the errors that name no file (written through a
# descriptor) are the output's.
_FULL = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)


@dataclass(frozen=True)
class Job(ABC):
    """One source file and the files it produces (main output first)."""

    # A job that keeps every core busy by itself (a video): engines run it alone.
    runs_alone: ClassVar[bool] = False

    source: Path
    relative: Path  # the source's path inside the input folder
    outputs: tuple[Path, ...]
    index: int = 0  # position in the sorted input list (per-photo seeds count from it)
    planned: float = 0.0  # when the batch planned it (time.time()): later outputs are another run's
    replace: bool = False  # its outputs are ours to replace (made from an earlier, cut-short copy)

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

    def process(
        self,
        pipeline: Pipeline,
        settings: JobSettings,
        progress: Progress | None = None,
        cancel: Cancel | None = None,
    ) -> FileResult:
        """Claim the job, then :meth:`work` on it, unless another run has it or has just done it.

        Two runs on one output folder (or machines on shared storage) split the work this way:
        each skips the jobs the other holds or finished since it planned its own. ``cancel``:
        once set, the job writes nothing (see :class:`Cancel`).
        """
        with output_claim(self.output) as claim:
            if isinstance(claim, str):
                return FileResult(
                    str(self.source),
                    str(self.output),
                    "skipped",
                    warnings=[f"in progress in another run ({claim})"],
                )
            if self.done(None if not (settings.overwrite or self.replace) else self.planned):
                return FileResult(
                    str(self.source),
                    str(self.output),
                    "skipped",
                    warnings=["done by another run meanwhile"],
                )
            try:
                check_names(self.outputs)
            except ImageError as exc:
                return self._failure(exc, time.perf_counter(), [])
            return self.work(pipeline, settings, progress, cancel)

    def pixels(self) -> int:
        """The pixels this job holds in memory at once, as engines count them to bound what is
        in flight: 0 for a job that streams (a video's frames come and go)."""
        return 0

    @abstractmethod
    def work(
        self,
        pipeline: Pipeline,
        settings: JobSettings,
        progress: Progress | None = None,
        cancel: Cancel | None = None,
    ) -> FileResult:
        """Read the source, run it through ``pipeline``, write the outputs atomically.

        Failures come back as a ``failed`` result with a one-line reason, never raised.
        ``progress(done, expected)`` is told of a long job's steps (a video's frames).
        """

    def _commit(
        self,
        staged: StagedOutputs,
        settings: JobSettings,
        read: os.stat_result,
        digest: str | None,
        *,
        complete: bool = True,
        corrected: bool = False,
        cancel: Cancel | None = None,
    ) -> list[Written]:
        """Rename the staged outputs into place, unless the source changed since it was read
        (``read``: the file as it was read): then nothing is kept. With a ledger, the job's line
        is written first, so an output never exists without it."""

        def check(written: list[Written]) -> None:
            try:
                now = self.source.stat()
            except OSError:
                now = None
            how = "deleted" if now is None else changed(read, now)
            if how is not None:
                raise SourceChanged(f"changed while it was processed ({how}): nothing written")
            if settings.ledger and digest is not None:
                assert settings.output_folder is not None
                made = Made.of(
                    self.relative,
                    InputRecord.of(read, digest),
                    written,
                    settings.output_folder,
                    complete=complete,
                    corrected=corrected,
                )
                Ledger(settings.output_folder).add(made)

        with cancel.commit(self) if cancel is not None else contextlib.nullcontext():
            return staged.commit(check)

    def _failure(self, exc: Exception, start: float, warnings: list[str]) -> FileResult:
        """The failed result of an exception, with a one-line reason."""
        if isinstance(exc, Interrupted):
            reason = "interrupted before its end: a rerun redoes it"
        elif isinstance(exc, BackgroundSwapError):  # a bad file, a mask, a correction: said
            reason = str(exc)
        elif isinstance(exc, OSError):
            reason = self._os_reason(exc)
        else:
            log.debug("unexpected error on %s", self.source, exc_info=exc)
            ffmpeg = type(exc).__module__.split(".")[0] == "av"  # FFmpeg's own errors
            reason = f"{'video error' if ffmpeg else 'unexpected'} {type(exc).__name__}: {exc}"
        return FileResult(
            str(self.source), None, "failed", time.perf_counter() - start, reason, warnings
        )

    def _os_reason(self, exc: OSError) -> str:
        """``No space left on device: out/clip.mp4``: the error, and the file it concerns (an
        output, not the hidden temporary it was being written as)."""
        what = exc.strerror or str(exc) or type(exc).__name__
        target = exc.filename
        if target is None and exc.errno in _FULL:  # written through a descriptor: the output
            target = self.output
        if target is None:
            return what
        target = output_of_temporary(target, self.outputs) or target
        if os.path.basename(os.fsdecode(target)).startswith(PREFIX):  # another job's temporary
            target = os.path.dirname(os.fsdecode(target))
        return f"{what}: {printable(target)}"

    def _thumbnails(
        self, settings: JobSettings, photo: np.ndarray, result: SwapResult, warnings: list[str]
    ) -> None:
        """The review page's thumbnails, made while the images are in memory; a failure costs
        the page a picture, not the photo its result."""
        assert settings.report_page is not None and settings.output_folder is not None
        thumbs = Thumbnails.for_output(settings.report_page, settings.output_folder, self.output)
        try:
            write_thumbnails(thumbs, photo, result.image, result.alpha)
        except OSError as exc:
            warnings.append(f"no thumbnail for the review page: {exc.strerror or exc}")


@dataclass(frozen=True)
class PhotoJob(Job):
    """A photo: decode → :meth:`Pipeline.swap` → encode, plus the mask and cut-out if asked."""

    def pixels(self) -> int:
        return pixel_count(self.source)

    def work(
        self,
        pipeline: Pipeline,
        settings: JobSettings,
        progress: Progress | None = None,
        cancel: Cancel | None = None,
    ) -> FileResult:
        start = time.perf_counter()
        with collecting() as caught:  # library warnings raised while working on this photo
            try:
                result = self._swap(pipeline, settings, caught, cancel)
            except Exception as exc:  # noqa: BLE001 - a failed result, logged with its traceback
                return self._failure(exc, start, caught)
        doubt = result.doubt.to_dict() if result.doubt is not None else {}
        return FileResult(
            str(self.source),
            str(self.output),
            "ok",
            time.perf_counter() - start,
            warnings=caught + result.warnings,
            extra=result.extra,
            **doubt,
        )

    def _swap(
        self,
        pipeline: Pipeline,
        settings: JobSettings,
        caught: list[str],
        cancel: Cancel | None = None,
    ) -> SwapResult:
        data, read = read_whole(self.source)  # once: decoded, and fingerprinted for the ledger
        correction = self._correction(settings)
        digest = digest_bytes(data) if settings.ledger or correction is not None else None
        decoded = decode(self.source, max_pixels=settings.max_pixels, data=data)
        del data
        if correction is not None and correction.digest != digest:
            caught.append(
                "the correction made on the review page was not applied: the photo changed "
                "since it was made"
            )
            correction = None
        given = self._given_mask(settings, decoded.rgb.shape[:2])
        result = pipeline.swap(
            decoded.rgb,
            alpha_in=decoded.alpha,
            icc_profile=decoded.icc_profile,
            index=self.index,
            name=self.relative.stem,
            given=given,
            fix=correction.fix if correction is not None else None,
        )
        if settings.masks is not None and given is None and correction is None:
            result.extra["mask"] = "model"
        if correction is not None:
            result.extra["corrected"] = correction.summary()
        encoding = EncodeSettings(quality=settings.quality)
        images = [(result.image, decoded.icc_profile, decoded.exif)]
        if settings.save_mask:
            mask = np.clip(result.alpha * 255.0 + 0.5, 0, 255).astype(np.uint8)
            images.append((mask, None, None))
        if settings.save_cutout:
            images.append((result.cutout(), decoded.icc_profile, None))
        with StagedOutputs(self.outputs) as staged:
            for index, (image, icc, exif) in enumerate(images):
                path = self.outputs[index]
                staged.write(
                    index, encoder(image, path, icc_profile=icc, exif=exif, settings=encoding)
                )
            corrected = correction is not None
            self._commit(staged, settings, read, digest, corrected=corrected, cancel=cancel)
        if settings.report_page is not None:
            self._thumbnails(settings, decoded.rgb, result, caught)
        return result

    def _correction(self, settings: JobSettings) -> Correction | None:
        """The correction the review page saved for this photo's result, if any.

        Raises:
            CorrectionError: one is there but cannot be read (the photo fails, saying so,
                rather than lose the correction by writing over its result without it).
        """
        if settings.output_folder is None:
            return None
        return corrections.load(settings.output_folder, self.output)

    def _given_mask(self, settings: JobSettings, shape: tuple[int, int]) -> GivenMask | None:
        """The user's mask for this photo (``--masks``), at its size."""
        if settings.masks is None:
            return None
        found = mask_for(settings.masks, self.relative)
        if found is None:
            return None
        alpha, side = decode_mask(found, *shape, max_pixels=settings.max_pixels)
        return GivenMask(alpha, side, str(found))
