"""Harmonisation against a known answer, built the way iHarmony4 is: real photos whose subject
and background belong together, the subject's colour and tone changed by random but plausible
transforms (white balance, exposure, gamma, saturation), so the original photo is the answer.

Run by hand: ``python benchmarks/bench_harmonize.py [--per-photo 12]``.

Photos: the two samples, and Ultralytics' ``bus.jpg`` and ``zidane.jpg`` when it is installed;
the subject's alpha is MediaPipe's, refined (``--matting fast``). Two settings:

``swap``
    What the tool sees: the subject's own photo was taken under another light, so the transform
    changes the whole source photo (subject and its own background alike), and the subject is
    composited onto the original background. The composite differs from the original in the
    subject only (as in iHarmony4); the harmoniser also sees the subject's own background.
``composite``
    iHarmony4's own input: the composite itself is the photo (the subject recoloured over its
    true background), so the subject's own background *is* the new one. Our relative transfer
    has nothing to go on and changes nothing; shown beside the classical direct transfer (the
    subject's Lab statistics matched to the surroundings', Reinhard et al. 2001), which has.

Plus ``unperturbed`` (the subject already matches: the change must be nil or small) and
``real swaps`` (each subject onto the other photos' backgrounds and a warm and a cold synthetic
one: how far the subject moves, in ΔE*ab, against the bound).

Metrics, for the composite unharmonised and harmonised: MSE and PSNR against the original over
the subject region (α > 0.5: fMSE, fPSNR) and over the whole image, on 0–255 values.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from operations.media.decode import decode  # noqa: E402
from operations.options import Options  # noqa: E402
from operations.segmenters import create_segmenter  # noqa: E402
from operations.stages.composite import blend  # noqa: E402
from operations.stages.harmonize import _lab, _ring, harmonize  # noqa: E402
from operations.stages.matting import Matte, refine  # noqa: E402
from tests.helpers import SAMPLES  # noqa: E402

STRENGTHS = (0.25, 0.5, 0.75, 1.0)


def photos() -> list[Path]:
    found = sorted(SAMPLES.glob("*.jpg"))
    try:
        import ultralytics

        found += sorted((Path(ultralytics.__file__).parent / "assets").glob("*.jpg"))
    except ImportError:
        pass
    return found


def _linear(x: np.ndarray) -> np.ndarray:
    return np.where(x <= 0.04045, x / 12.92, ((x + 0.055) / 1.055) ** 2.4)


def _srgb(x: np.ndarray) -> np.ndarray:
    x = np.clip(x, 0, 1)
    return np.where(x <= 0.0031308, x * 12.92, 1.055 * x ** (1 / 2.4) - 0.055)


def perturb(rgb: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A plausible change of light: white balance (±0.25 in log R/B gain, ±0.08 tint), exposure
    (±0.7 EV), gamma (0.75–1.33) and saturation (0.7–1.3)."""
    x = rgb.astype(np.float64) / 255
    temperature, tint = rng.uniform(-0.25, 0.25), rng.uniform(-0.08, 0.08)
    ev = rng.uniform(-0.7, 0.7)
    gains = np.exp([temperature, tint, -temperature]) * 2.0**ev
    y = _srgb(_linear(x) * gains) ** np.exp(rng.uniform(np.log(0.75), np.log(1.33)))
    grey = (y @ np.array([0.299, 0.587, 0.114]))[..., None]
    y = np.clip(grey + rng.uniform(0.7, 1.3) * (y - grey), 0, 1)
    return np.clip(y * 255 + 0.5, 0, 255).astype(np.uint8)


def direct_transfer(photo: np.ndarray, alpha: np.ndarray, strength: float) -> np.ndarray:
    """The classical transfer: the subject's Lab mean and L deviation matched to its
    surroundings' in the same image (a baseline, not what the tool does)."""
    lab = _lab(photo)
    ring, inside = _ring(alpha), alpha
    stats = []
    for w in (inside, ring):
        mean = np.tensordot(w, lab, axes=([0, 1], [0, 1])) / w.sum()
        stats.append((mean, np.sqrt((w * (lab[..., 0] - mean[0]) ** 2).sum() / w.sum())))
    (fg, fg_spread), (bg, bg_spread) = stats
    out = lab.copy()
    gain = (bg_spread / max(fg_spread, 1e-3)) ** strength
    out[..., 0] = (lab[..., 0] - fg[0]) * gain + fg[0] + strength * (bg[0] - fg[0])
    out[..., 1:] += strength * (bg[1:] - fg[1:])
    return np.clip(cv2.cvtColor(out, cv2.COLOR_Lab2RGB) * 255 + 0.5, 0, 255).astype(np.uint8)


