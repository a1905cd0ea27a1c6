"""Make docs/harmonize_contact_sheet.jpg: the scene's light options, made by the CLI.

    python scripts/make_harmonize_sheet.py

Rows: a sample photo on a background (a warm sunset, a cold blue dusk, a pale studio wall:
synthetic gradients, so the change of light is plain to see). Columns: the input; the plain
composite; ``--harmonize``; ``--harmonize --light-wrap``; ``--harmonize --light-wrap --shadow``.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import run  # noqa: E402

TILE = 260  # px, the height of each picture
COLUMNS = {
    "input": None,
    "composite": [],
    "--harmonize": ["--harmonize"],
    "+ --light-wrap": ["--harmonize", "--light-wrap"],
    "+ --shadow": ["--harmonize", "--light-wrap", "--shadow"],
}


def _gradient(top: tuple[int, int, int], bottom: tuple[int, int, int], seed: int) -> np.ndarray:
    """A 600×800 vertical gradient with a little texture."""
    t = np.linspace(0, 1, 600)[:, None, None]
    image = (1 - t) * np.array(top) + t * np.array(bottom)
    noise = np.random.default_rng(seed).normal(0, 4, (600, 800, 1))
    return np.clip(image + noise + 0.5, 0, 255).astype(np.uint8)


def _tile(path: Path) -> Image.Image:
    with Image.open(path) as img:
        img = img.convert("RGB")
        return img.resize((round(img.width * TILE / img.height), TILE), Image.Resampling.LANCZOS)


def main() -> None:
    rows = [
        ("astronaut.jpg", "warm sunset", _gradient((250, 150, 60), (120, 50, 40), 1)),
        ("grace_hopper.jpg", "cold dusk", _gradient((40, 70, 140), (120, 160, 210), 2)),
        ("astronaut.jpg", "pale studio", _gradient((235, 232, 226), (205, 200, 192), 3)),
    ]
    with tempfile.TemporaryDirectory() as tmp:
        tiles = []
        for i, (photo, _, background) in enumerate(rows):
            bg = Path(tmp) / f"bg{i}.png"
            Image.fromarray(background).save(bg)
            row = []
            for j, args in enumerate(COLUMNS.values()):
                if args is None:
                    row.append(_tile(ROOT / "input" / photo))
                    continue
                out = Path(tmp) / f"{i}-{j}.png"
                code = run.main(
                    [
                        "-i",
                        str(ROOT / "input" / photo),
                        "-o",
                        str(out),
                        "-b",
                        str(bg),
                        "--quiet",
                        *args,
                    ]
                )
                if code != 0:
                    raise SystemExit(f"the CLI failed with exit code {code}")
                row.append(_tile(out))
            tiles.append(row)
    width = max(sum(t.width for t in row) for row in tiles) + 6 * len(COLUMNS)
    sheet = Image.new("RGB", (width, 28 + len(rows) * (TILE + 6)), "white")
    draw = ImageDraw.Draw(sheet)
    x = 0
    for label, tile in zip(COLUMNS, tiles[0], strict=True):
        draw.text((x + 6, 8), label, fill="black")
        x += tile.width + 6
    for r, row in enumerate(tiles):
        x = 0
        for tile in row:
            sheet.paste(tile, (x, 28 + r * (TILE + 6)))
            x += tile.width + 6
        draw.text((6, 28 + r * (TILE + 6) + TILE - 16), rows[r][1], fill="white")
    target = ROOT / "docs" / "harmonize_contact_sheet.jpg"
    sheet.save(target, quality=88)
    print(f"wrote {target}")


if __name__ == "__main__":
    main()
