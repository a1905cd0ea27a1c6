"""Weights resolution and the bounded download, against a loopback server."""

from __future__ import annotations

import hashlib
import http.server
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from operations.models import WeightsError, WeightsSpec, download, resolve


@pytest.fixture
def server() -> Iterator[str]:
    """A loopback HTTP server: /weights.pt serves bytes, anything else is a 404."""
    payload = b"weights " * 4096

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path != "/weights.pt":
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args: object) -> None:
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def test_download_verifies_the_published_checksum(server: str, tmp_path: Path) -> None:
    good = hashlib.sha256(b"weights " * 4096).hexdigest()[:8]
    path = download(f"{server}/weights.pt", tmp_path / "a" / f"w-{good}.pt", sha256_prefix=good)
    assert path.read_bytes() == b"weights " * 4096
    with pytest.raises(WeightsError, match="checksum mismatch"):
        download(f"{server}/weights.pt", tmp_path / "b" / "w.pt", sha256_prefix="00000000")
    assert not any((tmp_path / "b").iterdir())  # nothing left behind, not even a temporary file
    with pytest.raises(WeightsError, match="HTTP 404"):
        download(f"{server}/missing.pt", tmp_path / "c.pt")


def test_download_verifies_a_published_md5(server: str, tmp_path: Path) -> None:
    good = hashlib.md5(b"weights " * 4096).hexdigest()
    assert download(f"{server}/weights.pt", tmp_path / "a.pt", md5=good).is_file()
    with pytest.raises(WeightsError, match=f"MD5 {good}, expected 0000"):
        download(f"{server}/weights.pt", tmp_path / "b" / "w.pt", md5="0000")
    assert not (tmp_path / "b").exists() or not any((tmp_path / "b").iterdir())


def test_resolve_reads_another_tools_cache_without_writing_it(tmp_path: Path) -> None:
    other = tmp_path / "rembg"
    other.mkdir()
    (other / "m.onnx").write_bytes(b"model")
    url = "http://127.0.0.1:9/m.onnx"
    spec = WeightsSpec(
        "m",
        url,
        tmp_path / "ours",
        "--weights",
        "X",
        file_name="m.onnx",
        alternates=(other,),
        download_name="salient-m",
    )
    assert resolve(spec, offline=True) == other / "m.onnx"
    (other / "m.onnx").unlink()
    with pytest.raises(WeightsError, match=r"`python run.py download salient-m`"):
        resolve(spec, offline=True)


def test_download_from_a_server_that_never_answers_fails_in_bounded_time(tmp_path: Path) -> None:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)  # accepts connections (the kernel does), never answers
    url = f"http://127.0.0.1:{listener.getsockname()[1]}/weights.pt"
    start = time.monotonic()
    try:
        with pytest.raises(WeightsError, match=r"no answer .* within 1 s"):
            download(url, tmp_path / "w.pt", timeout=1.0)
    finally:
        listener.close()
    assert time.monotonic() - start < 10
    assert not (tmp_path / "w.pt").exists()


def test_resolve_order_explicit_cache_download(server: str, tmp_path: Path) -> None:
    spec = WeightsSpec("thing", f"{server}/weights.pt", tmp_path / "cache", "--weights", "X_HOME")
    explicit = tmp_path / "mine.pt"
    explicit.write_bytes(b"mine")
    assert resolve(spec, explicit) == explicit
    with pytest.raises(WeightsError, match=r"not cached .* downloads are off"):
        resolve(spec, offline=True)
    assert resolve(spec) == spec.cached and spec.cached.is_file()  # downloaded into the cache
    assert resolve(spec, offline=True) == spec.cached  # and found there afterwards
    with pytest.raises(WeightsError, match="no such file"):
        resolve(spec, tmp_path / "missing.pt")


def test_the_fix_names_the_command_as_it_was_started(monkeypatch, tmp_path: Path) -> None:
    spec = WeightsSpec(
        "m", "http://127.0.0.1:9/m.onnx", tmp_path, "--weights", "X", download_name="salient-m"
    )
    monkeypatch.setattr("sys.argv", ["/usr/local/bin/backgroundswap", "-i", "x"])
    with pytest.raises(WeightsError, match=r"`backgroundswap download salient-m`"):
        resolve(spec, offline=True)
    monkeypatch.setattr("sys.argv", ["run.py"])
    with pytest.raises(WeightsError, match=r"`python run.py download salient-m`"):
        resolve(spec, offline=True)
