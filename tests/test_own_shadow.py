"""--keep-shadow: the subject's own cast shadow found in the photo (density against a known
one), carried onto a new background and into a transparent result's alpha, moved with the
subject by --frame, steady in a video, and nothing kept (with a warning) where it cannot work."""

from __future__ import annotations

import io
import itertools
import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

import run
from operations.stages.own_shadow import find_shadow
from tests.helpers import make_clip, needs, read_clip, shadowed_scene

SIZE = (240, 320)  # height, width


def _outside(alpha: np.ndarray) -> np.ndarray:
    return alpha < 0.02


def test_the_shadow_is_found_with_its_density() -> None:
    photo, alpha, truth = shadowed_scene(*SIZE, seed=3, shadow=0.5)
    found = find_shadow(photo, alpha)
    assert found.warning is None and found.density is not None
    out = _outside(alpha)
    shadowed = out & (truth > 0.1)
    assert np.abs(found.density - truth)[shadowed].mean() < 0.05  # as dark as photographed
    assert np.abs(found.density - truth)[out].mean() < 0.01
    far = out & (cv2.GaussianBlur(truth, (0, 0), 6) < 0.005)  # well away from any shadow
    assert found.density[far].max() < 0.02  # the backdrop's noise and vignette are no shadow


@pytest.mark.parametrize("colour", [None, (10, 10, 10), (250, 250, 250)])
def test_a_photo_without_a_shadow_keeps_none(colour) -> None:
    # A black product's edge darkens the backdrop beside it in any blur: no shadow for that.
    photo, alpha, _ = shadowed_scene(*SIZE, seed=4, shadow=0.0, colour=colour)
    found = find_shadow(photo, alpha)
    assert found.density is None and found.warning is None


@pytest.mark.parametrize(
    ("scene", "said"),
    [({"floor": "busy"}, "the backdrop is not plain"), ({"wall": True}, "a shadow on a wall")],
)
def test_where_it_cannot_work_it_warns_and_keeps_none(scene: dict, said: str) -> None:
    photo, alpha, _ = shadowed_scene(*SIZE, seed=5, **scene)
    found = find_shadow(photo, alpha)
    assert found.density is None and found.warning is not None and said in found.warning


@pytest.fixture
def shoot(tmp_path: Path) -> tuple[Path, Path, dict[str, np.ndarray]]:
    """Photos with their exact masks (--masks: no model), and their shadows' truth."""
    photos, masks = tmp_path / "in", tmp_path / "masks"
    photos.mkdir()
    masks.mkdir()
    truths = {}
    for name, shadow in (("mug", 0.5), ("plain", 0.0)):
        photo, alpha, truth = shadowed_scene(*SIZE, seed=6, shadow=shadow)
        Image.fromarray(photo).save(photos / f"{name}.png")
        Image.fromarray(np.round(alpha * 255).astype(np.uint8)).save(masks / f"{name}.png")
        truths[name] = truth
    return photos, masks, truths


def _cli(capsys, photos: Path, masks: Path, out: Path, *extra: object) -> dict:
    summary = out.parent / f"{out.name}.json"
    args = ["-i", photos, "-o", out, "--masks", masks, "--summary", summary, "-q", *extra]
    assert run.main([str(a) for a in args]) == 0
    capsys.readouterr()
    return {Path(r["input"]).stem: r for r in json.loads(summary.read_text())["files"]}


def _read(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path)).astype(np.float32)


def test_the_shadow_is_carried_onto_the_new_background(shoot, tmp_path, capsys) -> None:
    photos, masks, truths = shoot
    _cli(capsys, photos, masks, tmp_path / "plain", "-b", "#4080c0", "--format", "png")
    rows = _cli(
        capsys, photos, masks, tmp_path / "kept", "-b", "#4080c0", "--format", "png",
        "--keep-shadow",
    )  # fmt: skip
    assert rows["mug"]["warnings"] == [] and rows["plain"]["warnings"] == []
    # No shadow in the photo: the result is today's, byte for byte.
    assert (tmp_path / "kept" / "plain.png").read_bytes() == (
        tmp_path / "plain" / "plain.png"
    ).read_bytes()
    before, after = _read(tmp_path / "plain" / "mug.png"), _read(tmp_path / "kept" / "mug.png")
    truth = truths["mug"]
    alpha = _read(masks / "mug.png") / 255
    shadowed = _outside(alpha) & (truth > 0.2)
    ratio = after[shadowed] / before[shadowed]  # the new background, multiplied
    assert np.abs(ratio - (1 - truth[shadowed])[:, None]).mean() < 0.06
    # Only darker, never tinted: the three channels darkened alike (no old backdrop's colour).
    assert np.ptp(ratio, axis=1).mean() < 0.03
    away = _outside(alpha) & (cv2.GaussianBlur(truth, (0, 0), 6) < 0.005)
    assert np.abs(after[away] - before[away]).max() <= 1  # nothing else of the old background


def test_a_transparent_result_holds_the_shadow_in_its_alpha(shoot, tmp_path, capsys) -> None:
    photos, masks, truths = shoot
    _cli(capsys, photos, masks, tmp_path / "plain", "-b", "transparent")
    _cli(capsys, photos, masks, tmp_path / "kept", "-b", "transparent", "--keep-shadow")
    rgba, plain = _read(tmp_path / "kept" / "mug.png"), _read(tmp_path / "plain" / "mug.png")
    alpha = _read(masks / "mug.png") / 255
    truth = truths["mug"]
    shadowed = _outside(alpha) & (truth > 0.2)
    assert np.abs(rgba[..., 3][shadowed] / 255 - truth[shadowed]).mean() < 0.06
    colours = rgba[..., :3][shadowed]  # a black layer: no colour of the old backdrop (a pixel's
    assert np.median(colours) == 0 and colours.mean() < 2  # colour is the subject's share)
    assert (rgba[..., 3] >= plain[..., 3]).all()  # the shadow under the subject, never less
    solid = plain[..., 3] == 255
    assert np.array_equal(rgba[solid], plain[solid])  # the subject itself is untouched


