"""A photo job: its own "process me" step writes every output atomically and never raises."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from operations.build import build_pipeline
from operations.jobs.job import JobSettings, PhotoJob
from operations.options import Options
from operations.pipeline import Pipeline
from tests.helpers import DiscSegmenter, save_rgb


def _pipeline(**settings) -> Pipeline:
    options = Options(blur=True, **settings).validated(batch=False)
    return build_pipeline(options.recipe(), segmenter=DiscSegmenter())


def _settings(**settings) -> JobSettings:
    return Options(blur=True, **settings).validated(batch=False).engine_settings().jobs


def test_a_photo_job_writes_its_outputs(tmp_path: Path) -> None:
    source = save_rgb(tmp_path / "in" / "a.jpg", 40, 50)
    out = tmp_path / "out"
    job = PhotoJob(source, Path("a.jpg"), (out / "a.png", out / "a.mask.png", out / "a.cut.png"))
    assert not job.done()
    result = _pipeline(save_mask=True, save_cutout=True).swap  # the same step, in memory
    decoded = np.asarray(Image.open(source))
    expected = result(np.ascontiguousarray(decoded))
    sides = {"save_mask": True, "save_cutout": True}
    outcome = job.process(_pipeline(**sides), _settings(**sides))
    assert outcome.status == "ok" and outcome.output == str(out / "a.png") and job.done()
    np.testing.assert_array_equal(np.asarray(Image.open(out / "a.png")), expected.image)
    mask = np.asarray(Image.open(out / "a.mask.png"))
    np.testing.assert_array_equal(mask, np.asarray(Image.open(out / "a.cut.png"))[..., 3])
    assert sorted(p.name for p in out.iterdir()) == ["a.cut.png", "a.mask.png", "a.png"]


def test_a_failing_job_reports_one_line_and_writes_nothing(tmp_path: Path) -> None:
    out = tmp_path / "out"
    missing = PhotoJob(tmp_path / "gone.jpg", Path("gone.jpg"), (out / "gone.png",))
    result = missing.process(_pipeline(), _settings())
    assert result.status == "failed" and result.output is None
    assert result.error == "input disappeared: deleted or moved during the run"
    text = tmp_path / "notes.jpg"
    text.write_text("not a photo")
    result = PhotoJob(text, Path("notes.jpg"), (out / "notes.png",)).process(
        _pipeline(), _settings()
    )
    assert result.status == "failed" and result.error.startswith("not an image")
    assert not out.exists() or not list(out.iterdir())  # no output, no claim, no temporary


def test_a_full_disk_names_the_output_not_our_temporary(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = save_rgb(tmp_path / "in" / "a.jpg", 40, 50)
    out = tmp_path / "out"
    job = PhotoJob(source, Path("a.jpg"), (out / "a.png",))

    def full(f) -> None:  # a write through the temporary's descriptor fails
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr("operations.jobs.job.encoder", lambda *args, **kwargs: full)
    result = job.process(_pipeline(), _settings())
    assert result.status == "failed"
    assert result.error == f"No space left on device: {out / 'a.png'}"
    assert list(out.iterdir()) == []  # the temporary went too
