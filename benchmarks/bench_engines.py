"""Local engine vs Ray engine on this machine: images/s and Ray's start-up overhead.

Run by hand (never in CI): ``python benchmarks/bench_engines.py [--count 200] [--size 800]``.

The same photos (the samples resized to ``--size`` px on the long side, repeated to ``--count``
JPEGs) and the same default options (MediaPipe, fast edges, the sample background); each engine
writes into its own fresh folder. Ray runs on a local instance started here with every CPU; its
start-up (``ray.init``) is timed apart from the batch.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.bench_batch import BACKGROUND, make_photos  # noqa: E402
from operations.batch import run_batch  # noqa: E402
from operations.options import Options  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=200)
    parser.add_argument("--size", type=int, default=800)
    args = parser.parse_args()
    import ray

    with tempfile.TemporaryDirectory() as tmp:
        scratch = Path(tmp)
        (scratch / "in").mkdir()
        photos = make_photos(scratch / "in", args.count, args.size)
        seconds = {}
        for engine in ("local", "ray"):
            if engine == "ray":
                start = time.perf_counter()
                ray.init(include_dashboard=False, log_to_driver=False, logging_level="ERROR")
                seconds["ray start-up"] = time.perf_counter() - start
            options = Options(input=scratch / "in", output=scratch / engine, bg=BACKGROUND,
                              engine=engine, quiet=True).validated()  # fmt: skip
            start = time.perf_counter()
            batch = run_batch(options, progress=False)
            seconds[engine] = time.perf_counter() - start
            assert batch.count("ok") == len(photos), batch.summary_line()
        ray.shutdown()
    print(f"{len(photos)} photos, {args.size} px long side, {ray.__version__=}")
    print(f"  ray start-up   {seconds['ray start-up']:6.1f} s")
    for engine in ("local", "ray"):
        rate = len(photos) / seconds[engine]
        print(f"  {engine:5s} engine   {seconds[engine]:6.1f} s  {rate:6.2f} images/s "
              "(model loading included)")  # fmt: skip
    print(f"ray / local = {seconds['local'] / seconds['ray']:.2f}x")


if __name__ == "__main__":
    main()
