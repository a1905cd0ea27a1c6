"""`backgroundswap serve`: remove.bg's API as its clients meet it. In-process through FastAPI's
TestClient for each parameter and error; then the real server process on a free loopback port,
talked to over HTTP with httpx: the CLI's own alpha, keys, a full queue, SIGTERM in flight."""

from __future__ import annotations

import base64
import io
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
import zipfile
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("fastapi", reason="the service extra is not installed")
pytest.importorskip("uvicorn", reason="the service extra is not installed")
httpx = pytest.importorskip("httpx", reason="the service extra is not installed")

from fastapi.testclient import TestClient  # noqa: E402

from operations.errors import SettingError  # noqa: E402
from operations.options import Options  # noqa: E402
from operations.service.server import Service, ServiceSettings, create_app  # noqa: E402
from tests.helpers import ROOT, SAMPLES, cli  # noqa: E402

PHOTO = SAMPLES / "astronaut.jpg"


@pytest.fixture(scope="module")
def client():
    recipe = Options().validated(batch=False).recipe()
    service = Service(recipe, ServiceSettings(api_keys=("k1", "second-key"), max_upload_mb=2))
    with TestClient(create_app(service)) as test_client:
        assert service.ready.wait(60), service.load_error
        yield test_client


def _post(client, files=None, data=None, key="k1", **kwargs):
    files = files if files is not None else {"image_file": PHOTO.read_bytes()}
    headers = {"X-Api-Key": key, **kwargs.pop("headers", {})}
    return client.post("/v1.0/removebg", files=files, data=data or {}, headers=headers, **kwargs)


def _error(response) -> dict:
    body = response.json()
    assert set(body) == {"errors"} and len(body["errors"]) == 1
    error = body["errors"][0]
    assert {"title", "code"} <= set(error)
    return error


def test_a_photo_comes_back_transparent_with_remove_bgs_headers(client) -> None:
    response = _post(client, data={"size": "full"})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "image/png"
    image = Image.open(io.BytesIO(response.content))
    assert image.mode == "RGBA" and image.size == Image.open(PHOTO).size
    alpha = np.asarray(image)[..., 3]
    assert alpha.min() == 0 and alpha.max() == 255  # a subject and a background
    h = response.headers
    assert (h["x-width"], h["x-height"]) == (str(image.width), str(image.height))
    assert h["x-credits-charged"] == "0" and h["x-type"] == "person"
    rows = np.flatnonzero((alpha > 12).any(axis=1))
    assert abs(int(h["x-foreground-top"]) - rows[0]) <= 1  # alpha > 0.05, here in 8 bits
    assert abs(int(h["x-foreground-height"]) - (rows[-1] - rows[0] + 1)) <= 2


def test_sizes_limit_the_pixels_as_remove_bg_does(client) -> None:
    for size, most in (("preview", 250_000), ("medium", 1_500_000)):
        big = Image.new("RGB", (1600, 1200), (90, 120, 200))
        buffer = io.BytesIO()
        big.save(buffer, "JPEG")
        response = _post(client, files={"image_file": buffer.getvalue()}, data={"size": size})
        width, height = int(response.headers["x-width"]), int(response.headers["x-height"])
        assert width * height <= most * 1.01 and abs(width / height - 4 / 3) < 0.01


def test_json_base64_zip_alpha_and_a_colour(client) -> None:
    photo = base64.b64encode(PHOTO.read_bytes()).decode()
    response = client.post(
        "/v1/removebg",
        json={"image_file_b64": photo, "size": "full", "bg_color": "ff0000", "format": "png"},
        headers={"Authorization": "Bearer second-key", "Accept": "application/json"},
    )
    assert response.status_code == 200, response.text
    data = response.json()["data"]
    result = np.asarray(Image.open(io.BytesIO(base64.b64decode(data["result_b64"]))))
    assert result.shape[2] == 3 and tuple(result[0, -1]) == (255, 0, 0)  # the corner: red
    assert data["foreground_width"] > 0 and data["foreground_height"] > 0

    archive = zipfile.ZipFile(io.BytesIO(_post(client, data={"format": "zip"}).content))
    assert sorted(archive.namelist()) == ["alpha.png", "color.jpg"]
    assert Image.open(archive.open("alpha.png")).mode == "L"

    alpha = _post(client, data={"channels": "alpha", "size": "full"})
    assert Image.open(io.BytesIO(alpha.content)).mode == "L"

    cropped = _post(client, data={"crop": "true", "crop_margin": "0", "size": "full"})
    image = Image.open(io.BytesIO(cropped.content))
    assert image.size == (int(cropped.headers["x-foreground-width"]), image.height)


