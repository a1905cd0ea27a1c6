"""The per-image pipeline: segment → refine → background → composite, on a segmenter with a known
answer."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from operations.build import build_background, build_pipeline
from operations.options import Options
from operations.pipeline import Pipeline
from operations.stages.background import Background
from tests.helpers import DiscSegmenter, random_rgb


def _pipeline(**settings) -> Pipeline:
    options = Options(**settings).validated(batch=False)
    return build_pipeline(options.recipe(), segmenter=DiscSegmenter())


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


def test_background_object_reused_across_sizes() -> None:
    options = Options(blur=True).validated(batch=False)
    source = build_background(options.recipe(), image=Background(random_rgb(30, 40)))
    pipeline = build_pipeline(options.recipe(), segmenter=DiscSegmenter(), background=source)
    for height, width in [(20, 20), (40, 10), (20, 20)]:
        assert pipeline.swap(random_rgb(height, width)).image.shape == (height, width, 3)


def test_the_scene_light_options_change_the_composite_and_not_the_matte(
    background_file: Path,
) -> None:
    photo = random_rgb(60, 80, seed=3)
    plain = _pipeline(bg=background_file).swap(photo)
    assert (_pipeline(bg=background_file, harmonize=0.0).swap(photo).image == plain.image).all()
    lit = _pipeline(bg=background_file, harmonize=0.5, light_wrap=0, shadow=True).swap(photo)
    assert (lit.alpha == plain.alpha).all()  # the mask and cut-out are the subject as shot
    assert (lit.cutout() == plain.cutout()).all()
    changed = np.abs(lit.image.astype(int) - plain.image).max(axis=2) > 0
    assert changed[30, 40]  # the subject's colours moved (harmonised)
    shadow_only = _pipeline(bg=background_file, shadow=True, shadow_offset=(10.0, 10.0))
    shaded = shadow_only.swap(photo).image
    # The shadow falls on the background below right of the disc, never on the disc itself.
    assert shaded[52, 60].astype(int).sum() < plain.image[52, 60].astype(int).sum() - 20
    assert (shaded[30, 40] == plain.image[30, 40]).all()


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"blur": True, "harmonize": 0.5}, "--harmonize '0.5': goes with a new background"),
        ({"blur": True, "shadow": True}, "--shadow: goes with a new background"),
        ({"shadow_opacity": 0.3}, "--shadow-opacity '0.3': goes with --shadow"),
        ({"harmonize": 1.5}, "--harmonize '1.5': must be between 0 and 1"),
        ({"light_wrap": -1}, "--light-wrap '-1': must be between 0"),
        ({"shadow": True, "shadow_offset": (1.0, 90.0)}, "--shadow-offset '1.0,90.0': give X,Y"),
    ],
)
def test_scene_light_options_are_checked(background_file: Path, settings, message) -> None:
    from operations.options import OptionsError

    settings = {"bg": background_file, **settings}
    if settings.get("blur"):
        settings.pop("bg")
    with pytest.raises(OptionsError) as caught:
        Options(**settings).validated(batch=False)
    assert message in str(caught.value)


def test_no_subject_is_one_fact_in_the_row_and_in_the_log(tmp_path: Path, capsys) -> None:
    """A 30000×200 panorama of people: every person too thin for the model (it sees 256²),
    the row flagged no-subject, and now said in a warning line too (it was not: the warning
    tested the refined matte, the flag the reduced mask)."""
    import json

    from PIL import Image

    from tests.helpers import SAMPLES, cli

    person = Image.open(SAMPLES / "astronaut.jpg").resize((200, 200))
    panorama = Image.new("RGB", (30000, 200), (120, 130, 140))
    for x in range(0, 30000, 600):
        panorama.paste(person, (x, 0))
    source = tmp_path / "in"
    source.mkdir()
    panorama.save(source / "panorama.jpg", quality=90)
    code, err = cli(
        capsys,
        "-i",
        source,
        "-o",
        tmp_path / "out",
        "-b",
        "white",
        "--summary",
        tmp_path / "s.json",
    )
    assert code == 0, err
    (row,) = json.loads((tmp_path / "s.json").read_text())["files"]
    said = "panorama.jpg: no subject found: the output shows the background alone" in err
    assert (
        ("no-subject" in row["flags"])
        == said
        == ("no subject found: the output shows the background alone" in row["warnings"])
    )
    assert "no-subject" in row["flags"]
