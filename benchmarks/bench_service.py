"""The HTTP service beside the batch CLI, on the same photos, in one run.

Run by hand (never in CI): ``python benchmarks/bench_service.py [--clients 8] [--requests 2000]
[--mode mediapipe] [--workers N]``.

The photos: the bundled samples enlarged to 1600 px on the long side (JPEG, quality 92), as many
copies as there are clients (a folder for the CLI; the same bytes for the server). The CLI runs
``-i DIR -o OUT --bg transparent`` (a PNG with its alpha, what remove.bg's default answer is);
the server (``backgroundswap serve``, a real process on a loopback port) answers
``POST /v1.0/removebg`` with ``size=full`` from ``--clients`` threads, each with its own
keep-alive connection. Printed: the CLI's images/s, the server's images/s, the ratio, the
latency's p50/p95/p99, and the server's resident memory after every ``--every`` requests (its
growth from the 500th to the last is the number that says whether memory is flat).

``--idle N`` (e.g. 300) then measures again on the same server with N slow clients beside the
real ones — each connects and sends its request's header a line every 2 s, never finishing it,
and connects again when the server cuts it (``--header-timeout``) — and prints both rates and
their ratio: idle connections must deny nobody.
"""

from __future__ import annotations

import argparse
import io
import json
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent


def _photos(folder: Path, count: int) -> list[Path]:
    samples = [*sorted((ROOT / "input").glob("*.jpg")), ROOT / "tests" / "data" / "chelsea.jpg"]
    folder.mkdir(parents=True)
    made = []
    for index in range(count):
        sample = Image.open(samples[index % len(samples)]).convert("RGB")
        scale = 1600 / max(sample.size)
        size = (round(sample.width * scale), round(sample.height * scale))
        path = folder / f"photo{index:02d}.jpg"
        sample.resize(size, Image.Resampling.LANCZOS).save(path, quality=92)
        made.append(path)
    return made


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _cli(photos: Path, out: Path, args: argparse.Namespace) -> float:
    """The batch CLI's steady images/s: the photos over the run's own seconds less its
    start-up (model load), both as the run reports them (its summary; its last line)."""
    summary = out / "summary.json"
    command = [sys.executable, str(ROOT / "run.py"), "-i", str(photos), "-o", str(out)]
    command += ["--bg", "transparent", "--mode", args.mode, "--workers", str(args.workers)]
    done = subprocess.run(
        [*command, "--summary", str(summary)], check=True, capture_output=True, text=True
    )
    startup = float(re.search(r"start-up ([0-9.]+) s", done.stderr)[1])
    report = json.loads(summary.read_text())
    return report["counts"]["ok"] / (report["seconds"] - startup)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--every", type=int, default=250, help="report RSS every N requests")
    parser.add_argument("--mode", default="mediapipe")
    parser.add_argument("--workers", type=int, default=3)
    parser.add_argument("--cli-photos", type=int, default=48, help="photos the CLI runs over")
    parser.add_argument("--idle", type=int, default=0, help="then again with N slow clients")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-service-"))
    try:
        photos = _photos(work / "photos", args.cli_photos)
        cli_rate = _cli(work / "photos", work / "cli", args)
        print(f"CLI: {cli_rate:.2f} images/s ({len(photos)} photos, start-up excluded)")
        _serve(photos, args, cli_rate, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _serve(photos: list[Path], args: argparse.Namespace, cli_rate: float, work: Path) -> None:
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    command = [sys.executable, str(ROOT / "run.py"), "serve", "--port", str(port)]
    command += ["--mode", args.mode, "--workers", str(args.workers)]
    command += ["--queue", str(args.clients)]
    log = (work / "server.log").open("wb")
    server = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    try:
        _wait_ready(url, server)
        bodies = [path.read_bytes() for path in photos]
        latencies: list[float] = []
        statuses: dict[int, int] = {}
        rss: list[tuple[int, float]] = []
        lock = threading.Lock()
        counter = iter(range(args.requests))

        def client(index: int) -> None:
            with httpx.Client(base_url=url, timeout=120) as session:
                for number in counter:
                    files = {"image_file": ("p.jpg", bodies[number % len(bodies)], "image/jpeg")}
                    began = time.perf_counter()
                    answer = session.post("/v1.0/removebg", files=files, data={"size": "full"})
                    took = time.perf_counter() - began
                    if answer.is_success:
                        Image.open(io.BytesIO(answer.content)).verify()
                    with lock:
                        latencies.append(took)
                        statuses[answer.status_code] = statuses.get(answer.status_code, 0) + 1
                        if (number + 1) % args.every == 0 or number + 1 == 500:
                            rss.append((number + 1, _rss_mb(server.pid)))

        rate = _load(client, args.clients, statuses)
        q = statistics.quantiles(latencies, n=100)
        print(
            f"server: {rate:.2f} images/s with {args.clients} clients "
            f"({args.requests} requests, statuses {statuses})"
        )
        print(f"ratio server/CLI: {rate / cli_rate:.2f}×")
        print(f"latency p50 {q[49]:.3f} s, p95 {q[94]:.3f} s, p99 {q[98]:.3f} s")
        print("server RSS (MB) after N requests: " + ", ".join(f"{n}: {m:.0f}" for n, m in rss))
        at_500 = next((m for n, m in rss if n == 500), None)
        if at_500 is not None:
            print(f"RSS growth from request 500 to {rss[-1][0]}: {rss[-1][1] / at_500 - 1:+.1%}")
        if args.idle:
            counter = iter(range(args.requests))
            statuses.clear()
            stop = threading.Event()
            slow = [threading.Thread(target=_slow, args=(port, stop), daemon=True)
                    for _ in range(args.idle)]  # fmt: skip
            for thread in slow:
                thread.start()
            time.sleep(3)  # all connected, dribbling
            idle_rate = _load(client, args.clients, statuses)
            stop.set()
            print(
                f"with {args.idle} slow clients beside: {idle_rate:.2f} images/s "
                f"(statuses {statuses}); ratio to without: {idle_rate / rate:.2f}×"
            )
    finally:
        server.terminate()
        server.wait(timeout=60)


def _load(client, clients: int, statuses: dict[int, int]) -> float:
    """Run ``clients`` threads of ``client`` to the end; the 200s per second."""
    began = time.perf_counter()
    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return statuses.get(200, 0) / (time.perf_counter() - began)


def _slow(port: int, stop: threading.Event) -> None:
    """A client that sends its header a line every 2 s and never ends it; again when cut."""
    while not stop.is_set():
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
                sock.sendall(b"POST /v1.0/removebg HTTP/1.1\r\nHost: x\r\n")
                while not stop.wait(2):
                    sock.sendall(b"X-Slow: 1\r\n")
        except OSError:
            stop.wait(0.5)  # cut by the server (408) or refused: connect again


def _wait_ready(url: str, server: subprocess.Popen) -> None:
    while server.poll() is None:
        try:
            if httpx.get(url + "/readyz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise SystemExit(f"the server exited ({server.returncode})")


if __name__ == "__main__":
    main()
