"""The review page: every result as a thumbnail beside its input, the doubtful ones first.

``--report`` writes one HTML file (inline CSS and script, nothing fetched) and, beside it, a
folder ``NAME_files/`` with small JPEG thumbnails and the run's results (``results.json``, the
``--summary`` format). Thumbnails are files rather than data inlined in the page: at 5,000
results inlined thumbnails make a page of ~150 MB that the browser must parse before it shows
anything, while files load as they scroll into view (``benchmarks/bench_report.py`` measures
both). The workers write a job's thumbnails while its images are still in memory; a
page rebuilt later (``backgroundswap report``) makes any that are missing from the files.

Order: failed files, then by doubt score (:mod:`operations.doubt`), highest first, then by name.
A rerun that skips finished files shows them with the results recorded by the run that made
them.
"""

from __future__ import annotations

import functools
import html
import json
import logging
import os
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from urllib.parse import quote, unquote_to_bytes

import numpy as np

from operations.errors import BackgroundSwapError, setting
from operations.media.encode import EncodeSettings, encode
from operations.media.files import (
    MASK_SUFFIX,
    VIDEO_MASK_SUFFIX,
    WRITABLE,
    ImageError,
    is_video,
    printable,
    write_atomic,
)
from operations.media.resize import shrink

log = logging.getLogger("backgroundswap")

PAGE_NAME = "report.html"  # the default page, in the output folder
ASSETS_SUFFIX = "_files"  # report.html → report_files/ (the browsers' own "save page" naming)
RESULTS_NAME = "results.json"
THUMB_SIDE = 200  # px, long side; the page shows them at up to this size
THUMB_QUALITY = 80
FLAG_NAMES = {
    "no-subject": "no subject found",
    "uncertain-mask": "uncertain mask",
    "cut-by-frame": "cut by the frame",
    "tiny-subject": "tiny subject",
    "fills-frame": "fills the frame",
    "several-parts": "several parts",
}


class ReportError(BackgroundSwapError, ValueError):
    """A page cannot be built: the results it needs are missing or unreadable."""


def assets_folder(page: Path) -> Path:
    """The page's side folder: thumbnails and ``results.json``."""
    return page.with_name(page.stem + ASSETS_SUFFIX)


@dataclass(frozen=True)
class Thumbnails:
    """Where one result's three thumbnails go: ``NAME_files/thumbs/<output's path>.in.jpg``…"""

    input: Path
    result: Path
    mask: Path

    @classmethod
    def for_output(cls, page: Path, output_folder: Path, output: Path) -> Thumbnails:
        try:
            relative = Path(output).relative_to(output_folder)
        except ValueError:
            relative = Path(Path(output).name)
        base = assets_folder(page) / "thumbs" / relative
        return cls(*(base.with_name(f"{base.name}.{kind}.jpg") for kind in ("in", "out", "mask")))


def thumbnail(image: np.ndarray, side: int = THUMB_SIDE) -> np.ndarray:
    """Reduce an image (never enlarge it) so that its long side is at most ``side``."""
    height, width = image.shape[:2]
    scale = min(1.0, side / max(height, width))
    if scale == 1.0:
        return image
    return shrink(image, max(1, round(width * scale)), max(1, round(height * scale)))


def write_thumbnails(
    thumbs: Thumbnails, photo: np.ndarray, result: np.ndarray, alpha: np.ndarray | None
) -> None:
    """Write a result's thumbnails (atomically, like every output)."""
    settings = EncodeSettings(quality=THUMB_QUALITY)
    thumbs.input.parent.mkdir(parents=True, exist_ok=True)
    encode(thumbnail(photo), thumbs.input, settings=settings)
    encode(thumbnail(_on_checks(result)), thumbs.result, settings=settings)
    if alpha is not None:
        small = thumbnail(alpha)
        encode(
            np.clip(small * 255.0 + 0.5, 0, 255).astype(np.uint8), thumbs.mask, settings=settings
        )


