"""The service where it meets a network, tested on the real process over loopback: clients that
send their headers or bodies too slowly, many idle connections, chunked and base64 bodies over
the upload limit, TLS with a certificate made here, and the public-host rules."""

from __future__ import annotations

import base64
import json
import shutil
import socket
import ssl
import subprocess
import time
from pathlib import Path

import pytest

from tests.helpers import SAMPLES, cli

pytest.importorskip("fastapi", reason="the service extra (FastAPI) is not installed")
httpx = pytest.importorskip("httpx", reason="httpx (one of the tests' tools) is not installed")

from tests.test_service import _Server  # noqa: E402 - after the extra is known to be there

PHOTO = SAMPLES / "astronaut.jpg"


def _read_all(sock: socket.socket, seconds: float) -> bytes:
    sock.settimeout(seconds)
    data = b""
    try:
        while chunk := sock.recv(65536):
            data += chunk
    except (TimeoutError, ConnectionResetError):
        pass
    return data


def test_a_slow_header_is_cut_and_a_real_request_is_served_meanwhile(tmp_path: Path) -> None:
    server = _Server(tmp_path, "--header-timeout", "1.5")
    try:
        slow = socket.create_connection(("127.0.0.1", server.port))
        slow.sendall(b"POST /v1.0/removebg HTTP/1.1\r\nHost: x\r\n")
        silent = socket.create_connection(("127.0.0.1", server.port))  # says nothing at all
        began = time.monotonic()
        for _ in range(4):  # a header line every half second: never done within the deadline
            time.sleep(0.5)
            try:
                slow.sendall(b"X-Slow: 1\r\n")
            except OSError:
                break
            answer = httpx.post(
                server.url + "/v1.0/removebg",
                files={"image_file": PHOTO.read_bytes()},
                timeout=30,
            )
            assert answer.status_code == 200  # served while the slow one dribbles
        head = _read_all(slow, 5)
        assert head.startswith(b"HTTP/1.1 408") and time.monotonic() - began < 6
        assert _read_all(silent, 5).startswith(b"HTTP/1.1 408")
    finally:
        server.stop()


def test_idle_connections_deny_nobody_and_the_cap_refuses_cleanly(tmp_path: Path) -> None:
    server = _Server(tmp_path, "--max-connections", "120", "--queue", "2", "--workers", "1")
    idle = []
    try:
        for _ in range(110):  # open, say nothing: far more than the workers and the queue
            idle.append(socket.create_connection(("127.0.0.1", server.port)))
        assert httpx.get(server.url + "/healthz", timeout=10).status_code == 200
        answer = httpx.post(
            server.url + "/v1.0/removebg", files={"image_file": PHOTO.read_bytes()}, timeout=30
        )
        assert answer.status_code == 200
        for _ in range(20):
            idle.append(socket.create_connection(("127.0.0.1", server.port)))
        refused = _read_all(idle[-1], 5)
        assert refused.startswith(b"HTTP/1.1 503") and b"Retry-After" in refused
    finally:
        for sock in idle:
            sock.close()
        server.stop()


def _chunks(total: int, size: int = 64 * 1024):
    sent = 0
    while sent < total:
        yield b"x" * size
        sent += size


def test_a_chunked_body_over_the_limit_is_413_and_not_read_to_its_end(tmp_path: Path) -> None:
    server = _Server(tmp_path, "--max-upload-mb", "1")
    try:
        pushed = 0

        def body():
            nonlocal pushed
            yield (
                b'--zz\r\nContent-Disposition: form-data; name="image_file"; filename="a.jpg"\r\n'
                b"Content-Type: image/jpeg\r\n\r\n"
            )
            for chunk in _chunks(60 * 2**20):
                pushed += len(chunk)
                yield chunk

        headers = {"Content-Type": "multipart/form-data; boundary=zz"}
        try:
            answer = httpx.post(server.url + "/v1.0/removebg", content=body(), headers=headers)
            assert answer.status_code == 413, answer.text
            assert answer.json()["errors"][0]["code"] == "file_too_large"
        except httpx.HTTPError:
            pass  # the server answered and closed while we were still sending: also a cut
        assert pushed < 20 * 2**20  # stopped long before the 60 MB were taken
        big = base64.b64encode(b"\xff" * (2 * 2**20)).decode()  # base64 JSON, 2.7 MB
        answer = httpx.post(server.url + "/v1.0/removebg", json={"image_file_b64": big})
        assert answer.status_code == 413
        assert httpx.get(server.url + "/healthz").status_code == 200
    finally:
        server.stop()
    log = server.log.read_text()
    assert " 413 " in log


