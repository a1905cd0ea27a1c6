"""``review OUTPUT_DIR``: the review page that corrects, as its users meet it — the JSON API
through a real HTTP client (in-process and on a loopback port), hostile requests, and the
editor driven with a real mouse and keyboard in headless Chromium."""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from operations.jobs import corrections
from tests.helpers import ROOT, SAMPLES, cli

pytest.importorskip("fastapi", reason="the service extra (FastAPI) is not installed")
pytest.importorskip("httpx", reason="httpx (one of the tests' tools) is not installed")

HOST = "127.0.0.1:8000"
TOKEN = "test-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
JSON = {"Content-Type": "application/json"}
REMOVE = {"strokes": [{"kind": "remove", "radius": 30, "points": [[40, 300], [120, 380]]}]}


@pytest.fixture
def run_folder(tmp_path: Path, capsys) -> Path:
    """A run with --report over two sample photos (reduced) and one whose name is hostile."""
    photos = tmp_path / "photos"
    photos.mkdir()
    for source in sorted(SAMPLES.glob("*.jpg")):
        Image.open(source).resize((384, 384)).save(photos / source.name, quality=92)
    shutil.copy(photos / "astronaut.jpg", photos / "<img src=x onerror=alert(1)>.jpg")
    out = tmp_path / "out"
    code, err = cli(capsys, "-i", photos, "-o", out, "-b", "white", "--report", "--save-mask", "-q")
    assert code == 0, err
    return out


@pytest.fixture
def client(run_folder: Path):
    from fastapi.testclient import TestClient

    from operations.review.server import create_app
    from operations.review.session import ReviewSession

    session = ReviewSession(run_folder)
    app = create_app(session, TOKEN)
    with TestClient(app, base_url=f"http://{HOST}", headers=AUTH) as test_client:
        yield test_client
    session.close()


def test_the_results_are_listed_doubtful_first_with_their_names_escaped(client) -> None:
    listing = client.get("/api/results").json()
    assert {item["name"] for item in listing} == {
        "astronaut.png",
        "grace_hopper.png",
        "<img src=x onerror=alert(1)>.png",
    }
    doubts = [item["doubt"] for item in listing]
    assert doubts == sorted(doubts, reverse=True)
    assert all(not item["corrected"] and item["revision"] == 0 for item in listing)
    page = client.get("/").text
    assert "<img src=x onerror" not in page and "&lt;img src=x onerror=alert(1)&gt;" in page
    assert page.count('class="fix"') == 3
    editor = client.get("/fix/%3Cimg%20src%3Dx%20onerror%3Dalert(1)%3E.png").text
    assert "<img src=x" not in editor.split("<script>")[0]  # the title is escaped text
    one = client.get("/api/results/astronaut.png").json()
    assert (one["width"], one["height"]) == (384, 384)
    assert client.get(one["photo"]).headers["content-type"] == "image/jpeg"
    schema = client.get("/openapi.json").json()
    body = schema["components"]["schemas"]["FixBody"]["properties"]
    assert {"strokes", "mode", "threshold", "grow", "feather", "matting"} <= set(body)


def test_a_preview_shows_the_fix_and_writes_nothing(client, run_folder: Path) -> None:
    before = (run_folder / "astronaut.png").read_bytes()
    plain = client.post("/api/results/astronaut.png/preview?view=mask", json={})
    fixed = client.post("/api/results/astronaut.png/preview?view=mask", json=REMOVE)
    assert plain.status_code == fixed.status_code == 200
    plain_alpha = np.asarray(Image.open(io.BytesIO(plain.content)))
    fixed_alpha = np.asarray(Image.open(io.BytesIO(fixed.content)))
    assert plain_alpha[340, 80] > 200 and fixed_alpha[340, 80] == 0  # the suit, removed
    assert (run_folder / "astronaut.png").read_bytes() == before
    assert not (run_folder / ".backgroundswap").exists()