@pytest.mark.parametrize(
    ("data", "status", "code", "words"),
    [
        ({"size": "huge"}, 400, "invalid_parameters", "size 'huge': choose from"),
        ({"format": "gif"}, 400, "invalid_parameters", "format 'gif'"),
        (
            {"image_url": "https://example.com/a.jpg"},
            400,
            "invalid_parameters",
            "fetches no URLs (see the server's --allow-fetch)",
        ),
        ({"scale": "50%"}, 400, "invalid_parameters", "only original"),
        ({"bg_color": "nocolour"}, 400, "invalid_parameters", "bg_color"),
        ({"crop_margin": "lots"}, 400, "invalid_parameters", "crop_margin"),
    ],
)
def test_bad_parameters_are_remove_bg_errors(client, data, status, code, words) -> None:
    response = _post(client, data=data)
    assert response.status_code == status
    error = _error(response)
    assert error["code"] == code and words in error["title"], error
    # This front door's names, not the command line's (the server's own flag aside).
    assert "--" not in error["title"].replace("the server's --allow-fetch", "")


def test_bad_images_keys_and_sizes(client) -> None:
    assert _error(_post(client, files={"image_file": b"not an image"}))["code"] == "invalid_image"
    assert _post(client, files={}).status_code == 400  # no image at all
    assert _post(client, key="wrong").status_code == 403
    assert _post(client, key="").status_code == 403
    assert _error(_post(client, key="k1x"))["code"] == "auth_failed"
    too_big = {"image_file": np.random.default_rng(3).bytes(3 * 1024 * 1024)}
    assert _post(client, files=too_big).status_code == 413


def _png_claiming(width: int, height: int) -> bytes:
    def chunk(kind: bytes, body: bytes) -> bytes:
        crc = zlib.crc32(kind + body)
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    pixels = chunk(b"IDAT", zlib.compress(b"\0" * 1000))
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + pixels + chunk(b"IEND", b"")


@pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")
@pytest.mark.parametrize(
    ("side", "words"), [(12_000, "over the pixel limit"), (100_000, "decompression bomb")]
)
def test_a_decompression_bomb_is_refused_from_its_header(client, side: int, words: str) -> None:
    # A PNG that says 144 MP (over the server's 40 MP) or 10 GP (over Pillow's own limit) in a
    # few hundred bytes: refused before decoding.
    response = _post(client, files={"image_file": _png_claiming(side, side)})
    assert response.status_code == 400 and words in _error(response)["title"]


def test_health_ready_metrics_page_and_openapi(client) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    assert client.get("/readyz").json() == {"status": "ready"}
    metrics = client.get("/metrics").text
    assert "bgswap_requests_total" in metrics and "bgswap_images_total" in metrics
    page = client.get("/").text
    assert "<script>" in page and "v1.0/removebg" in page and "http" not in page.split("<body>")[1]
    assert "/v1.0/removebg" in client.get("/openapi.json").json()["paths"]


