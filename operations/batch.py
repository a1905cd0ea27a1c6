"""The batch: a folder of sources planned as jobs, run on an engine, summed up in a report.

:func:`run_batch` lists the input folder, names every output, skips the jobs an earlier run
finished, prepares the run's background once, hands the rest to the engine ``--engine`` names,
and collects every result into a :class:`BatchResult` (the summary line, the exit code and the
``--summary`` JSON). What happens to one job is the job's own business
(:meth:`operations.jobs.job.Job.process`); where it happens is the engine's.
"""

from __future__ import annotations

import functools
import json
import logging
import tempfile
import threading
import time
from collections import Counter
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from operations import __version__
from operations.build import build_background
from operations.jobs.drop_folder import DropFolder
from operations.jobs.engines import Engine, Report, create_engine
from operations.jobs.events import Events
from operations.jobs.job import FileResult, Job, PhotoJob, Status
from operations.jobs.report import FLAG_NAMES, assets_folder, write_page
from operations.jobs.video_job import VideoJob
from operations.media.decode import allow_pixels
from operations.media.files import (
    find_inputs,
    is_video,
    masks_for_no_photo,
    name_fields,
    plan_outputs,
    printable,
    side_suffixes,
    sweep,
    write_atomic,
)
from operations.media.video import SEQUENCE, TRANSPARENT_FORMATS, VIDEO_CODECS
from operations.options import Options, OptionsError, naming_flags
from operations.pipeline import Pipeline
from operations.stages.background import RunBackground

log = logging.getLogger("backgroundswap")


@dataclass
class BatchResult:
    files: list[FileResult]
    seconds: float
    interrupted: bool = False
    background: dict[str, object] | None = None  # the generated background shared by the run
    summary_error: str | None = None  # why --summary (or --report) could not be written
    startup: float = 0.0  # seconds before the first photo could start (models, background)

    def count(self, status: Status) -> int:
        return sum(1 for f in self.files if f.status == status)

    @property
    def exit_code(self) -> int:
        """0: every file done (now or before); 1: any failed, or the summary could not be
        written; 130: interrupted (the CLI says 143 when it was SIGTERM)."""
        if self.interrupted:
            return 130
        return 1 if self.count("failed") or self.summary_error else 0

    def summary_line(self) -> str:
        """The run in one line; its rate is the progress bar's (start-up apart). Videos are
        counted in frames: a 300-frame clip is not 0.05 images/s."""
        done = self.count("ok")
        working = self.seconds - self.startup
        videos = [f for f in self.files if f.status == "ok" and "video" in f.extra]
        if videos:
            frames = sum(int(_video(f).get("frames") or 0) for f in videos)
            spent = sum(f.seconds for f in videos)
            photos = done - len(videos)
            rate = f", {len(videos)} {'video' if len(videos) == 1 else 'videos'}: {frames} frames"
            rate += f" at {frames / spent:.1f} frames/s" if spent > 0 else ""
            if photos and working > spent:
                rate += f", {photos} photos at {photos / (working - spent):.2f} images/s"
        else:
            rate = f", {done / working:.2f} images/s" if done and working > 0 else ""
        return (
            f"{done} written, {self.count('skipped')} skipped (output exists), "
            f"{self.count('failed')} failed in {self.seconds:.1f} s "
            f"(start-up {self.startup:.1f} s{rate})"
        )


def _video(result: FileResult) -> dict[str, Any]:
    """A video's record in its result's ``extra`` (see :mod:`operations.jobs.video_job`)."""
    video = result.extra["video"]
    assert isinstance(video, dict)
    return video


