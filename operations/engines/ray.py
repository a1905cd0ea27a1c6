"""The Ray engine: the same jobs on a Ray cluster's workers (Ray Data).

The jobs become a Ray Dataset; ``map_batches`` runs it through an actor pool whose actors each
build a :class:`~operations.pipeline.Pipeline` once (segmenter, background source, style
targets) and call every job's own :meth:`~operations.jobs.Job.process`, which writes its outputs
atomically into the output folder (shared storage on a cluster). The results come back to the
driver as a stream. The run's generated background is made once, by the batch on the driver, and
reaches the actors as a file. An actor that dies is restarted and its rows retried by Ray (an
output appears under its final name only once complete, so a retry cannot leave a truncated or
duplicated file); a job that fails for its own reasons comes back as a failed result and is not
retried.
"""

from __future__ import annotations

import logging
import pickle
import warnings
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, ClassVar

from operations.engines import Engine, Report
from operations.errors import OptionsError

if TYPE_CHECKING:
    from operations.background import RunBackground
    from operations.jobs import Job
    from operations.options import Options


def _import_ray() -> Any:
    try:
        import ray
        import ray.data
    except ImportError:
        raise OptionsError(
            "--engine",
            "ray",
            "needs ray, which is not installed: pip install -r requirements-ray.txt",
        ) from None
    return ray


class Worker:
    """One actor of the pool: a pipeline built once, then rows of pickled jobs.

    Its settings are class attributes of a subclass made per run (:func:`_worker_class`), not
    constructor arguments: Ray cannot restart an actor whose constructor arguments were lost.
    """

    OPTIONS: ClassVar[Options | None] = None
    RUN_BACKGROUND: ClassVar[RunBackground | None] = None

    def __init__(self) -> None:
        from operations.background import BackgroundSource
        from operations.pipeline import Pipeline

        assert self.OPTIONS is not None
        source = BackgroundSource(self.OPTIONS, run_background=self.RUN_BACKGROUND)
        self.pipeline = Pipeline(self.OPTIONS, background=source)

    def __call__(self, batch: dict[str, Any]) -> dict[str, list[bytes]]:
        results = [pickle.loads(job).process(self.pipeline) for job in batch["job"]]
        return {"result": [pickle.dumps(result) for result in results]}


def _worker_class(options: Options, run_background: RunBackground | None) -> type[Worker]:
    settings = {"OPTIONS": options, "RUN_BACKGROUND": run_background}
    return type("BackgroundSwapWorker", (Worker,), settings)


class RayEngine(Engine):
    """Runs jobs on a Ray cluster (or a local Ray instance when no ``--ray-address`` is given)."""

    name: ClassVar[str] = "ray"

    def open(self) -> None:
        if self.pipeline is not None:
            raise ValueError("the ray engine builds its pipelines on its workers; pass none")
        options = self.options
        self.ray = _import_ray()  # before the run's background is made: a missing Ray stops it
        if not self.ray.is_initialized():
            level = logging.INFO if options.verbose else logging.ERROR
            self.ray.init(address=options.ray_address, include_dashboard=False,
                          log_to_driver=options.verbose, logging_level=level,
                          ignore_reinit_error=True)  # fmt: skip

    def run(self, jobs: Sequence[Job], report: Report) -> None:
        options, ray = self.options, self.ray
        if not options.verbose:
            logging.getLogger("ray.data").setLevel(logging.ERROR)
        context = ray.data.DataContext.get_current()
        context.enable_progress_bars = self.progress
        context.print_on_execution_start = options.verbose
        rows = [{"job": pickle.dumps(job)} for job in jobs]
        blocks = max(1, len(rows) // options.batch_size)
        dataset = ray.data.from_items(rows, override_num_blocks=blocks)
        worker = _worker_class(options, self.background.run_background)
        with warnings.catch_warnings():
            # Ray 2.60 calls actor options like max_restarts deprecated, yet names no replacement.
            warnings.simplefilter("ignore", DeprecationWarning)
            results = dataset.map_batches(
                worker,
                batch_size=options.batch_size,
                compute=ray.data.ActorPoolStrategy(min_size=1, max_size=options.workers),
                num_cpus=options.cpus_per_worker,
                num_gpus=options.gpus_per_worker or None,
                # A dead actor is restarted and its rows retried, however often it happens.
                max_restarts=-1,
                max_task_retries=-1,
            )
        by_source = {str(job.source): job for job in jobs}
        for row in results.iter_rows():
            result = pickle.loads(row["result"])
            report(by_source[result.input], result)
