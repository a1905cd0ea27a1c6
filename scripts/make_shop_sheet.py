"""The README's "For shops" figure: the sample photos, framed on a white 1:1 canvas, and as
transparent cut-outs with a shadow (shown over a checkerboard).

``python scripts/make_shop_sheet.py`` → ``docs/shop_sheet.jpg``.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from operations.batch import run_batch  # noqa: E402
from operations.options import Options  # noqa: E402

SIDE = 360  # each tile's height


def _tile(image: Image.Image) -> Image.Image:
    if image.mode == "RGBA":  # transparency shown as a checkerboard
        rows, cols = np.indices((image.height, image.width))
        checks = np.where(((rows // 16 + cols // 16) % 2 == 0)[..., None], 235, 200)
        rgba = np.asarray(image).astype(np.float32)
        alpha = rgba[..., 3:] / 255.0
        image = Image.fromarray((rgba[..., :3] * alpha + checks * (1 - alpha)).astype(np.uint8))
    return image.convert("RGB").resize((round(image.width * SIDE / image.height), SIDE))


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        runs = {
            "framed": {"bg": "white", "frame": "subject", "canvas": "1000x1000"},
            "cutout": {"bg": "transparent", "shadow": True},
        }
        for name, settings in runs.items():
            options = Options(input=ROOT / "input", output=out / name, quiet=True, **settings)
            run_batch(options.validated(), progress=False)
        rows = []
        for photo in sorted((ROOT / "input").glob("*.jpg")):
            tiles = [_tile(Image.open(photo))]
            tiles += [_tile(Image.open(out / name / f"{photo.stem}.png")) for name in runs]
            width = sum(t.width for t in tiles) + 8 * (len(tiles) - 1)
            row = Image.new("RGB", (width, SIDE), "white")
            x = 0
            for tile in tiles:
                row.paste(tile, (x, 0))
                x += tile.width + 8
            rows.append(row)
        sheet = Image.new("RGB", (max(r.width for r in rows), (SIDE + 8) * len(rows)), "white")
        for k, row in enumerate(rows):
            sheet.paste(row, (0, k * (SIDE + 8)))
        sheet.save(ROOT / "docs" / "shop_sheet.jpg", quality=88)
        print(ROOT / "docs" / "shop_sheet.jpg")


if __name__ == "__main__":
    main()
