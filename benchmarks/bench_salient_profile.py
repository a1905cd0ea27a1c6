"""Where a folder's time goes on the any-subject path: each stage's own seconds, summed over the
photos, beside the run's wall time.

Run by hand: ``python benchmarks/bench_salient_profile.py --photos DIR --weights FILE.onnx
[--workers N] [-- OUR EXTRA FLAGS]``. Each stage's function is wrapped with a timer (its wall
time inside the call, on whatever thread ran it): decoding, the model (its preparation, ONNX
Runtime's run, the map stretched back), the edge stage, the composite, encoding. With one
worker the stages run one after the other and their sum is the wall time less the run's own
overhead; with more, the stages overlap and the sum can pass the wall time (each stage's figure
then includes its wait for the cores the others hold).
"""

from __future__ import annotations

import argparse
import functools
import sys
import tempfile
import threading
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import run  # noqa: E402
from operations import pipeline  # noqa: E402
from operations.jobs import job as job_module  # noqa: E402
from operations.media.files import StagedOutputs  # noqa: E402
from operations.segmenters import salient  # noqa: E402
from operations.stages import look  # noqa: E402

SPENT: dict[str, float] = defaultdict(float)
CALLS: dict[str, int] = defaultdict(int)
LOCK = threading.Lock()


def _timed(owner: object, attribute: str, label: str) -> None:
    original = getattr(owner, attribute)

    @functools.wraps(original)
    def wrapper(*args, **kwargs):
        start = time.perf_counter()
        try:
            return original(*args, **kwargs)
        finally:
            with LOCK:
                SPENT[label] += time.perf_counter() - start
                CALLS[label] += 1

    setattr(owner, attribute, wrapper)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--photos", type=Path, required=True)
    parser.add_argument("--weights", type=Path, required=True)
    parser.add_argument("--workers", type=int)
    parser.add_argument("ours", nargs="*")
    args = parser.parse_args()
    _timed(job_module, "decode", "decode")
    _timed(salient.SalientSegmenter, "preprocess", "model: prepare the input")
    _timed(salient.SalientSegmenter, "_maps", "model: ONNX Runtime")
    _timed(salient.SalientSegmenter, "predict_batch", "model: whole (prepare, run, stretch back)")
    _timed(pipeline, "refine", "edge stage")
    _timed(look, "composite", "composite")
    _timed(StagedOutputs, "write", "encode and write")
    with tempfile.TemporaryDirectory() as tmp:
        command = [
            "-i", str(args.photos), "-o", tmp, "-b", "white", "--mode", "salient",
            "--salient-model", args.weights.stem, "--weights", str(args.weights), "-q",
            *(["--workers", str(args.workers)] if args.workers else []), *args.ours,
        ]  # fmt: skip
        start = time.perf_counter()
        code = run.main(command)
        wall = time.perf_counter() - start
    print(f"exit {code}; wall {wall:.2f} s (model loading included)")
    for label in sorted(SPENT, key=lambda k: -SPENT[k]):
        share = 100 * SPENT[label] / wall
        print(f"{label:>44}: {SPENT[label]:7.2f} s  {share:5.1f} %  ({CALLS[label]} calls)")


if __name__ == "__main__":
    main()
