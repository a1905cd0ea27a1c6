"""Framing: the subject's box (specks apart) placed on a canvas, the same margin on every
photo; boxes and canvas sizes exact on known masks."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from operations.framing import FrameSettings, frame, layout, parse_canvas, subject_box
from operations.matting import Matte
from tests.helpers import cli


def _matte(height: int = 300, width: int = 400) -> Matte:
    """A 100 wide, 50 high subject at x 50–150, y 200–250, and a 3×3 speck far from it."""
    alpha = np.zeros((height, width), np.float32)
    alpha[200:250, 50:150] = 1.0
    alpha[10:13, 380:383] = 1.0  # a speck: not the subject
    rgb = np.zeros((height, width, 3), np.uint8)
    rgb[alpha > 0] = (10, 200, 30)
    return Matte(rgb, soft=alpha)


def test_the_box_leaves_specks_out() -> None:
    assert subject_box(_matte().alpha) == (50, 200, 150, 250)
    assert subject_box(np.zeros((20, 20), np.float32)) is None


def test_a_square_canvas_with_a_margin() -> None:
    # 1000×1000, 8 %: 80 px of margin, 840 px for a 100×50 box: scaled 8.4×, centred.
    placed = layout((50, 200, 150, 250), FrameSettings(canvas=(1000, 1000), margin=8))
    assert (placed.width, placed.height) == (1000, 1000) and placed.scale == pytest.approx(8.4)
    assert (placed.x, placed.y) == (80, 290)  # 840×420 placed in the middle
    bottom = layout((50, 200, 150, 250), FrameSettings(canvas=(1000, 1000), align="bottom"))
    assert bottom.y == 1000 - 80 - 420  # stands on the bottom margin
    # An aspect ratio at the photo's own scale: the smallest 1:1 canvas holding box + margin.
    square = layout((50, 200, 150, 250), FrameSettings(aspect=(1, 1), margin=10))
    assert (square.width, square.height) == (125, 125) and square.scale == pytest.approx(1.0)
    tight = layout((50, 200, 150, 250), FrameSettings(margin=0))
    assert (tight.width, tight.height, tight.x, tight.y) == (100, 50, 0, 0)  # a plain crop


def test_the_subject_lands_where_the_layout_says() -> None:
    framed = frame(_matte(), FrameSettings(canvas=(500, 300), margin=10))
    assert framed.alpha.shape == (300, 500) and framed.rgb.shape == (300, 500, 3)
    # 30 px margin (10 % of 300): 440×240 for the 100×50 box → ×4.4 = 440×220, centred.
    assert subject_box(framed.alpha) == (30, 40, 470, 260)
    assert (framed.rgb[150, 250] == (10, 200, 30)).all()
    # Nothing else: above and below the subject (bar the enlarged edge's pixel of ramp).
    assert framed.alpha[:38].max() == 0 and framed.alpha[262:].max() == 0


@pytest.mark.parametrize(
    ("text", "parsed"),
    [
        ("2000x2000", ((2000, 2000), None)),
        ("1200×800", ((1200, 800), None)),
        ("4:5", (None, (4, 5))),
    ],
)
def test_canvas_sizes_and_aspects(text: str, parsed) -> None:
    assert parse_canvas(text) == parsed


def test_framed_on_white_by_the_command_line(photo_dir: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "out"
    args = ("-b", "white", "--frame", "subject", "--canvas", "300x200", "--save-mask")
    code, err = cli(capsys, "-i", photo_dir, "-o", out, *args)
    assert code == 0, err
    for name in ("astronaut", "grace_hopper"):
        result = np.asarray(Image.open(out / f"{name}.png"))
        mask = np.asarray(Image.open(out / f"{name}.mask.png"))
        assert result.shape == (200, 300, 3) and mask.shape == (200, 300)  # the canvas
        assert (result[mask == 0] == 255).all()  # white wherever the subject is not
        rows = np.nonzero((mask > 127).any(axis=1))[0]
        assert rows[0] >= 16 - 2 and rows[-1] <= 200 - 16 + 2  # inside the 8 % margin


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["-b", "white", "--canvas", "10x10"], "--canvas '10x10': goes with --frame subject"),
        (["-b", "white", "--frame", "subject", "--canvas", "big"], "give WxH (2000x2000)"),
        (["--blur", "--frame", "subject"], "needs a new background to fill the canvas"),
        (["-b", "white", "--frame", "subject", "--margin", "60"], "--margin '60.0': must be"),
    ],
)
def test_refusals(photo_dir: Path, tmp_path: Path, capsys, args, expected) -> None:
    code, err = cli(capsys, "-i", photo_dir, "-o", tmp_path / "out", *args)
    assert code == 2 and expected in err and err.count("\n") == 1, err
