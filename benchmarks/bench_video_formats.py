"""What each transparent video format (``--video-format``) costs per frame at 1080p: the time to
encode and write a frame (the writer's own thread, as a clip's run pays it) and the bytes it
takes, ProRes 4444 ``.mov`` beside VP9-alpha ``.webm``, animated ``.webp`` and PNG frames.

Run by hand: ``python benchmarks/bench_video_formats.py [--frames 48]``. The frames are a real
cut-out moving: the sample astronaut, its alpha an ellipse with a soft edge, panned across a
1920×1080 canvas (a transparent background, as cut-outs are).
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from operations.media.video import TRANSPARENT_FORMATS, open_writer  # noqa: E402
from tests.helpers import SAMPLES  # noqa: E402

WIDTH, HEIGHT = 1920, 1080


def _frames(count: int) -> list[np.ndarray]:
    photo = np.asarray(Image.open(SAMPLES / "astronaut.jpg").convert("RGB"))
    subject = cv2.resize(photo, (900, 900), interpolation=cv2.INTER_AREA)
    alpha = np.zeros((900, 900), np.float32)
    cv2.ellipse(alpha, (450, 470), (330, 420), 0, 0, 360, 1.0, -1)
    alpha = cv2.GaussianBlur(alpha, (0, 0), 4)
    frames = []
    for index in range(count):
        canvas = np.zeros((HEIGHT, WIDTH, 4), np.uint8)
        x = 100 + index * 15
        canvas[90:990, x : x + 900, :3] = subject
        canvas[90:990, x : x + 900, 3] = np.round(alpha * 255).astype(np.uint8)
        frames.append(canvas)
    return frames


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--frames", type=int, default=48)
    args = parser.parse_args()
    frames = _frames(args.frames)
    print(f"{args.frames} RGBA frames at {WIDTH}×{HEIGHT}, 24 fps")
    print(f"{'format':>6} | {'ms per frame':>12} | {'KB per frame':>12} | {'× ProRes time':>13}")
    base = None
    with tempfile.TemporaryDirectory() as tmp:
        for name, codec in TRANSPARENT_FORMATS.items():
            path = Path(tmp) / f"out{codec.extension}"
            if not codec.extension:
                path.mkdir()
            start = time.perf_counter()
            writer = open_writer(
                path, codec, WIDTH, HEIGHT, time_base=Fraction(1, 24), rate=Fraction(24)
            )
            for index, frame in enumerate(frames):
                writer.write(frame, index, 1)
            writer.close()
            seconds = (time.perf_counter() - start) / len(frames)
            size = (
                sum(p.stat().st_size for p in path.rglob("*"))
                if path.is_dir()
                else path.stat().st_size
            )
            base = base or seconds
            print(
                f"{name:>6} | {seconds * 1000:12.1f} | {size / len(frames) / 1024:12.0f} | "
                f"{seconds / base:13.2f}"
            )
            shutil.rmtree(path) if path.is_dir() else path.unlink()


if __name__ == "__main__":
    main()
