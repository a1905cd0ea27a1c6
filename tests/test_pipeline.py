from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from operations import BackgroundSwapper, swap_background
from operations.background import Background
from operations.options import Options, OptionsError
from operations.pipeline import Pipeline, plan_jobs, run_batch
from tests.helpers import BACKGROUND, SAMPLES, DiscSegmenter, random_rgb, save_rgb


def _pipeline(**settings) -> Pipeline:
    options = Options(**settings).validated(batch=False)
    return Pipeline(options, segmenter=DiscSegmenter())


def test_swap_keeps_subject_and_replaces_background(background_file: Path) -> None:
    pipeline = _pipeline(bg=background_file)
    photo = np.full((60, 80, 3), 90, np.uint8)
    result = pipeline.swap(photo)
    assert result.image.shape == photo.shape and result.image.dtype == np.uint8
    assert result.image[30, 40].tolist() == [90, 90, 90]  # disc centre: alpha 1
    assert result.image[2, 2].tolist() == [255, 0, 0]  # corner: alpha 0, left half red
    assert result.image[2, 77].tolist() == [0, 0, 255]
    assert result.warnings == []


def test_transparent_input_pixels_are_never_subject(background_file: Path) -> None:
    pipeline = _pipeline(bg=background_file)
    photo = np.full((60, 80, 3), 90, np.uint8)
    see_through = np.zeros((60, 80), np.float32)
    result = pipeline.swap(photo, alpha_in=see_through)
    assert result.alpha.max() == 0
    assert result.image[30, 30].tolist() == [255, 0, 0]  # inside the disc, left half: red
    assert result.warnings == ["no subject found: the output shows the background alone"]


def test_portrait_mode_keeps_subject_pixels() -> None:
    pipeline = _pipeline(blur=True, blur_strength=5)
    photo = random_rgb(60, 80)
    result = pipeline.swap(photo)
    np.testing.assert_array_equal(result.image[28:32, 38:42], photo[28:32, 38:42])
    assert result.image[:10, :10].std() < photo[:10, :10].std() / 2  # the background is blurred


def test_bad_photo_array_is_refused(background_file: Path) -> None:
    with pytest.raises(ValueError, match="uint8 RGB"):
        _pipeline(bg=background_file).swap(np.zeros((4, 4), np.uint8))


def test_api_numpy_and_pil_in_same_type_out() -> None:
    photo = Image.open(SAMPLES / "astronaut.jpg")
    out = swap_background(photo, BACKGROUND)
    assert isinstance(out, Image.Image) and out.size == photo.size and out.mode == "RGB"
    array = np.asarray(photo)
    bg = np.zeros((10, 10, 3), np.uint8)  # an in-memory, black background
    with BackgroundSwapper(bg) as swap:
        result = swap(array)
    assert isinstance(result, np.ndarray) and result.shape == array.shape
    assert result[:40, :40].max() <= 12  # the sky behind her is now black
    assert np.abs(result[95:145, 195:245].astype(int) - array[95:145, 195:245]).max() <= 3


def test_api_without_background_is_portrait_mode() -> None:
    photo = np.asarray(Image.open(SAMPLES / "grace_hopper.jpg"))
    out = swap_background(photo)
    assert out.shape == photo.shape
    assert not np.array_equal(out[:60, :60], photo[:60, :60])  # background blurred


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


def test_background_decode_error_names_the_option(tmp_path: Path) -> None:
    bad = tmp_path / "bg.jpg"
    bad.write_bytes(b"nope")
    with pytest.raises(OptionsError, match=r"^--bg .*not an image"):
        Pipeline(Options(bg=bad).validated(batch=False), segmenter=DiscSegmenter())


def test_background_object_reused_across_sizes() -> None:
    background = Background(random_rgb(30, 40))
    pipeline = Pipeline(Options(blur=True).validated(batch=False), segmenter=DiscSegmenter(),
                        background=background)  # fmt: skip
    for height, width in [(20, 20), (40, 10), (20, 20)]:
        assert pipeline.swap(random_rgb(height, width)).image.shape == (height, width, 3)
