"""Does the doubt score put the bad results first? The sample photos and the photos that ship
in installed packages, plus deliberately bad cases, through the real MediaPipe model.

Run by hand: ``python benchmarks/bench_doubt.py``. Prints the ranking (most doubtful first) with
each case's score, flags and signals; the bad cases are those of ``tests.helpers.bad_cases``
(an empty scene, a cropped subject, a red ball, which is not a person), and Ultralytics'
``bus.jpg`` and ``zidane.jpg`` when it is installed (street scenes with several people, some
cut by the frame).
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from operations.doubt import measure  # noqa: E402
from operations.media.decode import decode  # noqa: E402
from operations.options import Options  # noqa: E402
from operations.segmenters import create_segmenter  # noqa: E402
from tests.helpers import SAMPLES, bad_cases  # noqa: E402


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        bad = [Path(tmp) / name for name in bad_cases(Path(tmp))]
        cases = [(p, "good") for p in sorted(SAMPLES.glob("*.jpg"))] + [(p, "bad") for p in bad]
        try:
            import ultralytics

            assets = Path(ultralytics.__file__).parent / "assets"
            cases += [(p, "real (Ultralytics sample)") for p in sorted(assets.glob("*.jpg"))]
        except ImportError:
            pass
        segmenter = create_segmenter(Options().mode)
        rows = []
        for path, kind in cases:
            doubt = measure(segmenter(np.ascontiguousarray(decode(path).rgb)))
            rows.append((doubt.score, path.name, kind, doubt))
    rows.sort(key=lambda row: -row[0])
    print("| rank | photo | kind | score | flags | uncertain | worst side | area | parts |")
    print("| ---: | --- | --- | ---: | --- | ---: | ---: | ---: | ---: |")
    for rank, (score, name, kind, doubt) in enumerate(rows, 1):
        s = doubt.signals
        side = max(2 * s["contact_top"], s["contact_left"], s["contact_right"])
        flags = ", ".join(doubt.flags) or "-"
        print(
            f"| {rank} | {name} | {kind} | {score:.2f} | {flags} | {s['uncertain']:.2f} | "
            f"{side:.2f} | {s['area']:.2f} | {int(s['parts'])} |"
        )


if __name__ == "__main__":
    main()
