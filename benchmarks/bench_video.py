"""Videos: speed against the decode+encode floor, flicker against a known answer, memory.

Run by hand: ``python benchmarks/bench_video.py [--seconds 30] [--sizes 720 1080] [--skip ...]``.

``speed``
    A clip of the sample photos under a slow pan and zoom (``--seconds`` long, 30 fps, H.264
    with our own settings) at each size. *Floor*: decode it and encode every frame again with
    the same codec settings, no processing (the least any tool must do). *Ours*: the whole run
    with the defaults (``--bg``, MediaPipe, edge refinement, temporal smoothing, sound copied).
    Frames per second and ours ÷ floor, side by side in one run.
``flicker``
    A clip whose answer is known: the refined alpha of a still photo (MediaPipe + our edges),
    its subject moved by a known pan/zoom (or held still), composited over a known background,
    plus per-frame sensor noise (σ = 3/255); so every frame's true alpha is known. Reported,
    with smoothing off and on: the mean alpha error against the truth (all pixels, and in the
    edge band), and the flicker = the mean frame-to-frame change of alpha in the edge band that
    the truth does not have, |Δα − Δα_true|.
``memory``
    Peak RSS of the whole command (``run.py``, its own process) on a 10 s and a 60 s clip.
``curve``
    RSS of the whole command over one long clip (default 65 s of 4K), ten points along the run.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from operations.batch import run_batch  # noqa: E402
from operations.build import build_pipeline  # noqa: E402
from operations.media.video import VIDEO_CODECS, VideoReader, VideoWriter  # noqa: E402
from operations.options import Options  # noqa: E402
from operations.stages.temporal import DEFAULT_STRENGTH as DEFAULT  # noqa: E402
from operations.stages.temporal import TemporalSmoother  # noqa: E402
from tests.helpers import BACKGROUND, SAMPLES  # noqa: E402

RATE = 30


def _photo(name: str, width: int, height: int) -> np.ndarray:
    image = cv2.cvtColor(cv2.imread(str(SAMPLES / name)), cv2.COLOR_BGR2RGB)
    return cv2.resize(image, (width, height), interpolation=cv2.INTER_CUBIC)


def _pan(image: np.ndarray, t: float) -> np.ndarray:
    """The photo under a slow zoom (to 1.15×) and pan, ``t`` in [0, 1]."""
    height, width = image.shape[:2]
    scale = 1.0 + 0.15 * t
    matrix = np.float32([[scale, 0, -0.06 * width * t], [0, scale, -0.03 * height * t]])
    return cv2.warpAffine(image, matrix, (width, height), borderMode=cv2.BORDER_REFLECT)


def make_clip(path: Path, height: int, seconds: float) -> None:
    """The sample photos, one after the other, each under a pan and zoom, with a tone."""
    width = height * 16 // 9
    photos = [_photo(name, width, height) for name in ("astronaut.jpg", "grace_hopper.jpg")]
    frames = round(seconds * RATE)
    codec = VIDEO_CODECS["h264"]
    writer = VideoWriter(
        path, codec, width, height, time_base=Fraction(1, RATE), rate=Fraction(RATE)
    )
    shot = max(1, frames // len(photos))
    for index in range(frames):
        photo = photos[min(index // shot, len(photos) - 1)]
        writer.write(_pan(photo, (index % shot) / shot), index, 1)
    writer.close()


def floor(path: Path, out: Path) -> float:
    """Decode + encode every frame with our settings; frames per second."""
    start = time.perf_counter()
    with VideoReader(path) as reader:
        writer = None
        count = 0
        for frame in reader.frames():
            if writer is None:
                height, width = frame.rgb.shape[:2]
                writer = VideoWriter(
                    out,
                    VIDEO_CODECS["h264"],
                    width,
                    height,
                    time_base=reader.time_base,
                    rate=reader.rate,
                )
            writer.write(frame.rgb, frame.pts, frame.duration)
            count += 1
        writer.close()
    return count / (time.perf_counter() - start)


def ours(path: Path, out: Path) -> tuple[float, float]:
    """The whole run with the defaults: (frames per second without start-up, with it)."""
    options = Options(input=path, output=out, bg=BACKGROUND, quiet=True).validated()
    batch = run_batch(options, progress=False)
    result = batch.files[0]
    assert result.status == "ok", result.error
    frames = result.extra["video"]["frames"]
    return frames / result.seconds, frames / batch.seconds


def speed(sizes: list[int], seconds: float, folder: Path) -> None:
    print(f"## speed: {seconds:g} s clips at {RATE} fps, H.264 ({os.cpu_count()} cores)\n")
    print("| size | floor: decode + encode | ours (defaults) | ours ÷ floor | ours with start-up |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for height in sizes:
        clip = folder / f"clip{height}.mp4"
        make_clip(clip, height, seconds)
        base = floor(clip, folder / f"floor{height}.mp4")
        fps, whole = ours(clip, folder / f"out{height}")
        ratio = fps / base
        print(f"| {height}p | {base:.1f} fps | {fps:.1f} fps | {ratio:.2f}× | {whole:.1f} fps |")
    print()


def _known_clip(height: int, frames: int, moving: bool, seed: int = 0):
    """Frames and their true alphas: a still photo's refined alpha, moved, over a known
    background, plus sensor noise."""
    width = height * 16 // 9
    photo = _photo("astronaut.jpg", width, height)
    backdrop = cv2.cvtColor(cv2.imread(str(BACKGROUND)), cv2.COLOR_BGR2RGB)  # no person in it
    backdrop = cv2.resize(backdrop, (width, height), interpolation=cv2.INTER_AREA)
    options = Options(bg=BACKGROUND).validated(batch=False)
    with build_pipeline(options.recipe()) as pipeline:
        alpha = pipeline.swap(photo).alpha
    rng = np.random.default_rng(seed)
    for index in range(frames):
        t = index / max(1, frames - 1)
        subject, truth = (_pan(photo, t), _pan(alpha, t)) if moving else (photo, alpha)
        image = truth[..., None] * subject + (1 - truth[..., None]) * backdrop
        image = image + rng.normal(0, 3, image.shape)
        yield np.clip(image + 0.5, 0, 255).astype(np.uint8), truth


def flicker(height: int, frames: int, strengths: list[float]) -> None:
    print(f"## flicker: {frames} frames at {height}p, known alpha, noise σ = 3/255\n")
    print("| clip | smoothing | alpha error | alpha error, edge band | flicker, edge band |")
    print("| --- | ---: | ---: | ---: | ---: |")
    options = Options(bg=BACKGROUND).validated(batch=False)
    with build_pipeline(options.recipe()) as pipeline:
        for moving in (False, True):
            for strength in strengths:
                smoother = TemporalSmoother(strength)
                errors, band_errors, changes = [], [], []
                last = None
                for image, truth in _known_clip(height, frames, moving):
                    # As a video job does: the refined matte, smoothed over time.
                    matte = pipeline.matte(image, pipeline.segment(image))
                    alpha = smoother.matte(matte, image).alpha
                    edge = (truth > 0.02) & (truth < 0.98)
                    band = cv2.dilate(edge.astype(np.uint8), np.ones((9, 9), np.uint8)) > 0
                    errors.append(np.abs(alpha - truth).mean())
                    band_errors.append(np.abs(alpha - truth)[band].mean())
                    if last is not None:
                        spurious = np.abs((alpha - last[0]) - (truth - last[1]))
                        changes.append(spurious[band | last[2]].mean())
                    last = (alpha, truth, band)
                name = "moving (pan/zoom)" if moving else "still"
                cells = (np.mean(errors), np.mean(band_errors), np.mean(changes))
                print(f"| {name} | {strength:g} | " + " | ".join(f"{c:.4f}" for c in cells) + " |")
    print()


def _peak_rss(command: list[str]) -> tuple[float, float]:
    """(peak RSS in MiB, seconds) of a command in its own process."""
    start = time.perf_counter()
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL)
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    assert process.returncode == 0, command
    return usage.ru_maxrss / 1024, time.perf_counter() - start


def memory(height: int, folder: Path) -> None:
    print(f"## memory: peak RSS of `run.py` on {height}p clips\n")
    print("| clip | peak RSS | seconds |")
    print("| --- | ---: | ---: |")
    for seconds in (10, 60):
        clip = folder / f"mem{seconds}.mp4"
        make_clip(clip, height, seconds)
        rss, took = _peak_rss(
            [
                sys.executable,
                "run.py",
                "-i",
                str(clip),
                "-o",
                str(folder / f"mem{seconds}"),
                "--bg",
                str(BACKGROUND),
                "--quiet",
            ]
        )
        print(f"| {seconds} s | {rss:.0f} MiB | {took:.1f} |", flush=True)
    print()


def _rss_mib(pid: int) -> float | None:
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def curve(height: int, seconds: float, folder: Path, points: int = 10) -> None:
    """RSS of the whole command over one long clip, sampled twice a second (Linux)."""
    clip = folder / f"curve{height}.mp4"
    make_clip(clip, height, seconds)
    command = [sys.executable, "run.py", "-i", str(clip), "-o", str(folder / "curve")]
    command += ["--bg", str(BACKGROUND), "--quiet"]
    start = time.perf_counter()
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL)
    samples = []
    while process.poll() is None:
        rss = _rss_mib(process.pid)
        if rss is not None:
            samples.append((time.perf_counter() - start, rss))
        time.sleep(0.5)
    assert process.returncode == 0, command
    took = time.perf_counter() - start
    print(f"## memory over a {seconds:g} s {height}p clip: RSS of `run.py` ({took:.0f} s)\n")
    print("| time into the run | RSS |")
    print("| ---: | ---: |")
    for k in range(1, points + 1):
        at = took * k / points
        rss = max((r for t, r in samples if t <= at), default=0.0)  # the peak so far
        now = min(samples, key=lambda sample: abs(sample[0] - at))[1]
        print(f"| {at:.0f} s ({100 * k // points} %) | {now:.0f} MiB (peak so far {rss:.0f}) |")
    print()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--sizes", type=int, nargs="+", default=[720, 1080])
    parser.add_argument("--flicker-frames", type=int, default=60)
    parser.add_argument("--strengths", type=float, nargs="+", default=[0.0, 0.4, DEFAULT, 0.8])
    parser.add_argument(
        "--skip", nargs="*", default=[], choices=["speed", "flicker", "memory", "curve"]
    )
    parser.add_argument("--curve-size", type=int, default=2160)
    parser.add_argument("--curve-seconds", type=float, default=65)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-video-") as folder:
        if "flicker" not in args.skip:
            flicker(720, args.flicker_frames, args.strengths)
        if "speed" not in args.skip:
            speed(args.sizes, args.seconds, Path(folder))
        if "memory" not in args.skip:
            memory(720, Path(folder))
        if "curve" not in args.skip:
            curve(args.curve_size, args.curve_seconds, Path(folder))


if __name__ == "__main__":
    main()
