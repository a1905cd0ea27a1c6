"""The service's URL fetching (operations/service/fetch.py): only named hosts, https, public
addresses checked after the lookup and on every redirect, a byte limit, and an end by its
time-out even when a lookup or a server hangs."""

from __future__ import annotations

import http.server
import socket
import threading
import time

import pytest

pytest.importorskip("httpx", reason="the service extra is not installed")

from operations.errors import SettingError
from operations.service import fetch as fetching
from operations.service.fetch import FetchSettings, fetch, public, resolve
from tests.helpers import SAMPLES

PHOTO = (SAMPLES / "astronaut.jpg").read_bytes()


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "10.1.2.3",
        "172.16.0.9",
        "192.168.1.1",
        "169.254.169.254",  # cloud metadata
        "100.64.0.1",  # shared (carrier-grade NAT)
        "0.0.0.0",
        "224.0.0.1",
        "::1",
        "fc00::1",
        "fe80::1%eth0",
        "::ffff:127.0.0.1",
        "::ffff:10.0.0.1",
    ],
)
def test_addresses_that_are_not_public_are_refused(address: str) -> None:
    assert not public(address)


@pytest.mark.parametrize("address", ["8.8.8.8", "151.101.1.69", "2606:4700:4700::1111"])
def test_public_addresses_are_fetched_from(address: str) -> None:
    assert public(address)


def test_only_named_hosts_over_https(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = FetchSettings(hosts=("images.example.com",))
    with pytest.raises(SettingError, match="only https URLs"):
        fetch("http://images.example.com/a.jpg", "image_url", settings)
    with pytest.raises(SettingError, match="only from the hosts it was told"):
        fetch("https://other.example.com/a.jpg", "image_url", settings)
    with pytest.raises(SettingError, match="only https URLs"):
        fetch("file:///etc/passwd", "image_url", settings)
    # A named host whose name leads to a private address (or one of several) is refused.
    for addresses in (["10.0.0.5"], ["93.184.216.34", "127.0.0.1"]):
        monkeypatch.setattr(fetching, "resolve", lambda *_, found=addresses: found)
        with pytest.raises(SettingError, match="not public"):
            fetch("https://images.example.com/a.jpg", "image_url", settings)


def test_a_lookup_that_hangs_ends_by_the_time_out(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(socket, "getaddrinfo", lambda *_, **__: time.sleep(2) or [])
    began = time.monotonic()
    with pytest.raises(TimeoutError):
        resolve("images.example.com", 443, 0.3)
    assert time.monotonic() - began < 1.5


class _Handler(http.server.BaseHTTPRequestHandler):
    def log_message(self, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        host = self.headers["Host"]
        if self.path == "/photo.jpg":
            self._send(PHOTO, host)
        elif self.path.startswith("/to/"):
            self.send_response(302)
            self.send_header("Location", self.path[len("/to/") :].replace("PORT", host))
            self.end_headers()
        elif self.path == "/slow":
            self.send_response(200)
            self.end_headers()
            for _ in range(50):
                self.wfile.write(b"x" * 10)
                self.wfile.flush()
                time.sleep(0.1)
        elif self.path == "/hang":
            time.sleep(5)
        else:
            self.send_error(404)

    def _send(self, body: bytes, host: str) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "image/jpeg")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("X-Host-Seen", host)
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture
def local_server(monkeypatch: pytest.MonkeyPatch):
    """A loopback server standing in for a public one: the named hosts resolve to it, and its
    address passes as public (the only two things changed)."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    names = {"images.test", "cdn.test"}
    monkeypatch.setattr(
        fetching,
        "resolve",
        lambda host, port, timeout: ["127.0.0.1"] if host in names else ["10.9.9.9"],
    )
    monkeypatch.setattr(fetching, "public", lambda address: address == "127.0.0.1")
    yield server.server_address[1]
    server.shutdown()


def test_a_photo_is_fetched_and_redirects_are_checked_again(local_server: int) -> None:
    port = local_server
    settings = FetchSettings(hosts=("images.test", "cdn.test"), allow_http=True)
    base = f"http://images.test:{port}"
    assert fetch(f"{base}/photo.jpg", "image_url", settings) == PHOTO
    # A redirect to another named host is followed; to a host not named, refused.
    moved = f"{base}/to/http://cdn.test:{port}/photo.jpg"
    assert fetch(moved, "image_url", settings) == PHOTO
    with pytest.raises(SettingError, match="only from the hosts"):
        fetch(f"{base}/to/http://evil.test:{port}/photo.jpg", "image_url", settings)
    with pytest.raises(SettingError, match="more than 3 redirects"):
        fetch(f"{base}/to/{base}/to/{base}/to/{base}/to/{base}/photo.jpg", "image_url", settings)


def test_the_byte_limit_and_the_time_out_hold(local_server: int) -> None:
    base = f"http://images.test:{local_server}"
    small = FetchSettings(hosts=("images.test",), allow_http=True, max_bytes=1000)
    with pytest.raises(SettingError, match="over the limit"):
        fetch(f"{base}/photo.jpg", "image_url", small)
    quick = FetchSettings(hosts=("images.test",), allow_http=True, timeout=1.0)
    for path in ("/slow", "/hang"):  # a drip that never ends; a server that never answers
        began = time.monotonic()
        with pytest.raises(SettingError, match="could not be fetched"):
            fetch(base + path, "image_url", quick)
        assert time.monotonic() - began < 3
