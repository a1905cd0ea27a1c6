"""The local engine: threads on this machine.

A few threads decode, composite and encode in parallel while the model segments one image at a
time (OpenCV, Pillow, ISA-L and MediaPipe release the GIL), with a bounded number of jobs in
flight, and of their pixels, so memory stays flat for any folder size and any photo size.
"""

from __future__ import annotations

import collections
import contextlib
import threading
from collections.abc import Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from typing import TYPE_CHECKING, ClassVar

import cv2

from operations.jobs.engines import Engine, Report
from operations.jobs.job import Cancel, Interrupted
from operations.media.files import printable

if TYPE_CHECKING:
    from operations.jobs.job import FileResult, Job
    from operations.pipeline import Pipeline


# A photo holds about 30 bytes a pixel at its peak (photo, model map, refined alpha, edge
# colours, result, encoder; measured on a 24 MP photo on the salient path, whose edge stage is
# the heaviest): at most this many pixels are worked on at once, about 2 GB, however many
# workers there are. Eight workers on 45 MP photos would otherwise hold 11 GB; small photos
# never meet the bound.
PIXELS_IN_FLIGHT = 64_000_000


class PixelBudget:
    """Lets jobs in while the pixels of those in flight stay within ``limit``, in the order they
    asked (a large photo is not passed over for ever by small ones that would still fit, as a
    drop folder's stream of them could); a job alone always gets in (a photo larger than the
    budget runs, by itself)."""

    def __init__(self, limit: int, stopping: threading.Event) -> None:
        self.limit = limit
        self.used = 0
        self._stopping = stopping
        self._changed = threading.Condition()
        self._line: collections.deque[object] = collections.deque()

    @contextlib.contextmanager
    def held(self, pixels: int) -> Iterator[bool]:
        """Wait for this job's turn and until ``pixels`` fit (or nothing else is in flight),
        and hold them while the body runs: ``True``. ``False``, holding nothing, when the run
        stops first: the job is not to begin."""
        turn = object()
        admitted = False
        with self._changed:
            self._line.append(turn)
            try:
                while not self._stopping.is_set():
                    if self._line[0] is turn and (
                        not self.used or self.used + pixels <= self.limit
                    ):
                        self.used += pixels
                        admitted = True
                        break
                    self._changed.wait(0.1)
            finally:
                self._line.remove(turn)
                self._changed.notify_all()  # the next in line may fit now
        if not admitted:
            yield False
            return
        try:
            yield True
        finally:
            with self._changed:
                self.used -= pixels
                self._changed.notify_all()


