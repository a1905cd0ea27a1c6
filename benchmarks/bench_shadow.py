"""Is the kept shadow (``--keep-shadow``) the photographed one, and is none made up?

Run by hand::

    python benchmarks/bench_shadow.py [--weights u2netp.onnx] [--photos DIR] [--sheet out.png]

1. **Renders with a known shadow** (``tests.helpers.shadowed_scene``: a product on a studio sweep
   with light fall-off, vignette and sensor noise; its shadow laid on the floor behind it and a
   contact band at its base, of a known density), 2000×1500, three densities × three products:
   the kept shadow's density against the truth, outside the subject — mean |Δ| where the truth
   is a shadow (> 0.05), its bias, and mean |Δ| over the whole backdrop. Once with the exact
   alpha (the method alone), once with a real salient model's (``--weights``: U²-Netp or ISNet
   in rembg's file format; the whole pipeline, as users run it).
2. **Photos with no cast shadow** (the same renders with none, a black and a white product, and
   every photo in ``--photos`` plus the bundled samples, with the model's alpha): how many keep
   a shadow anyway (density above 0.1 anywhere outside the subject), and which warned instead.
3. **A contact sheet** (``--sheet``): for each render, the photo and the result on white at 1:1
   around the product's foot, without and with ``--keep-shadow``.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from operations.build import build_background, build_pipeline  # noqa: E402
from operations.media.decode import decode  # noqa: E402
from operations.options import Options  # noqa: E402
from operations.stages.own_shadow import find_shadow  # noqa: E402
from tests.helpers import SAMPLES, shadowed_scene  # noqa: E402

SIZE = (1500, 2000)
RENDERS = [
    (seed, density, colour)
    for seed, colour in ((1, None), (2, (20, 20, 24)), (3, (235, 232, 228)))
    for density in (0.3, 0.5, 0.7)
]


def _pipeline(white: Path, weights: Path | None, keep: bool):
    fields = {"bg": white, "keep_shadow": keep, "quiet": True}
    if weights is not None:
        model = weights.stem if weights.stem != "isnet-general-use" else "isnet-general-use"
        fields |= {"mode": "salient", "salient_model": model, "weights": weights}
    recipe = Options(**fields).validated(batch=False).recipe()
    return build_pipeline(recipe, background=build_background(recipe))


def _errors(density: np.ndarray | None, truth: np.ndarray, outside: np.ndarray) -> tuple:
    found = density if density is not None else np.zeros_like(truth)
    shadow = outside & (truth > 0.05)
    delta = (found - truth)[shadow]
    return np.abs(delta).mean(), delta.mean(), np.abs(found - truth)[outside].mean()


def _foot(image: np.ndarray, alpha: np.ndarray, size: int = 600) -> np.ndarray:
    """A 1:1 crop around the product's foot, at its right (where the shadow falls)."""
    rows, cols = np.nonzero(alpha > 0.5)
    y = int(rows.max()) - size // 2
    x = int(cols.max()) - size // 2
    y = max(0, min(image.shape[0] - size, y))
    x = max(0, min(image.shape[1] - size, x))
    return image[y : y + size, x : x + size]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--weights", type=Path, help="a salient model (rembg's .onnx file)")
    parser.add_argument("--photos", type=Path, help="real photos with no cast shadow to judge")
    parser.add_argument("--sheet", type=Path, help="write a contact sheet here")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        white = Path(tmp) / "white.png"
        Image.fromarray(np.full((64, 64, 3), 255, np.uint8)).save(white)
        plain, kept = _pipeline(white, args.weights, False), _pipeline(white, args.weights, True)
        print(f"model: {args.weights.name if args.weights else 'MediaPipe (people only)'}")
        print("\n1. renders with a known shadow, 2000×1500 (density error outside the subject)")
        print(f"{'render':>22} | {'exact alpha: |Δ| shadow, bias, |Δ| all':>40} | model's alpha")
        sheet_rows, seconds = [], []
        for seed, density, colour in RENDERS:
            photo, alpha, truth = shadowed_scene(*SIZE, seed=seed, shadow=density, colour=colour)
            outside = alpha < 0.02
            start = time.perf_counter()
            exact = find_shadow(photo, alpha)
            seconds.append(time.perf_counter() - start)
            result = kept.swap(photo)
            model = find_shadow(photo, result.alpha)
            paint = {2: "dark", 3: "light"}.get(seed, "colour")
            name = f"seed {seed} d={density} {paint}"
            e = _errors(exact.density, truth, outside)
            m = _errors(model.density, truth, outside)
            print(
                f"{name:>22} | {e[0]:.3f}, {e[1]:+.3f}, {e[2]:.4f}{'':>22} | "
                f"{m[0]:.3f}, {m[1]:+.3f}, {m[2]:.4f}"
                + (f"  ({model.warning})" if model.warning else "")
            )
            if args.sheet is not None and density == 0.5:
                before = plain.swap(photo).image
                crops = [_foot(im, alpha) for im in (photo, before, result.image)]
                sheet_rows.append(np.hstack(crops))
        print(f"find_shadow at 2000×1500: {1000 * float(np.median(seconds)):.0f} ms (median)")
        print("\n2. photos with no cast shadow: a shadow kept anyway?")
        cases = [
            (f"render, no shadow, seed {s}", shadowed_scene(*SIZE, seed=s, shadow=0, colour=c)[0])
            for s, c in ((4, None), (5, (15, 15, 15)), (6, (250, 250, 250)))
        ]
        folders = [SAMPLES, ROOT / "tests" / "data"] + ([args.photos] if args.photos else [])
        for folder in folders:
            for path in sorted(folder.glob("*.jpg")):
                cases.append((path.name, decode(path).rgb))
        false = 0
        for name, photo in cases:
            result = kept.swap(photo)
            found = find_shadow(photo, result.alpha)
            if found.density is not None and found.density[result.alpha < 0.02].max() > 0.1:
                false += 1
                said = f"KEPT a shadow (max density {found.density.max():.2f})"
            else:
                said = found.warning or "none kept"
            print(f"{name:>28}: {said}")
        print(f"{false} of {len(cases)} photos without a cast shadow kept one")
        if args.sheet is not None and sheet_rows:
            Image.fromarray(np.vstack(sheet_rows)).save(args.sheet)
            print(
                f"\ncontact sheet (photo | today's | --keep-shadow, 1:1 at the foot): {args.sheet}"
            )
        plain.close()
        kept.close()


if __name__ == "__main__":
    main()