def _on_checks(image: np.ndarray, square: int = 8) -> np.ndarray:
    """An RGBA result over a light checkerboard (a JPEG thumbnail holds no transparency)."""
    if image.ndim != 3 or image.shape[2] != 4:
        return image
    height, width = image.shape[:2]
    rows, cols = np.indices((height, width))
    checks = np.where(((rows // square + cols // square) % 2 == 0)[..., None], 250.0, 205.0)
    alpha = image[..., 3:].astype(np.float32) / 255.0
    mixed = image[..., :3] * alpha + checks * (1.0 - alpha)
    return np.clip(mixed + 0.5, 0, 255).astype(np.uint8)


def _picture(path: Path) -> np.ndarray:
    """A file's picture for a thumbnail: a photo, or a video's first frame that decodes (as
    the live run's thumbnails show it)."""
    if not is_video(path):
        from operations.media.decode import decode

        decoded = decode(path)
        if decoded.alpha is None:
            return decoded.rgb
        return np.dstack([decoded.rgb, np.clip(decoded.alpha * 255.0 + 0.5, 0, 255)]).astype(
            np.uint8
        )
    from operations.media.video import VideoReader

    with VideoReader(path) as reader:
        for frame in reader.frames():
            if frame.rgb is not None:
                return frame.rgb
    raise ImageError("no frame of the video decodes")


def _thumbnails_from_files(row: dict, thumbs: Thumbnails) -> None:
    """A result's thumbnails made from its files (a page rebuilt for a run that made none); a
    file that cannot give one is a warning, and its card shows no picture."""
    settings = EncodeSettings(quality=THUMB_QUALITY)
    thumbs.input.parent.mkdir(parents=True, exist_ok=True)
    output = _given(row, "output")
    pairs = [(_given(row, "input"), thumbs.input), (output, thumbs.result)]
    if is_video(output):
        mask = output.with_name(output.stem + VIDEO_MASK_SUFFIX + output.suffix)
        if not mask.is_file():  # --video-format png: a folder of frames, its first one
            mask = output.with_name(output.stem + VIDEO_MASK_SUFFIX) / "000001.png"
    else:
        mask = output.with_name(output.stem + MASK_SUFFIX)
    if mask.is_file():
        pairs.append((mask, thumbs.mask))
    for source, target in pairs:
        if target.is_file():
            continue
        try:
            encode(thumbnail(_on_checks(_picture(source))), target, settings=settings)
        except (ImageError, OSError) as exc:
            log.warning("no thumbnail for %s: %s", printable(source), exc)


def row_path(row: dict, key: str) -> Path | None:
    """A summary row's path, exactly (``key_bytes`` keeps a name that is not UTF-8)."""
    if row.get(f"{key}_bytes"):
        return Path(os.fsdecode(unquote_to_bytes(row[f"{key}_bytes"])))
    return Path(row[key]) if row.get(key) else None


def _given(row: dict, key: str) -> Path:
    """A path the row has (every row's input; a processed one's output)."""
    path = row_path(row, key)
    if path is None:
        raise KeyError(f"a summary row without its {key}")
    return path


def merge_earlier(rows: list[dict], earlier: Iterable[dict]) -> list[dict]:
    """Rows of files this run skipped take the results recorded by the run that made them."""

    def key(row: dict) -> tuple:
        return row["input"], row.get("input_bytes")

    before = {key(row): row for row in earlier if row.get("status") in ("ok", "skipped")}
    merged = []
    for row in rows:
        old = before.get(key(row))
        if row["status"] == "skipped" and old is not None and old.get("output") == row["output"]:
            row = {**old, "status": "skipped", "earlier": True}
        merged.append(row)
    return merged


def sort_key(row: dict) -> tuple:
    """Failed first, then the most doubtful, then by name; unmeasured ones after measured ones."""
    doubt = row.get("doubt")
    return (row["status"] != "failed", -(doubt if doubt is not None else -1.0), row["input"])


def _href(target: Path | str, page: Path) -> str:
    """A relative link from the page to ``target``; any byte of its name is kept exactly."""
    relative = os.path.relpath(os.path.abspath(target), os.path.abspath(page.parent))
    return quote(os.fsencode(relative), safe="/")


Link = Callable[[Path], str]  # a file's address on the page


def _card(
    row: dict,
    index: int,
    page: Path,
    output_folder: Path,
    input_root: Path,
    link: Link,
    fix: Callable[[dict], str | None] | None = None,
) -> str:
    status = row["status"]
    doubt = row.get("doubt")
    flags = row.get("flags") or []
    source, output = _given(row, "input"), row_path(row, "output")
    try:
        name = printable(source.relative_to(input_root))
    except ValueError:
        name = printable(source)
    esc = html.escape
    if output is not None and status != "failed":
        thumbs = Thumbnails.for_output(page, output_folder, output)
        result, original = link(output), link(source)
        # data-src: the script loads a card's pictures as it nears the view (see _SCRIPT).
        mask = (
            f'<img class="mask" data-src="{link(thumbs.mask)}" alt="">'
            if thumbs.mask.is_file()
            else ""
        )
        pictures = (
            f'<a class="in" href="{original}"><img data-src="{link(thumbs.input)}" '
            f'alt="input"></a><a class="out" href="{result}">'
            f'<img class="res" data-src="{link(thumbs.result)}" alt="result">{mask}</a>'
        )
    else:
        pictures = f'<a class="in none" href="{link(source)}">not processed</a>'
    score = (
        (f'<span class="score" style="--d:{doubt:.3f}" title="doubt score">{doubt:.2f}</span>')
        if doubt is not None
        else ""
    )
    timed = status != "skipped" or row.get("earlier")
    seconds = f'<span class="secs">{row.get("seconds", 0):.2f} s</span>' if timed else ""
    earlier = ' <span class="earlier">earlier run</span>' if row.get("earlier") else ""
    notes = "".join(f"<li>{esc(FLAG_NAMES.get(f, f))}</li>" for f in flags)
    if isinstance(choice := (row.get("extra") or {}).get("segmenter"), dict):  # --mode auto's
        notes += f'<li class="model">model: {esc(choice["name"])} ({esc(choice["reason"])})</li>'
    notes += "".join(f'<li class="warn">{esc(w)}</li>' for w in row.get("warnings") or [])
    if row.get("error"):
        notes += f'<li class="err">{esc(row["error"])}</li>'
    if isinstance(corrected := (row.get("extra") or {}).get("corrected"), dict):
        notes += (
            f'<li class="fixed">corrected (revision {esc(str(corrected.get("revision")))})</li>'
        )
    editor = fix(row) if fix is not None else None
    action = f' <a class="fix" href="{esc(editor)}">Fix</a>' if editor else ""
    flagged = " ".join(flags)
    return (
        f'<article class="card {status}" id="r{index}" tabindex="-1" data-status="{status}" '
        f'data-flags="{esc(flagged)}" data-doubt="{doubt if doubt is not None else ""}">'
        f'<div class="pics">{pictures}</div>'
        f'<div class="meta"><span class="badge">{status}</span>{earlier}{score}{seconds}{action}'
        f'<div class="name" title="{esc(name)}">{esc(name)}</div>'
        f'<ul class="notes">{notes}</ul></div></article>'
    )


_STYLE = """
:root{color-scheme:light dark;--bg:#f6f6f4;--card:#fff;--ink:#222;--mute:#777;--line:#ddd}
@media (prefers-color-scheme:dark){:root{--bg:#1b1b1d;--card:#26262a;--ink:#eee;--mute:#999;--line:#3a3a3f}}
*{box-sizing:border-box}body{margin:0;font:14px/1.4 system-ui,sans-serif;background:var(--bg);color:var(--ink)}
header{position:sticky;top:0;z-index:2;background:var(--bg);border-bottom:1px solid var(--line);padding:10px 16px}
h1{font-size:17px;margin:0 0 6px}header p{margin:4px 0;color:var(--mute)}
.filters button{font:inherit;margin:2px 4px 2px 0;padding:3px 10px;border:1px solid var(--line);border-radius:14px;background:var(--card);color:var(--ink);cursor:pointer}
.filters button[aria-pressed=true]{background:#3568d4;color:#fff;border-color:#3568d4}
kbd{border:1px solid var(--line);border-radius:3px;padding:0 4px;font-size:12px}
main{display:grid;grid-template-columns:repeat(auto-fill,minmax(420px,1fr));gap:12px;padding:14px 16px}
.card{background:var(--card);border:1px solid var(--line);border-radius:8px;padding:8px;content-visibility:auto;contain-intrinsic-size:auto 300px;outline:none}
.card:focus{box-shadow:0 0 0 3px #3568d4}
.card.failed{border-color:#d33;align-self:start}.card[data-flags]:not([data-flags=""]){border-left:5px solid #e39a1c}
.pics{display:grid;grid-template-columns:1fr 1fr;gap:6px;height:200px}
.pics a{display:flex;align-items:center;justify-content:center;position:relative;background:repeating-conic-gradient(#8883 0 25%,#0000 0 50%) 0 0/16px 16px;border-radius:4px;overflow:hidden}
.pics img{max-width:100%;max-height:200px;display:block}
.pics .mask{position:absolute;inset:0;margin:auto;opacity:0}
.out:hover .mask,body.masks .mask{opacity:1}.out:hover .res,body.masks .res{opacity:0}
.failed .pics{height:auto}.pics .none{grid-column:1/3;color:var(--mute);padding:6px;background:none}
.meta{margin-top:6px}.badge{font-size:12px;padding:1px 7px;border-radius:9px;background:#2a9d55;color:#fff;margin-right:6px}
.failed .badge{background:#d33}.skipped .badge{background:#888}.earlier{font-size:12px;color:var(--mute)}
.score{margin-right:8px;padding:1px 6px;border-radius:9px;font-size:12px;background:color-mix(in srgb,#e33 calc(var(--d)*100%),#8883)}
.secs{color:var(--mute);font-size:12px}.name{font-weight:600;overflow:hidden;text-overflow:ellipsis;white-space:nowrap}
.notes{margin:4px 0 0;padding-left:18px;color:#b36b00}.notes .warn,.notes .model{color:var(--mute)}.notes .err{color:#d33}.notes .fixed{color:#2a9d55}
.fix{float:right;font-weight:600;padding:1px 10px;border-radius:9px;background:#3568d4;color:#fff;text-decoration:none}
"""  # noqa: E501 - the page's style sheet, one rule set a line

# Pictures load as their card nears the view: 5,000 cards hold 15,000 thumbnails, and even with
# loading="lazy" Chromium spends seconds on that many <img> before the page is ready
# (benchmarks/bench_report.py); one IntersectionObserver over the cards costs next to nothing.
_SCRIPT = """
const cards=[...document.querySelectorAll('.card')];let cur=null;
const loader=new IntersectionObserver(es=>{for(const e of es)if(e.isIntersecting){
 for(const i of e.target.querySelectorAll('img[data-src]')){i.src=i.dataset.src;i.removeAttribute('data-src');}
 loader.unobserve(e.target);}},{rootMargin:'1000px'});
for(const c of cards)loader.observe(c);
const match={all:c=>true,doubtful:c=>c.dataset.status=='failed'||c.dataset.flags!='',
 failed:c=>c.dataset.status=='failed',ok:c=>c.dataset.status=='ok',skipped:c=>c.dataset.status=='skipped'};
function show(name){const test=match[name]||(c=>c.dataset.flags.split(' ').includes(name));
 for(const c of cards)c.hidden=!test(c);
 for(const b of document.querySelectorAll('.filters button'))b.setAttribute('aria-pressed',b.dataset.f==name);
 history.replaceState(null,'','#'+name);}
function move(step){const seen=cards.filter(c=>!c.hidden);if(!seen.length)return;
 let i=seen.indexOf(cur);i=i<0?0:Math.min(seen.length-1,Math.max(0,i+step));
 cur=seen[i];cur.focus({preventScroll:true});cur.scrollIntoView({block:'nearest'});}
for(const b of document.querySelectorAll('.filters button'))b.onclick=()=>show(b.dataset.f);
document.addEventListener('focusin',e=>{const c=e.target.closest('.card');if(c)cur=c;});
document.addEventListener('keydown',e=>{if(e.ctrlKey||e.metaKey||e.altKey)return;
 const k=e.key;let a=null;
 if(k=='j'||k=='ArrowRight'||k=='ArrowDown')move(1);else if(k=='k'||k=='ArrowLeft'||k=='ArrowUp')move(-1);
 else if(k=='m')document.body.classList.toggle('masks');
 else if((k=='Enter'||k=='o')&&cur)a=cur.querySelector('.out')||cur.querySelector('.in');
 else if(k=='i'&&cur)a=cur.querySelector('.in');
 else if(k=='f'&&cur&&cur.querySelector('.fix'))location.href=cur.querySelector('.fix').href;
 else if(k>='1'&&k<='5')show(['all','doubtful','failed','ok','skipped'][k-1]);else return;
 e.preventDefault();if(a)window.open(a.href,'_blank');});
show(location.hash.slice(1)||'all');
"""  # noqa: E501 - the page's script


def render(
    rows: list[dict],
    page: Path,
    output_folder: Path,
    input_root: Path,
    *,
    link: Link | None = None,
    fix: Callable[[dict], str | None] | None = None,
) -> str:
    """The page's HTML for ``rows`` (summary rows), in review order; names are shown relative
    to ``input_root``.

    Args:
        link: a file's address (default: relative to the page, for the page as a file).
        fix: a result's editor's address, if it has one (the review server's page).
    """
    link = link if link is not None else functools.partial(_href, page=page)
    ordered = sorted(rows, key=sort_key)
    counts = {s: sum(r["status"] == s for r in rows) for s in ("ok", "skipped", "failed")}
    flagged = sum(bool(r.get("flags")) for r in rows)
    doubtful = sum(bool(r.get("flags")) or r["status"] == "failed" for r in rows)
    per_flag = {f: sum(f in (r.get("flags") or []) for r in rows) for f in FLAG_NAMES}
    buttons = [
        ("all", "all", len(rows)),
        ("doubtful", "doubtful", doubtful),
        ("failed", "failed", counts["failed"]),
        ("ok", "ok", counts["ok"]),
        ("skipped", "skipped", counts["skipped"]),
    ]
    buttons += [(f, FLAG_NAMES[f], n) for f, n in per_flag.items() if n]
    bar = "".join(
        f'<button data-f="{f}" aria-pressed="false">{html.escape(label)} ({n})</button>'
        for f, label, n in buttons
    )
    cards = "\n".join(
        _card(row, i, page, output_folder, input_root, link, fix) for i, row in enumerate(ordered)
    )
    heading = html.escape(f"BackgroundSwap review: {printable(output_folder)}")
    made = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    return (
        "<!doctype html>\n<html lang=en><head><meta charset=utf-8>"
        '<meta name=viewport content="width=device-width,initial-scale=1">'
        f"<title>{heading}</title><style>{_STYLE}</style></head><body>"
        f"<header><h1>{heading}</h1>"
        f"<p>{len(rows)} files: {counts['ok']} written, {counts['skipped']} skipped, "
        f"{counts['failed']} failed; {flagged} flagged as doubtful. Most doubtful first. "
        f"Made {made}.</p>"
        f'<p class="filters">{bar}</p>'
        "<p><kbd>j</kbd>/<kbd>k</kbd> or arrows: next/previous · <kbd>m</kbd>: masks · "
        "<kbd>o</kbd>/<kbd>Enter</kbd>: open the result · <kbd>i</kbd>: open the input · "
        "<kbd>1</kbd>–<kbd>5</kbd>: all, doubtful, failed, ok, skipped · "
        f"{'<kbd>f</kbd>: fix it · ' if fix is not None else ''}hover a result to see "
        "its mask</p></header>"
        f"<main>\n{cards}\n</main><script>{_SCRIPT}</script></body></html>\n"
    )


def write_page(
    report: dict, page: Path, output_folder: Path, *, workers: int = 4, earlier: bool = True
) -> Path:
    """Write the page (and ``results.json``) for a run's summary ``report``; make missing
    thumbnails from the files. With ``earlier``, skipped files take the results an earlier
    page recorded. Returns the page's path."""
    rows = report["files"]
    results = assets_folder(page) / RESULTS_NAME
    if earlier and results.is_file():
        try:
            rows = merge_earlier(rows, json.loads(results.read_bytes())["files"])
        except (OSError, ValueError, KeyError, TypeError) as exc:
            log.warning("could not read the earlier results %s: %s", printable(results), exc)
    missing = [
        (row, thumbs)
        for row in rows
        if row["status"] != "failed" and row.get("output")
        for thumbs in [Thumbnails.for_output(page, output_folder, _given(row, "output"))]
        if not (thumbs.input.is_file() and thumbs.result.is_file())
    ]
    if missing:
        with ThreadPoolExecutor(max(1, workers)) as pool:
            list(pool.map(lambda pair: _thumbnails_from_files(*pair), missing))
    input_root = Path(report.get("options", {}).get("input") or "")
    if not input_root.is_dir():
        input_root = input_root.parent
    text = render(rows, page, output_folder, input_root)
    data = {**report, "files": rows, "output_folder": str(output_folder)}
    assets_folder(page).mkdir(parents=True, exist_ok=True)
    encoded = json.dumps(data, indent=1, ensure_ascii=False).encode("utf-8", "backslashreplace")
    write_atomic(results, lambda f: f.write(encoded))
    write_atomic(page, lambda f: f.write(text.encode("utf-8", "backslashreplace")))
    return page


def rebuild(source: Path, page: Path | None = None, *, workers: int = 4) -> Path:
    """Rebuild a page from an earlier run without processing anything again.

    Args:
        source: an output folder holding ``report_files/results.json``, a page's
            ``results.json``, or a ``--summary`` JSON file.
        page: where to write the page (default: the output folder's ``report.html``).

    Raises:
        ReportError: no results to build from.
    """
    source = Path(source)
    if source.is_dir():
        results = assets_folder(source / PAGE_NAME) / RESULTS_NAME
        if not results.is_file():
            hint = (
                f"a run with {setting('report')} writes it; give a {setting('summary')} JSON "
                "file instead"
            )
            raise ReportError(f"{printable(source)} holds no {printable(results)} ({hint})")
        source = results
    try:
        report = json.loads(source.read_bytes())
        report["files"]
    except FileNotFoundError:
        raise ReportError(f"{printable(source)}: no such file") from None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ReportError(f"{printable(source)} is not a run's results: {exc}") from None
    output_folder = Path(report.get("output_folder") or _output_folder(report))
    page = page if page is not None else output_folder / PAGE_NAME
    return write_page(report, page, output_folder, workers=workers, earlier=False)


def _output_folder(report: dict) -> Path:
    output = Path(report.get("options", {}).get("output") or ".")
    # A one-photo run may have named a file (-o result.png): its folder holds the outputs.
    return output.parent if output.suffix.lower() in WRITABLE and not output.is_dir() else output
