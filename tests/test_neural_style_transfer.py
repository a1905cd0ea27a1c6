"""Masked neural style transfer with a random-weights VGG19 loaded through the normal cache path."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import run
from operations.batch import run_batch
from operations.build import build_pipeline
from operations.options import Options
from operations.stages.neural_style_transfer import StyleSettings, StyleTransfer, StyleTransferError
from tests.helpers import TORCH, DiscSegmenter, needs, random_rgb, save_rgb

pytestmark = needs(*TORCH)

SMALL = StyleSettings(size=48, steps=8, levels=2)


def _stripes(height: int = 48, width: int = 48) -> np.ndarray:
    style = np.zeros((height, width, 3), np.uint8)
    style[:, ::4] = (250, 200, 20)
    style[:, 1::4] = (20, 40, 200)
    return style


@pytest.mark.parametrize("optimizer", ["lbfgs", "adam"])
def test_the_loss_decreases(vgg_weights: Path, optimizer: str) -> None:
    # Random VGG weights give far smaller Gram matrices than trained ones, so the style weight is
    # raised here for the style term to matter at all.
    settings = StyleSettings(
        size=48,
        steps=12,
        levels=1,
        optimizer=optimizer,
        adam_lr=0.01,
        content_weight=1.0,
        style_weight=1e6,
    )
    transfer = StyleTransfer(_stripes(), settings, offline=True, device="cpu")
    import torch

    y, x = np.mgrid[0:40, 0:48]
    photo = transfer._tensor(np.dstack([x * 5, y * 6, 128 + 0 * x]).astype(np.uint8))
    with torch.no_grad():
        content = transfer._features(photo)
    mask = torch.ones(1, 1, 40, 48)
    mask[..., 10:30, 14:34] = 0.0  # the subject
    _, history = transfer.optimise(photo, content, mask, 12)
    assert len(history) >= 5
    assert min(history) < history[0] * 0.95


def test_the_subject_keeps_its_pixels_exactly(vgg_weights: Path, tmp_path: Path) -> None:
    style = tmp_path / "style.png"
    Image.fromarray(_stripes(64, 64)).save(style)
    options = Options(bg=style, nst=True, nst_size=48, nst_steps=6).validated(batch=False)
    pipeline = build_pipeline(options.recipe(), segmenter=DiscSegmenter())
    photo = random_rgb(60, 80, seed=5)
    result = pipeline.swap(photo)
    solid = result.alpha == 1.0
    assert solid.sum() > 300
    np.testing.assert_array_equal(result.image[solid], photo[solid])
    background = result.alpha == 0.0
    assert np.abs(result.image[background].astype(int) - photo[background]).mean() > 1  # restyled


def test_style_targets_are_computed_once_per_run(vgg_weights: Path, tmp_path: Path) -> None:
    source = tmp_path / "in"
    for i in range(3):
        save_rgb(source / f"p{i}.png", 40, 56, seed=i)
    style = tmp_path / "style.png"
    Image.fromarray(_stripes()).save(style)
    options = Options(
        input=source, output=tmp_path / "out", bg=style, nst=True, nst_size=40, nst_steps=4
    ).validated()
    pipeline = build_pipeline(options.recipe(), segmenter=DiscSegmenter())
    batch = run_batch(options, pipeline=pipeline, progress=False)
    assert batch.count("ok") == 3
    style = pipeline.background.kind.style
    assert style is not None and style.style_targets_computed == 1
    assert len(list((tmp_path / "out").glob("*.png"))) == 3


def test_missing_vgg_weights_offline_is_a_clear_error(tmp_path, monkeypatch, capsys) -> None:
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "empty"))
    with pytest.raises(StyleTransferError, match=r"vgg19-dcbb9e9d\.pth.*point nst_weights at"):
        StyleTransfer(_stripes(), SMALL, offline=True)
    save_rgb(tmp_path / "in" / "a.png")
    code = run.main(
        [
            "-i",
            str(tmp_path / "in"),
            "-o",
            str(tmp_path / "out"),
            "--bg",
            str(tmp_path / "in" / "a.png"),
            "--nst",
            "--offline",
        ]
    )
    err = capsys.readouterr().err
    assert code == 2 and "vgg19-dcbb9e9d.pth" in err and "not cached" in err


def test_cli_nst_end_to_end(vgg_weights: Path, photo_dir: Path, tmp_path: Path, capsys) -> None:
    from tests.helpers import BACKGROUND

    code = run.main(
        [
            "-i",
            str(photo_dir),
            "-o",
            str(tmp_path / "out"),
            "--bg",
            str(BACKGROUND),
            "--nst",
            "--nst-size",
            "64",
            "--nst-steps",
            "6",
            "--offline",
        ]
    )
    assert code == 0, capsys.readouterr().err
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        "astronaut.png",
        "grace_hopper.png",
    ]
