"""A video as a job: every frame through the pipeline, streamed, with its frame writer (the
encoding thread) and its decoding thread (:class:`_Prefetch`); the video files themselves are
read and written by :mod:`operations.media.video`."""

from __future__ import annotations

import contextlib
import queue
import threading
import time
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Generic, TypeVar

import numpy as np

from operations.doubt import measure
from operations.errors import setting
from operations.jobs.job import Cancel, FileResult, Job, JobSettings, Progress
from operations.jobs.ledger import digest_file
from operations.media.containers import cut_short_file
from operations.media.files import ImageError, StagedOutputs, unreadable
from operations.pipeline import NO_SUBJECT
from operations.stages.matting import Matte
from operations.warning_capture import collecting

if TYPE_CHECKING:
    from operations.doubt import Doubt
    from operations.media.video import (
        BackgroundVideo,
        Frame,
        FrameFolder,
        VideoCodec,
        VideoReader,
        VideoWriter,
    )
    from operations.pipeline import Pipeline, SwapResult
    from operations.segmenters.base import Pick

T = TypeVar("T")


@dataclass(frozen=True)
class VideoJob(Job):
    """A video: every frame through the pipeline, streamed. Decoding, the model, the finishing
    (edges, background, composite) and encoding overlap on threads with a bounded number of
    frames in flight, so memory does not grow with the video's length; the outputs are
    written under temporary names and renamed when whole (see :mod:`operations.media.video`)."""

    runs_alone: ClassVar[bool] = True  # it has threads of its own for its frames

    def work(
        self,
        pipeline: Pipeline,
        settings: JobSettings,
        progress: Progress | None = None,
        cancel: Cancel | None = None,
    ) -> FileResult:
        start = time.perf_counter()
        with collecting() as caught:
            try:
                extra, doubt = _swap_video(self, pipeline, settings, progress, caught, cancel)
            except Exception as exc:  # noqa: BLE001 - a failed result, logged with its traceback
                return self._failure(exc, start, caught)
        return FileResult(
            str(self.source),
            str(self.output),
            "ok",
            time.perf_counter() - start,
            warnings=caught,
            extra=extra,
            **doubt,
        )


def _swap_video(
    job: VideoJob,
    pipeline: Pipeline,
    options: JobSettings,
    progress: Progress | None,
    warnings: list[str],
    cancel: Cancel | None = None,
) -> tuple[dict[str, object], dict[str, Any]]:
    """Stream ``job``'s video through ``pipeline``; returns the summary's ``extra`` and doubt."""
    from operations.media.video import (
        MASK_SEQUENCE,
        SEQUENCE,
        TRANSPARENT_FORMATS,
        VIDEO_CODECS,
        BackgroundVideo,
        VideoReader,
    )

    _refuse_photo_settings(pipeline)
    try:  # what is read (with the ledger: its fingerprint, a read of its own before decoding)
        digest, read = digest_file(job.source) if options.ledger else (None, job.source.stat())
    except OSError as exc:
        raise unreadable(job.source, exc) from None
    began = time.perf_counter()
    # The order matters: the stack closes in reverse, so the frame threads stop, then the
    # decoding thread, then the writer, before the files and the reader go.
    with contextlib.ExitStack() as stack:
        reader = stack.enter_context(VideoReader(job.source, max_pixels=options.max_pixels))
        backdrop = None
        if pipeline.background.video is not None:  # not restyling: its frames go behind
            backdrop = BackgroundVideo(pipeline.background.video, max_pixels=options.max_pixels)
            stack.callback(backdrop.close)
        codec = VIDEO_CODECS[options.video_codec]
        cutout = TRANSPARENT_FORMATS[options.video_format]
        mask = MASK_SEQUENCE if cutout.container == SEQUENCE else codec  # frames: masks too
        codecs = [codec] + [mask] * options.save_mask + [cutout] * options.save_cutout
        folders = [i for i, c in enumerate(codecs) if c.container == SEQUENCE]
        staged = stack.enter_context(StagedOutputs(job.outputs, folders))
        writer = _FrameWriter(
            job, options, reader, list(zip(staged.temporaries, codecs, strict=True)), progress
        )
        stack.callback(writer.abort)  # after a failure: stop the writer before the files go
        frames = _Prefetch(reader.frames(), 4)
        stack.callback(frames.close)  # the decoding thread ends before the reader closes
        seen = _stream(stack, frames, _Clip(job, pipeline, options, reader, writer, backdrop))
        writer.finish()
        ending = _Ending.of(job.source, reader, writer.written, seen.last_end)
        job._commit(staged, options, read, digest, complete=ending.complete, cancel=cancel)
    warnings.extend(ending.warnings(reader, writer, codec.extension))
    extra = _summary(ending, reader, writer, seen, time.perf_counter() - began)
    sides = ["mask"] * options.save_mask + ["cutout"] * options.save_cutout
    for side, path, written in zip(sides, job.outputs[1:], codecs[1:], strict=True):
        # Each side file as one result, a folder of frames too.
        form = "png frames" if written.container == SEQUENCE else written.extension.lstrip(".")
        extra["video"][side] = {"path": str(path), "format": form}  # type: ignore[index]
    worst = max(seen.samples, key=lambda d: d.score, default=None)  # the clip's doubt
    if worst is not None and "no-subject" in worst.flags:  # the row's flag, said in words
        warnings.insert(0, f"{NO_SUBJECT} (in the sampled frames)")
    return extra, (worst.to_dict() if worst is not None else {})


