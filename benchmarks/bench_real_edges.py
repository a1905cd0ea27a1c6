"""Edges on REAL masks of any subject: ours (`--matting off/fast/quality`) beside rembg with the
same model, on known-truth composites and on real photos.

Run by hand (never in CI)::

    ../shared/tools/real-models/fetch.sh                  # the real U²-Netp and ISNet weights
    python benchmarks/bench_real_edges.py --photos DIR [--model isnet-general-use|u2netp]
        [--rembg-python VENV/bin/python] [--sheet docs/real_edges_contact_sheet.jpg]

Photos: every image in ``--photos`` (and the bundled samples). rembg 2.0.86, when a Python of a
venv that has it is given (``--rembg-python``; install it in a venv of its own: ``pip install
'rembg[cpu,cli]==2.0.86'``), runs the same model file: plain, ``-dc`` (decontaminate: pymatting's
multi-level foreground) and ``-a`` (alpha matting).

Methods: ``off`` (the model's alpha, the photo's colours), ``fast`` and ``quality`` (ours, the
defaults for a fine mask: the model's alpha kept — given the photo's own edges when the photo is
twice the model's input or more — and the colours of its soft pixels solved by blur-fusion /
pymatting's multi-level estimator), ``fast-enlarged`` (``fast`` with the model's alpha as
enlarged, never refitted), ``fast-coarse`` (the coarse-mask path — what ``fast`` did to salient
masks before: snapped to the photo's edges), and rembg's.

``--truth-model isnet-general-use`` with ``--model u2netp`` makes the known truth from ISNet's
far sharper 1024² alpha, so that it holds detail U²-Netp's 320² map, enlarged, has lost: the
test of the refit (``fast`` against ``fast-enlarged``).

Known truth: each photo's real cut-out — the model's alpha on it (snapped at 0.02/0.98) and the
subject's own colours carried outward into the soft pixels (OpenCV's inpainting from the
opaque pixels, so no method's estimator is the truth) — composited over backgrounds: one close
in colour to the subject (its mean edge colour), a pale sky, a beige, a textured photo. The
model then segments that composite, and each method is scored against the truth: alpha SAD
(Σ|α − α*| / 1000), MSE (× 10⁻³), gradient error (/ 1000, Gaussian derivatives σ = 1.4), and
the composite's mean absolute error (0–255) over a new flat background in the edge band.

On every image (real photos and composites): ``old-bg`` — the share of the edge band that still
shows the old background's local colour (a pixel's subject colour lies nearer the local old
background colour than the local subject colour, along the line between them; pixels where the
two colours are within 40 of each other, or α < 0.1, are not counted); the band is the model's
soft pixels (0.02 < α < 0.98) and any pixel a method grew into; ``dark`` — the share of the same
counted pixels darker than both local colours by more than 10 levels of luminance: a dark fringe
(plain rembg writes its cut-out through ``Image.composite`` with transparent black, so its RGB
is the photo's colour times α under a straight alpha: a semi-transparent pixel shows α² of the
photo, darkened; the old-bg share alone reads that black as "not old background"); ``grown`` —
pixels the model
calls background (α < 0.02) that a method gives α > 0.05, as a share of the band's size; and
time per megapixel (our refinement only, from the model's alpha to the matte).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("U2NET_HOME", str(Path.home() / ".cache" / "bgs-real-models"))

from operations.media.decode import decode  # noqa: E402
from operations.segmenters import create_segmenter  # noqa: E402
from operations.segmenters.base import SegmenterSettings  # noqa: E402
from operations.stages.matting import FINE_HIGH, FINE_LOW, refine  # noqa: E402

NEW_BACKGROUND = (40, 90, 200)  # the flat new background composites are judged over
OURS = ("off", "fast", "fast-enlarged", "quality", "fast-coarse")
REMBG = ("rembg", "rembg -dc", "rembg -a")
SUFFIXES = {".jpg", ".jpeg", ".png", ".webp"}

# Runs inside rembg's own venv: its remove() on each photo, the same model file, RGBA out.
REMBG_RUNNER = """
import sys, json
from PIL import Image
from rembg import new_session, remove
model, path, jobs = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
session = new_session("dis_custom", model_path=path) if model.startswith("isnet") else \\
    new_session(model)