def test_accept_rewrites_the_result_and_a_rerun_reproduces_it(
    client, run_folder: Path, capsys
) -> None:
    answer = client.post("/api/results/astronaut.png/accept", json=REMOVE)
    assert answer.status_code == 200, answer.text
    assert answer.json()["corrected"] and answer.json()["revision"] == 1
    mask = np.asarray(Image.open(run_folder / "astronaut.mask.png"))
    assert mask[340, 80] == 0 and mask[150, 190] == 255  # the stroke's place; the face kept
    saved = corrections.load(run_folder, run_folder / "astronaut.png")
    assert saved is not None and len(saved.fix.strokes) == 1
    listing = {item["name"]: item for item in client.get("/api/results").json()}
    assert listing["astronaut.png"]["corrected"] and not listing["grace_hopper.png"]["corrected"]
    results = json.loads((run_folder / "report_files" / "results.json").read_text())
    row = next(r for r in results["files"] if r["output"].endswith("astronaut.png"))
    assert row["extra"]["corrected"]["revision"] == 1
    assert "corrected (revision 1)" in (run_folder / "report.html").read_text()
    # A rerun of the folder, --overwrite too, solves the photo again with the correction.
    accepted = mask.copy()
    photos = Path(results["options"]["input"])
    args = ["-i", photos, "-o", run_folder, "-b", "white", "--save-mask", "--overwrite", "-q"]
    assert cli(capsys, *args)[0] == 0
    again = np.asarray(Image.open(run_folder / "astronaut.mask.png"))
    assert np.abs(again.astype(int) - accepted).max() <= 1


def test_hostile_requests_are_refused(client) -> None:
    url = "/api/results/astronaut.png/accept"
    # Another user of the machine, or a script without the token: nothing read, nothing written.
    assert client.get("/api/results", headers={"Authorization": "Bearer nope"}).status_code == 401
    stranger = client.post(url, json={}, headers={"Authorization": ""})
    assert stranger.status_code == 401
    page = client.get("/")
    assert page.headers["x-frame-options"] == "DENY"  # never framed: no click through it
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
    other_port = client.post(url, json={}, headers={"Sec-Fetch-Site": "same-site"})
    assert other_port.status_code == 403  # a page on another port of 127.0.0.1
    assert client.post(url, json={}, headers={"Host": "attacker.example:8000"}).status_code == 403
    assert client.get("/api/results", headers={"Host": "rebound.example"}).status_code == 403
    cross = client.post(url, json={}, headers={"Origin": "http://attacker.example"})
    assert cross.status_code == 403
    assert client.post(url, json={}, headers={"Sec-Fetch-Site": "cross-site"}).status_code == 403
    form = client.post(url, data={"strokes": "[]"})  # what a plain HTML form can send
    assert form.status_code == 415
    text = client.post(url, content="{}", headers={"Content-Type": "text/plain"})
    assert text.status_code == 415
    for name in ("..%2F..%2Fetc%2Fpasswd", "%2Fetc%2Fpasswd", "nothing.png", "report.html"):
        answer = client.post(f"/api/results/{name}/preview", json={})
        assert answer.status_code == 404, name
    assert client.get("/files/0123456789abcdef").status_code == 404
    bad = client.post(url, json={"strokes": [{"kind": "paint", "radius": 3, "points": [[1, 1]]}]})
    assert bad.status_code == 422
    for body in ('{"feather": NaN}', '{"strokes": [{"kind": "keep", "radius": 3, "points": '
                 '[[NaN, 1]]}]}', '{"threshold": Infinity}', '{"evil": 1}'):  # fmt: skip
        answer = client.post(url, content=body, headers=JSON)
        assert answer.status_code == 422 and len(answer.content) < 300, body  # said, not echoed
    big = client.post(url, content=b"[" + b"1," * (3 * 2**20) + b"1]", headers=JSON)
    assert big.status_code == 413
    assert client.post(url, json={"mode": "nonesuch"}).status_code == 400


def test_strokes_outside_the_photo_are_clipped(client) -> None:
    far = {"strokes": [{"kind": "keep", "radius": 10, "points": [[-500, -500], [10_000, 20]]}]}
    answer = client.post("/api/results/astronaut.png/accept", json=far)
    assert answer.status_code == 200, answer.text