def errors(result: np.ndarray, truth: np.ndarray, alpha: np.ndarray) -> tuple[float, float]:
    diff = (result.astype(np.float64) - truth) ** 2
    return float(diff[alpha > 0.5].mean()), float(diff.mean())


def psnr(mse: float) -> str:
    return f"{10 * np.log10(255**2 / mse):.1f}" if mse > 0 else "∞"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-photo", type=int, default=12, help="perturbations per photo")
    args = parser.parse_args()
    segmenter = create_segmenter(Options().mode)
    rng = np.random.default_rng(0)
    rows: dict[str, list[tuple[float, float]]] = {}

    def add(name: str, value: tuple[float, float]) -> None:
        rows.setdefault(name, []).append(value)

    subjects = []
    for path in photos():
        x = np.ascontiguousarray(decode(path).rgb)
        alpha = refine(x, segmenter(x), "fast").alpha
        subjects.append((path.name, x, alpha))
        for _ in range(args.per_photo):
            source = perturb(x, rng)  # the subject's own photo under another light
            composite = blend(source, x, alpha)  # only the subject differs from the answer
            add("swap: unharmonised", errors(composite, x, alpha))
            add("composite: unharmonised", errors(composite, x, alpha))
            for s in STRENGTHS:
                fixed = harmonize(Matte(source, soft=alpha), x, s)
                add(f"swap: harmonised {s}", errors(blend(fixed.rgb, x, alpha), x, alpha))
                fixed = harmonize(Matte(composite, soft=alpha), x, s)
                add(f"composite: harmonised {s}", errors(blend(fixed.rgb, x, alpha), x, alpha))
                direct = direct_transfer(composite, alpha, s)
                add(f"composite: direct transfer {s}", errors(blend(direct, x, alpha), x, alpha))
        for s in STRENGTHS:
            fixed = harmonize(Matte(x, soft=alpha), x, s)
            add(f"unperturbed: harmonised {s}", errors(blend(fixed.rgb, x, alpha), x, alpha))
            add(
                f"unperturbed: direct transfer {s}",
                errors(blend(direct_transfer(x, alpha, s), x, alpha), x, alpha),
            )

    print(
        f"{len(subjects)} photos ({', '.join(n for n, _, _ in subjects)}), "
        f"{args.per_photo} perturbations each\n"
    )
    print("| setting: method | fMSE | fPSNR dB | MSE | PSNR dB | fMSE vs unharmonised |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for name, values in rows.items():
        f, whole = np.mean([v[0] for v in values]), np.mean([v[1] for v in values])
        setting = name.split(":")[0]
        base = rows.get(f"{setting}: unharmonised")
        change = f"{f / np.mean([v[0] for v in base]) - 1:+.0%}" if base else "-"
        print(f"| {name} | {f:.1f} | {psnr(f)} | {whole:.1f} | {psnr(whole)} | {change} |")

    # Real swaps: each subject on the other photos' backgrounds, and a warm and a cold one.
    print("\nReal swaps: how far the subject moves (mean ΔE*ab over the subject, and the most)")
    height_width = [(x.shape[0], x.shape[1]) for _, x, _ in subjects]
    for s in STRENGTHS:
        moves = []
        for i, (_, x, alpha) in enumerate(subjects):
            h, w = height_width[i]
            backgrounds = [
                cv2.resize(other, (w, h)) for j, (_, other, _) in enumerate(subjects) if j != i
            ]
            backgrounds += [
                np.full((h, w, 3), colour, np.uint8) for colour in ((235, 160, 90), (70, 110, 190))
            ]
            for background in backgrounds:
                fixed = harmonize(Matte(x, soft=alpha), background, s)
                delta = np.linalg.norm(_lab(fixed.rgb) - _lab(x), axis=2)[alpha > 0.5]
                moves.append((delta.mean(), np.percentile(delta, 99)))
        means, tops = [m[0] for m in moves], [m[1] for m in moves]
        print(
            f"  strength {s}: mean ΔE {np.mean(means):.1f}, largest mean {max(means):.1f}, "
            f"99th percentile pixel {max(tops):.1f}"
        )


if __name__ == "__main__":
    main()
