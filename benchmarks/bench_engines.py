"""Local engine vs Ray engine on this machine: images/s, start-up apart, side by side.

Run by hand (never in CI): ``python benchmarks/bench_engines.py [--count 200] [--size 800 1600]``.

The same photos (the samples resized to each ``--size`` px on the long side, repeated to
``--count`` JPEGs) and the same default options (MediaPipe, fast edges, the sample background);
each engine writes into its own fresh folder. Ray runs on a local instance started here with
every CPU; ``ray.init`` is timed apart. For each run: the whole batch's time, and the steady
rate, from the first result to the last (so the model loading, and Ray's actor start-up, are
apart): ``(count - 1) / (last - first)``. Engines alternate, ``--repeat`` rounds; best of each.
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
from operations import batch as batch_module  # noqa: E402
from operations.batch import run_batch  # noqa: E402
from operations.options import Options  # noqa: E402

_stamps: list[float] = []
_log_result = batch_module._log_result


def _stamped(job, result) -> None:  # every result, as the batch receives it
    _stamps.append(time.perf_counter())
    _log_result(job, result)


def run(engine: str, source: Path, target: Path) -> tuple[float, float]:
    """(whole seconds, steady images/s) of one batch."""
    options = Options(
        input=source, output=target, bg=BACKGROUND, engine=engine, quiet=True
    ).validated()
    _stamps.clear()
    start = time.perf_counter()
    result = run_batch(options, progress=False)
    seconds = time.perf_counter() - start
    assert result.count("ok") == len(_stamps), result.summary_line()
    return seconds, (len(_stamps) - 1) / (_stamps[-1] - _stamps[0])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=200)
    parser.add_argument("--size", type=int, nargs="+", default=[800, 1600])
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args()
    import ray

    batch_module._log_result = _stamped
    start = time.perf_counter()
    ray.init(include_dashboard=False, log_to_driver=False, logging_level="ERROR")
    startup = time.perf_counter() - start
    print(
        f"{args.count} photos, {ray.__version__=}, {ray.cluster_resources()['CPU']:g} CPUs, "
        f"ray.init {startup:.1f} s, best of {args.repeat}"
    )
    with tempfile.TemporaryDirectory() as tmp:
        scratch = Path(tmp)
        for size in args.size:
            source = scratch / f"in{size}"
            source.mkdir()
            make_photos(source, args.count, size)
            best: dict[str, tuple[float, float]] = {}
            for round_ in range(args.repeat):
                for engine in ("local", "ray"):
                    seconds, rate = run(engine, source, scratch / f"{engine}{size}-{round_}")
                    old = best.get(engine, (float("inf"), 0.0))
                    best[engine] = (min(old[0], seconds), max(old[1], rate))
            for engine, (seconds, rate) in best.items():
                whole = args.count / seconds
                print(
                    f"  {size:5d} px  {engine:5s}  whole {seconds:6.1f} s ({whole:6.2f} "
                    f"images/s)  steady {rate:6.2f} images/s"
                )
            ratio = best["ray"][1] / best["local"][1]
            whole = best["local"][0] / best["ray"][0]
            print(f"  {size:5d} px  ray / local: steady {ratio:.2f}x, whole {whole:.2f}x")
    ray.shutdown()


if __name__ == "__main__":
    main()