def _suffixes(options: Options) -> tuple[list[str], tuple[str, list[str]]]:
    """The side files' suffixes of a photo, and a video's extension and side-file suffixes."""
    mask, cutout = options.save_mask, options.save_cutout
    ext = VIDEO_CODECS[options.video_codec].extension
    transparent = TRANSPARENT_FORMATS[options.video_format]
    video = side_suffixes(
        mask=mask,
        cutout=cutout,
        video_extension=ext,
        cutout_extension=transparent.extension,
        frames=transparent.container == SEQUENCE,
    )
    return side_suffixes(mask=mask, cutout=cutout), (ext, video)


def _job(
    source: Path,
    relative: Path,
    outputs: list[Path],
    index: int,
    planned: float,
    replace: bool = False,
) -> Job:
    kind = VideoJob if is_video(relative) else PhotoJob
    return kind(source, relative, tuple(outputs), index, planned, replace)


def plan_jobs(options: Options) -> list[Job]:
    """List the input files and name their outputs
    (see :func:`operations.media.files.plan_outputs`); videos (by extension) become
    :class:`VideoJob`, anything else :class:`PhotoJob`.

    Raises:
        OptionsError: the input folder holds no files.
    """
    assert options.input is not None and options.output is not None
    source, target = Path(options.input), Path(options.output)
    extras, video = _suffixes(options)
    now = time.time()
    if source.is_file() or (source.is_symlink() and not source.exists()):  # one file
        relative = Path(source.name)
        if options.output_file:  # named by the user: side files beside it, after its stem
            sides = video[1] if is_video(relative) else extras
            outputs = [target] + [target.with_name(target.stem + s) for s in sides]
        else:
            plan = plan_outputs([relative], options.format, extras, video=video)
            outputs = [target / name for name in plan[relative]]
        return [_job(source, relative, outputs, 0, now)]
    relatives = find_inputs(source, recursive=options.recursive, exclude=_excluded(options))
    if not relatives and not options.watch:  # a watched folder may start empty
        hint = "" if options.recursive else " (sub-folders are read with --recursive)"
        raise OptionsError("--input", source, f"holds no files{hint}")
    plan = plan_outputs(relatives, options.format, extras, video=video)
    return [
        _job(source / rel, rel, [target / name for name in plan[rel]], index, now)
        for index, rel in enumerate(relatives)
    ]


def _excluded(options: Options) -> list[Path]:
    """What inside the input folder is never read: the outputs, the summary, the page."""
    assert options.output is not None  # a checked batch's
    exclude = [Path(options.output)] + ([Path(options.summary)] if options.summary else [])
    if options.events not in (None, "-"):
        exclude.append(Path(options.events))
    if (page := options.report_page) is not None:
        exclude += [page, assets_folder(page)]
    return exclude


def prepare_output(folder: Path) -> None:
    """Create the output folder and prove it writable (a real write: ``os.access`` says yes to
    root and knows nothing of read-only mounts).

    Raises:
        OptionsError: it cannot be created or written.
    """
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OptionsError("--output", folder, f"cannot create it: {exc.strerror}") from None
    try:
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as exc:
        raise OptionsError("--output", folder, f"not writable: {exc.strerror}") from None


def first_readable_size(jobs: list[Job]) -> tuple[int, int] | None:
    """(height, width) of the first job whose source Pillow can open; ``None`` if none can."""
    from PIL import Image

    for job in jobs:
        try:
            with Image.open(job.source) as first:
                width, height = first.size
        except OSError:
            continue
        return height, width
    return None


def run_batch(
    options: Options,
    *,
    pipeline: Pipeline | None = None,
    progress: bool | None = None,
    abandon: threading.Event | None = None,
    stop: threading.Event | None = None,
) -> BatchResult:
    """Process a folder. Returns every file's result; writes ``options.summary`` if set.

    Args:
        options: validated batch options (see :meth:`Options.validated`).
        pipeline: an already built pipeline to reuse (the caller closes it; local engine only).
        progress: show a progress bar; ``None`` shows it on a terminal unless ``options.quiet``.
        abandon: once set, an interrupted run stops waiting for the images in progress.
        stop: once set, the run is interrupted (the CLI's Ctrl-C and SIGTERM set it as well as
            raising :class:`KeyboardInterrupt`, whose raise can be lost inside a library).

    Raises:
        OptionsError: bad settings that only show once the run starts (empty folder, bad --bg,
            an output folder that cannot be written).
    """
    events = Events(options.events) if options.events is not None else None
    try:
        batch = _batch(options, events, pipeline, progress, abandon, stop)
    finally:
        if events is not None:
            events.close()
    return batch


