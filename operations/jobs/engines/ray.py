"""The Ray engine: the same jobs on a Ray cluster's workers (Ray Data).

The jobs become a Ray Dataset; ``map_batches`` runs it through an actor pool whose actors each
build a :class:`~operations.pipeline.Pipeline` once (segmenter, background source, style
targets) and call every job's own :meth:`~operations.jobs.job.Job.process`, which writes its outputs
atomically into the output folder (shared storage on a cluster). Each actor works like the local
engine: several jobs at once on threads (decoding, compositing and encoding overlap the model;
Ray Data's "true multi-threading" runs that many calls of the actor concurrently), one actor per
``--cpus-per-worker`` CPUs of the cluster, ``--cpus-per-worker`` + 1 threads each. The results
come back to the driver as a stream. The run's generated background is made once, by the batch
on the driver, and reaches the actors as a file. An actor that dies is restarted and its rows
retried by Ray (an output appears under its final name only once complete, so a retry cannot
leave a truncated or duplicated file); a job that fails for its own reasons comes back as a
failed result and is not retried.
"""

from __future__ import annotations

import logging
import math
import os
import pickle
import socket
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from operations.errors import SettingError, names, use_names
from operations.jobs.engines import Engine, Report
from operations.jobs.job import JobSettings

if TYPE_CHECKING:
    from operations.build import Recipe
    from operations.jobs.job import Job
    from operations.stages.background import RunBackground


GCS_RETRIES = 8  # seconds a driver waits for a cluster that answers but will not let it in


def _import_ray(address: str | None = None) -> Any:
    if address not in (None, "auto"):
        # Ray waits 20 s (one try a second, read when it is imported) for a cluster that
        # refuses it, as one does for a missing auth token; the port has answered by then
        # (see _probe), so a few seconds tell.
        os.environ.setdefault("RAY_NUM_REDIS_GET_RETRIES", str(GCS_RETRIES))
    try:
        import ray
        import ray.data
    except ImportError:
        raise SettingError(
            "engine",
            "ray",
            "needs ray, which is not installed: pip install -r requirements-ray.txt",
        ) from None
    return ray


class Worker:
    """One actor of the pool: a pipeline built once, then rows of pickled jobs.

    Its settings are class attributes of a subclass made per run (:func:`_worker_class`), not
    constructor arguments: Ray cannot restart an actor whose constructor arguments were lost.
    """

    RECIPE: ClassVar[Recipe | None] = None
    RUN_BACKGROUND: ClassVar[RunBackground | None] = None
    JOBS: ClassVar[JobSettings] = JobSettings()
    THREADS: ClassVar[int] = 1
    NAMES: ClassVar[dict[str, str]] = {}  # how the driver's front door names settings

    def __init__(self) -> None:
        import cv2
        import ray

        from operations.build import build_background, build_pipeline

        use_names(self.NAMES)  # a failed photo's message reads as it would on the driver
        assert self.RECIPE is not None
        source = build_background(self.RECIPE, run_background=self.RUN_BACKGROUND)
        self.pipeline = build_pipeline(self.RECIPE, background=source)
        if self.THREADS > 1:  # parallel across images, as the local engine is
            cv2.setNumThreads(1)
        self.node = ray.get_runtime_context().get_node_id()  # recorded in the summary

    def _process(self, job: bytes) -> bytes:
        assert self.RECIPE is not None
        result = pickle.loads(job).process(self.pipeline, self.JOBS)
        result.extra["ray_node"] = self.node
        return pickle.dumps(result)

    def __call__(self, batch: dict[str, Any]) -> dict[str, list[bytes]]:
        return {"result": [self._process(job) for job in batch["job"]]}


def _worker_class(
    recipe: Recipe, jobs: JobSettings, run_background: RunBackground | None, threads: int
) -> type[Worker]:
    settings = {
        "RECIPE": recipe,
        "JOBS": jobs,
        "RUN_BACKGROUND": run_background,
        "THREADS": threads,
        "NAMES": names(),
    }
    return type("BackgroundSwapWorker", (Worker,), settings)