def test_the_shadow_moves_and_scales_with_the_framed_subject(shoot, tmp_path, capsys) -> None:
    photos, masks, _ = shoot
    frame = ("--frame", "subject", "--canvas", "600x600", "--align", "bottom")
    _cli(capsys, photos, masks, tmp_path / "plain", "-b", "white", "--format", "png", *frame)
    _cli(
        capsys, photos, masks, tmp_path / "kept", "-b", "white", "--format", "png", *frame,
        "--keep-shadow",
    )  # fmt: skip
    before, after = _read(tmp_path / "plain" / "mug.png"), _read(tmp_path / "kept" / "mug.png")
    assert before.shape == after.shape == (600, 600, 3)
    darker = (before - after).mean(axis=2)
    assert darker.max() > 60  # the shadow is there
    subject = np.abs(before - 255).mean(axis=2) > 30
    ys, xs = np.nonzero(darker > 20)
    sy, sx = np.nonzero(subject)
    # As photographed: at the subject's foot and off to its right, on the framed canvas.
    assert abs(ys.max() - sy.max()) < 0.05 * 600 and xs.max() > sx.max()
    _cli(capsys, photos, masks, tmp_path / "cut", "-b", "transparent", *frame)
    solid = _read(tmp_path / "cut" / "mug.png")[..., 3] == 255  # the framed subject's alpha
    assert solid.sum() > 0.1 * solid.size and darker[solid].max() <= 1  # never on the subject


def test_a_videos_shadow_is_steady_from_frame_to_frame(tmp_path: Path) -> None:
    densities = []
    for seed in range(4):  # the same scene, each frame with its own sensor noise
        photo, alpha, _ = shadowed_scene(*SIZE, seed=7, noise=2.0)
        noise = np.random.default_rng(seed).normal(0, 2.0, photo.shape)
        found = find_shadow(np.clip(photo + noise, 0, 255).astype(np.uint8), alpha)
        assert found.density is not None
        densities.append(found.density[_outside(alpha)])
    steps = [np.abs(a - b).mean() for a, b in itertools.pairwise(densities)]
    assert max(steps) < 0.004


def test_a_clip_with_keep_shadow_is_written(tmp_path: Path, capsys) -> None:
    source = tmp_path / "in"
    source.mkdir()
    make_clip(source / "pan.mp4", frames=3, audio=False)  # a person in a scene: said, not kept
    summary = tmp_path / "s.json"
    args = ["-i", source, "-o", tmp_path / "out", "-b", "white", "--keep-shadow"]
    assert run.main([str(a) for a in [*args, "--summary", summary, "-q"]]) == 0
    row = json.loads(summary.read_text())["files"][0]
    assert any("kept no shadow" in w for w in row["warnings"])
    assert len(read_clip(tmp_path / "out" / "pan.mp4")[0]) == 3


def test_keep_shadow_and_shadow_are_one_or_the_other(tmp_path: Path, capsys) -> None:
    code = run.main(["-i", str(tmp_path), "-o", str(tmp_path / "o"), "-b", "white", "--shadow",
                     "--keep-shadow"])  # fmt: skip
    assert code == 2 and "--keep-shadow" in capsys.readouterr().err


def _png(image: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, "PNG")
    return buffer.getvalue()


def test_the_library_keeps_it_too(tmp_path: Path) -> None:
    from operations.api import BackgroundSwapper

    photo, alpha, truth = shadowed_scene(*SIZE, seed=6, shadow=0.5)
    shadowed = _outside(alpha) & (truth > 0.2)
    Image.fromarray(np.full_like(photo, 255)).save(tmp_path / "white.png")
    with BackgroundSwapper(tmp_path / "white.png", keep_shadow=True) as swapper:
        kept = swapper(photo, mask=alpha).astype(np.float32)
    assert np.abs(kept[shadowed].mean(axis=1) / 255 - (1 - truth[shadowed])).mean() < 0.06


@needs("fastapi", "uvicorn", "httpx")
def test_the_service_keeps_it_too() -> None:
    from starlette.testclient import TestClient

    from operations.options import Options
    from operations.service.server import Service, ServiceSettings, create_app

    photo, alpha, truth = shadowed_scene(*SIZE, seed=6, shadow=0.5)
    shadowed = _outside(alpha) & (truth > 0.2)
    recipe = Options().validated(batch=False).recipe()
    service = Service(recipe, ServiceSettings(api_keys=("k1",)))
    with TestClient(create_app(service)) as client:
        assert service.ready.wait(60), service.load_error
        mask = _png(np.round(alpha * 255).astype(np.uint8))
        files = {"image_file": _png(photo), "mask_file": mask}
        answer = client.post(
            "/v1/swap", files=files, data={"keep_shadow": "true"}, headers={"X-Api-Key": "k1"}
        )  # transparent by default: the shadow in the alpha
        assert answer.status_code == 200, answer.text
        rgba = np.asarray(Image.open(io.BytesIO(answer.content))).astype(float)
        assert np.abs(rgba[..., 3][shadowed] / 255 - truth[shadowed]).mean() < 0.06
        both = {"keep_shadow": "true", "shadow": "true", "bg": "white"}
        answer = client.post("/v1/swap", files=files, data=both, headers={"X-Api-Key": "k1"})
        assert answer.status_code == 400 and "not both" in answer.text
