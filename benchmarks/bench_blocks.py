"""Blocks in the refined alpha: do the edges at 1:1 show the reduced grid the edge stage works on?

Run by hand (never in CI)::

    python benchmarks/bench_blocks.py --photos DIR [--mode mediapipe] [--methods off fast quality]

The coarse path (MediaPipe, DeepLab, YOLO masks) fits the guided filter on a copy of the photo
reduced to the mask's size (256 px long side for MediaPipe), then brings it to full resolution.
If any decision is made per reduced pixel and applied to the block of full-resolution pixels it
covers, the alpha steps at the blocks' boundaries: rectangles in flyaway hair at 1:1.

The measure: over the edge band (pixels with 0.02 < α < 0.98, or whose neighbour has), the mean
``|α(p) − α(q)|`` of neighbouring pixels ``p, q`` on either side of a block boundary, divided by
the same for neighbours inside a block; rows and columns together. A natural alpha (the model's
own soft mask, or one made at full resolution) scores about 1.0; blocks score above it. Each
photo is measured at its own resolution, on the grid the ``fast`` path uses for it.

Prints a table per photo and the worst; ``--sheet FILE.png`` writes 1:1 crops of each method's
alpha where its blockiness is highest, to look at.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from operations.build import build_segmenter  # noqa: E402
from operations.media.decode import decode  # noqa: E402
from operations.options import Options  # noqa: E402
from operations.stages.matting import _block_starts, _work_size, refine  # noqa: E402

SUFFIXES = {".jpg", ".jpeg", ".png", ".webp"}
BAND = (0.02, 0.98)


def blocks_of(length: int, reduced: int) -> np.ndarray:
    """Each full-resolution row (or column)'s block, on the fast path's grid."""
    starts = _block_starts(reduced, length)
    return np.repeat(np.arange(reduced), np.diff(starts))


def blockiness(alpha: np.ndarray, mask_side: int) -> float:
    """Across-boundary over within-block mean |Δα| in the edge band (see the module's notes)."""
    height, width = alpha.shape
    work_w, work_h = _work_size(height, width, mask_side)
    across, inside = [], []
    for axis, length, reduced in ((1, width, work_w), (0, height, work_h)):
        block = blocks_of(length, reduced)
        boundary = block[1:] != block[:-1]
        diff = np.abs(np.diff(alpha, axis=axis))
        soft = (alpha > BAND[0]) & (alpha < BAND[1])
        if axis == 1:
            band = soft[:, 1:] | soft[:, :-1]
            mask = np.broadcast_to(boundary[None, :], diff.shape)
        else:
            band = soft[1:, :] | soft[:-1, :]
            mask = np.broadcast_to(boundary[:, None], diff.shape)
        across.append(diff[band & mask])
        inside.append(diff[band & ~mask])
    a, b = np.concatenate(across), np.concatenate(inside)
    return float(a.mean() / max(b.mean(), 1e-9)) if a.size and b.size else float("nan")


def worst_crop(alpha: np.ndarray, mask_side: int, size: int = 160) -> tuple[int, int]:
    """The top-left corner of the ``size``² window with the most boundary steps in it."""
    height, width = alpha.shape
    cols = blocks_of(width, _work_size(height, width, mask_side)[0])
    step = np.zeros_like(alpha)
    step[:, 1:] += np.abs(np.diff(alpha, axis=1)) * (cols[1:] != cols[:-1])[None, :]
    score = cv2.boxFilter(step, -1, (size, size), normalize=False)
    y, x = np.unravel_index(np.argmax(score), score.shape)
    top, left = np.clip(y - size // 2, 0, height - size), np.clip(x - size // 2, 0, width - size)
    return int(top), int(left)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--photos", type=Path, required=True)
    parser.add_argument("--mode", default="mediapipe", help="a coarse-mask backend")
    parser.add_argument("--methods", nargs="+", default=["off", "fast", "quality"])
    parser.add_argument("--sheet", type=Path, help="write 1:1 crops of the blockiest spots")
    args = parser.parse_args()
    segmenter = build_segmenter(Options(mode=args.mode).validated(batch=False).recipe())
    side = segmenter.mask_side
    photos = sorted(p for p in args.photos.iterdir() if p.suffix.lower() in SUFFIXES)
    print(f"{'photo':28} {'size':>11}  " + "  ".join(f"{m:>8}" for m in args.methods) + "  ms/fast")
    worst = dict.fromkeys(args.methods, 0.0)
    tiles = []
    for path in photos:
        rgb = decode(path).rgb
        coarse = segmenter(rgb)
        scores, alphas, spent = [], {}, 0.0
        for method in args.methods:
            start = time.perf_counter()
            matte = refine(rgb, coarse, method, mask_side=side)
            if method == "fast":
                spent = time.perf_counter() - start
            alphas[method] = matte.alpha
            scores.append(blockiness(matte.alpha, side))
            worst[method] = max(worst[method], scores[-1])
        size = f"{rgb.shape[1]}×{rgb.shape[0]}"
        row = "  ".join(f"{s:8.3f}" for s in scores)
        print(f"{path.name[:28]:28} {size:>11}  {row}  {spent * 1000:7.1f}")
        if args.sheet is not None and "fast" in alphas:
            y, x = worst_crop(alphas["fast"], side)
            crops = [rgb[y : y + 160, x : x + 160]]
            for method in args.methods:
                grey = np.clip(alphas[method][y : y + 160, x : x + 160] * 255 + 0.5, 0, 255)
                crops.append(np.repeat(grey.astype(np.uint8)[..., None], 3, axis=2))
            tiles.append(np.hstack([np.pad(c, ((2, 2), (2, 2), (0, 0))) for c in crops]))
    print("worst: " + ", ".join(f"{m} {w:.3f}" for m, w in worst.items()))
    if tiles:
        sheet = np.vstack(tiles)
        cv2.imwrite(str(args.sheet), cv2.cvtColor(sheet, cv2.COLOR_RGB2BGR))
        print(f"sheet: {args.sheet} (per photo: the photo, then each method's alpha, 1:1)")


if __name__ == "__main__":
    main()