for src, dst, flags in jobs:
    remove(Image.open(src).convert("RGB"), session=session, **flags).save(dst)
"""
REMBG_FLAGS = {
    "rembg": {},
    "rembg -dc": {"decontaminate": True},
    "rembg -a": {"alpha_matting": True},
}


def _box(x: np.ndarray, r: int) -> np.ndarray:
    return cv2.blur(x, (2 * r + 1, 2 * r + 1), borderType=cv2.BORDER_REFLECT)


def old_background_share(rgb, model_alpha, alpha, colours) -> tuple[float, float, int]:
    """(old-bg share, grown share, band size) — see the module's docstring."""
    share, _, grown, band = edge_colour_shares(rgb, model_alpha, alpha, colours)
    return share, grown, band


def luminance(colours: np.ndarray) -> np.ndarray:
    return colours @ np.float32([0.299, 0.587, 0.114])


def edge_colour_shares(rgb, model_alpha, alpha, colours) -> tuple[float, float, float, int]:
    """(old-bg share, darkened share, grown share, band size) — see the module's docstring."""
    h, w = model_alpha.shape
    soft = (model_alpha > FINE_LOW) & (model_alpha < FINE_HIGH)
    grown = (model_alpha <= FINE_LOW) & (alpha > 0.05)
    band = soft | grown
    radius = max(8, round(0.03 * max(h, w)))
    image = rgb.astype(np.float32)
    back = (model_alpha <= FINE_LOW).astype(np.float32)
    front = (model_alpha >= FINE_HIGH).astype(np.float32)
    near_b, near_f = _box(back, radius), _box(front, radius)
    local_b = _box(image * back[..., None], radius) / np.maximum(near_b, 1e-6)[..., None]
    local_f = _box(image * front[..., None], radius) / np.maximum(near_f, 1e-6)[..., None]
    towards = local_b - local_f
    length = (towards * towards).sum(-1)
    counted = band & (length > 40**2) & (near_b > 0.05) & (near_f > 0.05) & (alpha >= 0.1)
    t = ((colours - local_f) * towards).sum(-1) / np.maximum(length, 1e-6)
    share = float((t[counted] > 0.5).mean()) if counted.any() else float("nan")
    darkest = np.minimum(luminance(local_f), luminance(local_b))
    dark = luminance(colours) < darkest - 10
    darkened = float(dark[counted].mean()) if counted.any() else float("nan")
    return share, darkened, float(grown.sum() / max(1, soft.sum())), int(band.sum())


def alpha_errors(alpha, truth) -> tuple[float, float, float]:
    def grad(a):
        a = a.astype(np.float64)
        gx = cv2.GaussianBlur(cv2.Sobel(a, cv2.CV_64F, 1, 0, ksize=1), (0, 0), 1.4)
        gy = cv2.GaussianBlur(cv2.Sobel(a, cv2.CV_64F, 0, 1, ksize=1), (0, 0), 1.4)
        return np.hypot(gx, gy)

    sad = np.abs(alpha - truth).sum() / 1000
    mse = ((alpha - truth) ** 2).mean() * 1000
    gradient = ((grad(alpha) - grad(truth)) ** 2).sum() / 1000
    return float(sad), float(mse), float(gradient)


def composite_error(alpha, colours, truth_alpha, truth_colours) -> float:
    new = np.float32(NEW_BACKGROUND)
    ours = alpha[..., None] * colours + (1 - alpha[..., None]) * new
    right = truth_alpha[..., None] * truth_colours + (1 - truth_alpha[..., None]) * new
    soft = (truth_alpha > FINE_LOW) & (truth_alpha < FINE_HIGH)
    region = cv2.dilate(soft.astype(np.uint8), np.ones((21, 21), np.uint8)) > 0
    return float(np.abs(ours - right)[region].mean())


