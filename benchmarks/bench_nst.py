"""Style transfer speed: the original tool's method against ours, side by side in one run.

Run by hand (never in CI): ``python benchmarks/bench_nst.py [--side 256] [--orig-steps 1000]``.

Same VGG19 weights for both (the cached torchvision file when there is one, else random weights
of the same architecture, saved to a temporary cache: the table says which), same photo and style
image (the bundled samples), same loss function (ours, unmasked for this comparison).

1. At a working size small enough for the original to finish (``--side``, long side): (a) the
   original method, Adam with lr 10 on 0–255 pixels (0.039 on our 0–1 pixels) for
   ``--orig-steps`` steps from the photo; (b) ours, L-BFGS from the photo. Reported: the loss the
   original ends at, the wall time it took, the wall time ours takes to reach that loss, the ratio
   (target ≥ 5×).
2. Per photo, a 10-photo batch through our pipeline with the default settings (384 px, two
   levels, 60 steps, masked), against the original at the photo's full resolution: its time per
   Adam step measured there and multiplied by 1000 (extrapolated, it would take the better part of
   an hour), ratio (target ≥ 20×).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import cv2

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def ensure_vgg() -> str:
    import torch
    from torchvision.models import VGG19_Weights, vgg19

    from operations.models import torchvision_spec

    spec = torchvision_spec("vgg19", VGG19_Weights.IMAGENET1K_V1)
    if spec.cached.exists():
        return f"cached ({spec.cached})"
    os.environ["TORCH_HOME"] = tempfile.mkdtemp(prefix="bench-nst-")
    spec = torchvision_spec("vgg19", VGG19_Weights.IMAGENET1K_V1)
    spec.cache_dir.mkdir(parents=True)
    torch.manual_seed(0)
    state = {k: v for k, v in vgg19(weights=None).state_dict().items() if k.startswith("features.")}
    torch.save(state, spec.cached)
    return "random (no VGG19 weights cached)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--side", type=int, default=256)
    parser.add_argument("--orig-steps", type=int, default=1000)
    parser.add_argument("--our-steps", type=int, default=300, help="budget for ours in part 1")
    parser.add_argument("--photo-side", type=int, default=1200, help="part 2's photo size")
    parser.add_argument("--batch", type=int, default=10)
    parser.add_argument(
        "--content-weight",
        type=float,
        default=None,
        help="part 1 only: override the default (random weights need 1)",
    )
    parser.add_argument(
        "--style-weight",
        type=float,
        default=None,
        help="part 1 only: override the default (random weights need 1e6)",
    )
    args = parser.parse_args()

    weights = ensure_vgg()
    import torch

    from operations.media.decode import decode
    from operations.stages.neural_style_transfer import StyleSettings, StyleTransfer, _working_size

    photo = decode(ROOT / "input" / "grace_hopper.jpg").rgb
    style = decode(ROOT / "background" / "hubble_deep_field.jpg").rgb
    torch.manual_seed(0)

    # 1. Time to the original's final loss, same working size and loss function, unmasked.
    settings = StyleSettings(size=args.side)
    if args.content_weight is not None:
        settings.content_weight = args.content_weight
    if args.style_weight is not None:
        settings.style_weight = args.style_weight
    transfer = StyleTransfer(style, settings, offline=True, device="cpu")
    w, h = _working_size(*photo.shape[:2], args.side)
    image = transfer._tensor(cv2.resize(photo, (w, h), interpolation=cv2.INTER_AREA))
    with torch.no_grad():
        content = transfer._features(image)

    # The original ran all its steps, with Adam at its rate.
    transfer.settings = replace(transfer.settings, optimizer="adam", adam_lr=10 / 255, tolerance=-1)
    start = time.perf_counter()
    _, original_history = transfer.optimise(image, content, None, args.orig_steps)
    original_seconds = time.perf_counter() - start
    target = original_history[-1]

    transfer.settings = replace(transfer.settings, optimizer="lbfgs", tolerance=-1.0)
    reached = {}

    def watch(history: list[float], t0: float) -> None:
        if "seconds" not in reached and history and history[-1] <= target:
            reached["seconds"] = time.perf_counter() - t0
            reached["steps"] = len(history)

    # Ours, with the loss traced to note when the original's final loss is reached.
    ours_history: list[float] = []
    t0 = time.perf_counter()
    original_loss = transfer.loss

    def traced_loss(*a, **k):
        value = original_loss(*a, **k)
        ours_history.append(float(value.detach()))
        watch(ours_history, t0)
        return value

    transfer.loss = traced_loss  # type: ignore[method-assign]
    transfer.optimise(image, content, None, args.our_steps)
    ours_total = time.perf_counter() - t0
    transfer.loss = original_loss  # type: ignore[method-assign]

    print(
        f"VGG19 weights: {weights}; working size {w}×{h}; "
        f"torch threads {torch.get_num_threads()}; loss weights: content "
        f"{settings.content_weight:g}, style {settings.style_weight:g}, tv {settings.tv_weight:g}"
    )
    print(
        f"(a) original, Adam lr 10/255, {args.orig_steps} steps: {original_seconds:.1f} s, "
        f"final loss {target:.6g} (start {original_history[0]:.6g})"
    )
    if "seconds" in reached:
        ratio = original_seconds / reached["seconds"]
        print(
            f"(b) ours, L-BFGS: reached it after {reached['steps']} evaluations, "
            f"{reached['seconds']:.1f} s → {ratio:.1f}× faster (target ≥ 5×)"
        )
    else:
        print(
            f"(b) ours, L-BFGS: did not reach it in {args.our_steps} evaluations "
            f"({ours_total:.1f} s; best {min(ours_history):.6g})"
        )

    # 2. Per photo in a batch with our defaults vs the original at full resolution.
    from operations.batch import run_batch
    from operations.build import build_pipeline
    from operations.options import Options

    with tempfile.TemporaryDirectory() as tmp:
        source = Path(tmp) / "in"
        source.mkdir()
        scale = args.photo_side / max(photo.shape[:2])
        big = cv2.resize(photo, None, fx=scale, fy=scale, interpolation=cv2.INTER_CUBIC)
        for i in range(args.batch):
            cv2.imwrite(str(source / f"p{i}.jpg"), cv2.cvtColor(big, cv2.COLOR_RGB2BGR))
        style_path = ROOT / "background" / "hubble_deep_field.jpg"
        options = Options(
            input=source,
            output=Path(tmp) / "out",
            bg=style_path,
            nst=True,
            offline=True,
            quiet=True,
        ).validated()
        pipeline = build_pipeline(options.recipe())
        start = time.perf_counter()
        batch = run_batch(options, pipeline=pipeline, progress=False)
        per_photo = (time.perf_counter() - start) / args.batch
        assert batch.count("ok") == args.batch, batch.summary_line()
        pipeline.close()

    full = StyleTransfer(style, StyleSettings(size=max(big.shape[:2])), offline=True)
    full_image = full._tensor(big)
    with torch.no_grad():
        full_content = full._features(full_image)
    full.settings = replace(full.settings, optimizer="adam", adam_lr=10 / 255, tolerance=-1)
    start = time.perf_counter()
    full.optimise(full_image, full_content, None, 3)
    per_step = (time.perf_counter() - start) / 3
    extrapolated = per_step * 1000
    print(
        f"per photo ({big.shape[1]}×{big.shape[0]}), batch of {args.batch}, our defaults: "
        f"{per_photo:.1f} s (segmentation, matting, style transfer and encoding)"
    )
    print(
        f"original at full resolution: {per_step:.2f} s/step × 1000 = {extrapolated:.0f} s "
        f"(extrapolated) → {extrapolated / per_photo:.0f}× (target ≥ 20×)"
    )


if __name__ == "__main__":
    main()
