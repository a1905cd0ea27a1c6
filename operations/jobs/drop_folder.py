"""A drop folder (``--watch``, ``--delete-input``): what arrives is planned against the
ledger, run on the engine, and an input is deleted only once it has earned it.

Every file in the folder, those there at the start included, is taken once it has settled
(:mod:`operations.jobs.watch`). Each arrival is then one of:

- **done before**: the ledger (:mod:`operations.jobs.ledger`) has a line for this very content whose
  outputs are still there as written: nothing to do (with ``--delete-input``: deleted);
- **a copy that went on**: its last outputs were made from content cut short (a video with
  frames missing): made again under the same names;
- **new content under a name already done** (a rewrite, a file dropped again): made under the
  next free name, ``photo-2.png`` (``--overwrite``: the same names, replaced);
- **new**: made under the names a batch gives.

A job whose input changed while it was processed writes nothing, and the file comes back
once it settles; one that failed is tried again each time the file changes, up to
:data:`MAX_TRIES` times. An input is deleted only when the ledger has the job's line, the line
says its content was whole, every output is still the file that was written, the input still
holds the bytes that were read (size, time, inode, and a fresh BLAKE2b of its content), and no
other program has it open (where the system can tell): anything else keeps it, and its row
says why.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from operations.errors import require
from operations.jobs.job import FileResult, Job
from operations.jobs.ledger import Ledger, Made
from operations.jobs.watch import DEFAULT_SETTLE, Watcher, ignore_lease_breaks, open_elsewhere
from operations.media.files import printable

if TYPE_CHECKING:
    from operations.jobs.engines import Engine, Report

log = logging.getLogger("backgroundswap")

MAX_TRIES = 10  # a file that keeps failing is tried again on change at most this often
RETRY = 0.5  # seconds between tries to delete an input another program still has open

# plan_outputs with the run's format and side files bound: (inputs, taken=, busy=, again=).
Namer = Callable[..., dict[Path, list[Path]]]
# A job for (source, relative, outputs, index, replace).
MakeJob = Callable[[Path, Path, list[Path], int, bool], Job]


@dataclass(frozen=True)
class DropSettings:
    """What a drop folder reads of the run."""

    root: Path  # the watched (input) folder
    output: Path  # the output folder, which holds the ledger
    recursive: bool = False
    exclude: tuple[Path, ...] = ()  # never taken: the output folder, the summary, the page
    settle: float = DEFAULT_SETTLE
    delete_input: bool = False
    overwrite: bool = False

    def __post_init__(self) -> None:
        settle = self.settle
        require(0 <= settle <= 3600, "settle", settle, "must be between 0 and 3600 seconds")


class DropFolder:
    """Watches ``settings.root`` and runs what arrives on ``engine`` until Ctrl-C or SIGTERM.

    Args:
        settings: the drop folder's settings.
        engine: where the jobs run (already opened).
        report: called once per row, as the batch's own ``report``.
        namer: names outputs (:func:`operations.media.files.plan_outputs`, the run's format bound).
        make_job: makes a photo's or a video's job.
        first_index: the first job's index (seeds of per-photo backgrounds count from it).
        stop: once set, the watch ends (:class:`KeyboardInterrupt` from its next look).
    """

    def __init__(
        self,
        settings: DropSettings,
        *,
        engine: Engine,
        report: Report,
        namer: Namer,
        make_job: MakeJob,
        first_index: int = 0,
        stop: threading.Event | None = None,
    ) -> None:
        self.settings, self.engine, self.report = settings, engine, report
        self.namer, self.make_job = namer, make_job
        self.stop = stop if stop is not None else threading.Event()
        self.watcher = Watcher(
            settings.root,
            recursive=settings.recursive,
            exclude=settings.exclude,
            settle=settings.settle,
        )
        self.ledger = Ledger(settings.output)
        self.jobs: list[Job] = []  # every job planned, in order
        self._index = first_index
        self._names: dict[Path, tuple[Path, ...]] = {}  # each input's names in this run
        self._tries: Counter[Path] = Counter()  # failures and cut-short results, by input
        self._notes: dict[Job, list[str]] = {}  # said in a job's row when it is reported
        self._pending: dict[Path, tuple[Job, FileResult, Made]] = {}  # open elsewhere

    def run(self) -> None:
        """Take arrivals until :class:`KeyboardInterrupt` (Ctrl-C, SIGTERM)."""
        ignore_lease_breaks()
        if (dropped := self.ledger.compact()) > 0:
            log.debug("the ledger's %d lines for outputs no longer there were dropped", dropped)
        log.info("watching %s for new files (Ctrl-C ends it)", printable(self.settings.root))
        while True:
            until = time.monotonic() + RETRY if self._pending else None
            arrivals = self.watcher.wait(until=until, stop=self.stop)
            for job, result, made in list(self._pending.values()):
                self._earn(job, result, made)
            if arrivals:
                self.take(arrivals)

    def take(self, arrivals: list[Path]) -> None:
        """Plan the settled files, report the ones already done, run the rest."""
        self.ledger.refresh()
        todo = self._plan(arrivals)
        outcomes: dict[Job, FileResult] = {}

        def report(job: Job, result: FileResult) -> None:
            result.warnings[:0] = self._notes.pop(job, [])
            self.report(job, result)
            outcomes[job] = result

        self.engine.run(todo, report)
        self.ledger.refresh()  # the jobs' own lines
        for job in todo:
            if job in outcomes:
                self._after(job, outcomes[job])

    def _plan(self, arrivals: list[Path]) -> list[Job]:
        """The jobs to run for the arrivals; those with nothing to do are reported here (and
        deleted, if they have earned it)."""
        out, overwrite = self.settings.output, self.settings.overwrite
        others = {n for rel, names in self._names.items() if rel not in arrivals for n in names}
        plan = self.namer(arrivals, taken=others, busy=self._owned_by_another)
        todo: list[Job] = []
        again: list[Path] = []
        for rel in sorted(arrivals, key=lambda p: p.as_posix()):
            names = tuple(plan[rel])
            try:
                info = (self.settings.root / rel).stat()
            except OSError:  # gone already
                continue
            if self._tries[rel] >= MAX_TRIES:
                self._give_up(rel, names)
                continue
            done = next(
                (m for m in reversed(self.ledger.made(rel)) if m.record.same_stat(info)), None
            )
            if done is not None and done.whole(out) and not overwrite:
                self._done_before(rel, done)
                continue
            previous = self.ledger.latest(rel, names)
            if previous is not None and previous.complete and previous.whole(out):
                if not overwrite:  # new content under a name done: the next free name
                    again.append(rel)
                    continue
            elif previous is None and not overwrite and all((out / n).exists() for n in names):
                self._made_elsewhere(rel, names)
                continue
            todo.append(self._job(rel, names, replace=previous is not None))
            log.debug("%s: taken (%s)", printable(rel), "again" if previous else "new")
        if again:
            given = others | {n for job in todo for n in self._names[job.relative]}
            renamed = self.namer(
                again,
                taken=given,
                busy=lambda rel, name: (out / name).exists() or self._owned_by_another(rel, name),
                again=set(again),
            )
            for rel in again:
                job = self._job(rel, tuple(renamed[rel]), replace=False)
                self._notes[job] = [
                    f"a new file under a name already done: written as "
                    f"{printable(renamed[rel][0])} (--overwrite replaces instead)"
                ]
                todo.append(job)
        return todo

    def _job(self, rel: Path, names: tuple[Path, ...], *, replace: bool) -> Job:
        outputs = [self.settings.output / name for name in names]
        job = self.make_job(self.settings.root / rel, rel, outputs, self._index, replace)
        self._index += 1
        self._names[rel] = names
        self.jobs.append(job)
        return job

    def _owned_by_another(self, rel: Path, name: Path) -> bool:
        """The output ``name`` exists and the ledger says another input made it (an input since
        deleted, whose result must not be written over)."""
        owner = self.ledger.owner(name)
        return owner is not None and owner != rel and (self.settings.output / name).exists()

    def _row(self, rel: Path, names: tuple[Path, ...]) -> tuple[Job, FileResult]:
        job = self._job(rel, names, replace=False)
        return job, FileResult(str(job.source), str(job.output), "skipped")

    def _done_before(self, rel: Path, made: Made) -> None:
        """Its outputs were made from this very content: nothing to do but (maybe) delete it."""
        job, result = self._row(rel, made.names)
        self.report(job, result)
        if made.complete:
            self._earn(job, result, made)
        else:
            self._keep(
                job,
                result,
                "incomplete: its outputs were made from content cut short; kept, tried again "
                "when it changes",
            )

    def _made_elsewhere(self, rel: Path, names: tuple[Path, ...]) -> None:
        """Outputs under its names, but no line of the ledger says what made them (a run
        before the ledger, another tool): skipped, as a batch resumes; never deleted."""
        job, result = self._row(rel, names)
        self.report(job, result)
        if self.settings.delete_input:
            self._keep(
                job,
                result,
                "its outputs exist, but the ledger has no record of the content they were made "
                "from (--overwrite makes them again)",
            )

    def _give_up(self, rel: Path, names: tuple[Path, ...]) -> None:
        job, result = self._row(rel, names)
        result.warnings.append(f"not tried again: it failed or was cut short {MAX_TRIES} times")
        self.report(job, result)

    def _after(self, job: Job, result: FileResult) -> None:
        """A job's outcome: its input deleted if earned; tried again when it changes if not."""
        if result.status == "failed":
            self._tries[job.relative] += 1
            if "changed while it was processed" in (result.error or ""):
                self._say(job, result, "done again once it settles")
            elif self._tries[job.relative] < MAX_TRIES:
                self._say(
                    job,
                    result,
                    f"kept; tried again when it changes ({self._tries[job.relative]} of "
                    f"{MAX_TRIES})",
                )
            return
        if result.status != "ok":
            return
        names = tuple(path.relative_to(self.settings.output) for path in job.outputs)
        made = self.ledger.latest(job.relative, names)
        if made is None:
            self._keep(job, result, "the ledger has no line for its outputs")
        elif not made.complete:
            self._tries[job.relative] += 1
            cut = result.extra.get("incomplete") or "frames missing or damaged"
            self._keep(job, result, f"incomplete: {cut}; kept, tried again when it changes")
        else:
            self._tries.pop(job.relative, None)
            self._earn(job, result, made)

    def _earn(self, job: Job, result: FileResult, made: Made) -> None:
        """--delete-input: delete the input if it has earned it (see the module's notes)."""
        if not self.settings.delete_input:
            return
        self._pending.pop(job.source, None)
        if not job.source.exists():
            return  # gone already (deleted by another watcher, or by hand)
        reason = self._why_kept(job.source, made)
        if reason == _OPEN:
            self._pending[job.source] = (job, result, made)
            result.extra["input_kept"] = reason
            return
        if reason is not None:
            self._keep(job, result, reason)
            return
        try:
            job.source.unlink()
        except FileNotFoundError:
            return
        except OSError as exc:
            self._keep(job, result, f"it could not be deleted ({exc.strerror})")
            return
        self.ledger.deleted(job.relative, made.record)
        result.extra.pop("input_kept", None)
        result.extra["input_deleted"] = True
        log.debug("%s: deleted (its outputs are whole)", printable(job.relative))

    def _why_kept(self, source: Path, made: Made) -> str | None:
        """Why ``source`` may not be deleted (``None``: it may)."""
        if not made.whole(self.settings.output):
            return "its outputs are no longer all there as they were written"
        if open_elsewhere(source):
            return _OPEN
        if not made.record.holds(source):  # its bytes, read again
            return "it changed after it was read: done again once it settles"
        try:
            last = source.stat()
        except OSError:
            return "it could not be looked at again"
        if not made.record.same_stat(last) or open_elsewhere(source):
            return "it changed after it was read: done again once it settles"
        return None

    def _keep(self, job: Job, result: FileResult, reason: str) -> None:
        result.extra["input_kept"] = reason
        self._say(job, result, f"input kept: {reason}")

    def _say(self, job: Job, result: FileResult, text: str) -> None:
        result.warnings.append(text)
        log.warning("%s: %s", printable(job.relative), text)


_OPEN = "open in another program (a copy still under way?): deleted once it is closed"