def _refuse_photo_settings(pipeline: Pipeline) -> None:
    """Settings that make sense for photos only."""
    if pipeline.framing is not None:
        raise ImageError(
            f"{setting('frame')} is for photos: a video's subject moves, and its frame would "
            "jump from frame to frame"
        )
    why = pipeline.background.kind.photos_only()  # transparent, painted around the subject
    if why is not None:
        raise ImageError(why)


@dataclass(frozen=True)
class _Clip:
    """What streaming one clip works with."""

    job: VideoJob
    pipeline: Pipeline
    options: JobSettings
    reader: VideoReader
    writer: _FrameWriter
    backdrop: BackgroundVideo | None


@dataclass
class _Seen:
    """What streaming a clip saw: the end of its last frame (from the first frame's start),
    its sampled doubts (one a second), and the segmenter picked on its first frame."""

    last_end: float | None = None
    samples: list[Doubt] = field(default_factory=list)
    pick: Pick | None = None


def _stream(stack: contextlib.ExitStack, frames: _Prefetch[Frame], clip: _Clip) -> _Seen:
    """Every frame through the pipeline, in order, into the writer: the model on this thread,
    the edges and composites on a pool, the mattes smoothed over time in order on one thread
    (both pools closed by ``stack``)."""
    from operations.stages.temporal import TemporalSmoother

    pipeline, reader, writer = clip.pipeline, clip.reader, clip.writer
    pool = ThreadPoolExecutor(max_workers=clip.options.workers, thread_name_prefix="bgswap-frame")
    stack.enter_context(pool)
    sequencer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="bgswap-smooth")
    stack.enter_context(sequencer)  # shut first: its tasks wait on the pool's
    smoother = TemporalSmoother(clip.options.temporal_smoothing)

    def smooth_then_compose(
        refined: Future[Matte], rgb: np.ndarray, behind: np.ndarray | None
    ) -> Future[SwapResult]:
        matte = smoother.matte(refined.result(), rgb)
        name = clip.job.relative.stem
        return pool.submit(
            pipeline.compose_frame, rgb, matte, index=clip.job.index, name=name, background=behind
        )

    every = max(1, round(float(reader.rate or 30)))  # the doubt: once a second
    seen = _Seen()
    origin: int | None = None
    for count, frame in enumerate(frames):
        if frame.rgb is None:
            writer.put(frame, None)
            continue
        origin = frame.pts if origin is None else origin
        seen.last_end = float((frame.pts - origin + frame.duration) * reader.time_base)
        if seen.pick is None:  # one model for the whole clip, chosen on its first frame
            seen.pick = pipeline.segmenter.pick(frame.rgb)
        segmenter = seen.pick.segmenter
        coarse = pipeline.segment(frame.rgb, segmenter)
        if count % every == 0:
            seen.samples.append(measure(coarse))
        behind = None
        if clip.backdrop is not None:
            behind = clip.backdrop.at(float((frame.pts - origin) * reader.time_base))
        refined = pool.submit(pipeline.shaped_matte, frame.rgb, coarse, segmenter)
        writer.put(frame, sequencer.submit(smooth_then_compose, refined, frame.rgb, behind))
    return seen


