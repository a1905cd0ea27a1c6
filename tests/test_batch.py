"""The batch: planning jobs, skipping finished ones, engines by name, the summary."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from operations.batch import plan_jobs, run_batch
from operations.options import Options, OptionsError
from operations.pipeline import Pipeline
from tests.helpers import DiscSegmenter, save_rgb


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
        input=source, output=tmp_path / "out", bg=background_file, summary=tmp_path / "s.json",
        workers=3, save_mask=True, save_cutout=True,
    ).validated()  # fmt: skip
    segmenter = DiscSegmenter()
    pipeline = Pipeline(options, segmenter=segmenter)
    batch = run_batch(options, pipeline=pipeline, progress=False)
    assert batch.exit_code == 1 and batch.count("ok") == 5 and batch.count("failed") == 1
    assert segmenter.calls == 5  # the model is built once and called once per photo
    assert [Path(f.input).name for f in batch.files] == [
        "broken.jpg", "p0.jpg", "p1.jpg", "p2.jpg", "p3.jpg", "p4.jpg"
    ]  # fmt: skip
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


def test_a_model_that_cannot_load_stops_the_run_before_a_background_is_generated(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from operations.background import BackgroundSource
    from operations.engines import local
    from operations.segmenters.base import SegmenterError

    save_rgb(tmp_path / "in" / "a.png")
    options = Options(input=tmp_path / "in", output=tmp_path / "out", prompt="a beach").validated()
    generated = []
    monkeypatch.setattr(BackgroundSource, "prepare", lambda self, size: generated.append(size))

    def no_model(*args, **kwargs):
        raise SegmenterError("weights are not cached")

    monkeypatch.setattr(local, "Pipeline", no_model)
    with pytest.raises(SegmenterError):
        run_batch(options, progress=False)
    assert generated == []  # minutes of generation are not spent on a run that cannot go on
