"""Batch throughput: our pipeline vs the original tool's MediaPipe path vs the I/O floor.

Run by hand (never in CI): ``python benchmarks/bench_batch.py [--count 24] [--size 1600]``.

All three run in this one process, on the same photos (the two bundled samples, resized to
``--size`` px on the long side and repeated to ``--count`` JPEGs), with the same background:

(a) ours: ``run_batch`` with the default options (model built once, before the clock starts),
    and the same with ``--matting off`` (no edge refinement), to show what refinement costs;
(b) the original tool's MediaPipe path, re-implemented faithfully: ``cv2.imread``; the full
    photo into MediaPipe; ``GaussianBlur((5, 5), 11)`` on the mask, then ``np.where(mask > 0.1)``;
    the background ``cv2.resize``d (stretched) to the photo; ``cv2.imwrite`` PNG. The model is
    also built once, before the clock (the original rebuilt it per image; we do not count that);
(c) the floor: ``cv2.imread`` + ``cv2.imwrite`` PNG of each photo, nothing else; and the same
    with our own PNG encoder (``floor-ours``: ``cv2.imread`` + :func:`encode_png` + write), the
    floor of what we do, since our encoder is several times faster than OpenCV's.

Each is timed ``--repeat`` times; the best run counts. Prints images/s and the ratios.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from operations.batch import run_batch  # noqa: E402
from operations.build import build_pipeline  # noqa: E402
from operations.media.png import encode_png  # noqa: E402
from operations.options import Options  # noqa: E402
from operations.segmenters.mediapipe import MediaPipeSegmenter  # noqa: E402

BACKGROUND = ROOT / "background" / "hubble_deep_field.jpg"


def make_photos(folder: Path, count: int, size: int) -> list[Path]:
    samples = sorted((ROOT / "input").glob("*.jpg"))
    paths = []
    for i in range(count):
        image = cv2.imread(str(samples[i % len(samples)]))
        scale = size / max(image.shape[:2])
        image = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_CUBIC)
        path = folder / f"photo_{i:03d}.jpg"
        cv2.imwrite(str(path), image, [cv2.IMWRITE_JPEG_QUALITY, 92])
        paths.append(path)
    return paths


def original(photos: list[Path], out: Path, graph) -> None:
    import mediapipe as mp

    background = cv2.imread(str(BACKGROUND))
    for path in photos:
        image = cv2.imread(str(path))
        height, width = image.shape[:2]
        rgb = np.ascontiguousarray(cv2.cvtColor(image, cv2.COLOR_BGR2RGB))
        # The whole photo to MediaPipe, which shrinks it itself (the original fed it so).
        (mask,) = graph.segment(
            mp.Image(image_format=mp.ImageFormat.SRGB, data=rgb)
        ).confidence_masks
        mask = mask.numpy_view()[..., 0] if mask.numpy_view().ndim == 3 else mask.numpy_view()
        mask = cv2.GaussianBlur(mask, (5, 5), 11)
        condition = np.stack((mask,) * 3, axis=-1) > 0.1
        bg = cv2.resize(background, (width, height))
        result = np.where(condition, image, bg)
        cv2.imwrite(str(out / f"{path.stem}.png"), result)


def floor(photos: list[Path], out: Path) -> None:
    for path in photos:
        cv2.imwrite(str(out / f"{path.stem}.png"), cv2.imread(str(path)))


def floor_ours(photos: list[Path], out: Path) -> None:
    for path in photos:
        rgb = cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)
        (out / f"{path.stem}.png").write_bytes(encode_png(rgb))


def best_times(runs: dict[str, Callable[[Path], None]], repeat: int, scratch: Path):
    """Best wall time of each run; the runs are interleaved so machine noise hits all alike."""
    times: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(repeat):
        for name, run in runs.items():
            out = scratch / "out"
            shutil.rmtree(out, ignore_errors=True)
            out.mkdir()
            start = time.perf_counter()
            run(out)
            times[name].append(time.perf_counter() - start)
    return {name: min(values) for name, values in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=24, help="number of photos")
    parser.add_argument("--size", type=int, default=1600, help="long side of the photos, px")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--workers", type=int, default=None, help="our threads (default: ours)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        scratch = Path(tmp)
        (scratch / "in").mkdir()
        photos = make_photos(scratch / "in", args.count, args.size)
        pipelines = {}
        for matting in ("fast", "off"):
            options = Options(
                input=scratch / "in", output=scratch / "out", bg=BACKGROUND, matting=matting
            )
            if args.workers:
                options.workers = args.workers
            pipelines[matting] = (
                options.validated(batch=False),
                build_pipeline(options.validated().recipe()),
            )
        segmenter = MediaPipeSegmenter()
        graph = segmenter._graph  # the original fed MediaPipe the photo directly

        def ours(matting: str, report: bool = False) -> Callable[[Path], None]:
            options, pipeline = pipelines[matting]

            def run(out: Path) -> None:
                options.output = out
                options.report = out / "report.html" if report else None
                batch = run_batch(options, pipeline=pipeline, progress=False)
                assert batch.count("ok") == len(photos), batch.summary_line()

            return run

        runs = {
            "ours": ours("fast"),
            "ours-off": ours("off"),
            "ours-report": ours("fast", report=True),  # --report: thumbnails and the page
            "original": lambda out: original(photos, out, graph),
            "floor": lambda out: floor(photos, out),
            "floor-ours": lambda out: floor_ours(photos, out),
        }
        results = best_times(runs, args.repeat, scratch)
        for _, pipeline in pipelines.values():
            pipeline.close()
        segmenter.close()
        workers = pipelines["fast"][0].workers

    height_width = f"{args.size} px long side"
    print(f"{len(photos)} photos, {height_width}, best of {args.repeat}, workers={workers}")
    rate = {name: len(photos) / seconds for name, seconds in results.items()}
    for name, seconds in results.items():
        print(f"  {name:10s} {seconds:7.2f} s  {rate[name]:6.2f} images/s")
    for name in ("ours", "ours-off"):
        print(f"{name:8s} / original = {rate[name] / rate['original']:.2f}x  (target >= 2)")
        print(f"{name:8s} / floor    = {rate[name] / rate['floor']:.2f}x  (target >= 0.8)")
        print(f"{name:8s} / floor-ours = {rate[name] / rate['floor-ours']:.2f}x")
    print(f"ours --report / ours = {rate['ours-report'] / rate['ours']:.2f}x")


if __name__ == "__main__":
    main()
