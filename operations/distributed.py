"""The batch on a Ray cluster (Ray Data): the same per-image step, on many workers.

The list of input files becomes a Ray Dataset; ``map_batches`` runs it through an actor pool whose
actors each build the segmenter, the background and the style targets once (a
:class:`~operations.pipeline.Pipeline`) and call :meth:`Pipeline.process_file` on every row, which
writes its outputs atomically into the output folder (shared storage on a cluster). The rows'
results come back to the driver as a stream and make the same summary and exit code as a local
run. An actor that dies is restarted and its rows retried by Ray (an output is written under its
final name only once complete, so a retry cannot leave a truncated or duplicated file); a file
that fails for its own reasons comes back as a failed row and is not retried.
"""

from __future__ import annotations

import json
import logging
import os
import warnings
from dataclasses import asdict, fields
from pathlib import Path
from typing import Any, ClassVar

from operations.options import Options, OptionsError
from operations.pipeline import FileResult, Job

# Test hook: when this variable names a file that does not exist yet, the first worker to process
# a row creates it and exits at once — one worker process dying mid-run, once.
CRASH_ONCE_VARIABLE = "BACKGROUNDSWAP_TEST_CRASH_ONCE"


def _import_ray() -> Any:
    try:
        import ray
        import ray.data
    except ImportError:
        raise OptionsError(
            "--engine", "ray", "Ray is not installed: pip install -r requirements-ray.txt"
        ) from None
    return ray


def _options_to_dict(options: Options) -> dict[str, Any]:
    return {f.name: getattr(options, f.name) for f in fields(Options)}


class _Worker:
    """One actor of the pool: a pipeline built once, then rows of files.

    Its settings are class attributes of a subclass made per run (:func:`_worker_class`), not
    constructor arguments: Ray cannot restart an actor whose constructor arguments were lost.
    """

    OPTIONS: ClassVar[dict[str, Any]] = {}
    BACKGROUND: ClassVar[str | None] = None

    def __init__(self) -> None:
        from operations.background import Background
        from operations.pipeline import Pipeline

        options, background = self.OPTIONS, self.BACKGROUND
        self.options = Options(**options)
        self.pipeline = Pipeline(self.options)
        if background is not None:  # the run's generated background, made by the driver
            self.pipeline.set_background(Background.from_file(Path(background)))

    def __call__(self, batch: dict[str, Any]) -> dict[str, list[Any]]:
        crash_marker = os.environ.get(CRASH_ONCE_VARIABLE)
        if crash_marker and not Path(crash_marker).exists():
            Path(crash_marker).write_text(str(os.getpid()))
            os._exit(1)  # the worker process dies, as on a lost node
        out: dict[str, list[Any]] = {name: [] for name in ("result",)}
        for source, relative, outputs, index in zip(
            batch["source"], batch["relative"], batch["outputs"], batch["index"], strict=True
        ):
            job = Job(Path(source), Path(relative), tuple(Path(p) for p in json.loads(outputs)),
                      int(index))  # fmt: skip
            result = self.pipeline.process_file(job)
            out["result"].append(json.dumps(asdict(result)))
        return out


def _worker_class(options: Options, background: str | None) -> type[_Worker]:
    settings = {"OPTIONS": _options_to_dict(options), "BACKGROUND": background}
    return type("BackgroundSwapWorker", (_Worker,), settings)


def run_batch_ray(
    options: Options, todo: list[Job], done: dict[Path, FileResult]
) -> tuple[dict[Path, FileResult], dict[str, Any] | None]:
    """Process ``todo`` on Ray; return every file's result (``done`` ones included)."""
    ray = _import_ray()
    if not ray.is_initialized():
        address = options.ray_address  # None: start a local instance
        level = logging.INFO if options.verbose else logging.ERROR
        ray.init(address=address, include_dashboard=False, log_to_driver=options.verbose,
                 logging_level=level, ignore_reinit_error=True)  # fmt: skip
    if not options.verbose:
        logging.getLogger("ray.data").setLevel(logging.ERROR)
    context = ray.data.DataContext.get_current()
    context.enable_progress_bars = not options.quiet
    context.print_on_execution_start = options.verbose
    shared = _shared_background(options, todo)
    rows = [
        {"source": str(job.source), "relative": str(job.relative),
         "outputs": json.dumps([str(p) for p in job.outputs]), "index": job.index}
        for job in todo
    ]  # fmt: skip
    dataset = ray.data.from_items(rows, override_num_blocks=max(1, len(rows) // options.batch_size))
    worker = _worker_class(options, shared["background"] if shared else None)
    with warnings.catch_warnings():
        # Ray 2.60 calls actor options like max_restarts deprecated, yet names no replacement.
        warnings.simplefilter("ignore", DeprecationWarning)
        results = dataset.map_batches(
            worker,
            batch_size=options.batch_size,
            compute=ray.data.ActorPoolStrategy(min_size=1, max_size=options.workers),
            num_cpus=options.cpus_per_worker,
            num_gpus=options.gpus_per_worker or None,
            runtime_env=_runtime_env(),
            # A dead actor is restarted and its rows retried, however often it happens.
            max_restarts=-1,
            max_task_retries=-1,
        )
    collected = dict(done)
    for row in results.iter_rows():
        result = FileResult(**json.loads(row["result"]))
        collected[Path(result.input)] = result
    return collected, shared


def _runtime_env() -> dict[str, Any] | None:
    marker = os.environ.get(CRASH_ONCE_VARIABLE)
    return {"env_vars": {CRASH_ONCE_VARIABLE: marker}} if marker else None


def _shared_background(options: Options, todo: list[Job]) -> dict[str, Any] | None:
    """With ``--prompt`` (one background per run): made once, on the driver, for every worker."""
    if options.prompt is None or options.bg_per_image or not todo:
        return None
    from operations.pipeline import generate_run_background
    from operations.text_to_image import PromptBackgrounds

    prompted = PromptBackgrounds(options, Path(options.output or "."), progress=not options.quiet)
    generated = generate_run_background(prompted, todo, options.seed)
    if generated is None:
        return None
    return {"background": str(generated[1]), "seed": options.seed}
