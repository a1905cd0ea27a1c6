"""Engines: where a batch's jobs run. Peers behind one small interface, chosen by name.

An engine is opened with its settings, the recipe of the run's parts and the run's background
source (building what it can before the run's background is made: the local pipeline and its
model, a Ray connection), then takes the jobs that are left to do, runs every job's own
"process me" step (:meth:`operations.jobs.job.Job.process`) on pipelines built by
:mod:`operations.build` where the work happens, and hands each result back as it comes. The
batch (:mod:`operations.batch`) plans the jobs, skips finished ones, and writes the summary; an
engine knows nothing of that, and no engine imports another. A new engine is one module here
and one line in :data:`ENGINES`.
"""

from __future__ import annotations

import importlib
import os
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, ClassVar

from operations.errors import require
from operations.jobs.job import JobSettings

if TYPE_CHECKING:
    from operations.build import Recipe
    from operations.jobs.job import FileResult, Job
    from operations.pipeline import Pipeline
    from operations.stages.background import BackgroundSource

# name → "module:Class"; import paths, so choosing an engine imports only that engine.
ENGINES: dict[str, str] = {
    "local": "operations.jobs.engines.local:LocalEngine",
    "ray": "operations.jobs.engines.ray:RayEngine",
}
DEFAULT_ENGINE = "local"

Report = Callable[["Job", "FileResult"], None]


def default_workers() -> int:
    """Threads that decode, composite and encode in parallel; the model takes one at a time."""
    # One more thread than cores: while one waits for the model, the cores stay busy.
    return min(8, (os.cpu_count() or 1) + 1)


@dataclass(frozen=True)
class EngineSettings:
    """What an engine reads: which one, and how many workers of what size."""

    name: str = DEFAULT_ENGINE
    workers: int = field(default_factory=default_workers)  # the local engine's threads
    ray_address: str | None = None  # None: start a local Ray instance
    cpus_per_worker: float = 1.0
    gpus_per_worker: float = 0.0
    batch_size: int = 1  # images per model call (a Ray call takes at least that many)
    verbose: bool = False
    quiet: bool = False  # no progress bar unless asked
    jobs: JobSettings = field(default_factory=JobSettings)  # handed to every job's process()

    def __post_init__(self) -> None:
        names = tuple(ENGINES)
        require(self.name in names, "name", self.name, f"choose from {', '.join(names)}")
        require(self.workers >= 1, "workers", self.workers, "must be at least 1")
        cpus, gpus = self.cpus_per_worker, self.gpus_per_worker
        require(cpus > 0, "cpus_per_worker", cpus, "must be positive")
        require(gpus >= 0, "gpus_per_worker", gpus, "must not be negative")
        require(self.batch_size >= 1, "batch_size", self.batch_size, "must be at least 1")


class Engine(ABC):
    """Runs jobs and reports each one's result; a context manager that frees what it built.

    Args:
        settings: the engine's own settings.
        recipe: what the run's pipelines (and their jobs) are built from.
        background: the run's background source; :meth:`BackgroundSource.prepare` is called on
            it after the engine is opened and before :meth:`run`.
        pipeline: an already built pipeline to run the jobs on (the caller closes it); engines
            that build their pipelines elsewhere refuse one.
        progress: show a progress bar; ``None`` shows it unless ``settings.quiet``.
        abandon: once set, an interrupted engine stops waiting for the jobs in progress.
        stop: once set, the run is interrupted (Ctrl-C, SIGTERM): :meth:`run` raises
            :class:`KeyboardInterrupt` from its next wait, even where the signal's own
            exception was lost (raised inside a C library's callback, say).

    Raises:
        SettingError, SegmenterError, StyleTransferError: what it builds cannot be built.
    """

    name: ClassVar[str]

    def __init__(
        self,
        settings: EngineSettings,
        recipe: Recipe,
        background: BackgroundSource,
        *,
        pipeline: Pipeline | None = None,
        progress: bool | None = None,
        abandon: threading.Event | None = None,
        stop: threading.Event | None = None,
    ) -> None:
        self.settings, self.recipe = settings, recipe
        self.background = background
        self.pipeline = pipeline
        self.progress = (not settings.quiet) if progress is None else progress
        self.abandon = abandon if abandon is not None else threading.Event()
        self.stop = stop if stop is not None else threading.Event()
        self.open()

    def open(self) -> None:  # noqa: B027 - optional hook
        """Build what can be built before the run's background is made (called on creation)."""

    @abstractmethod
    def run(self, jobs: Sequence[Job], report: Report) -> None:
        """Process ``jobs``; call ``report(job, result)`` in the calling thread once per job.

        On Ctrl-C the engine finishes or abandons the jobs in flight, reports the finished
        ones, and lets :class:`KeyboardInterrupt` propagate.
        """

    def close(self) -> None:  # noqa: B027 - optional hook; not every engine holds something
        """Free what the engine built (not a pipeline it was given). Idempotent."""

    def __enter__(self) -> Engine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def create_engine(
    settings: EngineSettings,
    recipe: Recipe,
    background: BackgroundSource,
    *,
    pipeline: Pipeline | None = None,
    progress: bool | None = None,
    abandon: threading.Event | None = None,
    stop: threading.Event | None = None,
) -> Engine:
    """Open the engine ``settings.name`` names."""
    module_name, _, class_name = ENGINES[settings.name].partition(":")
    cls: type[Engine] = getattr(importlib.import_module(module_name), class_name)
    return cls(
        settings,
        recipe,
        background,
        pipeline=pipeline,
        progress=progress,
        abandon=abandon,
        stop=stop,
    )
