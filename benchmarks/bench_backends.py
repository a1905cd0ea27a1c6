"""Seconds per image for each segmentation backend and model size, at 1080p.

Run by hand (never in CI): ``python benchmarks/bench_backends.py [--repeat 3] [--device cpu]``.

Weights: whatever the caches hold; for models that are not cached, random weights in the same
architecture are written to a temporary cache first (a network's speed does not depend on its
weights' values), and the table says which. Each model is timed on the same 1920×1080 photo (the
astronaut sample, enlarged), best of ``--repeat`` after one warm-up call: the segmenter's
``predict`` alone (model inference, pre- and post-processing), not decoding or encoding.

Salient models (``--mode salient``) run through ONNX Runtime on graphs of their real
architectures (``benchmarks/salient_nets.py``) unless the real files are cached; each is also
loaded in a fresh process to measure its peak memory (resident set, after one photo) above that
of a process that imported the same libraries and loaded nothing.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from operations.media.decode import decode  # noqa: E402


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
    model = getattr(segmentation, builder)(
        weights=None, weights_backbone=None, num_classes=21, aux_loss=True
    )
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


def random_weights_salient(name: str) -> bool | None:
    """Export the architecture with random weights into our cache; None: not buildable here."""
    from salient_nets import ARCHITECTURES, export

    from operations.segmenters.salient import weights_spec

    spec = weights_spec(name)
    if spec.cached.exists():
        return False
    if name not in ARCHITECTURES:
        return None
    export(name, spec.cached)
    return True


_CHILD = """
import sys
from pathlib import Path
import cv2, onnxruntime
sys.path.insert(0, sys.argv[1])
from operations.media.decode import decode
from operations.segmenters.salient import SalientSegmenter
photo = cv2.resize(decode(Path(sys.argv[2])).rgb, (1920, 1080))
if sys.argv[3] != "none":
    SalientSegmenter(sys.argv[3], offline=True, device="cpu").predict(photo)
# VmHWM, not getrusage's ru_maxrss: Linux carries ru_maxrss over from the parent across exec.
print(next(l.split()[1] for l in open("/proc/self/status") if l.startswith("VmHWM")))
"""


def peak_memory_mib(name: str, photo: Path) -> float:
    """Peak RSS of a fresh process that loads salient model ``name`` and segments one photo,
    minus that of one that imports the same libraries and loads nothing."""

    def peak_kib(model: str) -> int:
        argv = [sys.executable, "-c", _CHILD, str(ROOT), str(photo), model]
        return int(subprocess.run(argv, capture_output=True, text=True, check=True).stdout)

    return (peak_kib(name) - peak_kib("none")) / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--device", default="cpu")
    parser.add_argument(
        "--only", nargs="*", help="model labels to run, e.g. yolo-n deeplab-resnet50"
    )
    args = parser.parse_args()
    sys.path.insert(0, str(Path(__file__).resolve().parent))  # salient_nets

    tmp = tempfile.mkdtemp(prefix="bench-backends-")
    os.environ.setdefault("TORCH_HOME", os.path.join(tmp, "torch"))
    os.environ.setdefault("BACKGROUNDSWAP_HOME", os.path.join(tmp, "backgroundswap"))
    os.environ.setdefault("YOLO_CONFIG_DIR", os.path.join(tmp, "ultralytics"))
    from operations.segmenters.yolo import import_ultralytics

    import_ultralytics()

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
        models.append(
            (
                f"deeplab-{variant}",
                lambda v=variant: DeepLabSegmenter(v, device=args.device, offline=True),
                "random" if made else "cached",
            )
        )
    for size in "nsmlx":
        made = random_weights_yolo(size) if not args.only or f"yolo-{size}" in args.only else False
        models.append(
            (
                f"yolo-{size}",
                lambda s=size: YoloSegmenter(s, device=args.device, offline=True),
                "random" if made else "cached",
            )
        )
    from operations.segmenters.salient import MODELS, SalientSegmenter

    memory = {}
    for name in MODELS:
        label = f"salient-{name}"
        if args.only and label not in args.only:
            continue
        made = random_weights_salient(name)
        if made is None:
            print(
                f"  {label:30s}  not measured: no graph of its architecture can be had here",
                flush=True,
            )
            continue
        models.append(
            (
                label,
                lambda n=name: SalientSegmenter(n, device=args.device, offline=True),
                "random" if made else "cached",
            )
        )
        memory[label] = name
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
        extra = ""
        if label in memory:
            mib = peak_memory_mib(memory[label], ROOT / "input" / "astronaut.jpg")
            extra = f", peak memory +{mib:.0f} MiB"
        print(f"  {label:30s} {min(times):7.3f} s/image  ({weights} weights{extra})", flush=True)
    print(
        f"1920×1080, device={args.device}, best of {args.repeat}, torch threads="
        f"{__import__('torch').get_num_threads()}"
    )


if __name__ == "__main__":
    main()
