"""The any-subject path beside rembg, on the same model file and the same photos: wall time,
images per second and peak memory of each whole command, side by side in one run, and the
masks' differences per photo.

Run by hand, on a quiet machine::

    python benchmarks/bench_rembg.py --photos DIR --weights ~/.u2net/isnet-general-use.onnx \\
        --rembg VENV/bin/rembg [--repeat 3] [-- OUR EXTRA FLAGS]

rembg 2.0.86 runs in a venv of its own (``python -m venv V && V/bin/pip install
'rembg[cpu,cli]==2.0.86'``), as ``rembg p -m MODEL DIR OUT`` with ``U2NET_HOME`` set to the
model file's folder (the file under rembg's own name, so it reads the same one); ours as
``run.py -i DIR -o OUT -b white --mode salient --salient-model MODEL --weights FILE``. The two
alternate, ``--repeat`` times each (the machine's drift falls on both); the table gives each
one's median wall time and the peak resident memory of its process (``wait4``'s ``ru_maxrss``:
the largest the process ever was). Then each runs once more writing masks (``--save-mask``;
rembg's ``-om``), and the mean |Δα| between them is printed per photo (ours is refined at the
edges, rembg's is the model's map stretched back: a difference in the edge band is expected,
one over the whole subject is not).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
PHOTO_TYPES = (".jpg", ".jpeg", ".png", ".webp")


def _run(command: list[str], env: dict[str, str] | None = None) -> tuple[float, float]:
    """Run ``command``; its wall seconds and its peak resident memory in MB."""
    start = time.perf_counter()
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - start
    process.returncode = os.waitstatus_to_exitcode(status)
    error = process.stderr.read().decode(errors="replace") if process.stderr else ""
    if process.returncode != 0:
        raise SystemExit(f"{command[:3]} failed ({process.returncode}): {error[-2000:]}")
    return seconds, usage.ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--photos", type=Path, required=True)
    parser.add_argument("--weights", type=Path, required=True, help="rembg's .onnx file")
    parser.add_argument("--rembg", type=Path, required=True, help="the rembg command of its venv")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("ours", nargs="*", help="our extra flags (after --)")
    args = parser.parse_args()
    model = args.weights.stem
    photos = sorted(p for p in args.photos.iterdir() if p.suffix.lower() in PHOTO_TYPES)
    env = {**os.environ, "U2NET_HOME": str(args.weights.resolve().parent), "OMP_NUM_THREADS": ""}
    env.pop("OMP_NUM_THREADS")
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)

        def ours(*extra: str) -> list[str]:
            return [
                sys.executable, str(ROOT / "run.py"), "-i", str(args.photos), "-o",
                str(out / "ours"), "-b", "white", "--mode", "salient", "--salient-model", model,
                "--weights", str(args.weights), "-q", "--overwrite", *args.ours, *extra,
            ]  # fmt: skip

        def theirs(*extra: str) -> list[str]:
            # A fresh folder each time: rembg p passes over the photos whose outputs exist.
            shutil.rmtree(out / "rembg", ignore_errors=True)
            return [str(args.rembg), "p", "-m", model, *extra, str(args.photos), str(out / "rembg")]

        _run(ours())  # warm the file caches and the model file for both
        times: dict[str, list[float]] = {"ours": [], "rembg": []}
        peaks: dict[str, list[float]] = {"ours": [], "rembg": []}
        for _ in range(args.repeat):
            for name, command in (("ours", ours()), ("rembg", theirs())):
                seconds, peak = _run(command, env)
                times[name].append(seconds)
                peaks[name].append(peak)
        print(f"{len(photos)} photos ({args.photos}), model {model}, n = {args.repeat}")
        print(f"our flags: {' '.join(args.ours) or '(none)'}")
        print(f"{'':>6} | {'wall s (median)':>15} | {'images/s':>8} | {'peak RSS MB':>11} | runs")
        for name in ("ours", "rembg"):
            wall = statistics.median(times[name])
            runs = ", ".join(f"{t:.1f}" for t in times[name])
            print(
                f"{name:>6} | {wall:15.2f} | {len(photos) / wall:8.3f} | "
                f"{max(peaks[name]):11.0f} | {runs}"
            )
        speed = statistics.median(times["rembg"]) / statistics.median(times["ours"])
        memory = max(peaks["ours"]) / max(peaks["rembg"])
        print(f"ours: {speed:.2f}× rembg's speed, {memory:.2f}× its peak memory")
        _run(ours("--save-mask"), env)
        _run(theirs("-om"), env)
        print("\nmask difference per photo, mean |Δα| (ours refined vs rembg's map):")
        for photo in photos:
            mine = np.asarray(Image.open(out / "ours" / f"{photo.stem}.mask.png"), np.float32)
            their_file = out / "rembg" / f"{photo.stem}.out.png"
            if not their_file.exists():
                their_file = out / "rembg" / f"{photo.stem}.png"
            with Image.open(their_file) as image:
                grey = image.getchannel("A") if image.mode == "RGBA" else image.convert("L")
                theirs_alpha = np.asarray(grey, np.float32)
            print(f"{photo.name:>20}: {np.abs(mine - theirs_alpha).mean() / 255:.4f}")


if __name__ == "__main__":
    main()
