"""Engines by name, the local engine's thread pool, and the layout's import rules (engines are
peers; low-level stages never touch files)."""

from __future__ import annotations

import ast
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from operations.build import build_background, build_pipeline
from operations.jobs.engines import ENGINES, create_engine
from operations.jobs.engines.local import LocalEngine
from operations.jobs.job import FileResult, Job, JobSettings
from operations.options import Options
from operations.pipeline import Pipeline
from tests.helpers import RAY, ROOT, DiscSegmenter, needs


@dataclass(frozen=True)
class SlowJob(Job):
    """A job that takes a while and records the thread it ran on."""

    def process(
        self, pipeline: Pipeline, settings: JobSettings, progress=None, cancel=None
    ) -> FileResult:
        return self.work(pipeline, settings)  # no claims: the paths are made up

    def work(
        self, pipeline: Pipeline, settings: JobSettings, progress=None, cancel=None
    ) -> FileResult:
        time.sleep(0.01 if self.index == 0 else 0.05)
        return FileResult(
            str(self.source),
            str(self.output),
            "ok",
            0.05,
            extra={"thread": threading.current_thread().name},
        )


def _jobs(count: int) -> list[Job]:
    return [SlowJob(Path(f"p{i}"), Path(f"p{i}"), (Path(f"o{i}"),), i) for i in range(count)]


def _local(workers: int) -> LocalEngine:
    options = Options(blur=True, workers=workers).validated(batch=False)
    pipeline = build_pipeline(options.recipe(), segmenter=DiscSegmenter())
    engine = create_engine(
        options.engine_settings(),
        options.recipe(),
        pipeline.background,
        pipeline=pipeline,
        progress=False,
    )
    assert isinstance(engine, LocalEngine)
    return engine


def test_the_local_engine_runs_every_job_once_in_parallel() -> None:
    engine = _local(workers=3)
    reported: list[FileResult] = []
    engine.run(_jobs(12), lambda job, result: reported.append(result))
    assert sorted(r.input for r in reported) == sorted(f"p{i}" for i in range(12))
    assert len({r.extra["thread"] for r in reported}) > 1  # more than one thread did the work


def test_ctrl_c_keeps_and_reports_the_jobs_that_finished() -> None:
    engine = _local(workers=2)
    reported: list[str] = []
    raised: list[BaseException] = []

    def report(job: Job, result: FileResult) -> None:
        reported.append(result.input)
        if len(reported) == 1:
            # Ctrl-C arrives while other jobs are running and more are queued (the first job is
            # the quick one: the others are all still in flight or waiting).
            raise KeyboardInterrupt

    def run() -> None:
        try:
            engine.run(_jobs(20), report)
        except KeyboardInterrupt as exc:
            raised.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    thread.join(timeout=30)
    assert not thread.is_alive(), "the engine hung after Ctrl-C"
    assert raised  # the interruption reaches the caller
    assert 1 < len(reported) < 20  # in-flight jobs finished and counted; queued ones dropped
    assert len(set(reported)) == len(reported)


def test_the_pixel_budget_holds_back_what_would_overflow_it_and_lets_one_in_alone() -> None:
    from operations.jobs.engines.local import PixelBudget

    stopping = threading.Event()
    budget = PixelBudget(100, stopping)
    with budget.held(250):  # alone, a job over the whole budget still runs
        assert budget.used == 250
    entered, leave = threading.Event(), threading.Event()

    def other(pixels: int) -> None:
        with budget.held(pixels):
            entered.set()
            leave.wait(5)

    with budget.held(60):
        thread = threading.Thread(target=other, args=(40,))
        thread.start()
        assert entered.wait(5)  # 60 + 40 fits: in beside it
        assert budget.used == 100
        leave.set()
        thread.join(5)
    entered.clear(), leave.clear()
    with budget.held(60):
        thread = threading.Thread(target=other, args=(60,))
        thread.start()
        assert not entered.wait(0.3)  # 60 + 60 > 100: it waits
    assert entered.wait(5)  # the first left: its turn
    leave.set()
    thread.join(5)
    assert budget.used == 0
    # In the order asked: a small job that would fit waits behind a large one waiting.
    order: list[str] = []
    release = threading.Event()

    def job(name: str, pixels: int, asked: threading.Event) -> None:
        asked.set()
        with budget.held(pixels):
            order.append(name)
            release.wait(5)

    with budget.held(60):
        asked_large, asked_small = threading.Event(), threading.Event()
        large = threading.Thread(target=job, args=("large", 70, asked_large))
        large.start()
        assert asked_large.wait(5) and not release.wait(0.2)  # 60 + 70: it waits
        small = threading.Thread(target=job, args=("small", 30, asked_small))
        small.start()
        assert asked_small.wait(5) and not release.wait(0.2)
        assert order == []  # 60 + 30 would fit, but the large one asked first
    release.set()
    for thread in (large, small):
        thread.join(5)
    assert order == ["large", "small"] and budget.used == 0
    with budget.held(90):
        stopping.set()
        with budget.held(20) as admitted:  # the run stopped while it waited: not to begin
            assert not admitted and budget.used == 90
    assert budget.used == 0


@dataclass(frozen=True)
class SizedJob(SlowJob):
    """A job of ``size`` pixels that records the pixels in flight with it; ``partner``: the
    index of a job it waits to see in flight before it ends."""

    size: int = 0
    partner: int | None = None

    def pixels(self) -> int:
        return self.size

    def work(
        self, pipeline: Pipeline, settings: JobSettings, progress=None, cancel=None
    ) -> FileResult:
        with FLIGHT["lock"]:
            FLIGHT["now"] += self.size
            FLIGHT["seen"].append((self.index, FLIGHT["now"], self.size))
        FLIGHT["in"][self.index].set()
        met = self.partner is None or FLIGHT["in"][self.partner].wait(5)
        time.sleep(0.02)
        with FLIGHT["lock"]:
            FLIGHT["now"] -= self.size
        return FileResult(str(self.source), str(self.output), "ok", 0.02, extra={"met": met})