class LocalEngine(Engine):
    """Runs jobs on a thread pool of ``--workers`` threads around one pipeline, built when the
    engine is opened (so a model that cannot load stops the run before anything is generated)."""

    name: ClassVar[str] = "local"
    pixels_in_flight: ClassVar[int] = PIXELS_IN_FLIGHT

    def open(self) -> None:
        from tqdm import tqdm

        # The bar is up at once: loading the model (and compiling, the first time) is shown.
        self.bar = tqdm(
            total=0,
            unit="img",
            desc="loading the model",
            bar_format="{desc}",
            disable=None if self.progress else True,
            dynamic_ncols=True,
        )
        self._owned = self.pipeline is None
        self._video_lock = threading.Lock()
        self._stopping = threading.Event()
        try:
            if self.pipeline is None:
                from operations.build import build_pipeline

                self.pipeline = build_pipeline(self.recipe, background=self.background)
        except BaseException:
            self.bar.close()
            raise

    def close(self) -> None:
        self.bar.close()
        if self._owned and self.pipeline is not None:
            self.pipeline.close()
            self.pipeline = None

    def _process(self, job: Job, pipeline: Pipeline) -> FileResult:
        """A photo as it is; a job that runs alone (a video: it has threads of its own for its
        frames, and two at once would only hold twice the frames) alone, with a bar of its
        frames under the bar of files."""
        if not job.runs_alone:
            return job.process(pipeline, self.settings.jobs, cancel=self._cancel)
        from tqdm import tqdm

        with self._video_lock:
            bar = tqdm(
                total=0,
                unit="frame",
                desc=printable(job.relative.name)[:40],
                leave=False,
                position=1,
                disable=None if self.progress else True,
                dynamic_ncols=True,
            )

            def progress(done: int, expected: int) -> None:
                if self._stopping.is_set():  # Ctrl-C: the video stops, not only the queue
                    raise Interrupted
                if expected > bar.total:
                    bar.total = expected
                bar.update(done - bar.n)

            try:
                return job.process(pipeline, self.settings.jobs, progress, self._cancel)
            finally:
                bar.close()

    def run(self, jobs: Sequence[Job], report: Report) -> None:
        pipeline = self.pipeline
        assert pipeline is not None, "the engine is closed"
        # The run's background may have been generated since the pipeline was built: the style
        # network (--nst) is built for it now.
        pipeline.background.load()
        self._stopping.clear()
        self._cancel = Cancel()

        workers = self.settings.workers
        bar = self.bar  # its clock starts now: its rate is the summary line's
        bar.bar_format = None
        bar.set_description_str("", refresh=False)
        bar.reset(total=len(jobs))
        pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="bgswap")
        # The batch is parallel across images; OpenCV's own threads inside each call would only
        # contend with ours (measured: ~5 % slower on 2 cores). Restored afterwards.
        cv_threads = cv2.getNumThreads()
        if workers > 1:
            cv2.setNumThreads(1)
        pending: dict[Future[FileResult | None], Job] = {}
        # Every job a worker finished, as the worker saw it: a Ctrl-C (its KeyboardInterrupt
        # lands on any line of the main thread) between a submit and its future's entry in
        # ``pending``, or inside a collection, cannot lose a result written on disk (CI once
        # counted 5 of 6 files written); each is still reported once.
        finished: dict[Job, FileResult] = {}
        reported: set[Job] = set()
        lock = threading.Lock()

        budget = PixelBudget(self.pixels_in_flight, self._stopping)

        def work(job: Job) -> FileResult | None:
            with budget.held(job.pixels()) as admitted:
                if not admitted:  # the run stopped before its turn: as if still queued
                    return None
                result = self._process(job, pipeline)
            with lock:
                finished[job] = result
            return result

        def tell(job: Job, result: FileResult) -> None:
            if job not in reported:
                reported.add(job)
                report(job, result)

        def collect(done: set[Future[FileResult | None]]) -> None:
            for future in done:
                job, result = pending.pop(future), future.result()
                if result is not None:  # None: never begun (reported by no one, redone later)
                    tell(job, result)
                    bar.update()

        try:
            # At most 2 × workers jobs in flight, so memory stays bounded.
            for job in jobs:
                if len(pending) >= 2 * workers:
                    collect(self._some_done(pending))
                pending[pool.submit(work, job)] = job
            while pending:
                collect(self._some_done(pending))
        finally:
            # On Ctrl-C: queued jobs are dropped, running ones finish (unless ``abandon`` is set:
            # a second Ctrl-C), and every finished one is reported.
            pool.shutdown(wait=False, cancel_futures=True)
            self._stopping.set()
            # Not the cancelled ones: wait() only counts a cancelled future once a worker has
            # picked it up, which a drained queue never lets happen.
            running = [f for f in pending if not f.cancelled()]
            while running and not self.abandon.is_set():
                running = list(wait(running, timeout=0.1).not_done)
            if running:  # abandoned: they write nothing from now on, and what they wrote counts
                self._cancel.set()
                placed = [f for f in running if pending[f] in self._cancel.committed]
                wait(placed)
            cv2.setNumThreads(cv_threads)
            collect({f for f in pending if f.done() and not f.cancelled()})
            with lock:
                late = [(job, result) for job, result in finished.items() if job not in reported]
            for job, result in late:
                tell(job, result)
            bar.close()

    def _some_done(
        self, futures: dict[Future[FileResult | None], Job]
    ) -> set[Future[FileResult | None]]:
        """Wait until at least one job is done. In short waits: a signal the kernel hands to
        another thread (FFmpeg's, a worker's) only runs its Python handler when the main thread
        wakes, and a wait for a long job (a video) would hold Ctrl-C back until the job ended;
        and a stop asked for is honoured here even when the signal's own exception was lost."""
        while True:
            if self.stop.is_set():
                raise KeyboardInterrupt
            done = wait(futures, timeout=0.1, return_when=FIRST_COMPLETED).done
            if done:
                return done
