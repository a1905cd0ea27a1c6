"""PNG encoding: our encoder (Up filter + ISA-L deflate) against OpenCV's and Pillow's.

Run by hand (never in CI): ``python benchmarks/bench_png.py [--size 1600] [--repeat 5]``.

Encodes the sample photos (resized to ``--size`` px on the long side) to PNG bytes in memory on
one thread, each encoder in turn (interleaved, best of ``--repeat``), and prints milliseconds per
megapixel, the output size, and the ratios to ours. Every encoder's output is decoded again and
checked to be lossless.
"""

from __future__ import annotations

import argparse
import io
import sys
import time
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from operations.media.png import encode_png  # noqa: E402


def _pillow(rgb: np.ndarray, level: int) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, format="PNG", compress_level=level)
    return buffer.getvalue()


def _opencv(rgb: np.ndarray) -> bytes:
    ok, data = cv2.imencode(".png", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    assert ok
    return data.tobytes()


ENCODERS: dict[str, Callable[[np.ndarray], bytes]] = {
    "ours": encode_png,
    "opencv": _opencv,
    "pillow-1": lambda rgb: _pillow(rgb, 1),
    "pillow-6": lambda rgb: _pillow(rgb, 6),  # Pillow's default level
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=1600, help="long side of the photos, px")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    cv2.setNumThreads(1)
    photos = []
    for path in sorted((ROOT / "input").glob("*.jpg")):
        rgb = np.asarray(Image.open(path).convert("RGB"))
        scale = args.size / max(rgb.shape[:2])
        size = (round(rgb.shape[1] * scale), round(rgb.shape[0] * scale))
        photos.append(np.ascontiguousarray(cv2.resize(rgb, size, interpolation=cv2.INTER_CUBIC)))
    megapixels = sum(p.shape[0] * p.shape[1] for p in photos) / 1e6
    best = {name: float("inf") for name in ENCODERS}
    sizes = {}
    for _ in range(args.repeat):
        for name, encode in ENCODERS.items():
            start = time.perf_counter()
            outputs = [encode(photo) for photo in photos]
            best[name] = min(best[name], time.perf_counter() - start)
            sizes[name] = sum(len(data) for data in outputs)
            for photo, data in zip(photos, outputs, strict=True):
                decoded = np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))
                assert np.array_equal(decoded, photo), f"{name} is not lossless"
    print(f"{len(photos)} photos, {megapixels:.1f} MP in all, one thread, best of {args.repeat}")
    for name in ENCODERS:
        ms_per_mp = best[name] * 1000 / megapixels
        time_ratio, size_ratio = best[name] / best["ours"], sizes[name] / sizes["ours"]
        print(
            f"  {name:9s} {ms_per_mp:6.1f} ms/MP  {sizes[name] / 1e6:6.2f} MB  "
            f"time {time_ratio:4.1f}x ours  size {size_ratio:.2f}x ours"
        )


if __name__ == "__main__":
    main()