def ours(method: str, rgb: np.ndarray, model_alpha: np.ndarray, mask_side: int):
    """(alpha, colours float32 0-255, seconds) of one of our methods."""
    start = time.perf_counter()
    if method == "fast-coarse":
        matte = refine(rgb, model_alpha, "fast", mask_side=mask_side, fine=False)
    elif method == "fast-enlarged":  # the model's alpha as enlarged: no refit to the photo
        matte = refine(rgb, model_alpha, "fast", mask_side=0, fine=True)
    else:
        matte = refine(rgb, model_alpha, method, mask_side=mask_side, fine=True)
    alpha = matte.alpha
    colours = matte.rgb.astype(np.float32)
    if matte.refined:
        colours.reshape(-1, 3)[matte.edge] = matte.edge_colours
    return alpha, colours, time.perf_counter() - start


def run_rembg(
    python: str, model: str, images: dict[str, np.ndarray], folder: Path, cache: Path | None
):
    """Every rembg variant on every image: name → variant → (alpha, colours). With ``cache``,
    outputs are kept there, named by the model and the image's content, and reused."""
    import hashlib

    from PIL import Image

    jobs, outputs = [], {}
    for name, rgb in images.items():
        key = hashlib.blake2b(rgb.tobytes(), digest_size=8).hexdigest()
        src = folder / f"{name}.png"
        Image.fromarray(rgb).save(src)
        for variant, flags in REMBG_FLAGS.items():
            kept = f"{model}.{key}.{variant.replace(' ', '')}.out.png"
            dst = (cache or folder) / kept
            if not dst.exists():
                jobs.append((str(src), str(dst), flags))
            outputs.setdefault(name, {})[variant] = dst
    model_path = Path(os.environ["U2NET_HOME"]) / f"{model}.onnx"
    env = {**os.environ, "OMP_NUM_THREADS": str(os.cpu_count() or 1)}
    if jobs:
        command = [python, "-c", REMBG_RUNNER, model, str(model_path), json.dumps(jobs)]
        subprocess.run(command, check=True, env=env)
    results = {}
    for name, variants in outputs.items():
        for variant, path in variants.items():
            rgba = np.asarray(Image.open(path).convert("RGBA")).astype(np.float32)
            results.setdefault(name, {})[variant] = (rgba[..., 3] / 255.0, rgba[..., :3])
    return results


def known_truth(rgb: np.ndarray, alpha: np.ndarray, backgrounds: dict[str, np.ndarray]):
    """The photo's real cut-out (see the docstring) over each background."""
    truth = alpha.copy()
    truth[truth <= FINE_LOW], truth[truth >= FINE_HIGH] = 0.0, 1.0
    unknown = (truth < FINE_HIGH).astype(np.uint8)
    colours = cv2.inpaint(rgb, unknown, 5, cv2.INPAINT_TELEA).astype(np.float32)
    cases = {}
    for name, background in backgrounds.items():
        picture = truth[..., None] * colours + (1 - truth[..., None]) * background
        cases[name] = (np.clip(picture + 0.5, 0, 255).astype(np.uint8), truth, colours)
    return cases


def backgrounds_for(rgb, alpha, texture) -> dict[str, np.ndarray]:
    h, w = alpha.shape
    soft = (alpha > 0.3) & (alpha < FINE_HIGH)
    close = rgb[soft].mean(0) if soft.any() else np.float32([128, 128, 128])
    flat = {"close": close, "sky": (196, 220, 240), "beige": (222, 204, 170)}
    out = {k: np.broadcast_to(np.float32(v), (h, w, 3)) for k, v in flat.items()}
    out["texture"] = cv2.resize(texture, (w, h), interpolation=cv2.INTER_AREA).astype(np.float32)
    return out