def test_a_slow_body_is_cut(tmp_path: Path) -> None:
    server = _Server(tmp_path, "--body-timeout", "1.5")
    try:
        sock = socket.create_connection(("127.0.0.1", server.port))
        sock.sendall(
            b"POST /v1.0/removebg HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: 1000\r\n\r\n{"
        )
        began = time.monotonic()
        answer = _read_all(sock, 8)
        assert answer.startswith(b"HTTP/1.1 408") and time.monotonic() - began < 6
        assert b"body_timeout" in answer
    finally:
        server.stop()


def test_tls_with_a_certificate_made_here(tmp_path: Path) -> None:
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("no openssl command to make a certificate")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        [openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
         "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
         "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )  # fmt: skip
    keys = tmp_path / "keys.txt"
    keys.write_text("k\n")
    tls = ["--tls-cert", str(cert), "--tls-key", str(key), "--api-keys", str(keys)]
    ready = "https://127.0.0.1:{port}/readyz"
    trust = ssl.create_default_context(cafile=str(cert))
    server = _Server(tmp_path, *tls, ready_url=ready, verify=trust)
    try:
        url = f"https://127.0.0.1:{server.port}/v1.0/removebg"
        answer = httpx.post(
            url, files={"image_file": PHOTO.read_bytes()}, headers={"X-Api-Key": "k"},
            verify=trust, timeout=30,
        )  # fmt: skip
        assert answer.status_code == 200 and answer.headers["content-type"] == "image/png"
        with pytest.raises(httpx.HTTPError):
            httpx.get(f"http://127.0.0.1:{server.port}/healthz", timeout=5)  # not plain HTTP
    finally:
        server.stop()


def test_keys_on_a_public_host_need_tls_or_a_proxy(tmp_path: Path, capsys) -> None:
    keys = tmp_path / "keys.txt"
    keys.write_text("k\n")
    code, err = cli(capsys, "serve", "--host", "0.0.0.0", "--api-keys", keys)
    assert code == 2 and "--host '0.0.0.0'" in err and "--tls-cert" in err
    assert "--behind-proxy" in err
    code, err = cli(capsys, "serve", "--trusted-proxy", "10.0.0.1")
    assert code == 2 and "--trusted-proxy" in err and "goes with --behind-proxy" in err
    code, err = cli(capsys, "serve", "--tls-cert", keys)
    assert code == 2 and "--tls-key" in err


def test_the_access_log_counts_the_answers_bytes(tmp_path: Path) -> None:
    server = _Server(tmp_path)
    try:
        answer = httpx.post(server.url + "/v1.0/removebg", files={"image_file": PHOTO.read_bytes()})
        sent = len(answer.content)
    finally:
        server.stop()
    line = next(x for x in server.log.read_text().splitlines() if "/v1.0/removebg" in x)
    assert f" 200 {sent} B " in line and "127.0.0.1" in line


def test_the_openapi_describes_every_field(tmp_path: Path) -> None:
    from fastapi.testclient import TestClient

    from operations.options import Options
    from operations.service.removebg import PARAMETERS
    from operations.service.server import Service, ServiceSettings, create_app
    from operations.service.swap_api import FIELD_DOCS

    app = create_app(Service(Options().validated(batch=False).recipe(), ServiceSettings()))
    schema = TestClient(app).get("/openapi.json").json()
    for path, names in (
        ("/v1.0/removebg", [p.name for p in PARAMETERS]),
        ("/v1/swap", [f.name for f in FIELD_DOCS]),
        ("/v1/mask", [f.name for f in FIELD_DOCS]),
    ):
        content = schema["paths"][path]["post"]["requestBody"]["content"]
        for kind in ("multipart/form-data", "application/json"):
            properties = content[kind]["schema"]["properties"]
            for name in names:
                if kind == "application/json" and name.endswith("_file"):
                    name = f"{name}_b64"  # a file travels in base64 in a JSON body
                assert name in properties, (path, kind, name)
                assert properties[name].get("description"), (path, name)
        errors = schema["paths"][path]["post"]["responses"]
        assert {"400", "403", "413", "503"} <= set(errors)
    size = schema["paths"]["/v1.0/removebg"]["post"]["requestBody"]["content"]
    size = size["multipart/form-data"]["schema"]["properties"]["size"]
    assert "full" in size["enum"] and size["default"] == "preview"
    json.dumps(schema)  # it is plain JSON a generator can read