def _batch(
    options: Options,
    events: Events | None,
    pipeline: Pipeline | None,
    progress: bool | None,
    abandon: threading.Event | None,
    stop: threading.Event | None,
) -> BatchResult:
    """:func:`run_batch`'s steps, its events told as they happen."""
    start = time.perf_counter()
    started_at = datetime.now(timezone.utc).isoformat(timespec="seconds")
    allow_pixels(options.max_pixels)
    jobs = plan_jobs(options)
    if events is not None:
        events.emit("run_started", version=__version__, settings=options.to_dict())
    _say_masks_for_no_photo(options, jobs)
    _sweep_leftovers(options, jobs, time.time())
    rows = _Rows(events)
    # A watched folder's files are all taken once they have settled (see drop_folder).
    todo = [] if options.watch else rows.skip_done(jobs, options.overwrite)
    run = _Run()
    if todo or options.watch:
        try:
            run.go(options, jobs, todo, rows, pipeline, progress, abandon, stop, start)
        except Exception as exc:
            if stop is None or not stop.is_set():
                raise
            # A library turned the interruption into an error of its own (numba wraps what
            # its extension's import raised in an ImportError): it is the interruption.
            log.debug("an error once the run was stopped: %s", exc, exc_info=exc)
            run.interrupted = True
        except KeyboardInterrupt:  # from the start-up (models loading) to the last job
            run.interrupted = True
        if run.interrupted:
            if options.watch:
                log.info("stopped watching: finished files are kept")
            else:
                log.error("interrupted: finished files are kept; rerun to resume")
    shared = run.background.to_dict() if run.background is not None else None
    batch = BatchResult(
        rows.ordered(run.jobs or jobs),
        time.perf_counter() - start,
        run.interrupted,
        shared,
        startup=run.startup,
    )
    _say_choices(batch)
    _write_reports(batch, options, started_at)
    if events is not None:
        events.emit(
            "run_finished",
            counts={s: batch.count(s) for s in ("ok", "skipped", "failed")},
            seconds=round(batch.seconds, 3),
            interrupted=batch.interrupted,
            # Interrupted, the process's own status says by which signal (130 or 143).
            exit_code=None if batch.interrupted else batch.exit_code,
        )
    return batch


def _say_masks_for_no_photo(options: Options, jobs: list[Job]) -> None:
    """``--masks``: one line for the masks that no photo of the run takes (a misspelt name)."""
    if options.masks is None:
        return
    photos = [job.relative for job in jobs if isinstance(job, PhotoJob)]
    unused = masks_for_no_photo(Path(options.masks), photos)
    if unused:
        shown = ", ".join(printable(path.relative_to(options.masks)) for path in unused[:5])
        more = f" and {len(unused) - 5} more" if len(unused) > 5 else ""
        log.warning("%d masks match no photo of the run: %s%s", len(unused), shown, more)


def interrupted_before_start(options: Options) -> BatchResult:
    """A run interrupted before it could start (while its libraries loaded): nothing done, and
    the summary and page say so."""
    started_at = datetime.now(timezone.utc).isoformat(timespec="seconds")
    log.error("interrupted before the first photo: nothing was done")
    batch = BatchResult([], 0.0, interrupted=True)
    _write_reports(batch, options, started_at)
    return batch


