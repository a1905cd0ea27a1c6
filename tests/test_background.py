from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageCms

from operations.build import build_background
from operations.jobs.video_job import _refuse_photo_settings
from operations.media.files import ImageError
from operations.options import Options, OptionsError, naming_flags
from operations.pipeline import Pipeline
from operations.stages.background import (
    KINDS,
    Background,
    BackgroundKind,
    BackgroundSettings,
    BackgroundSource,
    Photo,
    Restyled,
    RunBackground,
    convert_profile,
    fit_background,
    generation,
    kind_of,
)
from operations.stages.blur import blur_behind_subject, blur_sigma
from operations.stages.matting import Matte
from operations.stages.text_to_image import PromptSettings
from tests.helpers import SD, DiscSegmenter, make_clip, needs, random_rgb


def _halves(height: int = 100, width: int = 200) -> np.ndarray:
    image = np.zeros((height, width, 3), np.uint8)
    image[:, : width // 2] = (255, 0, 0)
    image[:, width // 2 :] = (0, 0, 255)
    return image


def test_cover_fills_and_centre_crops_without_distortion() -> None:
    out = fit_background(_halves(), 100, 100, "cover")  # 2:1 into 1:1 -> keep the middle half
    assert out.shape == (100, 100, 3)
    assert (out[:, :48] == (255, 0, 0)).all() and (out[:, 52:] == (0, 0, 255)).all()
    # Enlarging: a 20×10 source covering 300×100 scales by 15 (not 10 then stretched).
    small = np.zeros((10, 20, 3), np.uint8)
    small[:, 9:11] = 255  # a 2 px line in the middle
    out = fit_background(small, 300, 100, "cover")
    white = np.flatnonzero(out[50, :, 0] > 127)
    assert out.shape == (100, 300, 3)
    assert 27 <= len(white) <= 33 and abs(white.mean() - 149.5) < 2  # 2 px × 15, centred


def test_contain_shows_everything_with_bars() -> None:
    out = fit_background(_halves(), 100, 100, "contain")
    assert out.shape == (100, 100, 3)
    assert (out[:25] == 0).all() and (out[75:] == 0).all()  # black bars top and bottom
    assert (out[30:70, :48] == (255, 0, 0)).all() and (out[30:70, 52:] == (0, 0, 255)).all()


def test_stretch_distorts_to_the_exact_size() -> None:
    out = fit_background(_halves(), 50, 80, "stretch")
    assert out.shape == (80, 50, 3)
    assert (out[:, :24] == (255, 0, 0)).all() and (out[:, 26:] == (0, 0, 255)).all()


def test_unknown_fit_mode() -> None:
    with pytest.raises(ValueError, match="cover, contain, stretch"):
        fit_background(_halves(), 10, 10, "tile")


def test_fitted_backgrounds_are_cached_and_read_only() -> None:
    background = Background(_halves())
    first = background.fitted(64, 48)
    assert background.fitted(64, 48) is first
    assert background.fitted(48, 64) is not first
    with pytest.raises(ValueError):
        first[0, 0] = 0  # shared between images: writing to it must fail loudly


def test_background_is_converted_to_the_photo_profile() -> None:
    srgb = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    image = _halves()
    assert convert_profile(image, None, None) is image
    same = convert_profile(image, srgb, None)  # an explicit sRGB tag is the same space
    assert np.abs(same.astype(int) - image).max() <= 2


# --- the run's background source ---------------------------------------------------------------


def _matte(rgb: np.ndarray) -> Matte:
    alpha = np.zeros(rgb.shape[:2], np.float32)
    alpha[10:30, 20:40] = 1.0
    return Matte(rgb, soft=alpha)


def _source(**settings) -> BackgroundSource:
    with naming_flags():  # as the batch and the API build it: errors name the flag
        return build_background(Options(**settings).validated(batch=False).recipe())


def test_a_file_is_fitted_to_each_photo_and_blurred_when_asked(tmp_path: Path) -> None:
    path = tmp_path / "bg.png"
    Image.fromarray(_halves()).save(path)
    photo = random_rgb(40, 60)
    behind, extra = _source(bg=path).for_image(photo, _matte(photo))
    assert extra == {}
    np.testing.assert_array_equal(behind, fit_background(_halves(), 60, 40, "cover"))
    blurred, _ = _source(bg=path, blur=True, blur_strength=10).for_image(photo, _matte(photo))
    assert blurred.shape == photo.shape and not np.array_equal(blurred, behind)
    stretched, _ = _source(bg=path, fit="stretch").for_image(photo, _matte(photo))
    np.testing.assert_array_equal(stretched, fit_background(_halves(), 60, 40, "stretch"))


def test_portrait_mode_blurs_the_photos_own_background() -> None:
    photo = random_rgb(40, 60)
    matte = _matte(photo)
    behind, _ = _source(blur=True, blur_strength=5).for_image(photo, matte)
    sigma = blur_sigma(40, 60, 5)
    np.testing.assert_array_equal(behind, blur_behind_subject(photo, matte.alpha, sigma))


def test_an_unreadable_file_names_the_option(tmp_path: Path) -> None:
    bad = tmp_path / "bg.jpg"
    bad.write_bytes(b"nope")
    with pytest.raises(OptionsError, match=r"^--bg .*not an image"):
        _source(bg=bad)


class FakePrompted:
    """Stands in for the diffusion pipeline: a flat image per seed, and a count of calls."""

    def __init__(self, folder: Path, settings: PromptSettings) -> None:
        self.folder, self.calls, self.ready = folder, [], False
        self.settings = settings  # the real generator's: seed, one per photo or per run

    def ensure_ready(self) -> None:
        self.ready = True

    def get(self, height: int, width: int, seed: int) -> tuple[np.ndarray, Path]:
        self.calls.append((height, width, seed))
        return np.full((height // 2, width // 2, 3), seed, np.uint8), self.folder / f"bg-{seed}.png"


@needs(*SD)
def test_one_generated_background_per_run_at_the_first_photos_aspect(tmp_path: Path) -> None:
    source = _source(prompt="a beach", seed=4)
    source.kind.prompted = FakePrompted(tmp_path, source.kind.prompted.settings)
    prepared = source.prepare(lambda: (40, 60))
    assert prepared == RunBackground(tmp_path / "bg-4.png", 4)
    assert source.prepare(lambda: (10, 10)) == prepared  # made once
    photo = random_rgb(30, 30)
    behind, extra = source.for_image(photo, _matte(photo), index=3)
    assert (behind == 4).all() and extra == {}  # the run's seed, not the photo's index
    assert source.kind.prompted.calls == [(40, 60, 4)]
    nothing = _source(prompt="a beach")
    nothing.kind.prompted = FakePrompted(tmp_path, nothing.kind.prompted.settings)
    assert nothing.prepare(lambda: None) is None  # no readable photo: nothing to make


@needs(*SD)
def test_one_generated_background_per_photo(tmp_path: Path) -> None:
    source = _source(prompt="a beach", seed=10, bg_per_image=True)
    source.kind.prompted = fake = FakePrompted(tmp_path, source.kind.prompted.settings)
    assert source.prepare(lambda: (40, 60)) is None and fake.ready  # loaded, nothing made
    photo = random_rgb(30, 50)
    behind, extra = source.for_image(photo, _matte(photo), index=2)
    assert (behind == 12).all() and behind.shape == photo.shape
    assert extra == {"background": str(tmp_path / "bg-12.png"), "seed": 12}


@needs(*SD)
def test_a_worker_uses_the_runs_background_without_a_diffusion_model(tmp_path: Path) -> None:
    path = tmp_path / "generated.png"
    Image.fromarray(_halves()).save(path)
    options = Options(prompt="a beach", sd_model="not/loaded").validated(batch=False)
    source = build_background(options.recipe(), run_background=RunBackground(path, 0))
    assert source.kind.prompted is None  # nothing to generate on this worker
    photo = random_rgb(40, 60)
    behind, _ = source.for_image(photo, _matte(photo))
    np.testing.assert_array_equal(behind, fit_background(_halves(), 60, 40, "cover"))


def _folder(tmp_path: Path) -> Path:
    folder = tmp_path / "bgs"
    folder.mkdir()
    for name, colour in (
        ("b_green.png", (0, 200, 0)),
        ("a_red.png", (200, 0, 0)),
        ("cat.jpg", (0, 0, 200)),
    ):
        Image.fromarray(np.full((10, 10, 3), colour, np.uint8)).save(folder / name)
    return folder


def test_a_folder_of_backgrounds_is_cycled_in_name_order(tmp_path: Path) -> None:
    source = _source(bg=_folder(tmp_path))
    photo = random_rgb(20, 30)
    picks = [source.for_image(photo, _matte(photo), index=i) for i in range(4)]
    names = [Path(extra["background"]).name for _, extra in picks]
    assert names == ["a_red.png", "b_green.png", "cat.jpg", "a_red.png"]
    assert picks[0][0][0, 0].tolist() == [200, 0, 0] and picks[1][0][0, 0].tolist() == [0, 200, 0]


def test_a_folder_of_backgrounds_paired_by_name(tmp_path: Path) -> None:
    source = _source(bg=_folder(tmp_path), bg_match="name")
    photo = random_rgb(20, 30)
    behind, extra = source.for_image(photo, _matte(photo), index=0, name="CAT")
    assert Path(extra["background"]).name == "cat.jpg" and abs(int(behind[0, 0, 2]) - 200) < 8
    with pytest.raises(ImageError, match=r"no background named dog\.\* in"):
        source.for_image(photo, _matte(photo), name="dog")


def test_background_folder_settings_are_checked(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(OptionsError, match="the folder holds no files"):
        _source(bg=tmp_path / "empty")
    (tmp_path / "one.png").write_bytes(b"x")
    with pytest.raises(OptionsError, match=r"^--bg-match 'name': goes with --bg DIR"):
        _source(blur=True, bg_match="name")


# --- the kinds, behind their registry ------------------------------------------------------------


def test_each_kind_is_the_one_its_settings_ask_for(tmp_path: Path) -> None:
    image = tmp_path / "bg.png"
    Image.fromarray(_halves()).save(image)
    make_clip(tmp_path / "clip.mp4", frames=2, audio=False)
    cases = [
        ({"bg": image}, "file"),
        ({"bg": _folder(tmp_path)}, "folder"),
        ({"bg": tmp_path / "clip.mp4"}, "video"),
        ({"bg": "white"}, "colour"),
        ({"bg": "transparent", "format": "png"}, "transparent"),
        ({"blur": True}, "own"),
    ]
    for settings, name in cases:
        options = Options(**settings).validated(batch=False)
        assert build_background(options.recipe()).kind.name == name, settings
        assert options._background_kind().name == name
    # --nst restyles the photo's own background in the style of the kind it wraps (built
    # directly: the style network's torch is an extra, made only when a photo needs it).
    restyled = BackgroundSource(BackgroundSettings(bg=image, nst=True)).kind
    assert isinstance(restyled, Restyled) and restyled.styled.name == "file"
    # A prompt's kinds, as the settings pick them (building them needs the generator).
    for picked, name in (
        (generation(True), "generated"),
        (generation(True, per_image=True), "generated-per-photo"),
        (generation(True, around=True), "generated-around"),
    ):
        assert kind_of(BackgroundSettings(), picked).name == name
    assert {kind.name for kind in KINDS} == {name for _, name in cases} | {
        "generated",
        "generated-per-photo",
        "generated-around",
    }
    # What each declares: a video may not have two of them; one has nothing to fill a canvas.
    assert [k.name for k in KINDS if k.photos_only()] == ["transparent", "generated-around"]
    assert [k.name for k in KINDS if k.own] == ["own"] and Restyled.own


class Checkerboard(BackgroundKind):
    """A kind made here, the way a new one is added: a class, and a line in KINDS."""

    name = "checkerboard"

    @staticmethod
    def wants(settings: BackgroundSettings, generating: str | None) -> bool:
        return settings.bg is not None and Path(settings.bg).suffix == ".checker"

    @classmethod
    def photos_only(cls) -> str | None:
        return "a checkerboard is for photos"

    def behind(self, photo: Photo) -> tuple[np.ndarray, dict[str, object]]:
        height, width = photo.rgb.shape[:2]
        rows, cols = np.indices((height, width))
        board = np.where(((rows // 4 + cols // 4) % 2)[..., None] == 1, 255, 0)
        return photo.blurred(board.astype(np.uint8).repeat(3, axis=2)), {"board": 4}


def test_a_new_kind_is_a_class_and_a_line(tmp_path: Path, monkeypatch) -> None:
    from operations.stages import background

    monkeypatch.setattr(background, "KINDS", (Checkerboard, *background.KINDS))
    source = BackgroundSource(BackgroundSettings(bg=tmp_path / "any.checker"))
    assert isinstance(source.kind, Checkerboard) and not source.transparent
    photo = random_rgb(16, 24)
    behind, extra = source.for_image(photo, _matte(photo))
    assert behind.shape == photo.shape and extra == {"board": 4}
    assert behind[0, 0].tolist() == [0, 0, 0] and behind[0, 4].tolist() == [255, 255, 255]
    settings = BackgroundSettings(bg=tmp_path / "any.checker", blur=True, blur_strength=10)
    blurred = BackgroundSource(settings)
    assert 0 < blurred.for_image(photo, _matte(photo))[0][0, 4, 0] < 255  # the run's blur too
    # The video job asks the kind, and refuses a clip it is for photos only.
    with pytest.raises(ImageError, match="a checkerboard is for photos"):
        _refuse_photo_settings(Pipeline(DiscSegmenter(), source))
