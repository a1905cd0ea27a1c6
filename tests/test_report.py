"""The review page: every file of a run listed with working links, doubtful results first,
resumed runs and engines alike, and the page rebuilt later from the results."""

from __future__ import annotations

import json
import os
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote_to_bytes

from PIL import Image

from operations.jobs.report import ASSETS_SUFFIX, Thumbnails, merge_earlier, sort_key
from tests.helpers import SAMPLES, bad_cases, cli, make_clip


class _Page(HTMLParser):
    """The cards of a page, in order: status, flags, and every link and image source."""

    def __init__(self) -> None:
        super().__init__()
        self.cards: list[dict] = []
        self.scripts = 0

    def handle_starttag(self, tag: str, attrs: list) -> None:
        attrs = dict(attrs)
        if tag == "article":
            self.cards.append(
                {
                    "status": attrs["data-status"],
                    "flags": attrs["data-flags"],
                    "doubt": attrs["data-doubt"],
                    "links": [],
                    "names": [],
                }
            )
        elif self.cards and tag in ("a", "img"):
            self.cards[-1]["links"].append(attrs.get("href") or attrs.get("data-src"))
        elif tag == "script":
            self.scripts += 1

    def handle_data(self, data: str) -> None:
        if self.cards and data.strip():
            self.cards[-1]["names"].append(data.strip())


def _parse(page: Path) -> _Page:
    parser = _Page()
    parser.feed(page.read_text(encoding="utf-8"))
    parser.close()
    return parser


def _target(page: Path, link: str) -> Path:
    return (page.parent / os.fsdecode(unquote_to_bytes(link))).resolve()


def test_the_page_lists_every_file_with_working_links_and_doubtful_ones_first(
    photo_dir: Path, tmp_path: Path, capsys
) -> None:
    bad = bad_cases(photo_dir)
    (photo_dir / "broken.jpg").write_bytes(b"not a photo")
    out = tmp_path / "out"
    code, err = cli(capsys, "-i", photo_dir, "-o", out, "--blur", "--save-mask", "--report")
    assert code == 1  # the broken file
    page = out / "report.html"
    assert f"review page: {page}" in err
    parsed = _parse(page)
    assert parsed.scripts == 1
    names = [card["names"][-2 if card["status"] == "failed" else -1] for card in parsed.cards]
    # Failed first, then the three bad cases (in any order), then the two good photos.
    assert parsed.cards[0]["status"] == "failed" and "broken.jpg" in parsed.cards[0]["names"]
    assert sorted(n for card in parsed.cards[1:4] for n in card["names"] if n in bad) == bad
    good = {n for card in parsed.cards[4:] for n in card["names"]}
    assert good >= {"astronaut.jpg", "grace_hopper.jpg"}
    assert len(parsed.cards) == 6 and len(names) == 6
    for card in parsed.cards[1:4]:
        assert card["flags"] and float(card["doubt"]) >= 0.35
    for card in parsed.cards[4:]:
        assert card["flags"] == "" and float(card["doubt"]) < 0.35
    for card in parsed.cards:  # every link and picture is there
        for link in card["links"]:
            assert _target(page, link).is_file(), link
    ok_links = parsed.cards[-1]["links"]
    assert len(ok_links) == 5  # input, its thumbnail, result, its thumbnail, the mask thumbnail
    results = json.loads((out / f"report{ASSETS_SUFFIX}" / "results.json").read_text())
    assert {Path(r["input"]).name for r in results["files"]} == {
        p.name for p in photo_dir.iterdir()
    }


def test_a_resumed_run_shows_skipped_files_with_their_earlier_results(
    photo_dir: Path, tmp_path: Path, capsys
) -> None:
    bad_cases(photo_dir)
    out = tmp_path / "out"
    assert cli(capsys, "-i", photo_dir, "-o", out, "--blur", "--report")[0] == 0
    before = _parse(out / "report.html").cards
    (out / "astronaut.png").unlink()  # one to redo; the rest are skipped
    code, err = cli(capsys, "-i", photo_dir, "-o", out, "--blur", "--report")
    assert code == 0 and "1 written, 4 skipped" in err
    after = _parse(out / "report.html").cards
    assert [(c["flags"], c["doubt"]) for c in after] == [(c["flags"], c["doubt"]) for c in before]
    assert [c["status"] for c in after].count("skipped") == 4
    assert sum("earlier run" in c["names"] for c in after) == 4


def test_thumbnails_are_deterministic(photo_dir: Path, tmp_path: Path, capsys) -> None:
    for name in ("a", "b"):
        assert cli(capsys, "-i", photo_dir, "-o", tmp_path / name, "--blur", "--report")[0] == 0
    thumbs = sorted((tmp_path / "a" / "report_files" / "thumbs").iterdir())
    assert len(thumbs) == 6
    for thumb in thumbs:
        other = tmp_path / "b" / "report_files" / "thumbs" / thumb.name
        assert thumb.read_bytes() == other.read_bytes()
        with Image.open(thumb) as image:
            assert max(image.size) == 200


