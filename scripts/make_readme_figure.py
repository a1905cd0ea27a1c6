"""Make docs/before_after.jpg for the README: the samples before and after, made by the CLI.

    python scripts/make_readme_figure.py

Top row: the sample photos. Middle row: ``--bg background/hubble_deep_field.jpg``. Bottom row:
``--blur`` (portrait mode, no background image).
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import run  # noqa: E402

TILE = 300  # px, the height of each picture in the figure


def _tile(path: Path) -> Image.Image:
    with Image.open(path) as img:
        img = img.convert("RGB")
        return img.resize((round(img.width * TILE / img.height), TILE), Image.Resampling.LANCZOS)


def main() -> None:
    inputs = sorted((ROOT / "input").glob("*.jpg"))
    with tempfile.TemporaryDirectory() as tmp:
        swapped, portrait = Path(tmp) / "swapped", Path(tmp) / "portrait"
        bg = ROOT / "background" / "hubble_deep_field.jpg"
        for args in (["--bg", str(bg)], ["--blur", "--blur-strength", "2"]):
            out = swapped if "--bg" in args else portrait
            code = run.main(["-i", str(ROOT / "input"), "-o", str(out), "--quiet", *args])
            if code != 0:
                raise SystemExit(f"the CLI failed with exit code {code}")
        rows = [
            [_tile(p) for p in inputs],
            [_tile(swapped / f"{p.stem}.png") for p in inputs],
            [_tile(portrait / f"{p.stem}.png") for p in inputs],
        ]
    gap = 6
    width = max(sum(t.width for t in row) + gap * (len(row) - 1) for row in rows)
    figure = Image.new("RGB", (width, len(rows) * TILE + gap * (len(rows) - 1)), "white")
    for r, row in enumerate(rows):
        x = 0
        for tile in row:
            figure.paste(tile, (x, r * (TILE + gap)))
            x += tile.width + gap
    target = ROOT / "docs" / "before_after.jpg"
    figure.save(target, quality=88)
    print(f"wrote {target.relative_to(ROOT)} ({figure.width}×{figure.height})")


if __name__ == "__main__":
    main()
