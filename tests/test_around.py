"""--prompt --around: the scene painted around each photo's subject by an inpainting model (a
tiny random one, saved with save_pretrained, loaded by the code that loads real ones)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from operations.media.decode import decode
from tests.helpers import BACKGROUND, SD, cli, needs

pytestmark = needs(*SD)


def _run(capsys, photo_dir: Path, out: Path, model: Path, *extra: str) -> dict:
    code, err = cli(
        capsys,
        *("-i", photo_dir, "-o", out, "--prompt", "a quiet beach", "--around"),
        *("--sd-model", model, "--steps", "2", "--offline", "--save-mask", "--seed", "5"),
        *("--summary", out.parent / f"{out.name}.json", *extra),
    )
    assert code == 0, err
    return json.loads((out.parent / f"{out.name}.json").read_text())


def test_the_subject_stays_as_shot_and_the_rest_is_painted(
    capsys, photo_dir: Path, tmp_path: Path, tiny_inpaint: Path
) -> None:
    summary = _run(capsys, photo_dir, tmp_path / "out", tiny_inpaint)
    rows = {Path(row["input"]).name: row for row in summary["files"]}
    assert all(row["status"] == "ok" for row in rows.values())
    for name in ("astronaut", "grace_hopper"):
        photo = decode(photo_dir / f"{name}.jpg").rgb
        result = np.asarray(Image.open(tmp_path / "out" / f"{name}.png"))
        mask = np.asarray(Image.open(tmp_path / "out" / f"{name}.mask.png"))
        subject, outside = mask == 255, mask == 0
        assert subject.sum() > 0.1 * mask.size and outside.sum() > 0.1 * mask.size
        np.testing.assert_array_equal(result[subject], photo[subject])  # byte for byte
        changed = np.abs(result[outside].astype(int) - photo[outside]).mean()
        assert changed > 10, changed  # the background was painted anew
    seeds = [rows[f"{n}.jpg"]["extra"]["seed"] for n in ("astronaut", "grace_hopper")]
    assert seeds == [5, 6]  # the run's seed plus the photo's index, recorded
    paths = [Path(rows[f"{n}.jpg"]["extra"]["background"]) for n in ("astronaut", "grace_hopper")]
    assert all(p.is_file() for p in paths) and paths[0] != paths[1]


def test_the_same_seed_gives_the_same_images(
    capsys, photo_dir: Path, tmp_path: Path, tiny_inpaint: Path
) -> None:
    _run(capsys, photo_dir, tmp_path / "a", tiny_inpaint)
    _run(capsys, photo_dir, tmp_path / "b", tiny_inpaint)
    for name in ("astronaut.png", "grace_hopper.png"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    other = tmp_path / "d"
    code, err = cli(
        capsys,
        *("-i", photo_dir, "-o", other, "--prompt", "a quiet beach", "--around"),
        *("--sd-model", tiny_inpaint, "--steps", "2", "--offline", "--seed", "9"),
    )
    assert code == 0, err
    first = np.asarray(Image.open(tmp_path / "a" / "astronaut.png"))
    assert (np.asarray(Image.open(other / "astronaut.png")) != first).any()  # another seed


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["-b", str(BACKGROUND), "--around"], "--around: goes with --prompt"),
        (["--prompt", "x", "--around", "--bg-per-image"], "already paints one per photo"),
        (["--prompt", "x", "--strength", "0.5"], "--strength '0.5': goes with --around"),
        (["--prompt", "x", "--around", "--strength", "2"], "--strength '2.0': must be > 0"),
    ],
)
def test_refusals_are_one_line(capsys, photo_dir: Path, tmp_path: Path, args, expected) -> None:
    code, err = cli(capsys, "-i", photo_dir, "-o", tmp_path / "out", *args)
    assert code == 2 and expected in err and err.count("\n") == 1, err


def test_a_text_to_image_model_is_refused_naming_the_fix(
    capsys, photo_dir: Path, tmp_path: Path, tiny_sd: Path
) -> None:
    code, err = cli(
        capsys,
        *("-i", photo_dir, "-o", tmp_path / "out", "--prompt", "x", "--around"),
        *("--sd-model", tiny_sd, "--offline"),
    )
    assert code == 2 and err.count("\n") == 1, err
    assert "a text-to-image model, not an inpainting one" in err
    assert "stable-diffusion-v1-5/stable-diffusion-inpainting" in err


def test_framed_the_canvas_outside_the_photo_is_painted_too(
    capsys, photo_dir: Path, tmp_path: Path, tiny_inpaint: Path
) -> None:
    """--around with --frame: outpainting. The subject is placed on a wider canvas and the model
    paints everything but the subject, the canvas beyond the photo included."""
    out = tmp_path / "out"
    args = ("--frame", "subject", "--canvas", "160x80", "--margin", "5")
    summary = _run(capsys, photo_dir, out, tiny_inpaint, *args)
    assert all(row["status"] == "ok" for row in summary["files"])
    result = np.asarray(Image.open(out / "astronaut.png")).astype(int)
    mask = np.asarray(Image.open(out / "astronaut.mask.png"))
    assert result.shape == (80, 160, 3) and mask.shape == (80, 160)
    # The astronaut is taller than wide: the canvas's sides lie beyond the photo. Painted, not
    # left black.
    sides = np.concatenate([result[:, :20], result[:, -20:]], axis=1)
    assert (mask[:, :20] == 0).all() and sides.mean() > 20 and sides.std() > 2
