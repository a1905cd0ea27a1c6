"""The subject's mask from the user: knobs (threshold, grow, feather), masks from files or the
photo's own alpha, strokes as the edge stage's constraints, and corrections kept in the output
folder and applied by every later run."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from operations.build import build_pipeline
from operations.errors import SettingError
from operations.jobs import corrections
from operations.jobs.corrections import Correction, CorrectionError
from operations.jobs.ledger import digest_bytes
from operations.options import Options, OptionsError
from operations.pipeline import Fix, GivenMask
from operations.stages.mask import MaskSettings, Stroke, feather, rasterize, shape
from tests.helpers import DiscSegmenter, cli, random_rgb, save_rgb


def _square(size: int = 64, inner: int = 32) -> np.ndarray:
    alpha = np.zeros((size, size), np.float32)
    start = (size - inner) // 2
    alpha[start : start + inner, start : start + inner] = 1.0
    return alpha


def test_the_knobs_refuse_what_is_not_a_mask_edge() -> None:
    for values, name in (({"threshold": 1.5}, "threshold"), ({"grow": 501}, "grow")):
        with pytest.raises(SettingError) as info:
            MaskSettings(**values)
        assert info.value.setting == name
    with pytest.raises(OptionsError, match=r"^--mask-feather '-1\.0'"):
        Options(blur=True, mask_feather=-1.0).validated(batch=False)


def test_threshold_then_grow_or_shrink_then_feather() -> None:
    soft = _square() * 0.6
    assert shape(soft, MaskSettings(threshold=0.5)).sum() == 32 * 32
    assert shape(soft, MaskSettings(threshold=0.7)).sum() == 0
    grown = shape(_square(), MaskSettings(grow=4))
    # The square, 4 px bigger on each side, with a disc's round corners.
    assert 40 * 40 - 4 * 8 <= grown.sum() < 40 * 40
    assert shape(_square(), MaskSettings(grow=-4)).sum() == 24 * 24
    assert shape(soft, MaskSettings()) is soft  # no knob: the mask untouched
    soft_edge = feather(_square(), 6)
    assert 0.2 < soft_edge[32, 16] < 0.8  # the edge is soft over the feather's width
    assert soft_edge[32, 32] > 0.99 and soft_edge[32, 2] < 0.01


def test_far_grow_and_wide_feather_keep_their_meaning() -> None:
    square = np.zeros((400, 400), np.float32)
    square[150:250, 150:250] = 1.0
    grown = shape(square, MaskSettings(grow=40))  # by the distance to the edge, not a disc
    assert grown[111, 200] == 1.0 and grown[109, 200] == 0.0 and grown[115, 115] == 0.0
    assert grown[200, 109] == 0.0 and grown[200, 111] == 1.0
    shrunk = shape(square, MaskSettings(grow=-40))
    assert shrunk[200, 200] == 1.0 and shrunk[189, 200] == 0.0 and shrunk[191, 200] == 1.0
    wide = feather(square, 60)  # a σ of 30 px, made on a reduced copy
    exact = cv2.GaussianBlur(square, (0, 0), sigmaX=30, borderType=cv2.BORDER_REFLECT)
    assert np.abs(wide - exact).max() < 0.02


def test_strokes_are_painted_in_order_and_clipped_to_the_photo() -> None:
    keep, remove = rasterize(
        (
            Stroke("keep", 5, ((10, 10), (50, 10))),
            Stroke("remove", 3, ((30, 0), (30, 20))),  # crosses the keep stroke: wins there
            Stroke("remove", 10, ((-40, 60), (200, 60))),  # mostly outside the photo
        ),
        64,
        64,
    )
    assert keep[10, 12] and keep[10, 48] and not keep[30, 10]
    assert remove[10, 30] and not keep[10, 30]  # the later stroke's word
    assert remove[63, 0] and remove[63, 63] and remove[52, 30]  # clipped, not refused
    assert not keep[63, 30]


def _pipeline(**settings: object):
    options = Options(bg="white", **settings).validated(batch=False)
    return build_pipeline(options.recipe(), segmenter=DiscSegmenter())


class _Refusing(DiscSegmenter):
    def predict(self, rgb: np.ndarray) -> np.ndarray:
        raise AssertionError("the model was asked although the photo had its own mask")


def test_a_given_mask_is_used_instead_of_the_model_and_said_so() -> None:
    options = Options(bg="white", matting="off").validated(batch=False)
    with build_pipeline(options.recipe(), segmenter=_Refusing()) as pipeline:
        mask = _square()
        result = pipeline.swap(random_rgb(64, 64), given=GivenMask(mask, 64, "masks/a.png"))
    assert np.array_equal(result.alpha, mask)  # --matting off: the output's alpha is the mask
    assert result.extra["mask"] == "masks/a.png"


def test_keep_alpha_takes_the_photos_own_transparency() -> None:
    alpha = _square()
    with build_pipeline(
        Options(bg="white", keep_alpha=True, matting="off").validated(batch=False).recipe(),
        segmenter=_Refusing(),
    ) as pipeline:
        result = pipeline.swap(random_rgb(64, 64), alpha_in=alpha)
        assert np.array_equal(result.alpha, alpha) and result.extra["mask"] == "own alpha"
    with _pipeline(matting="off") as pipeline:  # without it, the model's mask under the alpha
        plain = pipeline.swap(random_rgb(64, 64), alpha_in=alpha)
        assert "mask" not in plain.extra and plain.alpha[32, 32] > 0.9


def test_the_run_knobs_reach_every_photo() -> None:
    with _pipeline(matting="off", mask_threshold=0.5, mask_grow=3) as pipeline:
        shaped = pipeline.swap(random_rgb(64, 64)).alpha
    with _pipeline(matting="off") as pipeline:
        plain = pipeline.swap(random_rgb(64, 64)).alpha
    assert set(np.unique(shaped)) == {0.0, 1.0}  # thresholded
    assert shaped.sum() > (plain >= 0.5).sum()  # then grown


def _ramp_photo() -> tuple[np.ndarray, np.ndarray]:
    """A red subject on blue whose right edge is a 16-px ramp (hair's mixed pixels): its true
    alpha is known."""
    alpha = np.zeros((64, 96), np.float32)
    alpha[:, :40] = 1.0
    alpha[:, 40:56] = np.linspace(1, 0, 18)[1:-1]
    red, blue = np.array([220, 30, 30], np.float32), np.array([30, 60, 200], np.float32)
    rgb = alpha[..., None] * red + (1 - alpha[..., None]) * blue
    return np.clip(rgb + 0.5, 0, 255).astype(np.uint8), alpha


def test_a_remove_stroke_across_a_soft_edge_keeps_the_edge_and_takes_the_background() -> None:
    rgb, truth = _ramp_photo()
    model = truth.copy()
    model[20:44, 70:90] = 1.0  # the model's mistake: a block of background taken for subject
    model[:, 40:56] = 0.5  # and unsure across the whole edge
    stroke = Stroke("remove", 14, ((48, 32), (80, 32)))  # from mid-edge across the block
    with _pipeline() as pipeline:
        fixed = pipeline.swap(rgb, given=GivenMask(model, 96, "file"), fix=Fix(strokes=(stroke,)))
    alpha = fixed.alpha
    assert alpha[32, 75:88].max() < 0.05  # the block is background again
    # Under the stroke, the edge's mixed pixels are solved, not wiped: near their true alpha.
    error = np.abs(alpha[24:40, 44:54] - truth[24:40, 44:54]).mean()
    assert error < 0.15, error
    assert alpha[32, 46] > 0.3  # a strand at 0.6 in the truth stays
    assert alpha[5, 10] == 1.0 and alpha[5, 90] == 0.0  # far from the stroke: as the mask was


def test_a_keep_stroke_makes_subject_of_what_the_model_missed() -> None:
    rgb = random_rgb(64, 64)
    with _pipeline() as pipeline:
        fixed = pipeline.swap(rgb, fix=Fix(strokes=(Stroke("keep", 4, ((4, 4), (12, 4))),)))
        plain = pipeline.swap(rgb)
    assert plain.alpha[4, 8] < 0.05 and fixed.alpha[4, 8] == 1.0


def test_a_correction_round_trips_and_a_bad_one_is_refused(tmp_path: Path) -> None:
    fix = Fix("salient", MaskSettings(0.4, 2, 1.5), "quality", (Stroke("keep", 3, ((1, 2),)),))
    output = tmp_path / "sub" / "a.png"
    path = corrections.save(tmp_path, output, Correction(fix, "abc", 2))
    assert path == tmp_path / ".backgroundswap" / "corrections" / "sub" / "a.png.json"
    loaded = corrections.load(tmp_path, output)
    assert loaded is not None and loaded.fix == fix and loaded.revision == 2
    assert corrections.load(tmp_path, tmp_path / "b.png") is None
    path.write_text(json.dumps({"revision": 1}))
    with pytest.raises(CorrectionError):
        corrections.load(tmp_path, output)


def _run(capsys, *args: object, quiet: bool = True) -> tuple[int, str, dict]:
    code, err = cli(capsys, *args, *(["--quiet"] if quiet else []))
    summary = next((Path(a) for a in args if str(a).endswith(".json")), None)
    rows = json.loads(summary.read_text())["files"] if summary else {}
    return code, err, rows


def test_masks_from_a_folder_by_name(tmp_path: Path, capsys) -> None:
    photos, masks, out = tmp_path / "in", tmp_path / "masks", tmp_path / "out"
    save_rgb(photos / "a.png", 40, 60, seed=1)
    save_rgb(photos / "b.png", 40, 60, seed=2)
    save_rgb(photos / "c.png", 40, 60, seed=3)
    drawn = np.zeros((20, 30), np.uint8)  # half the size: resized to the photo
    drawn[5:15, 5:12] = 255
    masks.mkdir()
    Image.fromarray(drawn).save(masks / "a.png")
    rgba = np.zeros((40, 60, 4), np.uint8)
    rgba[..., 3] = 255  # an RGBA mask: its alpha counts
    Image.fromarray(rgba).save(masks / "b.mask.png")
    (masks / "c.png").write_text("not an image")
    save_rgb(masks / "nobody.png", 4, 6)
    summary = tmp_path / "summary.json"
    code, err, rows = _run(
        capsys, "-i", photos, "-o", out, "-b", "white", "--masks", masks, "--matting", "off",
        "--save-mask", "--summary", summary, quiet=False,
    )  # fmt: skip
    assert code == 1  # c's mask is no image
    by_name = {Path(row["input"]).name: row for row in rows}
    assert by_name["a.png"]["extra"]["mask"] == str(masks / "a.png")
    assert by_name["b.png"]["extra"]["mask"] == str(masks / "b.mask.png")
    assert by_name["c.png"]["status"] == "failed" and "mask" in by_name["c.png"]["error"]
    assert "not an image" in by_name["c.png"]["error"]
    a_mask = np.asarray(Image.open(out / "a.mask.png"))
    assert a_mask[20, 15] == 255 and a_mask[2, 2] == 0 and a_mask[20, 40] == 0
    assert (np.asarray(Image.open(out / "b.mask.png")) == 255).all()
    assert err.count("match no photo") == 1 and "nobody.png" in err


def test_photos_without_a_mask_use_the_model_and_the_row_says_so(tmp_path: Path, capsys) -> None:
    save_rgb(tmp_path / "in" / "a.png", 40, 60)
    (tmp_path / "masks").mkdir()
    summary = tmp_path / "s.json"
    code, _, rows = _run(
        capsys, "-i", tmp_path / "in", "-o", tmp_path / "out", "-b", "white",
        "--masks", tmp_path / "masks", "--summary", summary,
    )  # fmt: skip
    assert code == 0 and rows[0]["extra"]["mask"] == "model"


def test_a_mask_of_another_shape_is_refused_not_stretched(tmp_path: Path, capsys) -> None:
    save_rgb(tmp_path / "in" / "a.png", 40, 60)
    save_rgb(tmp_path / "masks" / "a.png", 60, 40)  # the photo before its rotation
    summary = tmp_path / "s.json"
    code, _, rows = _run(
        capsys, "-i", tmp_path / "in", "-o", tmp_path / "out", "-b", "white",
        "--masks", tmp_path / "masks", "--summary", summary,
    )  # fmt: skip
    assert code == 1 and "must have the photo's shape" in rows[0]["error"]


def test_masks_must_name_a_folder(tmp_path: Path, capsys) -> None:
    save_rgb(tmp_path / "in" / "a.png")
    code, err = cli(capsys, "-i", tmp_path / "in", "-o", tmp_path / "o", "-b", "white",
                    "--masks", tmp_path / "nowhere")  # fmt: skip
    assert code == 2 and "error: --masks" in err and "no such folder" in err


@pytest.fixture
def disc(monkeypatch: pytest.MonkeyPatch) -> str:
    """The stand-in model (a soft disc in the middle) as a backend the command line takes."""
    from operations import segmenters

    monkeypatch.setattr(segmenters, "BACKEND_MODULES", list(segmenters.BACKEND_MODULES))
    monkeypatch.setattr(segmenters, "_loaded", None)
    segmenters.register_backend("tests.helpers")
    return "disc"


def test_a_rerun_reproduces_a_correction_even_with_overwrite(
    tmp_path: Path, capsys, disc: str
) -> None:
    photos, out = tmp_path / "in", tmp_path / "out"
    photo = save_rgb(photos / "a.png", 48, 64)
    args = ["-i", photos, "-o", out, "-b", "white", "--mode", disc, "--save-mask", "--quiet"]
    assert cli(capsys, *args)[0] == 0
    plain = np.asarray(Image.open(out / "a.mask.png"))
    assert plain[24, 32] == 255  # the disc's centre
    fix = Fix(mode=None, strokes=(Stroke("remove", 6, ((32, 24),)),))
    corrections.save(out, out / "a.png", Correction(fix, digest_bytes(photo.read_bytes())))
    assert cli(capsys, *args, "--overwrite", "--summary", tmp_path / "s.json")[0] == 0
    fixed = np.asarray(Image.open(out / "a.mask.png"))
    assert fixed[24, 32] == 0  # the stroke, re-applied
    row = json.loads((tmp_path / "s.json").read_text())["files"][0]
    assert row["extra"]["corrected"]["strokes"] == 1
    # The photo changes: the strokes were drawn on another picture, so they are not applied.
    save_rgb(photo, 48, 64, seed=9)
    code, _ = cli(capsys, *args, "--overwrite", "--summary", tmp_path / "s.json")
    row = json.loads((tmp_path / "s.json").read_text())["files"][0]
    assert code == 0 and "corrected" not in row["extra"]
    assert any("photo changed" in w for w in row["warnings"])
