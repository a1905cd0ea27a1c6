"""Engines: where a batch's jobs run. Peers behind one small interface, chosen by name.

An engine is opened with the run's options and background source (building what it can before
the run's background is made: the local pipeline and its model, a Ray connection), then takes
the jobs that are left to do, runs every job's own "process me" step
(:meth:`operations.jobs.Job.process`) on pipelines where the work happens, and hands each result
back as it comes. The batch (:mod:`operations.batch`) plans
the jobs, skips finished ones, and writes the summary; an engine knows nothing of that, and no
engine imports another. A new engine is one module here and one line in :data:`ENGINES`.
"""

from __future__ import annotations

import importlib
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, ClassVar

if TYPE_CHECKING:
    from operations.background import BackgroundSource
    from operations.jobs import FileResult, Job
    from operations.options import Options
    from operations.pipeline import Pipeline

# name → "module:Class"; import paths, so choosing an engine imports only that engine.
ENGINES: dict[str, str] = {
    "local": "operations.engines.local:LocalEngine",
    "ray": "operations.engines.ray:RayEngine",
}
DEFAULT_ENGINE = "local"

Report = Callable[["Job", "FileResult"], None]


class Engine(ABC):
    """Runs jobs and reports each one's result; a context manager that frees what it built.

    Args:
        options: the run's validated options.
        background: the run's background source; :meth:`BackgroundSource.prepare` is called on
            it after the engine is opened and before :meth:`run`.
        pipeline: an already built pipeline to run the jobs on (the caller closes it); engines
            that build their pipelines elsewhere refuse one.
        progress: show a progress bar; ``None`` shows it unless ``options.quiet``.
        abandon: once set, an interrupted engine stops waiting for the jobs in progress.

    Raises:
        OptionsError, SegmenterError, StyleTransferError: what it builds cannot be built.
    """

    name: ClassVar[str]

    def __init__(
        self,
        options: Options,
        background: BackgroundSource,
        *,
        pipeline: Pipeline | None = None,
        progress: bool | None = None,
        abandon: threading.Event | None = None,
    ) -> None:
        self.options = options
        self.background = background
        self.pipeline = pipeline
        self.progress = (not options.quiet) if progress is None else progress
        self.abandon = abandon if abandon is not None else threading.Event()
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
    options: Options,
    background: BackgroundSource,
    *,
    pipeline: Pipeline | None = None,
    progress: bool | None = None,
    abandon: threading.Event | None = None,
) -> Engine:
    """Open the engine ``options.engine`` names."""
    module_name, _, class_name = ENGINES[options.engine].partition(":")
    cls: type[Engine] = getattr(importlib.import_module(module_name), class_name)
    return cls(options, background, pipeline=pipeline, progress=progress, abandon=abandon)
