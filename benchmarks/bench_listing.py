"""What the driver does before a cluster run, for a large folder: listing, naming the outputs,
the resume check, and the rows sent to the workers; plus the bytes a photo moves.

Run by hand: ``python benchmarks/bench_listing.py [--files 100000]`` (makes that many empty
files in a temporary folder; the per-photo bytes come from 8 real photos at 800 and 1600 px).
"""

from __future__ import annotations

import argparse
import pickle
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.bench_batch import BACKGROUND, make_photos  # noqa: E402
from operations.batch import plan_jobs, run_batch  # noqa: E402
from operations.options import Options  # noqa: E402


def timed(label: str, step):
    start = time.perf_counter()
    value = step()
    print(f"  {label:32s} {time.perf_counter() - start:7.2f} s")
    return value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=100_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        scratch = Path(tmp)
        print("bytes per photo (input JPEG, output PNG), default options:")
        for size in (800, 1600):
            source, target = scratch / f"p{size}", scratch / f"o{size}"
            source.mkdir()
            make_photos(source, 8, size)
            options = Options(input=source, output=target, bg=BACKGROUND, quiet=True).validated()
            run_batch(options, progress=False)
            read = sum(p.stat().st_size for p in source.iterdir()) / 8
            written = sum(p.stat().st_size for p in target.iterdir()) / 8
            print(f"  {size} px: read {read / 1e6:.2f} MB, written {written / 1e6:.2f} MB")
        big = scratch / "big"
        big.mkdir()
        for i in range(args.files):
            (big / f"img_{i:07d}.jpg").touch()
        print(f"{args.files} files:")
        options = Options(input=big, output=scratch / "out", bg=BACKGROUND, quiet=True).validated()
        jobs = timed("list and name the outputs", lambda: plan_jobs(options))
        timed("resume check (stat per output)", lambda: [job.done() for job in jobs])
        rows = timed("pickle the rows", lambda: [pickle.dumps(job) for job in jobs])
        print(f"  rows: {sum(map(len, rows)) / 1e6:.1f} MB, {len(rows[0])} bytes each")


if __name__ == "__main__":
    main()
