"""The batch: planning jobs, skipping finished ones, engines by name, the summary."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from operations.batch import plan_jobs, run_batch
from operations.build import build_pipeline
from operations.options import Options, OptionsError
from tests.helpers import SD, DiscSegmenter, needs, save_rgb


def test_plan_jobs_refuses_an_empty_folder(tmp_path: Path, background_file: Path) -> None:
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "sub").mkdir()
    save_rgb(tmp_path / "in" / "sub" / "a.png")
    options = Options(input=tmp_path / "in", output=tmp_path / "out", bg=background_file)
    with pytest.raises(OptionsError, match="--recursive"):
        plan_jobs(options.validated())
    options.recursive = True
    assert [j.relative for j in plan_jobs(options.validated())] == [Path("sub/a.png")]


def test_batch_with_reused_pipeline_and_summary(tmp_path: Path, background_file: Path) -> None:
    source = tmp_path / "in"
    for i in range(5):
        save_rgb(source / f"p{i}.jpg", seed=i)
    (source / "broken.jpg").write_bytes(b"not really")
    options = Options(
        input=source,
        output=tmp_path / "out",
        bg=background_file,
        summary=tmp_path / "s.json",
        workers=3,
        save_mask=True,
        save_cutout=True,
    ).validated()
    segmenter = DiscSegmenter()
    pipeline = build_pipeline(options.recipe(), segmenter=segmenter)
    batch = run_batch(options, pipeline=pipeline, progress=False)
    assert batch.exit_code == 1 and batch.count("ok") == 5 and batch.count("failed") == 1
    assert segmenter.calls == 5  # the model is built once and called once per photo
    assert [Path(f.input).name for f in batch.files] == [
        "broken.jpg",
        "p0.jpg",
        "p1.jpg",
        "p2.jpg",
        "p3.jpg",
        "p4.jpg",
    ]
    mask = Image.open(tmp_path / "out" / "p0.mask.png")
    cutout = Image.open(tmp_path / "out" / "p0.cutout.png")
    assert mask.mode == "L" and cutout.mode == "RGBA" and mask.size == (64, 48)
    np.testing.assert_array_equal(np.asarray(cutout)[..., 3], np.asarray(mask))
    report = json.loads((tmp_path / "s.json").read_text())
    assert report["counts"] == {"ok": 5, "skipped": 0, "failed": 1}
    assert report["files"][0]["error"].startswith("not an image")
    # A second run with the same pipeline: everything is skipped, nothing is recomputed.
    again = run_batch(options, pipeline=pipeline, progress=False)
    assert again.count("skipped") == 5 and segmenter.calls == 5 + 0
    assert again.count("failed") == 1  # the broken file is tried (and reported) again


@needs(*SD)
def test_a_model_that_cannot_load_stops_the_run_before_a_background_is_generated(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from operations import build
    from operations.segmenters.base import SegmenterError
    from operations.stages.background import BackgroundSource

    save_rgb(tmp_path / "in" / "a.png")
    options = Options(input=tmp_path / "in", output=tmp_path / "out", prompt="a beach").validated()
    generated = []
    monkeypatch.setattr(BackgroundSource, "prepare", lambda self, size: generated.append(size))

    def no_model(*args, **kwargs):
        raise SegmenterError("weights are not cached")

    monkeypatch.setattr(build, "build_pipeline", no_model)
    with pytest.raises(SegmenterError):
        run_batch(options, progress=False)
    assert generated == []  # minutes of generation are not spent on a run that cannot go on


# --- hardening: summaries, odd names, links, two runs at once ----------------------------------


def _photos(folder: Path, count: int, **size) -> Path:
    for i in range(count):
        save_rgb(folder / f"p{i:02d}.png", seed=i, **size)
    return folder


def test_a_summary_that_cannot_be_written_is_one_line_and_exit_1(
    tmp_path: Path, capsys, monkeypatch: pytest.MonkeyPatch
) -> None:
    import errno

    from operations import batch as batch_module
    from tests.helpers import cli

    source = _photos(tmp_path / "in", 2)
    bg = save_rgb(tmp_path / "bg.png")
    # A name longer than the file system allows (Errno 36) is known before any work: exit 2.
    long_name = tmp_path / ("s" * 300 + ".json")
    code, err = cli(capsys, "-i", source, "-o", tmp_path / "out", "-b", bg, "--summary", long_name)
    assert code == 2 and "File name too long" in err and err.count("\n") == 1
    # A full disk, simulated: the write fails with ENOSPC (a real small tmpfs needs root). The
    # work is kept, the failure is one line, the exit code says something went wrong.

    def full(path, write):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(batch_module, "write_atomic", full)
    code, err = cli(
        capsys, "-i", source, "-o", tmp_path / "out2", "-b", bg, "--summary", tmp_path / "s.json"
    )
    assert code == 1 and "Traceback" not in err
    assert [line for line in err.splitlines() if "summary" in line] == [
        f"could not write the summary {tmp_path / 's.json'}: No space left on device"
    ]
    assert len(list((tmp_path / "out2").glob("*.png"))) == 2


def test_names_that_are_not_utf8_are_processed_and_reported_exactly(tmp_path: Path) -> None:
    import json
    from urllib.parse import unquote_to_bytes

    source = tmp_path / "in"
    source.mkdir()
    raw = b"caf\xe9\nlatin1.png"  # Latin-1 bytes and a newline in one name
    save_rgb(Path(os.fsdecode(bytes(source).rstrip(b"/") + b"/" + raw)))
    options = Options(
        input=source, output=tmp_path / "out", blur=True, summary=tmp_path / "s.json"
    ).validated()
    batch = run_batch(
        options,
        pipeline=build_pipeline(options.recipe(), segmenter=DiscSegmenter()),
        progress=False,
    )
    assert batch.count("ok") == 1
    row = json.loads((tmp_path / "s.json").read_bytes())["files"][0]
    assert row["input"].endswith("caf\ufffd\nlatin1.png")  # readable
    assert unquote_to_bytes(row["input_bytes"]).endswith(raw)  # exact
    assert os.listdir(os.fsencode(tmp_path / "out")) == [b"caf\xe9\nlatin1.png"]


def test_a_summary_inside_the_input_folder_is_not_read_as_an_input(tmp_path: Path) -> None:
    source = _photos(tmp_path / "in", 2)
    options = Options(
        input=source, output=tmp_path / "out", blur=True, summary=source / "report.json"
    ).validated()
    pipeline = build_pipeline(options.recipe(), segmenter=DiscSegmenter())
    run_batch(options, pipeline=pipeline, progress=False)
    again = run_batch(options, pipeline=pipeline, progress=False)
    assert [Path(f.input).name for f in again.files] == ["p00.png", "p01.png"]
    assert again.exit_code == 0


def test_a_broken_link_fails_with_its_reason(tmp_path: Path) -> None:
    source = _photos(tmp_path / "in", 1)
    (source / "gone.png").symlink_to(tmp_path / "deleted.png")
    options = Options(input=source, output=tmp_path / "out", blur=True).validated()
    batch = run_batch(
        options,
        pipeline=build_pipeline(options.recipe(), segmenter=DiscSegmenter()),
        progress=False,
    )
    (failed,) = [f for f in batch.files if f.status == "failed"]
    assert failed.error.startswith("broken symbolic link: it points to")
    assert batch.exit_code == 1


def test_a_rerun_removes_what_a_killed_run_left_behind(tmp_path: Path) -> None:
    source = _photos(tmp_path / "in", 2)
    out = tmp_path / "out"
    out.mkdir()
    stale = [out / ".bgs-0123456789ab-k1ll3d00.tmp", out / ".bgs-0123456789ab.claim"]
    for path in stale:
        path.write_bytes(b"half a file")
        os.utime(path, (time.time() - 60, time.time() - 60))
    options = Options(input=source, output=out, blur=True).validated()
    run_batch(
        options,
        pipeline=build_pipeline(options.recipe(), segmenter=DiscSegmenter()),
        progress=False,
    )
    assert sorted(p.name for p in out.iterdir()) == ["p00.png", "p01.png"]


def test_two_runs_on_one_output_folder_split_the_work(tmp_path: Path) -> None:
    """Two real processes at once: every photo is done exactly once, by one or the other."""
    import json
    import subprocess
    import sys

    from tests.helpers import ROOT

    source = _photos(tmp_path / "in", 24, height=300, width=400)
    out = tmp_path / "out"
    command = [sys.executable, "run.py", "-i", source, "-o", out, "--blur", "-q", "--workers", "2"]
    runs = [
        subprocess.Popen(
            [*command, "--summary", tmp_path / f"s{n}.json"],
            cwd=ROOT,
            stderr=subprocess.PIPE,
            text=True,
        )
        for n in (1, 2)
    ]
    for run in runs:
        _, err = run.communicate(timeout=240)
        assert run.returncode == 0, err
    done = {}
    for n in (1, 2):
        for row in json.loads((tmp_path / f"s{n}.json").read_text())["files"]:
            if row["status"] == "ok":
                assert row["input"] not in done, "a photo was processed twice"
                done[row["input"]] = n
    assert len(done) == 24
    assert sorted(p.name for p in out.iterdir()) == [f"p{i:02d}.png" for i in range(24)]


def test_the_summary_line_counts_videos_in_frames() -> None:
    from operations.batch import BatchResult
    from operations.jobs.job import FileResult

    video = FileResult("clip.mp4", "clip.mp4", "ok", 10.0, extra={"video": {"frames": 300}})
    photos = [FileResult(f"p{n}.jpg", f"p{n}.png", "ok", 0.1) for n in range(4)]
    line = BatchResult([video, *photos], seconds=13.0, startup=1.0).summary_line()
    assert "1 video: 300 frames at 30.0 frames/s" in line and "4 photos at 2.00 images/s" in line
    line = BatchResult(photos, seconds=3.0, startup=1.0).summary_line()
    assert "2.00 images/s" in line and "frames" not in line
