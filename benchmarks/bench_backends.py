"""Seconds per image for each segmentation backend and model size, at 1080p.

Run by hand (never in CI): ``python benchmarks/bench_backends.py [--repeat 3] [--device cpu]``.

Weights: whatever the caches hold; for models that are not cached, random weights in the same
architecture are written to a temporary cache first (a network's speed does not depend on its
weights' values), and the table says which. Each model is timed on the same 1920×1080 photo (the
astronaut sample, enlarged), best of ``--repeat`` after one warm-up call: the segmenter's
``predict`` alone (model inference, pre- and post-processing), not decoding or encoding.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import cv2

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from operations.decode import decode  # noqa: E402


def random_weights_deeplab(variant: str) -> bool:
    """Write random weights where torch.hub caches this variant; False if real ones are there."""
    import torch
    from torchvision.models import segmentation

    from operations.models import torchvision_spec
    from operations.segmenters.deeplab import VARIANTS, weights_entry

    builder = VARIANTS[variant][0]
    spec = torchvision_spec(builder, weights_entry(variant))
    if spec.cached.exists():
        return False
    model = getattr(segmentation, builder)(weights=None, weights_backbone=None, num_classes=21,
                                           aux_loss=True)  # fmt: skip
    spec.cache_dir.mkdir(parents=True, exist_ok=True)
    torch.save(model.state_dict(), spec.cached)
    return True


def random_weights_yolo(size: str) -> bool:
    from operations.segmenters.yolo import import_ultralytics, weights_spec

    import_ultralytics()
    from ultralytics import YOLO

    spec = weights_spec(size)
    if spec.cached.exists():
        return False
    spec.cache_dir.mkdir(parents=True, exist_ok=True)
    YOLO(f"yolov8{size}-seg.yaml", task="segment").save(spec.cached)
    return True


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--device", default="cpu")
    parser.add_argument(
        "--only", nargs="*", help="model labels to run, e.g. yolo-n deeplab-resnet50"
    )
    args = parser.parse_args()

    tmp = tempfile.mkdtemp(prefix="bench-backends-")
    os.environ.setdefault("TORCH_HOME", os.path.join(tmp, "torch"))
    os.environ.setdefault("YOLO_CONFIG_DIR", os.path.join(tmp, "ultralytics"))
    from operations.segmenters.yolo import import_ultralytics

    import_ultralytics()
    from ultralytics.utils import SETTINGS

    if str(ROOT) in str(SETTINGS["weights_dir"]):  # keep random weights out of the checkout
        SETTINGS.update({"weights_dir": os.path.join(tmp, "weights")})

    photo = decode(ROOT / "input" / "astronaut.jpg").rgb
    photo = cv2.resize(photo, (1920, 1080), interpolation=cv2.INTER_CUBIC)

    from operations.segmenters.deeplab import VARIANTS, DeepLabSegmenter
    from operations.segmenters.mediapipe import MediaPipeSegmenter
    from operations.segmenters.yolo import YoloSegmenter

    rows = []
    real = "real (in the wheel)"
    models = [
        ("mediapipe-general", lambda: MediaPipeSegmenter("general"), real),
        ("mediapipe-landscape", lambda: MediaPipeSegmenter("landscape"), real),
    ]
    for variant in VARIANTS:
        wanted = not args.only or f"deeplab-{variant}" in args.only
        made = random_weights_deeplab(variant) if wanted else False
        models.append((f"deeplab-{variant}",
                       lambda v=variant: DeepLabSegmenter(v, device=args.device, offline=True),
                       "random" if made else "cached"))  # fmt: skip
    for size in "nsmlx":
        made = random_weights_yolo(size) if not args.only or f"yolo-{size}" in args.only else False
        models.append((f"yolo-{size}",
                       lambda s=size: YoloSegmenter(s, device=args.device, offline=True),
                       "random" if made else "cached"))  # fmt: skip
    for label, build, weights in models:
        if args.only and label not in args.only:
            continue
        segmenter = build()
        segmenter.predict(photo)  # warm-up
        times = []
        for _ in range(args.repeat):
            start = time.perf_counter()
            segmenter.predict(photo)
            times.append(time.perf_counter() - start)
        segmenter.close()
        rows.append((label, min(times), weights))
        print(f"  {label:30s} {min(times):7.3f} s/image  ({weights} weights)", flush=True)
    print(f"1920×1080, device={args.device}, best of {args.repeat}, torch threads="
          f"{__import__('torch').get_num_threads()}")  # fmt: skip


if __name__ == "__main__":
    main()
