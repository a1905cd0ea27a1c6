"""``--mode auto``'s choice per photo, and what the choosing costs.

Run by hand (never in CI)::

    ../shared/tools/real-models/fetch.sh          # real salient weights (U²-Netp is enough)
    U2NET_HOME=~/.cache/bgs-real-models python benchmarks/bench_auto.py --photos DIR \\
        [--salient-model u2netp]

For every image in ``--photos`` (and the bundled samples): the model chosen and why, the time of
the choice (the face check and the people model at 640 px; the median of 5) and of the chosen
model's segmentation, beside the people model's and the salient model's own times on it.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from operations.decode import decode
from operations.files import find_inputs, is_video
from operations.segmenters import create_segmenter
from operations.segmenters.base import SegmenterSettings

SAMPLES = Path(__file__).resolve().parent.parent / "input"


def _ms(call, repeat: int = 5) -> float:
    times = []
    for _ in range(repeat):
        began = time.perf_counter()
        call()
        times.append(time.perf_counter() - began)
    return statistics.median(times) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", type=Path, required=True)
    parser.add_argument("--salient-model", default="u2netp")
    args = parser.parse_args()
    found = [root / p for root in (args.photos, SAMPLES) for p in find_inputs(root)]
    by_name = {p.name: p for p in found if not is_video(p)}  # a sample copied in: once
    photos = [by_name[name] for name in sorted(by_name)]
    own = (("mp_model", "general"), ("salient_model", args.salient_model))
    auto = create_segmenter("auto", SegmenterSettings(offline=True, own=own))
    print("| photo | size | chosen (why) | choice ms | its mask ms | people ms | salient ms |")
    print("| --- | --- | --- | ---: | ---: | ---: | ---: |")
    chosen_ms = []
    with auto:
        for path in photos:
            rgb = decode(path).rgb
            pick = auto.pick(rgb)
            choice = _ms(lambda rgb=rgb: auto.pick(rgb))
            people = _ms(lambda rgb=rgb: auto.people(rgb), 3)
            salient = _ms(lambda rgb=rgb: auto.other(rgb), 3)
            mask = people if pick.segmenter is auto.people else salient
            chosen_ms.append(choice)
            print(
                f"| {path.name} | {rgb.shape[1]}×{rgb.shape[0]} | {pick.segmenter.name} "
                f"({pick.reason}) | {choice:.1f} | {mask:.1f} | {people:.1f} | {salient:.1f} |"
            )
    print(f"\nchoice: median {statistics.median(chosen_ms):.1f} ms, max {max(chosen_ms):.1f} ms")


if __name__ == "__main__":
    main()
