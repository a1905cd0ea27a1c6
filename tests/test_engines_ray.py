"""--engine ray on a local Ray instance with 2 CPUs: same outputs as local, errors reported the
same way, a worker killed mid-run, resume."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import numpy as np
import pytest

import run
from tests.helpers import BACKGROUND

ray = pytest.importorskip("ray")


@pytest.fixture(scope="module", autouse=True)
def local_ray():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="ERROR")
    yield
    ray.shutdown()


def _run(capsys, source: Path, out: Path, *extra: object) -> tuple[int, dict]:
    summary = out.parent / f"{out.name}.json"
    args = ["-i", source, "-o", out, "-b", BACKGROUND, "--summary", summary, "-q", *extra]
    code = run.main([str(a) for a in args])
    capsys.readouterr()
    return code, json.loads(summary.read_text())


def test_ray_matches_local_pixel_for_pixel(photo_dir: Path, tmp_path: Path, capsys) -> None:
    (photo_dir / "broken.jpg").write_bytes(b"not a photo")
    same = ("--report", "--harmonize", "--light-wrap", "--shadow")  # every stage, both engines
    local_code, local = _run(capsys, photo_dir, tmp_path / "local", *same)
    ray_code, distributed = _run(capsys, photo_dir, tmp_path / "ray", "--engine", "ray", *same)
    assert local_code == ray_code == 1  # the broken file fails in both

    def tree(folder: Path) -> list[str]:
        return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))

    names = tree(tmp_path / "local")
    assert names == tree(tmp_path / "ray")
    assert [n for n in names if "/" not in n] == [
        "astronaut.png",
        "grace_hopper.png",
        "report.html",
        "report_files",
    ]
    for name in names:  # outputs and the review page's thumbnails
        if name.endswith((".png", ".jpg")):
            local_bytes = (tmp_path / "local" / name).read_bytes()
            assert local_bytes == (tmp_path / "ray" / name).read_bytes()

    def shape(report: dict) -> list[tuple]:
        return [
            (Path(f["input"]).name, f["status"], f["error"], f["doubt"], f["flags"])
            for f in report["files"]
        ]

    assert shape(local) == shape(distributed)
    assert local["counts"] == distributed["counts"] == {"ok": 2, "skipped": 0, "failed": 1}


def test_a_worker_killed_mid_run_loses_nothing(photo_dir, tmp_path, capsys, monkeypatch) -> None:
    from operations.jobs.engines import ray as ray_engine

    marker = tmp_path / "crashed"

    class CrashOnce(ray_engine.Worker):
        """The first worker to get a row dies at once, as on a lost node (a local class: Ray
        pickles it by value, so the worker processes need not import this test module)."""

        def __call__(self, batch):
            if not marker.exists():
                marker.write_text(str(os.getpid()))
                os._exit(1)
            return super().__call__(batch)

    monkeypatch.setattr(ray_engine, "Worker", CrashOnce)
    code, report = _run(capsys, photo_dir, tmp_path / "out", "--engine", "ray")
    assert marker.exists()  # a worker did die
    assert code == 0 and report["counts"] == {"ok": 2, "skipped": 0, "failed": 0}
    files = sorted((tmp_path / "out").iterdir())
    assert [p.name for p in files] == ["astronaut.png", "grace_hopper.png"]  # none duplicated
    from PIL import Image

    for path in files:
        with Image.open(path) as image:
            image.load()  # complete, not truncated


def test_ray_resume_skips_what_exists(photo_dir: Path, tmp_path: Path, capsys) -> None:
    _run(capsys, photo_dir, tmp_path / "out", "--engine", "ray")
    code, report = _run(capsys, photo_dir, tmp_path / "out", "--engine", "ray")
    assert code == 0 and report["counts"] == {"ok": 0, "skipped": 2, "failed": 0}


def test_without_ray_installed_the_error_says_how(monkeypatch, photo_dir, tmp_path, capsys):
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray → ImportError
    monkeypatch.setitem(sys.modules, "ray.data", None)
    code = run.main(
        ["-i", str(photo_dir), "-o", str(tmp_path / "o"), "-b", str(BACKGROUND), "--engine", "ray"]
    )
    err = capsys.readouterr().err
    assert code == 2 and "requirements-ray.txt" in err


def test_a_worker_larger_than_any_node_is_refused_in_one_line(photo_dir, tmp_path, capsys):
    code = run.main(
        [
            "-i",
            str(photo_dir),
            "-o",
            str(tmp_path / "o"),
            "-b",
            str(BACKGROUND),
            "--engine",
            "ray",
            "--cpus-per-worker",
            "4",
        ]
    )
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1
    assert "--cpus-per-worker '4.0': no node of the cluster has that many CPUs" in err


def test_workers_is_the_local_engines_setting(photo_dir, tmp_path, capsys):
    code = run.main(
        [
            "-i",
            str(photo_dir),
            "-o",
            str(tmp_path / "o"),
            "-b",
            str(BACKGROUND),
            "--engine",
            "ray",
            "--workers",
            "7",
        ]
    )
    assert code == 2 and "--workers '7': goes with --engine local" in capsys.readouterr().err


def test_a_video_is_one_task_with_the_local_engines_output(tmp_path: Path, capsys) -> None:
    from tests.helpers import make_clip, read_clip

    source = tmp_path / "in"
    source.mkdir()
    make_clip(source / "pan.mp4", frames=12)
    exact = ("--save-cutout", "--video-format", "png")  # the frames, as lossless PNGs too
    local_code, local = _run(capsys, source, tmp_path / "local", *exact)
    ray_code, distributed = _run(capsys, source, tmp_path / "ray", "--engine", "ray", *exact)
    assert local_code == ray_code == 0
    cutouts = sorted(p.name for p in (tmp_path / "local" / "pan.cutout").iterdir())
    assert len(cutouts) == 13 and cutouts[-1] == "audio.m4a"
    for name in cutouts:  # the same frames, byte for byte
        ours = (tmp_path / "local" / "pan.cutout" / name).read_bytes()
        assert ours == (tmp_path / "ray" / "pan.cutout" / name).read_bytes(), name
    frames, times, audio, _ = read_clip(tmp_path / "local" / "pan.mp4")
    ray_frames, ray_times, ray_audio, _ = read_clip(tmp_path / "ray" / "pan.mp4")
    assert len(frames) == len(ray_frames) == 12 and times == ray_times and audio == ray_audio
    # The same frames encoded by x264, whose frame threads make its output vary a little from
    # run to run with the machine's load (checked: the same frames in, files that decode up to
    # ~0.5 apart on average): close, not equal. A wrong frame is tens apart.
    for ours, theirs in zip(frames, ray_frames, strict=True):
        assert np.abs(ours.astype(int) - theirs).mean() < 2.0
    assert local["files"][0]["extra"]["video"]["frames"] == 12
    assert distributed["files"][0]["extra"]["video"]["frames"] == 12
