"""--bg COLOUR and --bg transparent: a plain colour behind the subject, or nothing (the result
is the subject's RGBA cut-out), with the options that make sense and refusals for the rest."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from operations.media.decode import decode
from operations.stages.background import parse_colour
from tests.helpers import cli, make_clip


@pytest.mark.parametrize(
    ("text", "rgb"),
    [
        ("white", (255, 255, 255)),
        ("#f4f4f4", (244, 244, 244)),
        ("#F4F4F4", (244, 244, 244)),
        ("rgb(10, 20, 30)", (10, 20, 30)),
        ("hsl(0, 100%, 50%)", (255, 0, 0)),
        ("not-a-colour", None),
        ("#12345", None),
    ],
)
def test_colours_are_read_as_css_writes_them(text: str, rgb) -> None:
    assert parse_colour(text) == rgb


def test_a_colour_fills_the_background(photo_dir: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "out"
    code, err = cli(capsys, "-i", photo_dir, "-o", out, "-b", "#f4f4f4", "--save-mask")
    assert code == 0, err
    result = np.asarray(Image.open(out / "astronaut.png"))
    mask = np.asarray(Image.open(out / "astronaut.mask.png"))
    assert (result[mask == 0] == 244).all()  # wherever the subject is not: the colour
    photo = decode(photo_dir / "astronaut.jpg").rgb
    np.testing.assert_array_equal(result[mask == 255], photo[mask == 255])


def test_transparent_is_the_cut_out(photo_dir: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "out"
    code, err = cli(capsys, "-i", photo_dir, "-o", out, "-b", "transparent", "--save-mask")
    assert code == 0, err
    for name in ("astronaut", "grace_hopper"):
        result = np.asarray(Image.open(out / f"{name}.png"))
        mask = np.asarray(Image.open(out / f"{name}.mask.png"))
        assert result.shape[2] == 4
        np.testing.assert_array_equal(result[..., 3], mask)  # the alpha is the mask
        photo = decode(photo_dir / f"{name}.jpg").rgb
        np.testing.assert_array_equal(result[..., :3][mask == 255], photo[mask == 255])


def test_a_shadow_on_transparent_is_a_semi_transparent_layer(
    photo_dir: Path, tmp_path: Path, capsys
) -> None:
    out = tmp_path / "out"
    args = ("-b", "transparent", "--save-mask", "--shadow", "--shadow-opacity", "0.6")
    code, err = cli(capsys, "-i", photo_dir, "-o", out, *args)
    assert code == 0, err
    result = np.asarray(Image.open(out / "grace_hopper.png")).astype(int)
    mask = np.asarray(Image.open(out / "grace_hopper.mask.png"))
    shadow = (mask == 0) & (result[..., 3] > 0)
    assert shadow.sum() > 500  # beside the subject, the shadow shows
    assert result[..., 3][mask == 0].max() <= 0.6 * 255 + 1  # never more than its opacity
    assert result[..., :3][shadow].max() <= 2  # and it is black (the subject: under 1/510)
    np.testing.assert_array_equal(result[..., 3][mask == 255], 255)


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["-b", "transparent", "--format", "jpg"], "keeps transparency"),
        (["-b", "transparent", "--harmonize"], "--harmonize '0.5': goes with a new background"),
        (["-b", "transparent", "--blur"], "--blur: goes with a background to blur"),
        (["-b", "transparent", "--light-wrap"], "--light-wrap '0': goes with a background"),
        (["-b", "white", "--fit", "contain"], "--fit 'contain': goes with --bg or --prompt"),
        (["-b", "white", "--nst"], "a colour or transparent has no style"),
        (["-b", "whiteish"], "not a colour (white, #f4f4f4"),
    ],
)
def test_what_does_not_go_with_them_is_refused(
    photo_dir: Path, tmp_path: Path, capsys, args, expected
) -> None:
    code, err = cli(capsys, "-i", photo_dir, "-o", tmp_path / "out", *args)
    assert code == 2 and expected in err and err.count("\n") == 1, err


def test_a_file_of_that_name_wins_over_the_word(tmp_path: Path, capsys, photo_dir: Path) -> None:
    named = tmp_path / "white"
    Image.new("RGB", (8, 8), (0, 0, 200)).save(named, format="PNG")
    out = tmp_path / "out"
    code, err = cli(capsys, "-i", photo_dir, "-o", out, "-b", named, "--save-mask")
    assert code == 0, err
    result = np.asarray(Image.open(out / "astronaut.png"))
    mask = np.asarray(Image.open(out / "astronaut.mask.png"))
    assert (result[mask == 0] == (0, 0, 200)).all()


def test_a_video_on_transparent_is_refused_with_its_reason(tmp_path: Path, capsys) -> None:
    source = tmp_path / "in"
    source.mkdir()
    make_clip(source / "clip.mp4", frames=3, audio=False)
    code, err = cli(capsys, "-i", source, "-o", tmp_path / "out", "-b", "transparent")
    assert code == 1 and "--save-cutout" in err, err


def test_the_review_page_shows_a_transparent_result(photo_dir: Path, tmp_path: Path, capsys):
    out = tmp_path / "out"
    code, err = cli(capsys, "-i", photo_dir, "-o", out, "-b", "transparent", "--report")
    assert code == 0, err
    thumbs = sorted((out / "report_files" / "thumbs").glob("*.out.jpg"))
    assert len(thumbs) == 2 and all(Image.open(t).mode == "RGB" for t in thumbs)
