"""Videos: the same swap for every frame, with the timing, rotation and sound kept, through the
real MediaPipe model, on short clips made here from the sample photos."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image

from operations.batch import plan_jobs, run_batch
from operations.build import build_pipeline
from operations.media.video import (
    DEFAULT_VIDEO_FORMAT,
    TRANSPARENT_FORMATS,
    VIDEO_CODECS,
    BackgroundVideo,
    VideoReader,
    crf,
)
from operations.options import Options, OptionsError
from tests.helpers import BACKGROUND, ROOT, SAMPLES, cli, make_clip, read_clip, save_rgb


def _run(source: Path, out: Path, **settings) -> tuple:
    settings.setdefault("bg", BACKGROUND)
    options = Options(
        input=source, output=out, summary=out.parent / "summary.json", **settings
    ).validated()
    batch = run_batch(options, progress=False)
    rows = {Path(r["input"]).name: r for r in json.loads(options.summary.read_text())["files"]}
    return batch, rows


def test_a_clip_keeps_its_frames_timing_and_sound(tmp_path: Path) -> None:
    source = tmp_path / "in"
    source.mkdir()
    written = make_clip(source / "pan.mp4")
    (source / "photo.jpg").write_bytes((SAMPLES / "grace_hopper.jpg").read_bytes())
    batch, rows = _run(source, tmp_path / "out")
    assert batch.exit_code == 0 and batch.count("ok") == 2
    frames, times, audio, facts = read_clip(source / "pan.mp4")
    out_frames, out_times, out_audio, out_facts = read_clip(tmp_path / "out" / "pan.mp4")
    assert len(out_frames) == len(frames) == 24
    assert out_times == pytest.approx(times, abs=1e-6)
    assert out_facts["rate"] == facts["rate"] == 12
    assert out_facts["duration"] == pytest.approx(facts["duration"], abs=1 / 12)
    assert out_audio == audio and len(audio) > 10  # copied packet for packet, not re-encoded
    assert out_facts["codec"] == "h264" and out_facts["streams"] == ["video", "audio"]
    video = rows["pan.mp4"]["extra"]["video"]
    assert video["frames"] == 24 and video["frames_failed"] == 0 and video["audio"] == ["aac"]
    assert video["fps"] > 0 and rows["pan.mp4"]["doubt"] is not None
    # The subject is kept (the orange suit) and the background replaced (the top-left corner,
    # the flag in the photo, becomes the dark Hubble field).
    for index in (0, 12, 23):
        frame, result = written[index].astype(int), out_frames[index].astype(int)
        suit = (slice(60, 85), slice(30, 65))
        assert np.abs(result[suit] - frame[suit]).mean() < 12
        corner = (slice(0, 20), slice(0, 20))
        assert result[corner].mean() < 60 < frame[corner].mean()


def test_variable_frame_rate_keeps_every_timestamp(tmp_path: Path) -> None:
    source = tmp_path / "in"
    source.mkdir()
    pts = [0, 1, 2, 4, 5, 9, 10, 11, 15, 16]  # gaps: frames held longer
    make_clip(source / "vfr.mkv", frames=len(pts), pts=pts, audio=False)
    batch, _ = _run(source, tmp_path / "out")
    assert batch.exit_code == 0
    _, times, _, _ = read_clip(source / "vfr.mkv")
    _, out_times, _, _ = read_clip(tmp_path / "out" / "vfr.mp4")
    assert times == pytest.approx([p / 12 for p in pts], abs=2e-3)
    assert out_times == pytest.approx(times, abs=1e-4)


def test_rotation_metadata_is_applied(tmp_path: Path) -> None:
    source = tmp_path / "in"
    source.mkdir()
    stored = make_clip(source / "phone.mp4", frames=6, rotation=-90, audio=False)
    _, _, _, facts = read_clip(source / "phone.mp4")
    assert facts["rotations"] == {-90}
    batch, rows = _run(source, tmp_path / "out", blur=True, bg=None)
    assert batch.exit_code == 0
    frames, _, _, out_facts = read_clip(tmp_path / "out" / "phone.mp4")
    assert out_facts["rotations"] == {0}  # written upright, no matrix
    upright = np.rot90(stored[0], -1)  # -90 counter-clockwise: a quarter turn clockwise
    assert frames[0].shape == upright.shape == (160, 112, 3)
    assert rows["phone.mp4"]["extra"]["video"]["rotation"] == 270
    error = np.abs(frames[0].astype(int) - upright).mean()
    upside_down = np.abs(frames[0].astype(int) - np.rot90(stored[0], 1)).mean()
    assert error < 20 and upside_down > 3 * error, (error, upside_down)


def test_a_corrupt_clip_fails_alone_in_one_line(tmp_path: Path) -> None:
    source = tmp_path / "in"
    source.mkdir()
    # Seeded noise: one draw of os.urandom in about 400 parses as a stream with no video.
    (source / "broken.mp4").write_bytes(np.random.default_rng(5).bytes(5000))
    (source / "empty.mov").write_bytes(b"")
    make_clip(source / "good.mp4", frames=4, audio=False)
    batch, rows = _run(source, tmp_path / "out")
    assert batch.exit_code == 1 and batch.count("ok") == 1 and batch.count("failed") == 2
    assert rows["broken.mp4"]["error"].startswith("not a video FFmpeg can read")
    assert rows["empty.mov"]["error"] == "empty file"
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["good.mp4"]


def _corrupt_packet(path: Path, index: int) -> None:
    """Scramble one video packet's bytes in the file."""
    with av.open(str(path)) as container:
        packets = [p for p in container.demux(video=0) if p.size]
        position, size = packets[index].pos, packets[index].size
    data = bytearray(path.read_bytes())
    for k in range(position, position + size):
        data[k] = (data[k] * 7 + 13) & 255
    path.write_bytes(bytes(data))


