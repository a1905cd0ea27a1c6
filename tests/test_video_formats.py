"""Transparent videos in every --video-format: the same alpha as the ProRes .mov, read back the
way their users read them (libvpx for the WebM, Pillow for the WebP, any PNG reader for the
frames), the sound where the container holds it, and a folder of frames staged, replaced and
swept like a file."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from operations.batch import run_batch
from operations.media.files import PREFIX, StagedOutputs, sweep
from operations.options import Options
from tests.helpers import BACKGROUND, make_clip, read_clip

FRAMES = 5


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    source = tmp_path_factory.mktemp("in")
    make_clip(source / "pan.mp4", frames=FRAMES)  # with sound
    return source


def _inside(region: np.ndarray) -> np.ndarray:
    """The region less 2 px at its edge (where a lossy alpha may round)."""
    import cv2

    return cv2.erode(region.astype(np.uint8), np.ones((5, 5), np.uint8)).astype(bool)


def _run(source: Path, out: Path, fmt: str, **settings) -> dict:
    options = Options(
        input=source,
        output=out,
        bg=BACKGROUND,
        save_cutout=True,
        save_mask=True,
        video_format=fmt,
        summary=out.parent / f"{out.name}.json",
        **settings,
    ).validated()
    assert run_batch(options, progress=False).exit_code == 0
    return json.loads(options.summary.read_text())["files"][0]


@pytest.fixture(scope="module")
def prores_alpha(clip: Path, tmp_path_factory: pytest.TempPathFactory) -> list[np.ndarray]:
    """The ProRes cut-out's alpha (exact: 16-bit in the file), what the others must match."""
    out = tmp_path_factory.mktemp("mov") / "out"
    _run(clip, out, "mov")
    frames, _, audio, facts = read_clip(out / "pan.cutout.mov", fmt="rgba")
    assert facts["codec"] == "prores" and len(frames) == FRAMES
    assert audio == read_clip(clip / "pan.mp4")[2]  # the cut-out carries the clip's sound
    alphas = [f[..., 3] for f in frames]
    assert 0.05 < np.mean([(a == 0).mean() for a in alphas]) < 0.95  # a real cut-out
    return alphas


def test_webm_is_vp9_with_alpha_that_libvpx_reads(clip, prores_alpha, tmp_path) -> None:
    import av

    _run(clip, tmp_path / "out", "webm")
    path = tmp_path / "out" / "pan.cutout.webm"
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        assert stream.metadata.get("alpha_mode") == "1"  # what browsers look for
        decoder = av.codec.CodecContext.create("libvpx-vp9", "r")
        frames = [f for p in container.demux(stream) for f in decoder.decode(p)]
        assert container.streams.audio  # the sound, as Opus (WebM cannot hold AAC)
    assert len(frames) == FRAMES and {f.format.name for f in frames} == {"yuva420p"}
    for frame, truth in zip(frames, prores_alpha, strict=True):
        alpha = frame.to_ndarray(format="rgba")[..., 3].astype(int)
        solid, clear = _inside(truth == 255), _inside(truth == 0)  # 2 px from the edge: lossy
        assert alpha[solid].min() >= 240 and alpha[clear].max() <= 15
        assert np.abs(alpha - truth).mean() < 2.0


def test_png_frames_have_the_movs_alpha_and_the_sound_beside(clip, prores_alpha, tmp_path):
    import av

    row = _run(clip, tmp_path / "out", "png")
    folder = tmp_path / "out" / "pan.cutout"
    names = sorted(p.name for p in folder.iterdir())
    assert names == [f"{i:06d}.png" for i in range(1, FRAMES + 1)] + ["audio.m4a"]
    for name, truth in zip(names, prores_alpha, strict=False):
        with Image.open(folder / name) as image:
            assert image.mode == "RGBA"
            alpha = np.asarray(image)[..., 3]
        assert np.abs(alpha.astype(int) - truth).max() <= 1  # the same alpha, 8-bit
        with Image.open(tmp_path / "out" / "pan.mask" / name) as mask:  # masks as frames too
            assert mask.mode == "L" and np.array_equal(np.asarray(mask), alpha)
    with av.open(str(folder / "audio.m4a")) as sound:
        audio = [bytes(p) for p in sound.demux(audio=0) if p.size]
    assert audio == read_clip(clip / "pan.mp4")[2]  # the packets copied, not re-encoded
    assert row["status"] == "ok" and Path(row["output"]).name == "pan.mp4"
    video = row["extra"]["video"]  # the summary knows the folders, each as one result
    assert video["cutout"] == {"path": str(folder), "format": "png frames"}
    assert video["mask"] == {"path": str(tmp_path / "out" / "pan.mask"), "format": "png frames"}


