"""Fixing what the model got wrong, with strokes: the mask's error before and after 1, 2 and 4
scripted strokes on photos where the model fails, against a known truth; and the editor's
preview latency on a 12-megapixel photo.

Run by hand (never in CI)::

    python benchmarks/bench_fix.py [--animal PHOTO] [--sheet fix_sheet.png]

Known truth by construction (as benchmarks/bench_edges.py builds it): a subject's silhouette T
(made crisp, then softened over 2 px) and the photo's pixels composited with it over a new
background, so every pixel's true alpha is T. The people model (MediaPipe, the default) then
segments the composite, and fails where these cases make it fail:

- ``second person``: the astronaut, with Grace Hopper half in the frame beside her (part of the
  background: the truth is the astronaut alone); the model takes both. Remove strokes.
- ``held object``: Grace Hopper holding an object (a patch of another photo at her shoulder and
  hand, part of the subject); the people model leaves it out. Keep strokes.
- ``animal``: a cat under the people model (``--animal``; default the tests' own
  ``tests/data/chelsea.jpg``, scikit-image's sample), its silhouette from the real U²-Netp
  (``../shared/tools/real-models/fetch.sh``). Keep strokes.

Strokes are scripted as a user paints: each goes into the largest region still wrong (model
minus truth for remove, truth minus model for keep), along its long axis, with a brush that
stays inside it (half the region's inner radius, along its spine), and the matte is solved
again after each. IoU is of α > 0.5; SAD is Σ|α − T| / 1000 over the photo.

The preview latency: the reviewing session on a 4000×3000 photo (the sample enlarged), one
preview with the run's model warm, then with 1 and 4 strokes; and one accept at full size.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("U2NET_HOME", str(Path.home() / ".cache" / "bgs-real-models"))

from operations.build import build_pipeline  # noqa: E402
from operations.options import Options  # noqa: E402
from operations.pipeline import Fix, Pipeline  # noqa: E402
from operations.stages.mask import Stroke  # noqa: E402

STROKES = (1, 2, 4)


def _photo(name: str) -> np.ndarray:
    return np.asarray(Image.open(ROOT / "input" / name).convert("RGB"))


def _crisp(alpha: np.ndarray) -> np.ndarray:
    """A silhouette made crisp, then softened over about 2 px (a plausible truth)."""
    hard = (alpha > 0.5).astype(np.float32)
    return cv2.GaussianBlur(hard, (0, 0), 1.0)


def _composite(photo: np.ndarray, truth: np.ndarray, background: np.ndarray) -> np.ndarray:
    a = truth[..., None]
    return np.clip(photo * a + background * (1 - a) + 0.5, 0, 255).astype(np.uint8)


def _backdrop(height: int, width: int, seed: int) -> np.ndarray:
    """A plain studio-like background: a soft vertical gradient with a little noise."""
    rng = np.random.default_rng(seed)
    ramp = np.linspace(0, 1, height, dtype=np.float32)[:, None, None]
    top, bottom = rng.uniform(150, 230, 3), rng.uniform(60, 140, 3)
    image = top * (1 - ramp) + bottom * ramp + rng.normal(0, 2, (height, width, 3))
    return np.broadcast_to(image, (height, width, 3)).astype(np.float32)


def case_second_person(people: Pipeline) -> dict:
    subject = _photo("astronaut.jpg")
    height, width = subject.shape[:2]
    truth = _crisp(people.segment(subject))
    other = _photo("grace_hopper.jpg")
    other_alpha = _crisp(people.segment(other))
    scale = height / other.shape[0]
    size = (round(other.shape[1] * scale), height)
    other, other_alpha = cv2.resize(other, size), cv2.resize(other_alpha, size)
    background = _backdrop(height, width, 1)
    x0 = width - size[0] // 2  # half of her in the frame, on the right
    part = slice(0, width - x0)
    a = other_alpha[:, part, None]
    background[:, x0:] = other[:, part] * a + background[:, x0:] * (1 - a)
    truth[:, x0:] *= 1 - other_alpha[:, part]  # she stands in front: the astronaut's pixels hidden
    return {"name": "second person", "rgb": _composite(subject, truth, background), "truth": truth}


def case_held_object(people: Pipeline) -> dict:
    subject = _photo("grace_hopper.jpg")
    height, width = subject.shape[:2]
    truth = _crisp(people.segment(subject))
    thing = np.asarray(Image.open(ROOT / "background" / "hubble_deep_field.jpg").convert("RGB"))
    box_h, box_w = height // 4, width // 4
    y0, x0 = int(height * 0.30), int(width * 0.02)  # beside her face, touching her shoulder
    patch = cv2.resize(thing, (box_w, box_h))
    photo = subject.copy()
    photo[y0 : y0 + box_h, x0 : x0 + box_w] = patch
    held = np.zeros((height, width), np.float32)
    cv2.ellipse(
        held, (x0 + box_w // 2, y0 + box_h // 2), (box_w // 2, box_h // 2), 0, 0, 360, 1, -1
    )
    photo = np.where(held[..., None] > 0, photo, subject)
    truth = np.maximum(truth, _crisp(held))
    background = _backdrop(height, width, 2)
    return {"name": "held object", "rgb": _composite(photo, truth, background), "truth": truth}


def case_animal(path: Path) -> dict | None:
    model = Path(os.environ["U2NET_HOME"]) / "u2netp.onnx"
    if not model.is_file():
        print(f"animal: skipped, no {model} (run ../shared/tools/real-models/fetch.sh)")
        return None
    salient = build_pipeline(
        Options(bg="white", mode="salient", salient_model="u2netp", offline=True)
        .validated(batch=False)
        .recipe()
    )
    cat = np.asarray(Image.open(path).convert("RGB"))
    alpha = _crisp(salient.segment(cat))
    salient.close()
    # The cat smaller, low in a wider frame, as a pet photo is framed.
    height, width = cat.shape[0] * 3 // 2, cat.shape[1] * 3 // 2
    size = (cat.shape[1] * 3 // 4, cat.shape[0] * 3 // 4)
    y0, x0 = height - size[1], (width - size[0]) // 2
    photo = np.zeros((height, width, 3), np.uint8)
    truth = np.zeros((height, width), np.float32)
    photo[y0:, x0 : x0 + size[0]] = cv2.resize(cat, size, interpolation=cv2.INTER_AREA)
    truth[y0:, x0 : x0 + size[0]] = cv2.resize(alpha, size, interpolation=cv2.INTER_AREA)
    background = _backdrop(height, width, 3)
    return {"name": "animal", "rgb": _composite(photo, truth, background), "truth": truth}


def _stroke(error: np.ndarray, kind: str) -> Stroke | None:
    """One stroke into the largest wrong region, along its long axis, inside it."""
    count, labels, stats, _ = cv2.connectedComponentsWithStats(error.astype(np.uint8))
    if count <= 1:
        return None
    largest = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
    region = (labels == largest).astype(np.uint8)
    inner = cv2.distanceTransform(region, cv2.DIST_L2, 5)
    radius = max(2.0, 0.5 * float(inner.max()))
    ys, xs = np.nonzero(region)
    centre = np.array([xs.mean(), ys.mean()])
    axis = np.linalg.eigh(np.cov(np.stack([xs, ys])))[1][:, -1]  # the long axis
    reach = np.abs((np.stack([xs, ys], 1) - centre) @ axis).max()
    points = []
    for t in np.arange(-reach, reach + 1, max(1.0, radius / 2)):
        x, y = centre + t * axis
        xi, yi = round(x), round(y)
        if 0 <= yi < region.shape[0] and 0 <= xi < region.shape[1] and inner[yi, xi] >= radius:
            points.append((float(x), float(y)))
    if not points:  # a thin region: a dab at its most inner point
        yi, xi = np.unravel_index(int(np.argmax(inner)), inner.shape)
        points = [(float(xi), float(yi))]
    return Stroke(kind, radius, tuple(points))


def _scores(alpha: np.ndarray, truth: np.ndarray) -> tuple[float, float]:
    a, t = alpha > 0.5, truth > 0.5
    iou = (a & t).sum() / max(1, (a | t).sum())
    return float(iou), float(np.abs(alpha - truth).sum() / 1000)


def fix_case(pipeline: Pipeline, case: dict, kind: str) -> list[dict]:
    rgb, truth = case["rgb"], case["truth"]
    strokes: list[Stroke] = []
    alpha = pipeline.swap(rgb).alpha
    rows = [
        {
            "case": case["name"],
            "strokes": 0,
            **dict(zip(("iou", "sad"), _scores(alpha, truth), strict=True)),
        }
    ]
    case["alphas"] = {0: alpha}
    for n in range(1, max(STROKES) + 1):
        wrong = (alpha > 0.5) & (truth < 0.5) if kind == "remove" else (alpha < 0.5) & (truth > 0.5)
        stroke = _stroke(wrong, kind)
        if stroke is not None:
            strokes.append(stroke)
        alpha = pipeline.swap(rgb, fix=Fix(strokes=tuple(strokes))).alpha
        if n in STROKES:
            iou, sad = _scores(alpha, truth)
            rows.append({"case": case["name"], "strokes": n, "iou": iou, "sad": sad})
            case["alphas"][n] = alpha
            case.setdefault("strokes", {})[n] = tuple(strokes)
    return rows


def latency(repeat: int = 3) -> dict[str, float]:
    """The reviewing session's preview and accept on a 4000×3000 photo."""
    from operations.batch import run_batch
    from operations.review.session import ReviewSession

    with tempfile.TemporaryDirectory() as folder:
        photos, out = Path(folder) / "in", Path(folder) / "out"
        photos.mkdir()
        Image.open(ROOT / "input" / "astronaut.jpg").resize((4000, 3000), Image.LANCZOS).save(
            photos / "big.jpg", quality=92
        )
        options = Options(input=str(photos), output=str(out), bg="white", report=True, quiet=True)
        run_batch(options.validated(), progress=False)
        session = ReviewSession(out)
        stroke = {"kind": "remove", "radius": 120, "points": [[300, 2400], [1200, 2900]]}
        strokes = [stroke] + [
            {"kind": "keep", "radius": 60, "points": [[2000 + 100 * i, 400], [2100 + 100 * i, 600]]}
            for i in range(3)
        ]
        figures = {}
        start = time.perf_counter()
        session.preview("big.png", {})
        figures["first preview (decode, model, warm-up), s"] = time.perf_counter() - start
        for label, body in (("0 strokes", {}), ("1 stroke", {"strokes": strokes[:1]}),
                            ("4 strokes", {"strokes": strokes})):  # fmt: skip
            times = []
            for _ in range(repeat):
                start = time.perf_counter()
                session.preview("big.png", body)
                times.append(time.perf_counter() - start)
            figures[f"preview, {label}, s (best of {repeat})"] = min(times)
        start = time.perf_counter()
        session.accept("big.png", {"strokes": strokes})
        figures["accept at 12 MP, 4 strokes, s"] = time.perf_counter() - start
        session.close()
    return figures