def pool_size(cluster_cpus: float, cpus_per_worker: float, jobs: int) -> tuple[int, int]:
    """(actors, threads per actor): an actor per ``cpus_per_worker`` CPUs of the cluster (no
    more than there are jobs), each with one thread more than its CPUs, as the local engine has
    one more than the machine's cores: while one waits for the model, the CPUs stay busy."""
    actors = max(1, min(jobs, int(cluster_cpus // cpus_per_worker)))
    return actors, max(2, math.ceil(cpus_per_worker) + 1)


# Photos per call of an actor: Ray's cost per call is about that of a small photo's work, so one
# photo a call lost a quarter of the rate (bench_engines.py, 800 px: 0.73× the local engine's
# steady rate with 1, 0.96–1.08× with 4 to 8); a few more is a coarser retry and progress step.
ROWS_PER_CALL = 4
CONNECT_TIMEOUT = 5.0  # seconds for the cluster's port to answer at all
ACTOR_START_TIMEOUT = 600  # seconds for every worker to start (models load; nodes may scale up)


def _probe(address: str) -> None:
    """Fail fast, in one line, when nothing listens at ``address`` (Ray itself retries for a
    minute, printing a warning every few seconds)."""
    host_port = address.removeprefix("ray://")
    host, _, port = host_port.rpartition(":")
    if not host or not port.isdigit():
        raise SettingError(
            "ray_address",
            address,
            "give HOST:PORT (the head's GCS port, "
            "6379 unless `ray start --head --port` said otherwise), "
            "ray://HOST:PORT or auto",
        )
    try:
        socket.create_connection((host, int(port)), timeout=CONNECT_TIMEOUT).close()
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        hint = "is the head started (`ray start --head --port PORT`), and is this its address?"
        raise SettingError(
            "ray_address", address, f"nothing answers there ({reason}): {hint}"
        ) from None


def _auth_hint() -> str:
    if os.environ.get("RAY_AUTH_TOKEN") or os.environ.get("RAY_AUTH_TOKEN_PATH"):
        return "the token given (RAY_AUTH_TOKEN / RAY_AUTH_TOKEN_PATH) is not the cluster's"
    return (
        "the cluster uses token authentication: give its token with RAY_AUTH_MODE=token and "
        "RAY_AUTH_TOKEN_PATH=FILE (a copy of the head's ~/.ray/auth_token) or "
        "RAY_AUTH_TOKEN=TOKEN (see the README's 'Scaling out')"
    )


def connect(ray: Any, address: str | None, *, verbose: bool = False) -> None:
    """``ray.init`` (a local instance when ``address`` is ``None``), every failure one line.

    Raises:
        SettingError: the cluster cannot be reached or refuses this driver; the message names
            the address and the likely fix (the head's port, its auth token, Ray's version).
    """
    if address not in (None, "auto"):
        _probe(address)
    level = logging.INFO if verbose else logging.ERROR
    try:
        ray.init(
            address=address,
            include_dashboard=False,
            log_to_driver=verbose,
            logging_level=level,
            ignore_reinit_error=True,
        )
    except ray.exceptions.AuthenticationError:
        raise SettingError("ray_address", address, _auth_hint()) from None
    except ConnectionError as exc:
        # An auth failure surfaces as "Failed to connect" once Ray has given up; the port
        # answered (probed above), so the token is the likely cause, else the address.
        reason = str(exc).splitlines()[0]
        hint = _auth_hint() if address not in (None, "auto") else "is a cluster running here?"
        raise SettingError("ray_address", address, f"{reason}; {hint}") from None
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        if "version mismatch" in str(exc).lower():  # the versions are on its later lines
            versions = " ".join(str(exc).split())
            first = (
                f"Ray's version differs from the cluster's ({versions}): install the "
                f"cluster's Ray and Python version on this machine (here: Ray "
                f"{ray.__version__})"
            )
        raise SettingError("ray_address", address, first) from None


class NativeStderr:
    """Points file descriptor 2 (where native code writes) at a log file until :meth:`restore`;
    Python's ``sys.stderr`` keeps writing where it did, so our own lines and Ray Data's progress
    bars still show."""

    def __init__(self) -> None:
        import sys
        import tempfile

        handle, name = tempfile.mkstemp(prefix="backgroundswap-ray-", suffix=".log")
        self.path = Path(name)
        sys.stderr.flush()
        self._saved = os.dup(2)
        self._python = None
        try:
            if sys.stderr.fileno() == 2:  # Python writes to fd 2 too: keep it on the terminal
                self._python = sys.stderr
                sys.stderr = os.fdopen(os.dup(self._saved), "w", buffering=1)
        except (AttributeError, OSError, ValueError):  # a replaced stderr (tests, notebooks)
            pass
        os.dup2(handle, 2)
        os.close(handle)

    @property
    def written(self) -> bool:
        try:
            return self.path.stat().st_size > 0
        except OSError:
            return False

    def restore(self, *, keep: bool = False) -> None:
        """Put fd 2 back; the log is kept only with ``keep`` (an error names it)."""
        import sys

        os.dup2(self._saved, 2)
        os.close(self._saved)
        if self._python is not None:
            sys.stderr.flush()
            sys.stderr.close()
            sys.stderr = self._python
        if not (keep and self.written):
            self.path.unlink(missing_ok=True)


class RayEngine(Engine):
    """Runs jobs on a Ray cluster (or a local Ray instance when no ``--ray-address`` is given)."""

    name: ClassVar[str] = "ray"

    def open(self) -> None:
        if self.pipeline is not None:
            raise ValueError("the ray engine builds its pipelines on its workers; pass none")
        options = self.settings
        # Before the run's background is made: a missing Ray stops the run at once.
        self.ray = _import_ray(options.ray_address)
        # Ray's C++ core writes its retries and notices straight to the process's stderr: they
        # go to a log file unless --verbose, so an error is the one line that says what to do.
        self._native = None if options.verbose else NativeStderr()
        try:
            if not self.ray.is_initialized():
                connect(self.ray, options.ray_address, verbose=options.verbose)
        except SettingError as exc:
            native, self._native = self._native, None
            if native is not None:
                native.restore(keep=True)
            if native is not None and native.written:
                reason = f"{exc.reason} (Ray's own messages: {native.path})"
                raise SettingError(exc.setting, exc.value, reason) from None
            raise
        except BaseException:
            self.close()
            raise

    def _check_fits(self) -> None:
        """A worker that no node can hold would wait for one forever: say so instead."""
        nodes = [node["Resources"] for node in self.ray.nodes() if node.get("Alive")]
        o = self.settings
        wants = (
            ("cpus_per_worker", "CPU", o.cpus_per_worker),
            ("gpus_per_worker", "GPU", o.gpus_per_worker),
        )
        for option, resource, wanted in wants:
            largest = max((node.get(resource, 0.0) for node in nodes), default=0.0)
            if wanted > largest:
                raise SettingError(
                    option,
                    wanted,
                    f"no node of the cluster has that many "
                    f"{resource}s (the most any has: {largest:g})",
                )

    def close(self) -> None:
        native = getattr(self, "_native", None)
        if native is not None:
            native.restore()
            self._native = None

    def run(self, jobs: Sequence[Job], report: Report) -> None:
        options, ray = self.settings, self.ray
        if not options.verbose:
            logging.getLogger("ray.data").setLevel(logging.ERROR)
        context = ray.data.DataContext.get_current()
        context.enable_progress_bars = self.progress
        context.print_on_execution_start = options.verbose
        # Every actor up (its model loaded) before the first row goes out: otherwise the first
        # one ready takes the rows of the others while they start. Bounded: a cluster that cannot
        # place them says so instead of waiting forever.
        context.wait_for_min_actors_s = ACTOR_START_TIMEOUT
        # Rows are tiny (a pickled job; the photos are on shared storage): send them to the
        # least busy actor, not to the one on the node that holds the rows (the driver's).
        # Ray 2.60 calls the setting deprecated (for 2027) but still obeys it; without it a
        # small run went to one node alone (tests/test_engines_ray_cluster.py).
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            context.execution_options.actor_locality_enabled = False
        rows = [{"job": pickle.dumps(job)} for job in jobs]
        self._check_fits()
        cpus = ray.cluster_resources().get("CPU", 1.0)
        actors, threads = pool_size(cpus, options.cpus_per_worker, len(rows))
        # A few rows per call, but never so many that a small run leaves actors idle.
        per_call = max(options.batch_size, min(ROWS_PER_CALL, math.ceil(len(rows) / actors)))
        blocks = math.ceil(len(rows) / per_call)
        dataset = ray.data.from_items(rows, override_num_blocks=blocks)
        worker = _worker_class(
            self.recipe, self.settings.jobs, self.background.run_background, threads
        )
        pool = ray.data.ActorPoolStrategy(
            size=actors,
            max_concurrent_calls_per_actor=threads,  # calls of one actor on its threads
            max_tasks_in_flight_per_actor=2 * threads,  # queued ones: no gap between them
            enable_true_multi_threading=True,
        )
        with warnings.catch_warnings():
            # Ray 2.60 calls actor options like max_restarts deprecated, yet names no replacement.
            warnings.simplefilter("ignore", DeprecationWarning)
            results = dataset.map_batches(
                worker,
                batch_size=per_call,
                compute=pool,
                num_cpus=options.cpus_per_worker,
                num_gpus=options.gpus_per_worker or None,
                # A dead actor is restarted and its rows retried, however often it happens.
                max_restarts=-1,
                max_task_retries=-1,
            )
        by_source = {str(job.source): job for job in jobs}
        try:
            for row in results.iter_rows():
                if self.stop.is_set():  # a Ctrl-C whose own exception was lost
                    raise KeyboardInterrupt
                result = pickle.loads(row["result"])
                report(by_source[result.input], result)
        except ray.exceptions.GetTimeoutError:
            reason = (
                f"{actors} workers could not all start within {ACTOR_START_TIMEOUT} s: "
                "the cluster lacks the CPUs (or GPUs) they ask for"
            )
            raise SettingError("cpus_per_worker", options.cpus_per_worker, reason) from None