def test_webp_is_an_animated_sticker_with_alpha(clip, prores_alpha, tmp_path) -> None:
    _run(clip, tmp_path / "out", "webp", video_quality=90)
    with Image.open(tmp_path / "out" / "pan.cutout.webp") as image:
        assert image.is_animated and image.n_frames == FRAMES
        assert image.info.get("loop") == 0  # loops for ever
        durations = []
        for index, truth in enumerate(prores_alpha):
            image.seek(index)
            image.load()  # Pillow reads a frame's duration as it decodes it
            durations.append(image.info["duration"])
            alpha = np.asarray(image.convert("RGBA"))[..., 3].astype(int)
            assert np.abs(alpha - truth).mean() < 2.0 and alpha[_inside(truth == 0)].max() <= 15
    assert durations == pytest.approx([1000 / 12] * FRAMES, abs=1)  # the clip's 12 fps


def test_a_folder_of_frames_is_replaced_whole_with_overwrite(clip, tmp_path) -> None:
    out = tmp_path / "out"
    _run(clip, out, "png")
    (out / "pan.cutout" / "stray.txt").write_text("from before")
    first = (out / "pan.cutout" / "000001.png").stat().st_ino
    _run(clip, out, "png", overwrite=True)
    folder = out / "pan.cutout"
    assert not (folder / "stray.txt").exists()  # the old folder went whole
    assert (folder / "000001.png").stat().st_ino != first
    assert len(list(folder.glob("*.png"))) == FRAMES
    assert not [p for p in out.iterdir() if p.name.startswith(PREFIX)]  # nothing left aside


def test_a_staged_folder_is_all_or_nothing(tmp_path) -> None:
    outputs = [tmp_path / "a.mp4", tmp_path / "a.cutout"]
    with StagedOutputs(outputs, folders=[1]) as staged:
        staged.write(0, lambda f: f.write(b"video"))
        (staged.temporaries[1] / "000001.png").write_bytes(b"frame")
        # Given up (the source changed, say): neither the file nor the folder is left.
    assert list(tmp_path.iterdir()) == []
    with StagedOutputs(outputs, folders=[1]) as staged:
        staged.write(0, lambda f: f.write(b"video"))
        (staged.temporaries[1] / "000001.png").write_bytes(b"frame")
        written = staged.commit()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.cutout", "a.mp4"]
    assert (tmp_path / "a.cutout" / "000001.png").read_bytes() == b"frame"
    assert all(w.still_there() for w in written)  # a folder's record holds after the rename


def test_a_killed_runs_folder_is_swept_and_a_held_one_kept(tmp_path) -> None:
    import fcntl

    stale = tmp_path / f"{PREFIX}0123456789ab-x.tmp"
    stale.mkdir()
    (stale / "000001.png").write_bytes(b"frame")
    held = tmp_path / f"{PREFIX}0123456789ab-y.tmp"
    held.mkdir()
    fd = os.open(held, os.O_RDONLY | os.O_DIRECTORY)
    fcntl.flock(fd, fcntl.LOCK_EX)  # a writer in another run, still at work
    try:
        assert sweep([tmp_path], before=time.time() + 1) == 1
        assert not stale.exists() and held.is_dir()
    finally:
        os.close(fd)


def test_the_format_is_refused_by_name(tmp_path) -> None:
    from operations.errors import OptionsError

    with pytest.raises(
        OptionsError, match="--video-format 'gif': choose from mov, webm, webp, png"
    ):
        Options(input=tmp_path, output=tmp_path / "o", blur=True, video_format="gif").validated()