FLIGHT: dict = {}


def test_the_local_engine_bounds_the_pixels_in_flight(monkeypatch) -> None:
    sizes = [30, 30, 60, 250, 60, 10, 40, 60]
    FLIGHT.update(lock=threading.Lock(), now=0, seen=[])
    FLIGHT["in"] = [threading.Event() for _ in sizes]
    engine = _local(workers=4)
    monkeypatch.setattr(engine, "pixels_in_flight", 100)
    jobs = [
        SizedJob(Path(f"p{i}"), Path(f"p{i}"), (Path(f"o{i}"),), i, size=size)
        for i, size in enumerate(sizes)
    ]
    # The two small ones fit together: each waits to see the other in flight.
    jobs[0] = SizedJob(Path("p0"), Path("p0"), (Path("o0"),), 0, size=30, partner=1)
    jobs[1] = SizedJob(Path("p1"), Path("p1"), (Path("o1"),), 1, size=30, partner=0)
    reported: list[FileResult] = []
    engine.run(jobs, lambda job, result: reported.append(result))
    assert sorted(r.input for r in reported) == sorted(f"p{i}" for i in range(len(sizes)))
    assert all(r.status == "ok" and r.extra["met"] for r in reported)  # not one at a time
    for index, in_flight, size in FLIGHT["seen"]:
        assert in_flight <= 100 or in_flight == size, (index, in_flight)  # over: only alone


def test_ctrl_c_leaves_the_jobs_waiting_for_room_unbegun_and_unreported(monkeypatch) -> None:
    engine = _local(workers=3)
    monkeypatch.setattr(engine, "pixels_in_flight", 100)
    sizes = [80] * 8  # one at a time: the other workers wait for room
    FLIGHT.update(lock=threading.Lock(), now=0, seen=[], **{"in": [threading.Event()] * 8})
    jobs = [
        SizedJob(Path(f"p{i}"), Path(f"p{i}"), (Path(f"o{i}"),), i, size=size)
        for i, size in enumerate(sizes)
    ]
    reported: list[FileResult] = []

    def report(job: Job, result: FileResult) -> None:
        reported.append(result)
        if len(reported) == 1:
            raise KeyboardInterrupt  # while two workers wait for the budget

    with pytest.raises(KeyboardInterrupt):
        engine.run(jobs, report)
    begun = {f"p{index}" for index, _, _ in FLIGHT["seen"]}
    assert 1 <= len(reported) < len(jobs)
    # Only what began is reported, and as it ended: none as a failure it never had.
    assert {r.input for r in reported} == begun and all(r.status == "ok" for r in reported)


@needs(*RAY)
def test_engines_are_chosen_by_name_and_own_what_they_build() -> None:
    assert set(ENGINES) == {"local", "ray"}
    options = Options(blur=True).validated(batch=False)
    source = build_background(options.recipe())
    with create_engine(
        options.engine_settings(), options.recipe(), source, progress=False
    ) as engine:
        assert type(engine).name == "local" and engine.pipeline is not None
        assert engine.pipeline.background is source
        segmenter = engine.pipeline.segmenter
    assert engine.pipeline is None and segmenter._graph is None  # closed with the engine
    given = build_pipeline(options.recipe(), segmenter=DiscSegmenter())
    with create_engine(
        options.engine_settings(), options.recipe(), given.background, pipeline=given
    ) as engine:
        pass
    assert engine.pipeline is given  # a caller's pipeline is the caller's to close
    ray_options = Options(blur=True, engine="ray").validated(batch=False)
    with pytest.raises(ValueError, match="builds its pipelines on its workers"):
        create_engine(ray_options.engine_settings(), ray_options.recipe(), source, pipeline=given)


def _imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return {name for name in found if name.startswith("operations")}


def test_the_layouts_import_rules() -> None:
    package = ROOT / "operations"
    engines = package / "jobs" / "engines"
    # Engines are peers: neither imports the other.
    assert not {m for m in _imports(engines / "local.py") if "engines.ray" in m}
    assert not {m for m in _imports(engines / "ray.py") if "engines.local" in m}
    # The per-image pipeline knows nothing of batches, jobs or engines.
    batch = ("operations.batch", "operations.jobs")
    assert not {m for m in _imports(package / "pipeline.py") if m.startswith(batch)}
    # Low-level stages work on arrays and never import file input/output.
    file_io = (
        *batch,
        "operations.media.files",
        "operations.media.decode",
        "operations.media.encode",
        "operations.media.png",
    )
    low_level = [
        "media/resize.py",
        "stages/blur.py",
        "stages/composite.py",
        "stages/matting.py",
        "stages/matting_kernels.py",
        "stages/temporal.py",
    ]
    low_level += [f"segmenters/{p.name}" for p in (package / "segmenters").glob("*.py")]
    for name in low_level:
        bad = {m for m in _imports(package / name) if m.startswith(file_io)}
        assert not bad, (name, bad)


def test_choosing_the_local_engine_imports_no_ray() -> None:
    code = (
        "import sys\n"
        "from operations.build import build_background\n"
        "from operations.jobs.engines import create_engine\n"
        "from operations.options import Options\n"
        "options = Options(blur=True).validated(batch=False)\n"
        "recipe = options.recipe()\n"
        "create_engine(options.engine_settings(), recipe, build_background(recipe)).close()\n"
        "assert 'ray' not in sys.modules and 'operations.jobs.engines.ray' not in sys.modules\n"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