def sheet(cases: list[dict], path: Path) -> None:
    """Per case: the input, the model's alpha, after 1, 2, 4 strokes (strokes drawn over), the
    truth; each at its own size, side by side."""
    rows = []
    for case in cases:
        height = case["rgb"].shape[0]
        tiles = [case["rgb"]]
        for n in (0, *STROKES):
            grey = np.repeat((case["alphas"][n] * 255).astype(np.uint8)[..., None], 3, 2)
            for stroke in case.get("strokes", {}).get(n, ()):
                colour = (60, 200, 90) if stroke.kind == "keep" else (230, 60, 60)
                points = np.round(np.asarray(stroke.points)).astype(np.int32)
                cv2.polylines(grey, [points.reshape(-1, 1, 2)], False, colour, 2)
            tiles.append(grey)
        tiles.append(np.repeat((case["truth"] * 255).astype(np.uint8)[..., None], 3, 2))
        tiles = [cv2.resize(t, (round(t.shape[1] * 360 / height), 360)) for t in tiles]
        rows.append(np.concatenate(tiles, axis=1))
    width = max(r.shape[1] for r in rows)
    rows = [np.pad(r, ((0, 4), (0, width - r.shape[1]), (0, 0)), constant_values=255) for r in rows]
    Image.fromarray(np.concatenate(rows)).save(path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--animal",
        type=Path,
        default=ROOT / "tests" / "data" / "chelsea.jpg",
        help="a photo of an animal (default: the tests' cat)",
    )
    parser.add_argument("--sheet", type=Path, help="write a contact sheet of the cases")
    parser.add_argument("--json", type=Path, help="write the figures as JSON")
    parser.add_argument("--skip-latency", action="store_true")
    args = parser.parse_args()
    people = build_pipeline(Options(bg="white").validated(batch=False).recipe())
    cases = [(case_second_person(people), "remove"), (case_held_object(people), "keep")]
    if args.animal is not None and (animal := case_animal(args.animal)) is not None:
        cases.append((animal, "keep"))
    rows = [row for case, kind in cases for row in fix_case(people, case, kind)]
    people.close()
    print("| case | strokes | IoU | SAD |\n| --- | ---: | ---: | ---: |")
    for row in rows:
        print(f"| {row['case']} | {row['strokes']} | {row['iou']:.3f} | {row['sad']:.1f} |")
    figures = {} if args.skip_latency else latency()
    for label, value in figures.items():
        print(f"{label}: {value:.2f}")
    if args.sheet is not None:
        sheet([case for case, _ in cases], args.sheet)
    if args.json is not None:
        args.json.write_text(json.dumps({"rows": rows, "latency": figures}, indent=1))


if __name__ == "__main__":
    main()
