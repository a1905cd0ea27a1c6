"""Framing: the subject's box (specks apart) placed on a canvas, the same margin on every
photo; boxes and canvas sizes exact on known masks."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from operations.stages.framing import FrameSettings, frame, layout, parse_canvas, subject_box
from operations.stages.matting import Matte
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
    result = frame(_matte(), FrameSettings(canvas=(500, 300), margin=10))
    framed = result.matte
    assert result.scale == pytest.approx(4.4) and result.warnings[0].startswith(
        "the subject (100×50 px) is enlarged 4.4× to fill the canvas"
    )
    assert framed.alpha.shape == (300, 500) and framed.rgb.shape == (300, 500, 3)
    # 30 px margin (10 % of 300): 440×240 for the 100×50 box → ×4.4 = 440×220, centred.
    assert subject_box(framed.alpha) == (30, 40, 470, 260)
    assert (framed.rgb[150, 250] == (10, 200, 30)).all()
    # Nothing else: above and below the subject (bar the enlarged edge's pixel of ramp).
    assert framed.alpha[:38].max() == 0 and framed.alpha[262:].max() == 0


# The peak of this process's own memory (VmHWM): not getrusage's ru_maxrss, which on Linux keeps
# the high-water mark of the process it was forked from (a test run's several GB).
_MEMORY = """
import sys
import numpy as np
from operations.stages.framing import FrameSettings, frame
from operations.media.files import ImageError
from operations.stages.matting import Matte
side = int(sys.argv[1])
alpha = np.zeros((1000, 1500), np.float32)
alpha[500 : 500 + side * 3 // 4, 700 : 700 + side] = 1.0
rgb = np.full((1000, 1500, 3), 90, np.uint8)
try:
    result = frame(Matte(rgb, soft=alpha), FrameSettings(canvas=(2000, 2000)))
    print(result.matte.alpha.shape, round(result.scale, 1), result.warnings[0])
except ImageError as exc:
    print("refused:", exc)
status = open("/proc/self/status").read().split("VmHWM:")[1]
print(int(status.split()[0]) * 1024)
"""


@pytest.mark.parametrize(
    ("side", "said"),
    [
        (40, "refused: the subject (40×30 px) would be enlarged 42× to fill a 2000×2000 canvas"),
        (112, "(2000, 2000) 15.0 the subject (112×84 px) is enlarged 15.0× to fill the canvas"),
    ],
)
def test_framing_a_small_subject_scales_only_what_lands_on_the_canvas(side, said) -> None:
    """A 40 px subject on a 2000×2000 canvas took 16.5 GB (the whole 1500×1000 photo scaled
    42× first); 15× takes over 2.5 GB that way. Only the part of the photo the canvas shows is
    scaled now, and past 16× the photo is refused with its factor."""
    import subprocess
    import sys

    from tests.helpers import ROOT

    done = subprocess.run(
        [sys.executable, "-c", _MEMORY, str(side)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    *lines, peak = done.stdout.strip().splitlines()
    assert lines[0].startswith(said), lines
    assert int(peak) < 2.5e9, f"peak {int(peak) / 1e9:.1f} GB"


def test_a_photo_with_no_subject_is_framed_as_an_empty_canvas() -> None:
    empty = Matte(np.zeros((600, 800, 3), np.uint8), soft=np.zeros((600, 800), np.float32))
    for settings, size in (
        (FrameSettings(canvas=(2000, 1500)), (1500, 2000)),
        (FrameSettings(aspect=(4, 5)), (600, 480)),  # the photo's own size, cut to 4:5
        (FrameSettings(), (600, 800)),
    ):
        result = frame(empty, settings)
        assert result.matte.alpha.shape == size and result.scale is None
        assert result.matte.alpha.max() == 0


def test_a_canvas_over_the_pixel_limit_is_refused() -> None:
    from operations.media.files import ImageError

    with pytest.raises(ImageError, match=r"the canvas would be 3000×3000 = 9 MP, over the pixel"):
        frame(_matte(), FrameSettings(canvas=(3000, 3000), max_pixels=4_000_000))
    with pytest.raises(ValueError, match=r"an aspect of 1:500 is beyond 10:1 either way"):
        parse_canvas("1:500")


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
