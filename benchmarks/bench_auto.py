"""``--mode auto``'s choice per photo, what the choosing costs, and its confusion table.

Run by hand (never in CI)::

    ../shared/tools/real-models/fetch.sh          # real salient weights (U²-Netp is enough)
    U2NET_HOME=~/.cache/bgs-real-models python benchmarks/bench_auto.py --photos DIR \\
        [--set people=DIR --set animals=DIR --set objects=DIR …] [--salient-model u2netp]

For every image in ``--photos`` (and the bundled samples): the model chosen and why, the time of
the choice (the face check and the people model at 640 px; the median of 5) and of the chosen
model's segmentation, beside the people model's and the salient model's own times on it.
``--set LABEL=DIR`` (repeated): labelled folders, for the confusion table (each label's photos
by the model chosen) and the list of photos routed against their label (a label starting with
``people``: to the people model; anything else: to the salient one).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from operations.media.decode import decode
from operations.media.files import find_inputs, is_video
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
    parser.add_argument("--photos", type=Path)
    parser.add_argument("--set", action="append", default=[], metavar="LABEL=DIR")
    parser.add_argument("--salient-model", default="u2netp")
    args = parser.parse_args()
    if args.set:
        confusion(args.set, args.salient_model)
    if args.photos is None:
        return
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


def confusion(sets: list[str], salient_model: str) -> None:
    """Each labelled folder's photos by the model ``--mode auto`` chose, and the mistakes."""
    own = (("mp_model", "general"), ("salient_model", salient_model))
    auto = create_segmenter("auto", SegmenterSettings(offline=True, own=own))
    table, wrong = {}, []
    with auto:
        for labelled in sets:
            label, _, folder = labelled.partition("=")
            for relative in find_inputs(Path(folder)):
                path = Path(folder) / relative
                if is_video(path):
                    continue
                chosen = auto.pick(decode(path).rgb).segmenter.name
                table.setdefault(label, {}).setdefault(chosen, 0)
                table[label][chosen] += 1
                if (chosen == "mediapipe") != label.startswith("people"):
                    wrong.append(f"{label}/{relative.name} -> {chosen}")
    models = ("mediapipe", "salient")
    print("| photos | " + " | ".join(f"to {m}" for m in models) + " |")
    print("| --- |" + " ---: |" * len(models))
    for label, counts in table.items():
        print(
            f"| {label} ({sum(counts.values())}) | "
            + " | ".join(str(counts.get(m, 0)) for m in models)
            + " |"
        )
    print("routed against their label: " + (", ".join(wrong) if wrong else "none"))


if __name__ == "__main__":
    main()