def test_our_own_swap_takes_the_command_lines_choices(client) -> None:
    def swap(data, path="/v1/swap", **kwargs):
        files = {"image_file": PHOTO.read_bytes(), **kwargs.pop("files", {})}
        headers = {"X-Api-Key": "k1", **kwargs.pop("headers", {})}
        return client.post(path, files=files, data=data, headers=headers, **kwargs)

    framed = swap({"bg": "white", "frame": "subject", "canvas": "300x400", "format": "png"})
    assert framed.status_code == 200, framed.text
    image = Image.open(io.BytesIO(framed.content))
    assert image.size == (300, 400) and image.getpixel((0, 0)) == (255, 255, 255)
    assert float(framed.headers["x-doubt"]) >= 0 and "x-flags" in framed.headers
    blurred = swap({"bg": "blur", "quality": "80", "harmonize": "0.5"})
    assert blurred.headers["content-type"] == "image/jpeg"
    assert Image.open(io.BytesIO(blurred.content)).size == Image.open(PHOTO).size
    mask = swap({}, path="/v1/mask", headers={"Accept": "application/json"})
    body = mask.json()
    alpha = Image.open(io.BytesIO(base64.b64decode(body["result_b64"])))
    assert alpha.mode == "L" and "doubt" in body and body["warnings"] == []
    for data, words in (
        ({"harmonize": "2", "bg": "white"}, "harmonize '2.0': must be between 0 and 1"),
        ({"light_wrap": "8"}, "light_wrap '8': needs a background"),
        ({"margin": "10"}, "margin '10': goes with frame=subject"),
        ({"quality": "0"}, "quality '0': must be between 1 and 100"),
        ({"shadow": "true"}, "shadow 'true': needs a background"),
        ({"bg": "white", "light_wrap": "wide"}, "light_wrap 'wide': not a whole number"),
        ({"matting": "best"}, "method 'best': choose from"),
        ({"colour": "red"}, "colour: not a field"),
    ):
        answer = swap(data)
        assert answer.status_code == 400 and words in _error(answer)["title"], answer.text


