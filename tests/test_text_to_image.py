"""Backgrounds from a prompt, driven through the real code path with a tiny random Stable
Diffusion pipeline saved by save_pretrained (no download)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from operations.build import build_pipeline
from operations.stages import text_to_image
from operations.stages.background import Restyled
from operations.stages.text_to_image import (
    BackgroundGenerator,
    GenerationError,
    GenerationRequest,
    generation_size,
    model_native_size,
)
from tests.helpers import SD, cli, needs, save_rgb

pytestmark = needs(*SD)


def test_generation_size_keeps_the_aspect_and_the_model_step() -> None:
    assert generation_size(800, 1200, 512) == (512, 344)  # 3:2 landscape, multiples of 8
    assert generation_size(1200, 800, 512) == (344, 512)
    assert generation_size(100, 100, 768) == (768, 768)
    assert generation_size(4000, 100, 512, multiple=8) == (16, 512)  # extreme aspect: clamped


def test_native_size_is_read_from_the_configs(tiny_sd: Path) -> None:
    assert model_native_size(str(tiny_sd)) == 64
    assert model_native_size("no/such-model") is None


def test_generation_is_deterministic_per_seed(tiny_sd: Path) -> None:
    generator = BackgroundGenerator(str(tiny_sd), device="cpu", offline=True, progress=False)
    request = GenerationRequest("a beach", None, str(tiny_sd), 7, 3, 5.0, 64, 40)
    first, again = generator.generate(request), generator.generate(request)
    assert first.shape == (40, 64, 3) and first.dtype == np.uint8
    np.testing.assert_array_equal(first, again)
    other = generator.generate(GenerationRequest("a beach", None, str(tiny_sd), 8, 3, 5.0, 64, 40))
    assert not np.array_equal(first, other)
    # The prompt reaches the network: another prompt, the same seed, another image.
    lake = generator.generate(GenerationRequest("a lake", None, str(tiny_sd), 7, 3, 5.0, 64, 40))
    assert not np.array_equal(first, lake)


def _photos(folder: Path) -> Path:
    save_rgb(folder / "wide.jpg", 60, 90, seed=1)  # 3:2
    save_rgb(folder / "tall.jpg", 90, 60, seed=2)
    return folder


def test_cli_prompt_generates_caches_and_reuses(tiny_sd, tmp_path, capsys, monkeypatch) -> None:
    source = _photos(tmp_path / "in")
    out = tmp_path / "out"
    args = ["-i", source, "-o", out, "--prompt", "a quiet beach", "--sd-model", tiny_sd]
    args += ["--steps", "3", "--seed", "5", "--offline", "--summary", tmp_path / "s.json"]
    code, err = cli(capsys, *args)
    assert code == 0, err
    generated = sorted((out / "generated-backgrounds").glob("bg-*.png"))
    assert len(generated) == 1
    with Image.open(generated[0]) as image:
        # Generated at the first photo's (tall.jpg, sorted first) aspect, within 64 px.
        assert image.size == (40, 64)
        assert image.text["prompt"] == "a quiet beach" and image.text["seed"] == "5"
        assert image.text["steps"] == "3" and image.text["model"] == str(tiny_sd)
    report = json.loads((tmp_path / "s.json").read_text())
    assert report["generated_background"]["background"] == str(generated[0])
    stamp = generated[0].stat().st_mtime_ns

    # A rerun with the same parameters reuses the file and never loads the diffusion pipeline.
    def refuse(*_, **__):
        raise AssertionError("the pipeline must not be loaded when the background is cached")

    monkeypatch.setattr(BackgroundGenerator, "__init__", refuse)
    code, err = cli(capsys, *args, "--overwrite")
    assert code == 0, err
    assert generated[0].stat().st_mtime_ns == stamp
    assert sorted(p.name for p in out.glob("*.png")) == ["tall.png", "wide.png"]


def test_cli_background_per_image(tiny_sd: Path, tmp_path: Path, capsys) -> None:
    source = _photos(tmp_path / "in")
    out = tmp_path / "out"
    code, err = cli(
        capsys,
        "-i",
        source,
        "-o",
        out,
        "--prompt",
        "mountains",
        "--sd-model",
        tiny_sd,
        "--steps",
        "2",
        "--bg-per-image",
        "--seed",
        "10",
        "--offline",
        "--summary",
        tmp_path / "s.json",
    )
    assert code == 0, err
    report = json.loads((tmp_path / "s.json").read_text())
    extras = {Path(f["input"]).name: f["extra"] for f in report["files"]}
    assert extras["tall.jpg"]["seed"] == 10 and extras["wide.jpg"]["seed"] == 11  # seed + index
    tall, wide = (Image.open(extras[n]["background"]) for n in ("tall.jpg", "wide.jpg"))
    assert tall.size == (40, 64) and wide.size == (64, 40)  # each at its photo's aspect
    assert not np.array_equal(np.asarray(tall), np.asarray(wide.resize(tall.size)))


def test_missing_model_offline_is_clear_and_fast(tmp_path: Path, capsys) -> None:
    save_rgb(tmp_path / "in" / "a.png")
    start = time.monotonic()
    code, err = cli(
        capsys,
        "-i",
        tmp_path / "in",
        "-o",
        tmp_path / "out",
        "--prompt",
        "x",
        "--sd-model",
        "someone/not-cached-model",
        "--offline",
    )
    assert code == 2
    assert "someone/not-cached-model" in err and "is not cached" in err
    assert "download sd" in err and "HF_HOME" in err
    assert time.monotonic() - start < 30


def test_unreachable_hub_is_a_bounded_error(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []

    def unreachable(url: str, timeout: float) -> str:
        calls.append((url, timeout))
        return "no answer within 1 s"

    monkeypatch.setattr(text_to_image, "_reachable", unreachable)
    with pytest.raises(GenerationError, match=r"cannot be reached \(no answer within 1 s\)"):
        BackgroundGenerator("someone/not-cached-model", device="cpu", offline=False, timeout=1)
    assert calls and calls[0][0].endswith("/api/models/someone/not-cached-model")


def test_nst_with_a_prompt_uses_the_generated_image_as_style(
    tiny_sd: Path, vgg_weights: Path, tmp_path: Path
) -> None:
    from operations.batch import run_batch
    from operations.options import Options
    from tests.helpers import DiscSegmenter

    source = tmp_path / "in"
    save_rgb(source / "a.png", 40, 48, seed=3)
    options = Options(
        input=source,
        output=tmp_path / "out",
        prompt="stripes",
        sd_model=str(tiny_sd),
        sd_steps=2,
        nst=True,
        nst_size=40,
        nst_steps=4,
        offline=True,
    ).validated()
    pipeline = build_pipeline(options.recipe(), segmenter=DiscSegmenter())
    batch = run_batch(options, pipeline=pipeline, progress=False)
    assert batch.count("ok") == 1
    generated = Image.open(batch.background["background"])  # type: ignore[index]
    restyled = pipeline.background.kind
    assert isinstance(restyled, Restyled) and restyled.styled.name == "generated"
    image, style = restyled.styled.image, restyled.style
    assert style is not None and image is not None
    np.testing.assert_array_equal(image.rgb, np.asarray(generated))
    assert style.style_targets_computed == 1