def crops(model_alpha: np.ndarray, size: int, count: int) -> list[tuple[int, int]]:
    """The ``count`` windows with the most soft pixels (hair, fur, whiskers), apart."""
    soft = ((model_alpha > 0.05) & (model_alpha < 0.95)).astype(np.float32)
    density = cv2.blur(soft, (size, size))
    h, w = soft.shape
    found = []
    for _ in range(count):
        y, x = np.unravel_index(np.argmax(density), density.shape)
        y0, x0 = (
            int(np.clip(y - size // 2, 0, max(0, h - size))),
            int(np.clip(x - size // 2, 0, max(0, w - size))),
        )
        found.append((y0, x0))
        density[max(0, y - size) : y + size, max(0, x - size) : x + size] = 0
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--photos", type=Path, action="append", default=[], help="a folder of photos"
    )
    parser.add_argument(
        "--model", default="isnet-general-use", choices=("isnet-general-use", "u2netp")
    )
    parser.add_argument("--rembg-python", default="/tmp/rembg-venv/bin/python")
    parser.add_argument("--sheet", type=Path, help="write a contact sheet of 1:1 edge crops")
    parser.add_argument("--no-truth", action="store_true", help="real photos only")
    parser.add_argument(
        "--truth-model",
        choices=("isnet-general-use", "u2netp"),
        help="make the known truth from this model's alpha (a sharper one than --model: the "
        "truth then has detail --model's enlarged alpha lacks); default: --model",
    )
    parser.add_argument(
        "--rembg-cache", type=Path, help="keep rembg's outputs here and reuse them (deterministic)"
    )
    args = parser.parse_args()
    paths = sorted(
        p
        for folder in [ROOT / "input", *args.photos]
        for p in folder.iterdir()
        if p.suffix.lower() in SUFFIXES
    )
    seen, photos = set(), {}
    for path in paths:
        if path.stem not in seen:
            seen.add(path.stem)
            photos[path.stem] = decode(path).rgb
    segmenter = create_segmenter(
        "salient", SegmenterSettings(offline=True, own=(("salient_model", args.model),))
    )
    texture = decode(ROOT / "background" / "hubble_deep_field.jpg").rgb
    truth_segmenter = segmenter
    if args.truth_model not in (None, args.model):
        own = (("salient_model", args.truth_model),)
        truth_segmenter = create_segmenter("salient", SegmenterSettings(offline=True, own=own))
    images, model_alphas, truths = {}, {}, {}
    for name, rgb in photos.items():
        images[name] = rgb
        model_alphas[name] = segmenter(rgb)
        if args.no_truth:
            continue
        cut = model_alphas[name] if truth_segmenter is segmenter else truth_segmenter(rgb)
        for bg, (picture, truth, colours) in known_truth(
            rgb, cut, backgrounds_for(rgb, cut, texture)
        ).items():
            case = f"{name}@{bg}"
            images[case] = picture
            model_alphas[case] = segmenter(picture)
            truths[case] = (truth, colours)
    methods = list(OURS)
    rembg = {}
    if Path(args.rembg_python).exists():
        with tempfile.TemporaryDirectory() as tmp:
            if args.rembg_cache is not None:
                args.rembg_cache.mkdir(parents=True, exist_ok=True)
            rembg = run_rembg(args.rembg_python, args.model, images, Path(tmp), args.rembg_cache)
        methods += list(REMBG)
    else:
        print(f"rembg: {args.rembg_python} not found; ours only", file=sys.stderr)
    results: dict[str, dict[str, dict[str, float]]] = {}
    seconds = {m: 0.0 for m in OURS}
    pixels = 0
    kept: dict[str, dict[str, tuple[np.ndarray, np.ndarray]]] = {}
    for name, rgb in images.items():
        model_alpha = model_alphas[name]
        pixels += model_alpha.size
        for method in methods:
            if method in OURS:
                alpha, colours, took = ours(method, rgb, model_alpha, segmenter.mask_side)
                seconds[method] += took
            else:
                alpha, colours = rembg[name][method]
            share, dark, grown, _ = edge_colour_shares(rgb, model_alpha, alpha, colours)
            row = {"old-bg": share, "dark": dark, "grown": grown}
            if name in truths:
                truth, truth_colours = truths[name]
                row.update(zip(("SAD", "MSE", "grad"), alpha_errors(alpha, truth), strict=True))
                row["comp"] = composite_error(alpha, colours, truth, truth_colours)
            results.setdefault(name, {})[method] = row
            if name in photos:
                kept.setdefault(name, {})[method] = (alpha, colours)
    _print(results, methods, photos, seconds, pixels)
    if args.sheet is not None:
        _sheet(args.sheet, photos, model_alphas, kept, methods)


def _print(results, methods, photos, seconds, pixels) -> None:
    def mean(names, method, key):
        values = [results[n][method][key] for n in names if key in results[n][method]]
        values = [v for v in values if v == v]
        return sum(values) / len(values) if values else float("nan")

    real = [n for n in results if n in photos]
    made = [n for n in results if n not in photos]
    print(f"\n## real photos ({len(real)}): old-bg / darkened / grown share, per photo")
    print("| photo | " + " | ".join(methods) + " |")
    print("| --- |" + " ---: |" * len(methods))
    for name in real:
        cells = [
            "{old-bg:.3f} / {dark:.3f} / {grown:.3f}".format(**results[name][m]) for m in methods
        ]
        print(f"| {name} | " + " | ".join(cells) + " |")
    print(
        "| **mean** | "
        + " | ".join(
            f"**{mean(real, m, 'old-bg'):.3f}** / {mean(real, m, 'dark'):.3f} / "
            f"{mean(real, m, 'grown'):.4f}"
            for m in methods
        )
        + " |"
    )
    if made:
        print(f"\n## known truth ({len(made)} composites): means")
        print("| method | SAD | MSE ×10⁻³ | grad | composite MAE | old-bg | grown |")
        print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
        for m in methods:
            keys = ("SAD", "MSE", "grad", "comp", "old-bg", "grown")
            formats = (".2f", ".3f", ".2f", ".2f", ".3f", ".4f")
            cells = [format(mean(made, m, k), f) for k, f in zip(keys, formats, strict=True)]
            print(f"| {m} | " + " | ".join(cells) + " |")
        for bg in sorted({n.split("@")[1] for n in made}):
            names = [n for n in made if n.endswith("@" + bg)]
            print(
                f"- over {bg}: composite MAE "
                + ", ".join(f"{m} {mean(names, m, 'comp'):.2f}" for m in methods)
            )
    print("\n## time, from the model's alpha to the matte (ms per megapixel)")
    print(", ".join(f"{m} {1000 * seconds[m] / (pixels / 1e6):.0f}" for m in seconds))


def _sheet(path: Path, photos, model_alphas, kept, methods, size: int = 160) -> None:
    """Rows: the softest windows of each photo at 1:1; columns: the photo, then each method's
    result over the new flat background."""
    from PIL import Image, ImageDraw

    new = np.float32(NEW_BACKGROUND)
    rows = []
    for name, rgb in photos.items():
        for y0, x0 in crops(model_alphas[name], size, 2):
            window = (slice(y0, y0 + size), slice(x0, x0 + size))
            tiles = [rgb[window]]
            for method in methods:
                alpha, colours = kept[name][method]
                a = alpha[window][..., None]
                tiles.append(
                    np.clip(a * colours[window] + (1 - a) * new + 0.5, 0, 255).astype(np.uint8)
                )
            tiles = [
                np.pad(t, ((0, size - t.shape[0]), (0, size - t.shape[1]), (0, 0))) for t in tiles
            ]
            rows.append(
                np.concatenate(
                    [np.pad(t, ((2, 2), (2, 2), (0, 0)), constant_values=255) for t in tiles], 1
                )
            )
    header = Image.new("RGB", (rows[0].shape[1], 24), "white")
    draw = ImageDraw.Draw(header)
    for k, label in enumerate(["photo", *methods]):
        draw.text((k * (size + 4) + 6, 6), label, fill="black")
    sheet = np.concatenate([np.asarray(header), *rows], 0)
    Image.fromarray(sheet).save(path, quality=92)
    print(f"contact sheet: {path}")


if __name__ == "__main__":
    main()
