"""Engines: where a batch's jobs run. Peers behind one small interface, chosen by name.

An engine takes the jobs that are left to do and the run's background source, runs every job's
own "process me" step (:meth:`operations.jobs.Job.process`) on pipelines it builds where the
work happens, and hands each result back as it comes. The batch (:mod:`operations.batch`) plans
the jobs, skips finished ones, and writes the summary; an engine knows nothing of that, and no
engine imports another. A new engine is one module here and one line in :data:`ENGINES`.
"""

from __future__ import annotations

import importlib
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
    """Runs jobs and reports each one's result.

    Args:
        options: the run's validated options.
        pipeline: an already built pipeline to run the jobs on (the caller closes it); engines
            that build their pipelines elsewhere refuse one.
        progress: show a progress bar; ``None`` shows it unless ``options.quiet``.
    """

    name: ClassVar[str]

    def __init__(
        self, options: Options, *, pipeline: Pipeline | None = None, progress: bool | None = None
    ) -> None:
        self.options = options
        self.pipeline = pipeline
        self.progress = (not options.quiet) if progress is None else progress

    @abstractmethod
    def run(self, jobs: Sequence[Job], background: BackgroundSource, report: Report) -> None:
        """Process ``jobs``; call ``report(job, result)`` in the calling thread once per job.

        ``background`` is already prepared (:meth:`BackgroundSource.prepare`). On Ctrl-C the
        engine finishes or abandons the jobs in flight, reports the finished ones, and lets
        :class:`KeyboardInterrupt` propagate.
        """


def create_engine(
    options: Options, *, pipeline: Pipeline | None = None, progress: bool | None = None
) -> Engine:
    """Build the engine ``options.engine`` names."""
    module_name, _, class_name = ENGINES[options.engine].partition(":")
    cls: type[Engine] = getattr(importlib.import_module(module_name), class_name)
    return cls(options, pipeline=pipeline, progress=progress)