@dataclass
class _Run:
    """What the engine's part of a run leaves behind for the summary."""

    interrupted: bool = False
    background: RunBackground | None = None
    startup: float = 0.0
    jobs: list[Job] | None = None  # a watched folder's, planned as files arrived

    def go(
        self,
        options: Options,
        jobs: list[Job],
        todo: list[Job],
        rows: _Rows,
        pipeline: Pipeline | None,
        progress: bool | None,
        abandon: threading.Event | None,
        stop: threading.Event | None,
        start: float,
    ) -> None:
        """Open the engine (models load, a cluster answers), then create the output folder
        (a run refused before this point leaves none), make the run's background (which may
        take minutes to generate), and run the jobs (or watch the folder)."""
        recipe = options.recipe()
        with naming_flags():  # a stage's error names the flag that sets what it refused
            source = pipeline.background if pipeline is not None else build_background(recipe)
            engine = create_engine(
                options.engine_settings(),
                recipe,
                source,
                pipeline=pipeline,
                progress=progress,
                abandon=abandon,
                stop=stop,
            )
            with engine:
                prepare_output(options.output_folder)
                _stop_asked(stop)
                self.background = source.prepare(lambda: first_readable_size(jobs))
                self.startup = time.perf_counter() - start
                _stop_asked(stop)
                if options.watch:
                    drop = _drop_folder(options, engine, rows.report, stop)
                    self.jobs = drop.jobs
                    drop.run()
                else:
                    engine.run(todo, rows.report)


def _stop_asked(stop: threading.Event | None) -> None:
    """A stop that was asked for (its exception lost on the way) is honoured here."""
    if stop is not None and stop.is_set():
        raise KeyboardInterrupt


class _Rows:
    """The run's rows: one per job's source and main output (a file tried again replaces its
    row; a file dropped again under a name already done, written under another, adds one)."""

    def __init__(self, events: Events | None = None) -> None:
        self.results: dict[tuple[Path, Path], FileResult] = {}
        self.events = events

    def report(self, job: Job, result: FileResult) -> None:
        self.results[(job.source, job.output)] = result
        _log_result(job, result)
        self._emit(result)

    def _emit(self, result: FileResult) -> None:
        if self.events is not None:
            self.events.emit("file", status=result.status, row=result_row(result))

    def skip_done(self, jobs: list[Job], overwrite: bool) -> list[Job]:
        """The jobs left to do; the rest (every output exists) get a ``skipped`` row."""
        todo = []
        for job in jobs:
            if not overwrite and job.done():
                skipped = FileResult(str(job.source), str(job.output), "skipped")
                self.results[(job.source, job.output)] = skipped
                self._emit(skipped)
            else:
                todo.append(job)
        if done := len(jobs) - len(todo):
            log.info(
                "%d of %d files already have outputs; skipping them (--overwrite redoes them)",
                done,
                len(jobs),
            )
        return todo

    def ordered(self, jobs: list[Job]) -> list[FileResult]:
        """The rows in the jobs' order."""
        keys = dict.fromkeys((job.source, job.output) for job in jobs)
        return [self.results[key] for key in keys if key in self.results]


def _sweep_leftovers(options: Options, jobs: list[Job], started: float) -> None:
    """A killed run's temporaries and claims, in the folders this run writes to (not another
    running process's: those are held)."""
    folders = {path.parent for job in jobs for path in job.outputs} | {options.output_folder}
    if options.summary is not None:
        folders.add(Path(options.summary).parent)
    if (removed := sweep(folders, before=started)) > 0:
        log.info("removed %d temporary files left by an interrupted run", removed)


def _drop_folder(
    options: Options, engine: Engine, report: Report, stop: threading.Event | None
) -> DropFolder:
    """--watch: the drop folder that takes what arrives (see :mod:`operations.jobs.drop_folder`)."""
    extras, video = _suffixes(options)
    return DropFolder(
        options.drop_settings(tuple(_excluded(options))),
        engine=engine,
        report=report,
        namer=functools.partial(plan_outputs, fmt=options.format, extras=extras, video=video),
        make_job=lambda source, rel, outputs, index, replace: _job(
            source, rel, outputs, index, time.time(), replace
        ),
        stop=stop,
    )


