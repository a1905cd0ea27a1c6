"""The review page at 5,000 results: thumbnails as side files (what ``--report`` writes) against
thumbnails inlined in the page as data URIs, opened in headless Chromium.

Run by hand (never in CI): ``python benchmarks/bench_report.py [--count 5000] [--chromium PATH]``
(Chromium from the Debian packages: ``apt-get install chromium``).

The rows are made up (statuses, doubt scores and flags drawn with a fixed seed); the thumbnails
are real, cut from the sample photos at varied crops so no two files are alike. For each page:
its size, the time to make it, and, in Chromium, the time to the ``DOMContentLoaded`` and
``load`` events and to the first contentful paint, read from the page's own Performance API
(best of ``--repeat``). A screenshot of each is written beside the pages (``--keep DIR``).
"""

from __future__ import annotations

import argparse
import base64
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from operations.jobs.report import FLAG_NAMES, Thumbnails, render, write_thumbnails  # noqa: E402

PROBE = (  # the page's own timings, put in its title for --dump-dom to read
    "<script>addEventListener('load',()=>{const n=performance.getEntriesByType('navigation')[0],"
    "p=performance.getEntriesByName('first-contentful-paint')[0];document.title='T '+"
    "n.domContentLoadedEventEnd.toFixed(0)+' '+performance.now().toFixed(0)+' '+"
    "(p?p.startTime.toFixed(0):'-')})</script></body>"
)


def make_run(folder: Path, count: int, seed: int = 0) -> tuple[list[dict], Path]:
    """``count`` rows with real thumbnails (and tiny stand-in full-size files)."""
    rng = np.random.default_rng(seed)
    samples = [np.asarray(Image.open(p).convert("RGB")) for p in sorted((ROOT / "input").glob("*"))]
    out = folder / "out"
    page = out / "report.html"
    rows = []
    for i in range(count):
        photo = samples[i % len(samples)]
        h, w = photo.shape[:2]
        top, left = rng.integers(0, h // 4), rng.integers(0, w // 4)
        crop = photo[top : top + h // 2 + rng.integers(0, h // 4), left : left + w // 2 + 40]
        alpha = (crop.mean(axis=2) > 100).astype(np.float32)
        status = rng.choice(["ok", "skipped", "failed"], p=[0.79, 0.2, 0.01])
        source, output = folder / "in" / f"photo_{i:05d}.jpg", out / f"photo_{i:05d}.png"
        row = {
            "input": str(source),
            "output": str(output),
            "status": str(status),
            "seconds": float(rng.random()),
            "warnings": [],
            "error": None,
            "doubt": None,
            "flags": [],
        }
        if status == "failed":
            row.update(output=None, error="not an image (Pillow cannot identify the format)")
        else:
            write_thumbnails(Thumbnails.for_output(page, out, output), crop, crop[:, ::-1], alpha)
            row["doubt"] = round(float(rng.random() ** 4), 4)
            if row["doubt"] > 0.35:
                row["flags"] = [str(rng.choice(list(FLAG_NAMES)))]
        rows.append(row)
    return rows, page


def inline(html: str, page: Path) -> str:
    """The same page with every thumbnail inlined as a data URI."""

    def data(match: re.Match) -> str:
        raw = (page.parent / match.group(1)).read_bytes()
        return f'src="data:image/jpeg;base64,{base64.b64encode(raw).decode()}"'

    return re.sub(r'data-src="(report_files/[^"]+)"', data, html)


def load_times(chromium: str, page: Path, shot: Path) -> tuple[int, int, str]:
    """(DOMContentLoaded ms, load ms, first paint) in headless Chromium; a screenshot too."""
    probe = page.with_name(page.stem + ".probe.html")
    probe.write_text(page.read_text(encoding="utf-8").replace("</body>", PROBE, 1), "utf-8")
    flags = [
        chromium,
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--hide-scrollbars",
        "--window-size=1400,1000",
    ]
    dom = subprocess.run(
        [*flags, "--dump-dom", probe.as_uri()], capture_output=True, text=True, timeout=300
    ).stdout
    subprocess.run(
        [*flags, f"--screenshot={shot}", page.as_uri()], capture_output=True, timeout=300
    )
    found = re.search(r"<title>T (\d+) (\d+) (\S+)</title>", dom)
    if not found:
        raise RuntimeError("the page did not report its timings")
    return int(found.group(1)), int(found.group(2)), found.group(3)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=5000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--chromium", default=shutil.which("chromium") or "chromium")
    parser.add_argument("--keep", type=Path, help="keep the pages and screenshots here")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = args.keep or Path(tmp)
        start = time.perf_counter()
        rows, page = make_run(folder, args.count)
        made = time.perf_counter() - start
        start = time.perf_counter()
        html = render(rows, page, page.parent, folder / "in")
        page.write_text(html, encoding="utf-8")
        rendered = time.perf_counter() - start
        inlined = page.with_name("report_inline.html")
        inlined.write_text(inline(html, page), encoding="utf-8")
        thumbs = sum(p.stat().st_size for p in (page.parent / "report_files").rglob("*.jpg"))
        print(
            f"{args.count} results; thumbnails made in {made:.1f} s "
            f"({made / args.count * 1000:.2f} ms each, 3 per result); page rendered in "
            f"{rendered * 1000:.0f} ms"
        )
        for name, path in (("side files (--report)", page), ("inlined data URIs", inlined)):
            timings = [
                load_times(args.chromium, path, folder / f"{path.stem}.png")
                for _ in range(args.repeat)
            ]
            best = min(timings, key=lambda t: t[1])
            size = path.stat().st_size + (thumbs if path == page else 0)
            print(
                f"  {name:22s} page {path.stat().st_size / 1e6:6.1f} MB (with thumbnails "
                f"{size / 1e6:6.1f} MB)  DOMContentLoaded {best[0]:5d} ms  load {best[1]:5d} ms"
                f"  first paint {best[2]} ms"
            )


if __name__ == "__main__":
    main()