def test_a_second_browser_is_told_and_a_changed_photo_is_not_overwritten(
    client, run_folder: Path
) -> None:
    url = "/api/results/grace_hopper.png/accept"
    assert client.post(url, json={**REMOVE, "revision": 0}).status_code == 200
    late = client.post(url, json={**REMOVE, "revision": 0})  # its page started before that one
    assert late.status_code == 409 and "corrected meanwhile" in late.json()["error"]
    results = json.loads((run_folder / "report_files" / "results.json").read_text())
    photo = Path(results["options"]["input"]) / "astronaut.jpg"
    before = (run_folder / "astronaut.png").read_bytes()
    later = time.time() + 5
    Image.open(photo).rotate(90).save(photo, quality=92)
    os.utime(photo, (later, later))
    changed = client.post("/api/results/astronaut.png/accept", json=REMOVE)
    assert changed.status_code == 409 and "changed after its result was made" in changed.text
    assert (run_folder / "astronaut.png").read_bytes() == before


def test_a_folder_without_review_data_says_how_to_make_it(tmp_path: Path, capsys) -> None:
    code, err = cli(capsys, "review", tmp_path)
    assert code == 2 and "holds no review data" in err and "--report" in err
    code, err = cli(capsys, "review", tmp_path, "--host", "0.0.0.0")
    assert code == 2 and "--host '0.0.0.0'" in err and "loopback only" in err


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def server(run_folder: Path):
    """The real ``review`` process on a loopback port."""
    port = _free_port()
    command = [sys.executable, str(ROOT / "run.py"), "review", str(run_folder), "--port", str(port)]
    environment = {**os.environ, "BACKGROUNDSWAP_REVIEW_TOKEN": TOKEN}
    process = subprocess.Popen(command, cwd=ROOT, stderr=subprocess.PIPE, text=True,
                               env=environment)  # fmt: skip
    import httpx

    url = f"http://127.0.0.1:{port}"
    assert process.stderr is not None
    said = process.stderr.readline()  # the URL to open, with its token
    assert f"{url}/?token={TOKEN}" in said, said
    for _ in range(100):
        try:
            if httpx.get(url + "/api/results", headers=AUTH, timeout=2).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.2)
    else:
        process.kill()
        pytest.fail(f"the review server did not start: {process.stderr.read()}")
    yield url
    process.terminate()
    process.wait(timeout=20)


def test_the_real_server_answers_a_real_client_and_refuses_a_rebound_host(server: str) -> None:
    import httpx

    assert httpx.get(server + "/api/results", headers=AUTH).status_code == 200
    assert httpx.get(server + "/api/results").status_code == 401  # no token: nothing
    headers = {**AUTH, "Host": "attacker.example"}
    assert httpx.get(server + "/api/results", headers=headers).status_code == 403


def test_the_editor_fixes_a_result_with_the_mouse(server: str, run_folder: Path, tmp_path) -> None:
    """Paint a remove stroke across the suit with the mouse, press `a`, and find the result
    rewritten on disk (a screenshot of the editor is kept under the test's folder)."""
    playwright = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
    browser_path = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser_path is None:
        pytest.skip("no chromium on this machine (apt install chromium)")
    before = np.asarray(Image.open(run_folder / "astronaut.mask.png"))
    assert before[340, 80] > 200
    with playwright.sync_playwright() as driver:
        browser = driver.chromium.launch(executable_path=browser_path, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1000, "height": 800})
        page.goto(f"{server}/?token={TOKEN}")  # the printed URL: its token becomes a cookie
        assert "token" not in page.url
        page.click("a.fix >> nth=0")  # the page's Fix, as a user would
        page.goto(server + "/fix/astronaut.png")
        page.wait_for_function(
            "document.getElementById('status').textContent.startsWith('preview in')"
        )
        box = page.locator("#view").bounding_box()
        scale = min(box["width"] / 384, box["height"] / 384)
        left = box["x"] + (box["width"] - 384 * scale) / 2
        top = box["y"] + (box["height"] - 384 * scale) / 2
        page.click("#remove")
        page.fill("#size", "60")
        page.mouse.move(left + 40 * scale, top + 300 * scale)
        page.mouse.down()
        for step in range(1, 11):
            page.mouse.move(left + (40 + 8 * step) * scale, top + (300 + 8 * step) * scale)
        page.mouse.up()
        page.wait_for_function(
            "document.getElementById('status').textContent.includes('1 strokes')"
        )
        page.keyboard.press("a")
        page.wait_for_function(
            "document.getElementById('status').textContent.startsWith('accepted')"
        )
        page.screenshot(path=str(tmp_path / "editor.png"))
        browser.close()
    after = np.asarray(Image.open(run_folder / "astronaut.mask.png"))
    assert after[340, 80] == 0 and after[150, 190] == 255
    saved = corrections.load(run_folder, run_folder / "astronaut.png")
    assert saved is not None and saved.fix.strokes[0].kind == "remove"