@dataclass(frozen=True)
class _Ending:
    """How a clip ended: frames missing at its end (and the seconds they span), a container
    that says it was cut short, and so whether it is complete. A clip with frames missing,
    lost or damaged may be a copy not yet finished: its outputs are written (and flagged), but
    it is never "complete" (never deleted)."""

    missing: int
    short: float
    cut: str | None
    complete: bool

    @classmethod
    def of(cls, source: Path, reader: VideoReader, written: int, last_end: float | None) -> _Ending:
        missing, short = reader.missing(written, last_end)  # while the reader is open
        cut = cut_short_file(source)  # what the container states (MPEG-TS: its packets)
        complete = not (missing or reader.failed or reader.damaged or cut)
        return cls(missing, short, cut, complete)

    def warnings(self, reader: VideoReader, writer: _FrameWriter, extension: str) -> list[str]:
        said = []
        if self.missing:
            said.append(
                f"ends early: {self.missing} frames ({self.short:g} s) of what the file states "
                "are missing (a clip cut short, or a file not wholly copied?)"
            )
        if self.cut is not None and not self.missing:
            said.append(f"cut short: {self.cut} (a file not wholly copied?)")
        if reader.failed:
            said.append(
                f"{reader.failed} frames could not be decoded: the frame before "
                "each is shown in its place"
            )
        if reader.damaged:
            said.append(f"{reader.damaged} frames were damaged (the decoder concealed errors)")
        if writer.audio_dropped:
            said.append(
                f"audio not copied ({', '.join(writer.audio_dropped)}): "
                f"{extension} cannot hold it; try another {setting('video_codec')}"
            )
        return said + writer.warnings

    def reason(self, reader: VideoReader) -> str:
        """Why the clip is not complete, in a few words (a watched folder's "kept" reason)."""
        if self.missing:
            return f"ends {self.short:.1f} s early"
        if self.cut:
            return f"cut short ({self.cut})"
        return f"{reader.failed + reader.damaged} frames lost or damaged"


def _summary(
    ending: _Ending, reader: VideoReader, writer: _FrameWriter, seen: _Seen, seconds: float
) -> dict[str, object]:
    """The summary's ``extra`` for a clip."""
    video = {
        "frames": writer.written,
        "frames_failed": reader.failed,
        "frames_missing": ending.missing,
        "frames_damaged": reader.damaged,
        "fps": round(writer.written / seconds, 2) if seconds > 0 else None,
        "rate": str(reader.rate) if reader.rate else None,
        "rotation": reader.rotation,
        "audio": writer.audio_copied,
    }
    extra: dict[str, object] = {"video": video, **writer.extra}
    if not ending.complete:
        extra["incomplete"] = ending.reason(reader)
    if seen.pick is not None and (choice := seen.pick.recorded()) is not None:
        extra["segmenter"] = choice
    return extra


