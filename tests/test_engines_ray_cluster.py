"""--engine ray on a real two-node cluster started as the README says (`ray start --head`, then
`ray start --address` for a second node with its own raylet), with token authentication; and
the one-line errors for a driver that cannot join."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from operations.jobs.engines.ray import pool_size
from tests.helpers import BACKGROUND, ROOT, cli

pytest.importorskip("ray")
RAY = Path(sys.executable).with_name("ray")


def _children(process) -> list:
    import psutil

    try:
        return process.children(recursive=True)
    except psutil.Error:
        return []


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _env(home: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_")}
    # TMPDIR too: a refused driver keeps Ray's native log there (its error names it).
    return {**env, "HOME": str(home), "TMPDIR": str(home), "RAY_USAGE_STATS_ENABLED": "0", **extra}


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """A head and a worker node (one CPU each) on 127.0.0.1, token authentication on."""
    head_home, worker_home = tmp_path_factory.mktemp("head"), tmp_path_factory.mktemp("worker")
    # Its own short temp dir (Ray's socket paths must stay short): the processes to stop at the
    # end are those that name it, so a Ray the developer runs is left alone.
    temp = Path(tempfile.mkdtemp(prefix="bgs-ray-"))
    port = _free_port()
    address = f"127.0.0.1:{port}"
    run = dict(capture_output=True, text=True, timeout=120)
    subprocess.run([RAY, "get-auth-token", "--generate"], env=_env(head_home), check=True, **run)
    token = head_home / ".ray" / "auth_token"
    assert token.is_file()
    common = ["--node-ip-address=127.0.0.1", "--num-cpus=1", "--disable-usage-stats"]
    head = ["--head", f"--port={port}", "--include-dashboard=false", f"--temp-dir={temp}"]
    subprocess.run([RAY, "start", *head, *common], env=_env(head_home), check=True, **run)
    with_token = {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN_PATH": str(token)}
    refused = subprocess.run(
        [RAY, "start", f"--address={address}", *common], env=_env(worker_home), **run
    )
    assert refused.returncode != 0 and "InvalidAuthToken" in refused.stdout + refused.stderr
    subprocess.run(
        [RAY, "start", f"--address={address}", *common],
        env=_env(worker_home, **with_token),
        check=True,
        **run,
    )
    yield address, with_token, worker_home
    import psutil

    # Those that name the temp dir (raylets, GCS, workers), and their children: the agents
    # rename themselves ("ray::DashboardAgent") and would outlive a killed raylet.
    named = [
        p
        for p in psutil.process_iter(["cmdline"])
        if str(temp) in " ".join(p.info["cmdline"] or [])
    ]
    ours = set(named) | {child for p in named for child in _children(p)}
    for process in ours:
        with contextlib.suppress(psutil.Error):
            process.kill()
    psutil.wait_procs(list(ours), timeout=30)
    shutil.rmtree(temp, ignore_errors=True)


def _driver(home: Path, *args: object, **env: str) -> subprocess.CompletedProcess:
    command = [sys.executable, str(ROOT / "run.py"), *map(str, args)]
    return subprocess.run(
        command, env=_env(home, **env), capture_output=True, text=True, timeout=300
    )


def test_two_nodes_share_the_run_and_write_what_the_local_engine_writes(
    cluster, photo_dir: Path, tmp_path: Path, capsys
) -> None:
    address, with_token, home = cluster
    for i in range(4):  # six photos: work for both nodes
        (photo_dir / f"copy{i}.jpg").write_bytes((photo_dir / "astronaut.jpg").read_bytes())
    summary = tmp_path / "ray.json"
    done = _driver(
        home,
        "-i",
        photo_dir,
        "-o",
        tmp_path / "ray",
        "-b",
        BACKGROUND,
        "-q",
        "--engine",
        "ray",
        "--ray-address",
        address,
        "--summary",
        summary,
        **with_token,
    )
    assert done.returncode == 0, done.stderr
    rows = json.loads(summary.read_text())["files"]
    assert [r["status"] for r in rows] == ["ok"] * 6
    assert len({r["extra"]["ray_node"] for r in rows}) == 2  # both nodes processed photos
    code, _ = cli(capsys, "-i", photo_dir, "-o", tmp_path / "local", "-b", BACKGROUND, "-q")
    assert code == 0
    for path in sorted((tmp_path / "local").iterdir()):
        assert path.read_bytes() == (tmp_path / "ray" / path.name).read_bytes()


def test_a_driver_without_the_token_gets_one_line(cluster, photo_dir: Path, tmp_path: Path):
    address, _, home = cluster
    refused = _driver(
        home,
        "-i",
        photo_dir,
        "-o",
        tmp_path / "out",
        "-b",
        BACKGROUND,
        "--engine",
        "ray",
        "--ray-address",
        address,
    )
    assert refused.returncode == 2
    lines = refused.stderr.strip().splitlines()
    assert len(lines) == 1, refused.stderr
    assert f"--ray-address '{address}'" in lines[0]
    assert "token authentication" in lines[0] and "RAY_AUTH_TOKEN_PATH" in lines[0]
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_connection_errors_are_one_line_and_quick(photo_dir: Path, tmp_path: Path, capsys):
    port = _free_port()  # nothing listens there
    code, err = cli(
        capsys,
        "-i",
        photo_dir,
        "-o",
        tmp_path / "o",
        "-b",
        BACKGROUND,
        "--engine",
        "ray",
        "--ray-address",
        f"127.0.0.1:{port}",
    )
    assert code == 2 and err.count("\n") == 1
    assert "nothing answers there (Connection refused)" in err and "ray start --head" in err
    code, err = cli(
        capsys,
        "-i",
        photo_dir,
        "-o",
        tmp_path / "o",
        "-b",
        BACKGROUND,
        "--engine",
        "ray",
        "--ray-address",
        "headnode",
    )
    assert code == 2 and "give HOST:PORT" in err and err.count("\n") == 1


def test_the_pool_is_sized_from_the_cluster_and_cpus_per_worker() -> None:
    assert pool_size(2, 1, 200) == (2, 2)  # this machine: two actors of two threads
    assert pool_size(2, 2, 200) == (1, 3)  # one actor holding both CPUs, three threads
    assert pool_size(64, 4, 200) == (16, 5)
    assert pool_size(64, 1, 3) == (3, 2)  # no more actors than photos
    assert pool_size(1, 4, 10) == (1, 5)  # larger than the cluster: refused before (_check_fits)


class _FakeRay:
    """Stands in for the ray module: its init raises what a real cluster would."""

    __version__ = "2.60.0"

    def __init__(self, error: BaseException) -> None:
        import ray

        self.error, self.exceptions = error, ray.exceptions

    def init(self, **kwargs) -> None:
        raise self.error


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        ("auth", "the cluster uses token authentication"),
        (
            RuntimeError("Version mismatch: The cluster was started with:\n    Ray: 2.59.0\n"),
            "Ray's version differs from the cluster's (Version mismatch: The cluster was started "
            "with: Ray: 2.59.0): install the cluster's Ray and Python version on this machine "
            "(here: Ray 2.60.0)",
        ),
        (
            ConnectionError("Failed to connect to Ray cluster at 10.0.0.1:6379"),
            "Failed to connect to Ray cluster at 10.0.0.1:6379; the cluster uses token",
        ),
    ],
)
def test_cluster_refusals_become_one_line(error, expected, monkeypatch) -> None:
    import ray

    from operations.errors import OptionsError
    from operations.jobs.engines.ray import connect
    from operations.options import naming_flags  # the flag is named at the top

    if error == "auth":
        error = ray.exceptions.AuthenticationError("RPC error: InvalidAuthToken")
    monkeypatch.delenv("RAY_AUTH_TOKEN", raising=False)
    monkeypatch.delenv("RAY_AUTH_TOKEN_PATH", raising=False)
    with socket.socket() as server:  # something answers at the address
        server.bind(("127.0.0.1", 0))
        server.listen()
        address = f"127.0.0.1:{server.getsockname()[1]}"
        with pytest.raises(OptionsError) as caught, naming_flags():
            connect(_FakeRay(error), address)
    message = str(caught.value)
    assert message.startswith(f"--ray-address '{address}': ") and "\n" not in message
    assert expected in message