def _write_reports(batch: BatchResult, options: Options, started_at: str) -> None:
    """The summary JSON and the review page, as asked; a failure to write either is the run's
    failure (exit 1), said once."""
    if options.summary is not None:
        try:
            write_summary(batch, options, Path(options.summary), started_at)
        except OSError as exc:
            batch.summary_error = f"{exc.strerror or exc}"
            log.error(
                "could not write the summary %s: %s",
                printable(options.summary),
                batch.summary_error,
            )
    if (page := options.report_page) is not None:
        try:
            write_page(
                summary_data(batch, options, started_at),
                page,
                options.output_folder,
                workers=options.workers,
            )
        except OSError as exc:
            batch.summary_error = f"{exc.strerror or exc}"
            log.error(
                "could not write the review page %s: %s", printable(page), batch.summary_error
            )
        else:
            log.info("review page: %s", printable(page))
    else:
        _hint_doubtful(batch)


def _say_choices(batch: BatchResult) -> None:
    """--mode auto: which model took how many files, and why."""
    chosen = Counter(
        (choice["name"], choice["reason"])
        for f in batch.files
        if isinstance(choice := f.extra.get("segmenter"), dict)
    )
    if chosen:
        said = (f"{name} for {n} ({why})" for (name, why), n in sorted(chosen.items()))
        log.info("--mode auto chose %s", ", ".join(said))


def _hint_doubtful(batch: BatchResult) -> None:
    """Say how many results look wrong (flagged, as the page's "doubtful" filter counts them),
    and where to see them first."""
    doubtful = [f for f in batch.files if f.flags]
    if doubtful:
        reasons = sorted({FLAG_NAMES.get(flag, flag) for f in doubtful for flag in f.flags})
        log.info(
            "%d results look doubtful (%s): --report makes a page that shows them first",
            len(doubtful),
            ", ".join(reasons),
        )


def _log_result(job: Job, result: FileResult) -> None:
    name = printable(job.relative)
    if result.status == "failed":
        log.error("failed %s: %s", name, result.error)
    for warning in result.warnings:
        log.warning("%s: %s", name, warning)
    log.debug(
        "%s -> %s in %.2f s", name, result.output and printable(result.output), result.seconds
    )


def result_row(result: FileResult) -> dict[str, object]:
    """A file's row: names that are not UTF-8 kept exactly, in ``*_bytes`` fields."""
    row = asdict(result)
    row.update(
        seconds=round(result.seconds, 4),
        **name_fields("input", result.input),
        **name_fields("output", result.output),
    )
    return row


def write_summary(batch: BatchResult, options: Options, path: Path, started_at: str) -> None:
    """Write the run's JSON report (atomically, like every output)."""
    report = summary_data(batch, options, started_at)
    # Any other name that is not UTF-8 (the options' paths) is written as JSON's own escape of
    # the surrogate Python decoded it to ("\udce9"): valid JSON, and json.load gives it back.
    data = json.dumps(report, indent=2, ensure_ascii=False).encode("utf-8", "backslashreplace")
    write_atomic(path, lambda f: f.write(data))


def summary_data(batch: BatchResult, options: Options, started_at: str) -> dict[str, object]:
    """The run's report as JSON data: counts, options, a row per file."""
    return {
        "version": __version__,
        "started": started_at,
        "seconds": round(batch.seconds, 3),
        "interrupted": batch.interrupted,
        "counts": {s: batch.count(s) for s in ("ok", "skipped", "failed")},
        "generated_background": batch.background,
        "options": options.to_dict(),
        "working_folder": str(Path.cwd()),  # where the options' relative paths start
        "files": [result_row(f) for f in batch.files],
    }