def test_the_page_is_rebuilt_without_processing(photo_dir: Path, tmp_path: Path, capsys) -> None:
    bad_cases(photo_dir)
    out = tmp_path / "out"
    summary = tmp_path / "summary.json"
    code, _ = cli(capsys, "-i", photo_dir, "-o", out, "--blur", "--report", "--summary", summary)
    assert code == 0
    first = _parse(out / "report.html").cards
    (out / "report.html").unlink()
    stamp = (out / "astronaut.png").stat().st_mtime_ns
    code, err = cli(capsys, "report", out)
    assert code == 0 and "review page" in err
    assert [c["doubt"] for c in _parse(out / "report.html").cards] == [c["doubt"] for c in first]
    assert (out / "astronaut.png").stat().st_mtime_ns == stamp  # nothing processed again
    # From a --summary file of a run that made no thumbnails: they are made from the files.
    page = tmp_path / "elsewhere" / "review.html"
    page.parent.mkdir()
    code, _ = cli(capsys, "report", summary, "--report", page)
    assert code == 0
    cards = _parse(page).cards
    assert [c["doubt"] for c in cards] == [c["doubt"] for c in first]
    for card in cards:
        for link in card["links"]:
            assert _target(page, link).is_file(), link


def test_report_errors_are_one_line(tmp_path: Path, photo_dir: Path, capsys) -> None:
    code, err = cli(capsys, "report", tmp_path)
    assert code == 2 and err.count("\n") == 1 and "--summary JSON" in err
    (tmp_path / "x.json").write_text("{")
    code, err = cli(capsys, "report", tmp_path / "x.json")
    assert code == 2 and "is not a run's results" in err and err.count("\n") == 1
    code, err = cli(capsys, "-i", photo_dir, "-o", tmp_path / "o", "--blur", "--report", "r.txt")
    assert code == 2 and "--report 'r.txt': name an .html file" in err
    code, err = cli(
        capsys,
        "-i",
        photo_dir,
        "-o",
        tmp_path / "o",
        "--blur",
        "--report",
        tmp_path / "nowhere" / "r.html",
    )
    assert code == 2 and "does not exist" in err


def test_odd_names_link_exactly(tmp_path: Path, capsys) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    odd = os.fsdecode(b"caf\xe9 #1 & <b>.jpg")  # not UTF-8, and characters HTML and URLs mind
    (folder / odd).write_bytes((SAMPLES / "grace_hopper.jpg").read_bytes())
    out = tmp_path / "out"
    assert cli(capsys, "-i", folder, "-o", out, "--blur", "--report")[0] == 0
    page = out / "report.html"
    (card,) = _parse(page).cards
    assert "caf\\xe9 #1 & <b>.jpg" in card["names"]
    targets = [_target(page, link) for link in card["links"]]
    assert (folder / odd).resolve() in targets and all(t.is_file() for t in targets)


def test_without_report_a_line_says_how_many_look_doubtful(
    photo_dir: Path, tmp_path: Path, capsys
) -> None:
    bad_cases(photo_dir)
    code, err = cli(capsys, "-i", photo_dir, "-o", tmp_path / "out", "--blur")
    assert code == 0
    assert "3 results look doubtful (" in err and "--report makes a page" in err
    assert not (tmp_path / "out" / "report.html").exists()


def test_merge_and_order_rules() -> None:
    rows = [
        {"input": "a", "output": "A", "status": "skipped", "doubt": None},
        {"input": "b", "output": "B", "status": "ok", "doubt": 0.1},
        {"input": "c", "output": None, "status": "failed", "doubt": None},
    ]
    earlier = [
        {"input": "a", "output": "A", "status": "ok", "doubt": 0.9, "flags": ["x"]},
        {"input": "b", "output": "B", "status": "ok", "doubt": 0.5},
    ]
    merged = merge_earlier(rows, earlier)
    assert merged[0] == {
        "input": "a",
        "output": "A",
        "status": "skipped",
        "doubt": 0.9,
        "flags": ["x"],
        "earlier": True,
    }
    assert merged[1]["doubt"] == 0.1  # done now: its own result
    assert [r["input"] for r in sorted(merged, key=sort_key)] == ["c", "a", "b"]


def test_thumbnail_paths_mirror_the_outputs(tmp_path: Path) -> None:
    page = tmp_path / "out" / "report.html"
    thumbs = Thumbnails.for_output(page, tmp_path / "out", tmp_path / "out" / "a" / "b.png")
    assert thumbs.result == tmp_path / "out" / "report_files" / "thumbs" / "a" / "b.png.out.jpg"


def test_the_page_is_rebuilt_for_videos_too(tmp_path: Path, capsys) -> None:
    """From a --summary of a video run that made no thumbnails: each is a frame of the clip (the
    input, the result, the mask video), as a live --report run shows it."""
    source = tmp_path / "clips"
    source.mkdir()
    make_clip(source / "pan.mp4", frames=6, audio=False)
    out, summary = tmp_path / "out", tmp_path / "summary.json"
    code, err = cli(capsys, "-i", source, "-o", out, "--blur", "--save-mask", "--summary", summary)
    assert code == 0, err
    page = tmp_path / "review.html"
    code, err = cli(capsys, "report", summary, "--report", page)
    assert code == 0 and "no thumbnail" not in err, err
    (card,) = _parse(page).cards
    thumbs = [_target(page, link) for link in card["links"] if link.endswith(".jpg")]
    assert len(thumbs) == 3 and all(p.is_file() for p in thumbs), card["links"]
    for path in thumbs:
        assert Image.open(path).size[0] > 0
