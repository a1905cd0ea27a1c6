"""Edge quality against a known ground truth: the original method vs --matting off/fast/quality.

Run by hand (never in CI): ``python benchmarks/bench_edges.py [--side 1200] [--sheet PATH]``.

Each case is built from a real photo so the shapes and colours are realistic, and is exact by
construction:

- ground-truth alpha: the photo's person silhouette (MediaPipe's mask, made crisp) with a soft
  1 px edge, plus 80 thin anti-aliased hair-like strands leaving the head, plus a
  semi-transparent (α = 0.5) veil over one shoulder;
- ground-truth foreground colours: the photo, brown for the strands, pale blue for the veil;
- the input photo: that foreground composited over a contrasting old background (green and
  yellow blobs), so a halo of old background is easy to see and to measure;
- the coarse mask a low-resolution segmenter would give: the ground truth shrunk to 256²,
  blurred (σ = 1 px there), enlarged back with bilinear interpolation.

Methods, all from the same coarse mask: ``original`` (the original tool: blur, threshold 0.1,
hard mask, the photo's colours), ``off`` (the coarse soft mask, the photo's colours), ``fast``
and ``quality`` (ours: refined alpha, decontaminated colours).

Metrics, per method summed over the cases: alpha SAD (Σ|α − α*| / 1000), MSE (× 10⁻³),
gradient error (Σ(|∇α| − |∇α*|)² / 1000 with Gaussian derivatives, σ = 1.4, as in Rhemann et
al. 2009), the composite's mean absolute error (0–255) against the ground-truth composite over
a new background, inside the edge region (pixels within 10 px of 0 < α* < 1), and the
method's time from coarse mask to composite, in milliseconds per megapixel (the warm-up run
excluded). Also writes a contact sheet of edge crops.
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

from operations.media.decode import decode  # noqa: E402
from operations.segmenters.mediapipe import MediaPipeSegmenter  # noqa: E402
from operations.stages.composite import composite as composite_matte  # noqa: E402
from operations.stages.matting import refine  # noqa: E402

METHODS = ("original", "off", "fast", "quality")
MASK_SIDE = 256


def _resize_long(image: np.ndarray, side: int) -> np.ndarray:
    scale = side / max(image.shape[:2])
    size = (round(image.shape[1] * scale), round(image.shape[0] * scale))
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC)


def make_case(photo: np.ndarray, segmenter: MediaPipeSegmenter, seed: int) -> dict:
    rng = np.random.default_rng(seed)
    height, width = photo.shape[:2]
    silhouette = (segmenter.predict(photo) > 0.5).astype(np.float32)
    silhouette = cv2.GaussianBlur(silhouette, (0, 0), 0.7)
    foreground = photo.astype(np.float32).copy()

    # Strands: random walks leaving the upper outline, anti-aliased, 1 px wide.
    strands = np.zeros((height, width), np.uint8)
    edge = cv2.Canny((silhouette > 0.5).astype(np.uint8) * 255, 50, 150)
    ys, xs = np.nonzero(edge)
    top = ys < np.percentile(ys, 35)
    ys, xs = ys[top], xs[top]
    centre_x = xs.mean()
    for _ in range(80):
        k = rng.integers(len(ys))
        y, x = float(ys[k]), float(xs[k])
        angle = np.arctan2(-1.0, (x - centre_x) / (width / 4) + rng.normal(0, 0.3))
        points = []
        for _ in range(int(rng.integers(12, 40))):
            angle += rng.normal(0, 0.12)
            y += 3.0 * np.sin(angle)
            x += 3.0 * np.cos(angle)
            points.append((x * 16, y * 16))  # 4 bits of sub-pixel precision
        cv2.polylines(strands, [np.int32(points)], False, 255, 1, cv2.LINE_AA, shift=4)
    strand_alpha = strands.astype(np.float32) / 255.0 * 0.9
    alpha = np.maximum(silhouette, strand_alpha)
    hair = (strand_alpha > 0) & (silhouette < 0.5)
    foreground[hair] = (95, 62, 38)

    # A semi-transparent veil over one shoulder, spilling past the outline.
    veil = np.zeros((height, width), np.float32)
    cy, cx = int(height * 0.78), int(width * 0.22)
    cv2.ellipse(veil, (cx, cy), (width // 7, height // 9), 20, 0, 360, 1.0, -1, cv2.LINE_AA)
    veil = cv2.GaussianBlur(veil, (0, 0), 1.0)
    veil_alpha = 0.5 * veil
    outside = veil_alpha > alpha * 0.5
    foreground[outside & (veil > 0)] = (200, 215, 235)
    alpha = np.maximum(alpha, veil_alpha)

    # Old background: green and yellow blobs; new background: the bundled sample background.
    old = np.zeros((height, width, 3), np.float32)
    old[:] = (40, 140, 60)
    for _ in range(30):
        centre = (int(rng.integers(width)), int(rng.integers(height)))
        colour = tuple(float(c) for c in rng.choice([(230, 220, 40), (60, 200, 90), (20, 90, 30)]))
        cv2.circle(old, centre, int(rng.integers(20, width // 6)), colour, -1, cv2.LINE_AA)
    old = cv2.GaussianBlur(old, (0, 0), 4)
    new = decode(ROOT / "background" / "hubble_deep_field.jpg").rgb
    new = cv2.resize(new, (width, height), interpolation=cv2.INTER_AREA).astype(np.float32)

    a3 = alpha[..., None]
    image = np.clip(foreground * a3 + old * (1 - a3) + 0.5, 0, 255).astype(np.uint8)
    truth = np.clip(foreground * a3 + new * (1 - a3) + 0.5, 0, 255).astype(np.uint8)
    small = cv2.resize(alpha, (MASK_SIDE, MASK_SIDE), interpolation=cv2.INTER_AREA)
    small = cv2.GaussianBlur(small, (0, 0), 1.0)
    coarse = cv2.resize(small, (width, height), interpolation=cv2.INTER_LINEAR)
    unsure = ((alpha > 0.002) & (alpha < 0.998)).astype(np.uint8)
    region = cv2.dilate(unsure, np.ones((21, 21), np.uint8)).astype(bool)
    return {
        "image": image,
        "alpha": alpha,
        "coarse": np.clip(coarse, 0, 1),
        "truth": truth,
        "new": new.astype(np.uint8),
        "region": region,
    }


def run_method(case: dict, method: str) -> tuple[np.ndarray, np.ndarray, float]:
    image, coarse, new = case["image"], case["coarse"], case["new"]
    start = time.perf_counter()
    if method == "original":
        mask = cv2.GaussianBlur(coarse, (5, 5), 11) > 0.1
        alpha = mask.astype(np.float32)
        composite = np.where(mask[..., None], image, new)
    else:  # what the batch does: refine, then composite (the full alpha is not needed for it)
        matte = refine(image, coarse, method, mask_side=MASK_SIDE)
        composite = composite_matte(matte, new)
        seconds = time.perf_counter() - start
        return matte.alpha, composite, seconds
    return alpha, composite, time.perf_counter() - start


def _gradient_magnitude(alpha: np.ndarray) -> np.ndarray:
    smooth = cv2.GaussianBlur(alpha.astype(np.float64), (0, 0), 1.4)
    gy, gx = np.gradient(smooth)
    return np.hypot(gx, gy)


def metrics(case: dict, alpha: np.ndarray, composite: np.ndarray) -> dict[str, float]:
    truth = case["alpha"].astype(np.float64)
    diff = alpha.astype(np.float64) - truth
    grad = (_gradient_magnitude(alpha) - _gradient_magnitude(truth)) ** 2
    region = case["region"]
    error = np.abs(composite.astype(np.float64) - case["truth"])[region]
    return {
        "sad": np.abs(diff).sum() / 1000,
        "mse": (diff**2).mean() * 1000,
        "grad": grad.sum() / 1000,
        "composite": error.mean(),
    }


def contact_sheet(cases: list[dict], composites: dict[str, list[np.ndarray]], path: Path) -> None:
    tiles = []
    for i, case in enumerate(cases):
        ys, xs = np.nonzero(case["region"])
        top = ys.min()
        cx = int(xs[ys < top + 40].mean())
        size = 200
        y0 = max(0, top - 20)
        x0 = int(np.clip(cx - size // 2, 0, case["image"].shape[1] - size))
        crop = (slice(y0, y0 + size), slice(x0, x0 + size))
        row = [case["image"][crop], case["truth"][crop]]
        row += [composites[m][i][crop] for m in METHODS]
        tiles.append(
            np.hstack([np.pad(t, ((4, 4), (4, 4), (0, 0)), constant_values=255) for t in row])
        )
    sheet = np.vstack(tiles)
    labels = ["input", "truth", *METHODS]
    header = np.full((28, sheet.shape[1], 3), 255, np.uint8)
    for k, label in enumerate(labels):
        cv2.putText(
            header,
            label,
            (k * 208 + 10, 20),
            cv2.FONT_HERSHEY_SIMPLEX,
            0.6,
            (0, 0, 0),
            1,
            cv2.LINE_AA,
        )
    sheet = np.vstack([header, sheet])
    cv2.imwrite(str(path), cv2.cvtColor(sheet, cv2.COLOR_RGB2BGR))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--side", type=int, default=1200, help="long side of the cases, px")
    parser.add_argument("--sheet", type=Path, default=Path("edges_contact_sheet.png"))
    args = parser.parse_args()

    segmenter = MediaPipeSegmenter()
    photos = [decode(p).rgb for p in sorted((ROOT / "input").glob("*.jpg"))]
    cases = [make_case(_resize_long(p, args.side), segmenter, seed=i) for i, p in enumerate(photos)]
    totals = {
        m: {"sad": 0.0, "mse": 0.0, "grad": 0.0, "composite": 0.0, "seconds": 0.0} for m in METHODS
    }
    composites: dict[str, list[np.ndarray]] = {m: [] for m in METHODS}
    megapixels = sum(c["image"].shape[0] * c["image"].shape[1] for c in cases) / 1e6
    for method in METHODS:  # warm-up: numba's and pymatting's compiled code, before the clock
        run_method(cases[0], method)
    for method in METHODS:
        for case in cases:
            alpha, composite, seconds = run_method(case, method)
            for key, value in metrics(case, alpha, composite).items():
                totals[method][key] += value / len(cases) if key in ("mse", "composite") else value
            totals[method]["seconds"] += seconds
            composites[method].append(composite)
    sizes = ", ".join(f"{c['image'].shape[1]}×{c['image'].shape[0]}" for c in cases)
    print(
        f"{len(cases)} cases ({sizes}); SAD, gradient: sums over the cases; MSE, composite: means"
    )
    print(f"{'method':10s} {'SAD':>8s} {'MSE e-3':>8s} {'grad':>8s} {'comp MAE':>9s} {'ms/MP':>8s}")
    for method in METHODS:
        t = totals[method]
        print(
            f"{method:10s} {t['sad']:8.2f} {t['mse']:8.3f} {t['grad']:8.2f} "
            f"{t['composite']:9.2f} {t['seconds'] * 1000 / megapixels:8.1f}"
        )
    ratio = totals["fast"]["sad"] / totals["original"]["sad"]
    print(f"fast SAD / original SAD = {ratio:.2f} (target <= 0.5)")
    contact_sheet(cases, composites, args.sheet)
    print(f"contact sheet: {args.sheet}")
    segmenter.close()


if __name__ == "__main__":
    main()