def test_swap_takes_the_users_mask_and_the_knobs(client) -> None:
    photo = Image.open(PHOTO)
    drawn = Image.new("L", (photo.width // 2, photo.height // 2), 0)  # any size of its shape
    drawn.paste(255, (10, 10, 60, 80))
    buffer = io.BytesIO()
    drawn.save(buffer, "PNG")
    files = {"image_file": PHOTO.read_bytes(), "mask_file": buffer.getvalue()}
    answer = client.post(
        "/v1/mask",
        files=files,
        data={"matting": "off", "mask_grow": "4"},
        headers={"X-Api-Key": "k1"},
    )
    assert answer.status_code == 200, answer.text
    alpha = np.asarray(Image.open(io.BytesIO(answer.content)))
    assert alpha[40, 40] == 255 and alpha[300, 300] == 0  # the user's mask, not the model's
    assert alpha[19, 40] == 255 and alpha[10, 40] == 0  # grown by 4 px (20 → 16 at full size)
    for data, files, words in (
        ({"mask_grow": "900"}, {}, "mask_grow '900': must be within ±500 px"),
        ({"mask_threshold": "x"}, {}, "mask_threshold 'x': not a number"),
        ({}, {"mask_file": b"not an image"}, "mask mask_file: not an image"),
    ):
        answer = client.post(
            "/v1/swap",
            files={"image_file": PHOTO.read_bytes(), **files},
            data=data,
            headers={"X-Api-Key": "k1"},
        )
        assert answer.status_code == 400 and words in _error(answer)["title"], answer.text


def test_a_public_address_without_keys_is_refused() -> None:
    with pytest.raises(SettingError, match=r"host '0\.0\.0\.0'"):
        ServiceSettings(host="0.0.0.0")
    ServiceSettings(host="0.0.0.0", no_auth=True)
    ServiceSettings(host="0.0.0.0", api_keys=("k",), behind_proxy=True)


def test_serve_refuses_batch_settings_and_a_public_host(capsys) -> None:
    code, err = cli(capsys, "serve", "--host", "0.0.0.0")
    assert code == 2 and "--host '0.0.0.0'" in err and "--no-auth" in err
    code, err = cli(capsys, "serve", "--watch")
    assert code == 2 and "--watch: is not a server setting" in err


# --- the real process ------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class _Server:
    def __init__(
        self, tmp_path: Path, *args: str, ready_url: str | None = None, verify: object = True
    ) -> None:
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        ready = (ready_url or self.url + "/readyz").format(port=self.port)
        self.log = tmp_path / f"server-{self.port}.log"
        command = [sys.executable, str(ROOT / "run.py"), "serve", "--port", str(self.port), *args]
        self.process = subprocess.Popen(
            command, stdout=self.log.open("wb"), stderr=subprocess.STDOUT, cwd=tmp_path
        )
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            assert self.process.poll() is None, self.log.read_text()
            try:
                if httpx.get(ready, timeout=1, verify=verify).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise AssertionError("the server did not become ready: " + self.log.read_text())

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=60)


@pytest.fixture
def big_photo(tmp_path: Path) -> bytes:
    """A 2400-px JPEG of the sample (slow enough to keep a worker busy for a while)."""
    photo = Image.open(PHOTO).resize((2400, 2400))
    buffer = io.BytesIO()
    photo.save(buffer, "JPEG", quality=90)
    return buffer.getvalue()


def test_the_real_server_gives_the_clis_alpha_and_checks_keys(tmp_path: Path, capsys) -> None:
    keys = tmp_path / "keys.txt"
    keys.write_text("# studio\nsecret-1\n\nsecret-2\n")
    server = _Server(tmp_path, "--api-keys", str(keys))
    try:
        files = {"image_file": ("astronaut.jpg", PHOTO.read_bytes(), "image/jpeg")}
        answer = httpx.post(
            server.url + "/v1.0/removebg",
            files=files,
            data={"size": "full"},
            headers={"X-Api-Key": "secret-2"},
            timeout=60,
        )
        assert answer.status_code == 200, answer.text
        served = np.asarray(Image.open(io.BytesIO(answer.content)))[..., 3]
        refused = httpx.post(server.url + "/v1.0/removebg", files=files, timeout=60)
        assert refused.status_code == 403 and refused.json()["errors"][0]["code"] == "auth_failed"
        key = {"X-Api-Key": "secret-1"}
        for body, words in (
            (b"not an image", "not an image"),
            (_png_claiming(12_000, 12_000), "pixel limit"),
        ):
            bad = httpx.post(
                server.url + "/v1.0/removebg",
                files={"image_file": ("x.png", body, "image/png")},
                headers=key,
                timeout=60,
            )
            assert bad.status_code == 400 and words in bad.json()["errors"][0]["title"]
        assert httpx.get(server.url + "/healthz").json() == {"status": "ok"}  # still serving
    finally:
        assert server.stop() == -signal.SIGTERM  # drained, then ended by the signal it got
    log = server.log.read_text()
    assert "secret" not in log and "POST /v1.0/removebg 200" in log and "403" in log
    out = tmp_path / "cli.png"
    code, err = cli(capsys, "-i", PHOTO, "-o", out, "--bg", "transparent")
    assert code == 0, err
    np.testing.assert_array_equal(served, np.asarray(Image.open(out))[..., 3])


def test_a_full_queue_is_503_and_sigterm_answers_what_is_in_flight(
    tmp_path: Path, big_photo: bytes
) -> None:
    server = _Server(tmp_path, "--workers", "1", "--queue", "0")
    answers: list[httpx.Response] = []

    def post() -> None:
        files = {"image_file": ("big.jpg", big_photo, "image/jpeg")}
        data = {"size": "full"}
        answers.append(httpx.post(server.url + "/v1/removebg", files=files, data=data, timeout=120))

    try:
        first = threading.Thread(target=post)
        first.start()
        deadline = time.monotonic() + 30  # until the first is being worked on
        while "bgswap_admitted 1.0" not in httpx.get(server.url + "/metrics").text:
            assert time.monotonic() < deadline
            time.sleep(0.02)
        post()  # the one worker is busy and no queue: refused at once
        refused = answers[-1]
        assert refused.status_code == 503 and refused.headers["retry-after"] == "1"
        assert refused.json()["errors"][0]["code"] == "queue_full"
        # SIGTERM with the first still in flight: it is answered, then the server exits.
        server.process.send_signal(signal.SIGTERM)
        first.join(timeout=120)
        assert [a.status_code for a in answers] == [503, 200]
        assert Image.open(io.BytesIO(answers[1].content)).size == (2400, 2400)
        assert server.process.wait(timeout=60) == -signal.SIGTERM
        with pytest.raises(httpx.ConnectError):  # no longer accepting
            httpx.get(server.url + "/healthz", timeout=2)
    finally:
        server.stop()


def _chromium() -> str | None:
    import shutil

    return shutil.which("chromium") or shutil.which("chromium-browser")


def test_the_page_swaps_a_dropped_photo_in_a_real_browser(tmp_path: Path) -> None:
    """The page in headless Chromium (Debian's, driven by Playwright; no browser download):
    pick a photo, wait for its result, and keep a screenshot (tests/../page.png under tmp)."""
    playwright = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
    browser_path = _chromium()
    if browser_path is None:
        pytest.skip("no chromium on this machine (apt install chromium)")
    server = _Server(tmp_path)
    try:
        with playwright.sync_playwright() as driver:
            browser = driver.chromium.launch(executable_path=browser_path, args=["--no-sandbox"])
            page = browser.new_page(viewport={"width": 1100, "height": 800})
            page.goto(server.url + "/")
            page.check("input[name=bg][value=colour]")
            page.fill("#colour", "#3366aa")
            page.set_input_files("#files", str(PHOTO))
            page.wait_for_selector(".row[data-done]", timeout=60_000)
            assert page.get_attribute(".row", "data-done") == "1", page.inner_text(".status")
            size = page.evaluate(
                "() => { const img = document.querySelectorAll('.row img')[1];"
                " return [img.naturalWidth, img.naturalHeight]; }"
            )
            assert size == list(Image.open(PHOTO).size)
            assert "in " in page.inner_text(".status") and page.locator("a.download").count() == 1
            page.screenshot(path=str(tmp_path / "page.png"), full_page=True)
            browser.close()
    finally:
        server.stop()
    shot = np.asarray(Image.open(tmp_path / "page.png").convert("RGB"))
    blue = (np.abs(shot.astype(int) - (0x33, 0x66, 0xAA)).sum(axis=2) < 30).mean()
    assert blue > 0.05  # the result's new background is on the page


def test_the_docs_say_what_each_remove_bg_parameter_does() -> None:
    from operations.service.removebg import PARAMETERS

    page = (ROOT / "docs" / "service.md").read_text()
    for p in PARAMETERS:
        assert f"| `{p.name}` | {p.support} | {p.how} |".replace("|  |", "| |") in page, p.name


def test_type_chooses_the_model_of_mode_auto(tmp_path: Path) -> None:
    pytest.importorskip("onnxruntime", reason="the salient extra is not installed")
    pytest.importorskip("onnx", reason="onnx (one of the tests' tools) is not installed")
    from operations.models import models_home
    from tests.models import write_graph

    write_graph(models_home() / f"{Options().salient_model}.onnx", (1024, 1024))
    recipe = Options(mode="auto", offline=True).validated(batch=False).recipe()
    service = Service(recipe, ServiceSettings())
    with TestClient(create_app(service)) as auto:
        assert service.ready.wait(60), service.load_error
        kinds = {}
        for kind in ("person", "product", "auto", "car"):
            answer = auto.post(
                "/v1.0/removebg", files={"image_file": PHOTO.read_bytes()}, data={"type": kind}
            )
            assert answer.status_code == 200, answer.text
            kinds[kind] = answer.headers["x-type"]
        bad = auto.post("/v1.0/removebg", files={"image_file": b"x"}, data={"type": "boat"})
    # The astronaut has a face: auto picks the people model, as person does.
    assert kinds == {"person": "person", "product": "other", "auto": "person", "car": "other"}
    assert bad.status_code == 400 and "type 'boat'" in bad.json()["errors"][0]["title"]
