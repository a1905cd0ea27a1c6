"""--watch: files that arrive while the run goes are processed, each once it has stopped
growing (never a partial copy); a file that vanishes is forgotten; Ctrl-C or SIGTERM ends it
with the summary; --delete-input removes an input once its result is written."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from PIL import Image

from operations.watch import Watcher
from tests.helpers import ROOT, SAMPLES


def test_a_file_is_taken_once_it_has_settled(tmp_path: Path) -> None:
    (tmp_path / "old.jpg").write_bytes(b"x")
    watcher = Watcher(tmp_path, known=[Path("old.jpg")], settle=0.3)
    growing = tmp_path / "new.jpg"
    growing.write_bytes(b"half")
    assert watcher.poll() == []  # first seen
    time.sleep(0.15)
    with growing.open("ab") as f:
        f.write(b" and the rest")  # still growing: the clock starts again
    assert watcher.poll() == []
    time.sleep(0.35)
    assert watcher.poll() == [Path("new.jpg")]  # unchanged for the settle time: whole
    assert watcher.poll() == []  # once
    gone = tmp_path / "gone.jpg"
    gone.write_bytes(b"soon deleted")
    assert watcher.poll() == []
    gone.unlink()
    time.sleep(0.35)
    assert watcher.poll() == []  # vanished before it settled: forgotten, no error
    (tmp_path / ".copying.part").write_bytes(b"hidden")
    time.sleep(0.35)
    assert watcher.poll() == [] and watcher.poll() == []  # hidden files never


def _wait_for(predicate, seconds: float = 60.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return False


def test_a_watched_folder_takes_slow_copies_and_stops_cleanly(tmp_path: Path) -> None:
    inbox, out, summary = tmp_path / "inbox", tmp_path / "out", tmp_path / "summary.json"
    inbox.mkdir()
    (inbox / "first.jpg").write_bytes((SAMPLES / "grace_hopper.jpg").read_bytes())
    command = [
        sys.executable,
        str(ROOT / "run.py"),
        "-i",
        str(inbox),
        "-o",
        str(out),
        "--blur",
        "--watch",
        "--delete-input",
        "--summary",
        str(summary),
    ]
    process = subprocess.Popen(command, stderr=subprocess.PIPE, text=True, cwd=ROOT)
    try:
        assert _wait_for(lambda: (out / "first.png").exists()), "the folder's own file"
        assert _wait_for(lambda: not (inbox / "first.jpg").exists())  # deleted once written
        data = (SAMPLES / "astronaut.jpg").read_bytes()
        with (inbox / "late.jpg").open("wb") as copy:  # copied in slowly, in three parts
            for part in (data[:20000], data[20000:60000], data[60000:]):
                copy.write(part)
                copy.flush()
                time.sleep(0.4)
        assert _wait_for(lambda: (out / "late.png").exists()), "the file that arrived"
        assert _wait_for(lambda: not (inbox / "late.jpg").exists())
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 130, err
    rows = {Path(r["input"]).name: r for r in json.loads(summary.read_text())["files"]}
    assert set(rows) == {"first.jpg", "late.jpg"}
    assert all(r["status"] == "ok" and r["extra"].get("input_deleted") for r in rows.values())
    assert Image.open(out / "late.png").size == (512, 512)  # the whole photo, not a part
    assert "watching" in err and "Traceback" not in err


def test_sigterm_ends_a_watch_with_the_summary(tmp_path: Path) -> None:
    inbox, summary = tmp_path / "inbox", tmp_path / "summary.json"
    inbox.mkdir()  # empty: a watched folder may start so
    command = [
        sys.executable,
        str(ROOT / "run.py"),
        "-i",
        str(inbox),
        "-o",
        str(tmp_path / "o"),
        "--blur",
        "--watch",
        "--summary",
        str(summary),
    ]
    process = subprocess.Popen(command, stderr=subprocess.PIPE, text=True, cwd=ROOT)
    lines = []
    try:
        for line in process.stderr:
            lines.append(line)
            if "watching" in line:
                break
        os.kill(process.pid, signal.SIGTERM)
        _, err = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 143, "".join(lines) + err
    assert json.loads(summary.read_text())["files"] == []