def test_a_corrupt_middle_frame_loses_nothing_else(tmp_path: Path) -> None:
    source = tmp_path / "in"
    source.mkdir()
    make_clip(source / "mjpeg.avi", frames=12, codec="mjpeg", audio=False)  # frames apart
    _corrupt_packet(source / "mjpeg.avi", 6)
    make_clip(source / "h264.mp4", frames=12, audio=False)  # frames that depend on others
    _corrupt_packet(source / "h264.mp4", 6)
    batch, rows = _run(source, tmp_path / "out")
    assert batch.exit_code == 0 and batch.count("ok") == 2
    video = rows["mjpeg.avi"]["extra"]["video"]
    assert video["frames"] == 12 and video["frames_failed"] == 1
    assert "1 frames could not be decoded" in rows["mjpeg.avi"]["warnings"][0]
    frames, times, _, _ = read_clip(tmp_path / "out" / "mjpeg.mp4")
    assert len(frames) == 12 and times == pytest.approx([i / 12 for i in range(12)], abs=1e-3)
    # The lost frame shows the one before it (the same picture, encoded again).
    assert np.abs(frames[6].astype(int) - frames[5]).mean() < 2
    assert np.abs(frames[7].astype(int) - frames[6]).mean() > 2
    damaged = rows["h264.mp4"]["extra"]["video"]
    assert damaged["frames"] == 12 and damaged["frames_failed"] + damaged["frames_damaged"] >= 1