def test_a_run_made_with_relative_paths_is_reviewed_from_anywhere(
    tmp_path: Path, capsys, monkeypatch: pytest.MonkeyPatch
) -> None:
    from operations.review.session import ReviewSession

    (tmp_path / "photos").mkdir()
    Image.open(SAMPLES / "grace_hopper.jpg").resize((200, 240)).save(tmp_path / "photos" / "g.jpg")
    Image.new("RGB", (50, 50), (10, 120, 40)).save(tmp_path / "bg.png")
    monkeypatch.chdir(tmp_path)
    assert cli(capsys, "-i", "photos", "-o", "out", "-b", "bg.png", "--report", "-q")[0] == 0
    monkeypatch.chdir(ROOT)
    session = ReviewSession(tmp_path / "out")
    try:
        assert Path(session.options.bg) == tmp_path / "bg.png"
        png = session.preview("g.png", {})
        corner = np.asarray(Image.open(io.BytesIO(png)))[2, 2]
        assert tuple(corner) == (10, 120, 40)  # the run's own background, found
        from fastapi.testclient import TestClient

        from operations.review.server import create_app

        app = create_app(session, TOKEN)
        with TestClient(app, base_url=f"http://{HOST}", headers=AUTH) as client:
            page = client.get("/").text
            links = re.findall(r'(?:href|data-src)="(/files/[0-9a-f]+)"', page)
            assert len(links) == 5  # the input, the result, and three thumbnails
            assert all(client.get(link).status_code == 200 for link in links)
    finally:
        session.close()


def test_a_later_run_of_the_folder_is_what_a_fix_redoes(client, run_folder: Path, capsys) -> None:
    results = json.loads((run_folder / "report_files" / "results.json").read_text())
    photos = Path(results["options"]["input"])
    args = ["-i", photos, "-o", run_folder, "-b", "black", "--report", "--save-mask", "-q"]
    assert cli(capsys, *args, "--overwrite")[0] == 0  # while the server runs
    assert client.post("/api/results/astronaut.png/accept", json=REMOVE).status_code == 200
    corner = Image.open(run_folder / "astronaut.png").convert("RGB").getpixel((2, 2))
    assert corner == (0, 0, 0)  # the later run's background, not the one the server began with
    again = json.loads((run_folder / "report_files" / "results.json").read_text())
    assert again["options"]["bg"] == "black"


def test_a_result_named_like_the_pages_placeholders_is_only_text(tmp_path: Path, capsys) -> None:
    from fastapi.testclient import TestClient

    from operations.review.server import create_app
    from operations.review.session import ReviewSession

    (tmp_path / "in").mkdir()
    Image.open(SAMPLES / "astronaut.jpg").resize((64, 64)).save(tmp_path / "in" / "__TITLE__.jpg")
    Image.open(SAMPLES / "astronaut.jpg").resize((64, 64)).save(tmp_path / "in" / "__DATA__.jpg")
    assert cli(capsys, "-i", tmp_path / "in", "-o", tmp_path / "out", "-b", "white", "--report",
               "-q")[0] == 0  # fmt: skip
    session = ReviewSession(tmp_path / "out")
    with TestClient(create_app(session, TOKEN), base_url=f"http://{HOST}", headers=AUTH) as c:
        for name in ("__TITLE__.png", "__DATA__.png"):
            page = c.get(f"/fix/{name}").text
            data = json.loads(page.split("const DATA=")[1].split(";const NAME")[0])
            assert data["name"] == name and sorted(data["order"]) == ["__DATA__.png",
                                                                      "__TITLE__.png"]  # fmt: skip
    session.close()