class _FrameWriter:
    """The encoding thread of a video: takes frames (and their finishing futures) in display
    order, writes the result, mask and cut-out, copies the sound along, reports progress.

    At most ``2 × workers`` frames wait here: :meth:`put` blocks beyond that, which is what
    keeps a video's memory flat.
    """

    def __init__(
        self,
        job: VideoJob,
        options: JobSettings,
        reader: VideoReader,
        files: list[tuple[Path, VideoCodec]],
        progress: Progress | None,
    ) -> None:
        self.job, self.options, self.reader, self.files = job, options, reader, files
        self.progress = progress
        self.queue: queue.Queue = queue.Queue(maxsize=2 * options.workers)
        self.writers: list[VideoWriter | FrameFolder] = []
        self.written = 0
        self.warnings: list[str] = []
        self.extra: dict[str, object] = {}
        self.audio_copied: list[str] = []
        self.audio_dropped: list[str] = []
        self.error: BaseException | None = None
        self.aborted = threading.Event()
        self.thread = threading.Thread(target=self._run, name="bgswap-encode", daemon=True)
        self.thread.start()

    def put(self, frame: Frame, future: Future[Future[SwapResult]] | None) -> None:
        """Queue a frame (``future`` ``None``: it failed to decode; the last result stands in)."""
        while True:
            if self.error is not None:
                raise self.error
            try:
                self.queue.put((frame, future), timeout=0.1)
                return
            except queue.Full:
                continue

    def finish(self) -> None:
        """Wait for every frame to be written and close the files (whole, ready to rename)."""
        self.put(None, None)  # type: ignore[arg-type]
        self.thread.join()
        if self.error is not None:
            raise self.error
        if not self.written:
            raise ImageError("no frame of the video could be decoded")

    def abort(self) -> None:
        """Stop (after a failure elsewhere): the files are left unfinished, to be removed."""
        self.aborted.set()
        with contextlib.suppress(queue.Full):
            self.queue.put_nowait((None, None))
        self.thread.join()
        for writer in self.writers:
            writer.abandon()
        self.writers = []

    def _run(self) -> None:
        lost: list[Frame] = []  # frames that failed before any result to repeat
        last: list[np.ndarray] | None = None
        try:
            while not self.aborted.is_set():
                frame, future = self.queue.get()
                if frame is None:
                    break
                if future is None:
                    if last is None:
                        lost.append(frame)
                    else:
                        self._write(last, frame)
                    continue
                result = future.result().result()  # the composite's future, then the composite
                images = self._images(result)
                if not self.writers:
                    self._open(result, frame)
                for missing in lost:
                    self._write(images, missing)
                lost = []
                self._write(images, frame)
                last = images
            if not self.aborted.is_set():
                for writer in self.writers:
                    writer.close()
                self.writers = []
        except BaseException as exc:  # noqa: BLE001 - raised in the producing thread by put()
            self.error = exc
            while True:  # unblock put() and let the futures go
                try:
                    self.queue.get_nowait()
                except queue.Empty:
                    break

    def _images(self, result: SwapResult) -> list[np.ndarray]:
        images = [result.image]
        if self.options.save_mask:
            alpha8 = np.clip(result.alpha * 255.0 + 0.5, 0, 255).astype(np.uint8)
            images.append(np.repeat(alpha8[:, :, None], 3, axis=2))
        if self.options.save_cutout:
            images.append(result.cutout())
        return images

    def _open(self, result: SwapResult, frame: Frame) -> None:
        from operations.media.video import open_writer

        height, width = result.image.shape[:2]
        cutout = len(self.files) - 1 if self.options.save_cutout else None
        for index, (path, codec) in enumerate(self.files):
            # The sound goes with the result, and with a cut-out whose container holds sound.
            sounds = index == 0 or (index == cutout and codec.container != "webp")
            audio = self.job.source if sounds else None
            self.writers.append(
                open_writer(
                    path,
                    codec,
                    width,
                    height,
                    time_base=self.reader.time_base,
                    rate=self.reader.rate,
                    quality=self.options.video_quality,
                    audio_from=audio,
                )
            )
        self.audio_copied = self.writers[0].audio_copied
        self.audio_dropped = self.writers[0].audio_dropped
        self.extra.update(result.extra)
        self.warnings.extend(result.warnings)
        if self.options.report_page is not None:
            assert frame.rgb is not None
            self.job._thumbnails(self.options, frame.rgb, result, self.warnings)

    def _write(self, images: list[np.ndarray], frame: Frame) -> None:
        for writer, image in zip(self.writers, images, strict=True):
            writer.write(image, frame.pts, frame.duration)
        self.written += 1
        if self.progress is not None:
            self.progress(self.written, self.reader.expected_frames)


_END = object()


class _Prefetch(Generic[T]):
    """An iterator's items made ahead on a thread of their own (a video's decoding), at most
    ``size`` waiting; its exceptions are raised where the items are taken."""

    def __init__(self, items: Iterator[T], size: int) -> None:
        self.items, self.stop = items, threading.Event()
        self.queue: queue.Queue = queue.Queue(maxsize=size)
        self.thread = threading.Thread(target=self._run, name="bgswap-decode", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            for item in self.items:
                if not self._put(item):
                    return
            self._put(_END)
        except BaseException as exc:  # noqa: BLE001 - raised where the items are taken
            self._put(exc)

    def _put(self, item: object) -> bool:
        while not self.stop.is_set():
            try:
                self.queue.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def __iter__(self) -> Iterator[T]:
        while True:
            item = self.queue.get()
            if item is _END:
                return
            if isinstance(item, BaseException):
                raise item
            yield item

    def close(self) -> None:
        """Stop the thread and wait for it."""
        self.stop.set()
        self.thread.join()