def test_a_video_background_follows_the_clip_and_loops(tmp_path: Path) -> None:
    source, backgrounds = tmp_path / "in", tmp_path / "bg"
    source.mkdir()
    backgrounds.mkdir()
    make_clip(source / "pan.mp4", frames=24, rate=12, audio=False)
    (source / "photo.jpg").write_bytes((SAMPLES / "grace_hopper.jpg").read_bytes())
    # A background clip of 1 s at 6 fps: each frame one flat grey, 20, 60, ..., 220.
    greys = [20 + 40 * i for i in range(6)]
    out = av.open(str(backgrounds / "greys.mp4"), "w")
    stream = out.add_stream("libx264", rate=6)
    stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
    for i, grey in enumerate(greys):
        frame = av.VideoFrame.from_ndarray(np.full((48, 64, 3), grey, np.uint8), format="rgb24")
        frame.pts = i
        out.mux(stream.encode(frame))
    out.mux(stream.encode(None))
    out.close()
    batch, _ = _run(source, tmp_path / "out", bg=backgrounds / "greys.mp4")
    assert batch.exit_code == 0
    frames, _, _, _ = read_clip(tmp_path / "out" / "pan.mp4")
    corner = [f[:12, :12].mean() for f in frames]
    # Frame i (at i/12 s) shows the background frame at (i/12 mod 1 s): 6 fps, so each grey
    # twice, and again from the start after one second.
    expected = [greys[(i // 2) % 6] for i in range(24)]
    assert corner == pytest.approx(expected, abs=6)
    photo = np.asarray(Image.open(tmp_path / "out" / "photo.png"))
    assert photo[:10, :10].mean() == pytest.approx(greys[0], abs=6)  # a photo: the first frame


def test_the_cutout_keeps_its_alpha_exactly(tmp_path: Path) -> None:
    source = tmp_path / "in"
    source.mkdir()
    make_clip(source / "pan.mp4", frames=5, audio=False)
    batch, _ = _run(
        source, tmp_path / "out", save_cutout=True, save_mask=True, temporal_smoothing=0.0
    )
    assert batch.exit_code == 0
    out = tmp_path / "out"
    assert sorted(p.name for p in out.iterdir()) == ["pan.cutout.mov", "pan.mask.mp4", "pan.mp4"]
    cutouts, _, _, facts = read_clip(out / "pan.cutout.mov", fmt="rgba")
    assert facts["codec"] == "prores" and len(cutouts) == 5
    # The same frames through the same pipeline in memory: the alpha that went in.
    options = Options(input=source, output=out, bg=BACKGROUND).validated()
    with VideoReader(source / "pan.mp4") as reader, build_pipeline(options.recipe()) as pipeline:
        for frame, cutout in zip(reader.frames(), cutouts, strict=True):
            alpha = pipeline.swap(frame.rgb).alpha
            expected = np.clip(alpha * 255 + 0.5, 0, 255).astype(np.uint8)
            assert np.abs(cutout[..., 3].astype(int) - expected).max() <= 1
            assert 0 < (expected == 0).mean() < 1  # a real cut-out, not all one value
    masks, _, _, _ = read_clip(out / "pan.mask.mp4", fmt="gray")
    assert np.abs(masks[0].astype(int) - cutouts[0][..., 3]).mean() < 4  # lossy, close


def test_resume_after_a_kill_redoes_the_unfinished_video(tmp_path: Path) -> None:
    source, out = tmp_path / "in", tmp_path / "out"
    source.mkdir()
    make_clip(source / "long.mp4", frames=300, size=(320, 240), audio=True)
    command = [sys.executable, "run.py", "-i", source, "-o", out, "--blur", "--quiet"]
    proc = subprocess.Popen(command, cwd=ROOT, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not _temporaries(out):
        time.sleep(0.01)
    time.sleep(0.5)  # some frames written
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=60)
    names = [p.name for p in out.iterdir()]
    assert "long.mp4" not in names and [n for n in names if n.endswith(".tmp")], names
    rerun = subprocess.run(
        [*command, "--summary", tmp_path / "s.json"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert rerun.returncode == 0, rerun.stderr
    assert sorted(p.name for p in out.iterdir()) == ["long.mp4"]  # the temporaries swept
    frames, _, audio, _ = read_clip(out / "long.mp4")
    assert len(frames) == 300 and audio == read_clip(source / "long.mp4")[2]


def _temporaries(folder: Path) -> list[str]:
    names = [p.name for p in folder.iterdir()] if folder.exists() else []
    return [n for n in names if n.endswith(".tmp")]


@pytest.mark.skipif(os.name != "posix", reason="signals")
def test_ctrl_c_stops_a_video_midway_and_leaves_no_file(tmp_path: Path) -> None:
    source, out = tmp_path / "in", tmp_path / "out"
    source.mkdir()
    make_clip(source / "long.mp4", frames=600, size=(320, 240), audio=False)
    command = [sys.executable, "run.py", "-i", source, "-o", out, "--blur", "--quiet"]
    proc = subprocess.Popen(command, cwd=ROOT, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    # The video's own temporary: its job has started (the output folder holds a brief
    # temporary of its own while the run starts, and a signal then stops the start-up).
    while time.monotonic() < deadline and not _temporaries(out):
        time.sleep(0.01)
    time.sleep(0.3)
    started = time.monotonic()
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    took = time.monotonic() - started
    assert list(out.iterdir()) == [], err
    assert took < 5, err  # it did not finish the video first


def test_outputs_are_named_like_photos(tmp_path: Path) -> None:
    source = tmp_path / "in"
    source.mkdir()
    for name in ("a.mov", "a.mp4", "b.MKV", "b.jpg"):
        (source / name).write_bytes(b"x")
    options = Options(
        input=source, output=tmp_path / "out", bg=BACKGROUND, save_mask=True, video_codec="vp9"
    ).validated()
    jobs = {
        j.relative.name: ([p.name for p in j.outputs], type(j).__name__) for j in plan_jobs(options)
    }
    assert jobs == {
        "a.mov": (["a.webm", "a.mask.webm"], "VideoJob"),
        "a.mp4": (["a.mp4.webm", "a.mp4.mask.webm"], "VideoJob"),
        "b.MKV": (["b.webm", "b.mask.webm"], "VideoJob"),
        "b.jpg": (["b.png", "b.mask.png"], "PhotoJob"),
    }


def test_one_clip_to_a_named_file(tmp_path: Path) -> None:
    clip = tmp_path / "clip.mov"
    make_clip(clip, frames=3, audio=False)
    with pytest.raises(OptionsError, match=r"comes out as \.mp4"):
        Options(input=clip, output=tmp_path / "x.mov", blur=True).validated()
    options = Options(
        input=clip, output=tmp_path / "x.webm", blur=True, video_codec="vp9", video_quality=40
    ).validated()
    assert run_batch(options, progress=False).exit_code == 0
    frames, _, _, facts = read_clip(tmp_path / "x.webm")
    assert facts["codec"] == "vp9" and len(frames) == 3
    assert crf(VIDEO_CODECS["vp9"], 40) == 38 and crf(VIDEO_CODECS["h264"], 60) == 20
    assert TRANSPARENT_FORMATS[DEFAULT_VIDEO_FORMAT].extension == ".mov"


def test_odd_sizes_are_padded_to_even(tmp_path: Path) -> None:
    clip = tmp_path / "odd.mkv"
    make_clip(clip, frames=3, size=(81, 61), codec="ffv1", audio=False)  # any size for FFV1
    options = Options(input=clip, output=tmp_path / "out", blur=True).validated()
    assert run_batch(options, progress=False).exit_code == 0
    frames, _, _, _ = read_clip(tmp_path / "out" / "odd.mp4")
    assert frames[0].shape == (62, 82, 3)


def test_the_background_video_loops_by_time(tmp_path: Path) -> None:
    make_clip(tmp_path / "bg.mp4", frames=6, rate=6, audio=False)
    video = BackgroundVideo(tmp_path / "bg.mp4")
    with VideoReader(tmp_path / "bg.mp4") as reader:
        frames = [f.rgb for f in reader.frames()]
        assert reader.rate == Fraction(6) and reader.expected_frames == 6
    try:
        for seconds, index in ((0, 0), (0.1, 0), (0.17, 1), (0.99, 5), (1.0, 0), (2.5, 3)):
            np.testing.assert_array_equal(video.at(seconds), frames[index], err_msg=seconds)
    finally:
        video.close()


def test_the_writer_keeps_the_frames_times_whatever_time_base_the_muxer_picks(tmp_path: Path):
    from operations.media.video import VideoWriter

    # 1/12 s is not a time base MP4 keeps (it picks a finer one once the file starts).
    writer = VideoWriter(
        tmp_path / "x.mp4",
        VIDEO_CODECS["h264"],
        32,
        24,
        time_base=Fraction(1, 12),
        rate=Fraction(12),
    )
    for index in (0, 1, 2, 5, 6):
        writer.write(np.full((24, 32, 3), 40 * index, np.uint8), index, 1)
    writer.close()
    _, times, _, _ = read_clip(tmp_path / "x.mp4")
    assert times == pytest.approx([0, 1 / 12, 2 / 12, 5 / 12, 6 / 12], abs=1e-4)


def test_a_clip_cut_short_is_flagged_with_what_is_missing(tmp_path: Path, capsys) -> None:
    source = tmp_path / "in"
    source.mkdir()
    make_clip(source / "cut.mp4", frames=48, audio=False, faststart=True)  # index first
    data = (source / "cut.mp4").read_bytes()
    (source / "cut.mp4").write_bytes(data[: len(data) // 2])  # a half-copied file
    out, summary = tmp_path / "out", tmp_path / "summary.json"
    code, err = cli(capsys, "-i", source, "-o", out, "--blur", "--summary", summary)
    assert code == 0, err
    (row,) = json.loads(summary.read_text())["files"]
    video = row["extra"]["video"]
    assert row["status"] == "ok" and 0 < video["frames"] < 48
    assert video["frames_missing"] == 48 - video["frames"]
    (warning,) = [w for w in row["warnings"] if w.startswith("ends early")]
    assert f"{video['frames_missing']} frames" in warning and " s)" in warning
    assert "ends early" in err  # and the user is told, with the file's name


def test_a_whole_clip_has_nothing_missing(tmp_path: Path, capsys) -> None:
    source = tmp_path / "in"
    source.mkdir()
    make_clip(source / "whole.mp4", frames=24, audio=True)
    summary = tmp_path / "summary.json"
    code, err = cli(capsys, "-i", source, "-o", tmp_path / "out", "--blur", "--summary", summary)
    assert code == 0, err
    (row,) = json.loads(summary.read_text())["files"]
    assert row["extra"]["video"]["frames_missing"] == 0 and row["extra"]["video"]["frames"] == 24
    assert not any(w.startswith("ends early") for w in row["warnings"])


def test_a_photo_named_like_a_video_is_refused_by_its_content(tmp_path: Path, capsys) -> None:
    source = tmp_path / "in"
    save_rgb(source / "holiday.mp4", 40, 60, format="JPEG")  # a JPEG under a video's name
    summary = tmp_path / "summary.json"
    code, err = cli(capsys, "-i", source, "-o", tmp_path / "out", "--blur", "--summary", summary)
    assert code == 1 and "failed holiday.mp4: not a video" in err  # naming the input
    (row,) = json.loads(summary.read_text())["files"]
    assert row["status"] == "failed" and row["error"].startswith("not a video: a still image")
    assert not (tmp_path / "out" / "holiday.mp4").exists()


def test_webm_keeps_the_sound_as_opus(tmp_path: Path, capsys) -> None:
    """AAC cannot go into WebM: it is converted to Opus (no warning), not dropped."""
    source = tmp_path / "in"
    source.mkdir()
    make_clip(source / "talk.mp4", frames=24, audio=True)  # 2 s, a 440 Hz tone in AAC
    summary = tmp_path / "summary.json"
    args = ("-i", source, "-o", tmp_path / "out", "--blur", "--video-codec", "vp9")
    code, err = cli(capsys, *args, "--summary", summary)
    assert code == 0, err
    (row,) = json.loads(summary.read_text())["files"]
    assert row["extra"]["video"]["audio"] == ["opus (from aac)"]
    assert not any("audio not copied" in w for w in row["warnings"])
    with av.open(str(tmp_path / "out" / "talk.webm")) as container:
        (sound,) = container.streams.audio
        assert sound.codec_context.name == "opus"
        samples = [f.to_ndarray() for f in container.decode(sound)]
    tone = np.concatenate(samples, axis=-1)[0]
    assert 1.8 < tone.size / 48000 < 2.3  # the whole two seconds
    spectrum = np.abs(np.fft.rfft(tone[4800:-4800]))
    peak = np.argmax(spectrum) * 48000 / (tone.size - 9600)
    assert abs(peak - 440) < 5  # the same sound


def test_a_huge_frame_header_names_the_pixel_limit(tmp_path: Path, capsys) -> None:
    source = tmp_path / "in"
    source.mkdir()
    # A raw-video header claiming 60000×60000 frames (3.6 GP), and hardly any data.
    header = b"YUV4MPEG2 W60000 H60000 F30:1 Ip A1:1 C420jpeg\nFRAME\n"
    (source / "bomb.y4m").write_bytes(header + bytes(1000))
    summary = tmp_path / "summary.json"
    code, err = cli(capsys, "-i", source, "-o", tmp_path / "out", "--blur", "--summary", summary)
    assert code == 1, err
    (row,) = json.loads(summary.read_text())["files"]
    assert "pixel limit of 120 MP (--max-pixels)" in row["error"], row["error"]
    assert "Device or resource busy" not in row["error"]


def test_a_full_disk_names_the_video_not_our_temporary(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The muxer's error names the hidden file it writes; the reason names the output."""
    import errno

    from operations.media.video import VideoWriter

    source = tmp_path / "in"
    source.mkdir()
    make_clip(source / "clip.mp4", frames=4, audio=False)
    written = VideoWriter.write

    def full(self: VideoWriter, image, pts, duration) -> None:
        if pts >= 2:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), self.container.name)
        written(self, image, pts, duration)

    monkeypatch.setattr(VideoWriter, "write", full)
    options = Options(input=source, output=tmp_path / "out", bg=BACKGROUND).validated()
    (row,) = run_batch(options, progress=False).files
    assert row.status == "failed"
    assert row.error == f"No space left on device: {tmp_path / 'out' / 'clip.mp4'}"
    assert list((tmp_path / "out").iterdir()) == []


def test_a_clip_is_refused_the_backgrounds_for_photos_only(tmp_path: Path) -> None:
    source = tmp_path / "in"
    source.mkdir()
    make_clip(source / "clip.mp4", frames=2, audio=False)
    save_rgb(source / "photo.png", 40, 60)
    batch, rows = _run(source, tmp_path / "out", bg="transparent", format="png")
    assert batch.count("ok") == 1 and rows["photo.png"]["status"] == "ok"
    assert rows["clip.mp4"]["error"] == (  # the library's names (the CLI's are its flags)
        "bg transparent is for photos: a video's cut-out is save_cutout, with its alpha (in "
        "video_format: mov, webm, webp or png frames)"
    )
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["photo.png"]
