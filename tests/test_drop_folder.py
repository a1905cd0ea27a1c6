"""A drop folder that never loses a file (--watch --delete-input), tried as a hostile tester
would: the real watcher process, real copies (slow, stalled, under way at the start, held
open), rewrites, files dropped again, kill -9 and restarts, two watchers on one folder. After
every event: no input is ever deleted without a whole output made from its last content
(tests/dropfolder.py checks it from the files themselves, not from the tool's ledger)."""

from __future__ import annotations

import json
import random
import signal
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from operations.jobs.drop_folder import DropFolder, DropSettings
from operations.jobs.job import FileResult, JobSettings, PhotoJob
from operations.jobs.ledger import Ledger
from tests.dropfolder import Inbox, Watching, photo, video, wait_for
from tests.test_watch import _pipeline

SETTLE = 0.4


@pytest.fixture
def drop(tmp_path: Path) -> Iterator[tuple[Inbox, Callable[..., Watching]]]:
    """An empty drop folder, and a maker of watchers on it (all killed at the end)."""
    inbox = Inbox(tmp_path / "in", tmp_path / "out")
    inbox.folder.mkdir()
    watchers: list[Watching] = []

    def watcher(*args: str, name: str = "watcher") -> Watching:
        made = Watching(inbox.folder, inbox.output, *args, settle=SETTLE, log=tmp_path / name)
        watchers.append(made)
        return made

    yield inbox, watcher
    for made in watchers:
        if made.process is not None and made.process.poll() is None:
            made.process.kill()
            made.process.wait()


def _rows(summary: Path) -> dict[str, list[dict]]:
    rows: dict[str, list[dict]] = {}
    for row in json.loads(summary.read_text())["files"]:
        rows.setdefault(Path(row["input"]).name, []).append(row)
    return rows


def _empty(inbox: Inbox) -> bool:
    inbox.check()
    return not any(inbox.folder.iterdir())


def test_photos_copied_every_way_are_deleted_only_once_made_whole(drop, tmp_path: Path) -> None:
    inbox, watcher = drop
    summary = tmp_path / "summary.json"
    inbox.copy("whole.jpg", photo(1))  # there at the start
    under_way = threading.Thread(  # a slow copy already under way when the watcher starts
        target=inbox.copy, args=("under_way.jpg", photo(2)), kwargs={"chunks": 6, "pause": 0.3}
    )
    under_way.start()
    watch = watcher("--summary", str(summary))
    watch.start()
    watch.wait_ready()
    under_way.join()
    inbox.copy("slow.jpg", photo(3), chunks=4, pause=0.3)  # pauses shorter than the settle
    inbox.copy("stalled.jpg", photo(4), stop_at=0.5)  # a stall far past the settle time ...
    assert wait_for(lambda: "stalled.jpg: kept; tried again when it changes" in watch.text())
    assert "failed stalled.jpg: truncated (a copy not finished?)" in watch.text()
    assert (inbox.folder / "stalled.jpg").exists()  # ... read, refused, kept
    inbox.finish("stalled.jpg", chunks=2, pause=0.2)  # the copy goes on: taken again
    inbox.copy("held.jpg", photo(5), chunks=2, pause=2.5, keep_open=True)  # a local copy
    assert wait_for(lambda: _empty(inbox), 60), sorted(inbox.folder.iterdir())
    inbox.copy("whole.jpg", photo(6))  # a new file under a name already done
    assert wait_for(lambda: _empty(inbox), 60)
    assert watch.stop() == 143
    assert inbox.violations == [] and inbox.events > 10
    outputs = sorted(p.name for p in inbox.output.iterdir() if not p.name.startswith("."))
    assert outputs == [
        "held.png",
        "slow.png",
        "stalled.png",
        "under_way.png",
        "whole-2.png",
        "whole.png",
    ]
    for name, versions in inbox.history.items():
        assert inbox.made(versions[-1]), name  # every last content made, whole
    rows = _rows(summary)
    assert [r["output"].endswith("whole-2.png") for r in rows["whole.jpg"]] == [False, True]
    assert (
        "a new file under a name already done: written as whole-2.png"
        in (rows["whole.jpg"][1]["warnings"][0])
    )
    assert "whole.jpg: a new file under a name already done" in watch.text()
    for name, versions in rows.items():
        assert [r["status"] for r in versions] == ["ok"] * len(versions), name
        assert all(r["extra"].get("input_deleted") for r in versions), name
    # The held copy was never read while its writer had it open (the truncated one was read
    # only because its writer had closed it): one try, whole.
    assert "held.jpg: kept" not in watch.text() and "failed held.jpg" not in watch.text()


def test_videos_cut_short_are_kept_until_their_copy_ends(drop, tmp_path: Path) -> None:
    inbox, watcher = drop
    summary = tmp_path / "summary.json"
    watch = watcher("--summary", str(summary))
    watch.start()
    watch.wait_ready()
    clips = {"index_first.mp4": video(1, container="mp4"), "stream.ts": video(2, container="ts")}
    for name, clip in clips.items():
        # Stopped at a 4 KiB boundary, as copies stop: a partial clip that still plays.
        inbox.copy(name, clip, stop_at=4096 * (len(clip.data) // 8192) / len(clip.data))
        assert wait_for(lambda n=name: f"{n}: input kept: incomplete:" in watch.text(), 60)
        assert (inbox.folder / name).exists()
        time.sleep(1.0)  # it stays kept while nothing changes
        inbox.check()
        assert (inbox.folder / name).exists()
        inbox.finish(name, chunks=2, pause=0.2)
    assert wait_for(lambda: _empty(inbox), 90), watch.text()
    assert watch.stop() == 143
    assert inbox.violations == []
    for name, clip in clips.items():
        assert inbox.made(clip), name  # every frame of the whole clip
    assert "stream.ts: cut short: it ends inside a 188-byte packet" in watch.text()
    assert "index_first.mp4: ends early:" in watch.text()
    rows = _rows(summary)
    for name in clips:
        (row,) = rows[name]  # tried again under the same names: one row, the last
        assert row["status"] == "ok" and row["extra"]["input_deleted"]
        assert row["extra"]["video"]["frames_missing"] == 0


def test_a_rewrite_after_the_output_is_written_keeps_the_input(tmp_path: Path) -> None:
    """The rewrite lands between the job's end and the deletion: the input's bytes are read
    again just before it goes, and a rewrite that keeps its size and time is still seen."""
    import os

    source = tmp_path / "in" / "a.jpg"
    source.parent.mkdir()
    first = photo(1).data
    source.write_bytes(first)
    out = tmp_path / "out"
    job = PhotoJob(source, Path("a.jpg"), (out / "a.png",))
    result = job.process(_pipeline(), JobSettings(ledger=True, output_folder=out))
    assert result.status == "ok"
    ledger = Ledger(out)
    ledger.refresh()
    (made,) = ledger.made(Path("a.jpg"))
    drop = DropFolder(
        DropSettings(source.parent, out, delete_input=True),
        engine=None,  # type: ignore[arg-type]
        report=lambda job, result: None,
        namer=None,  # type: ignore[arg-type]
        make_job=None,  # type: ignore[arg-type]
    )
    info = source.stat()
    changed = bytearray(first)
    changed[len(changed) // 2] ^= 0xFF  # same size ...
    with source.open("r+b") as f:  # ... same inode ...
        f.write(changed)
    os.utime(source, ns=(info.st_atime_ns, info.st_mtime_ns))  # ... same time: only the bytes
    drop._earn(job, result, made)
    assert source.exists()
    assert result.extra["input_kept"] == "it changed after it was read: done again once it settles"
    source.write_bytes(first)  # the content that was made, back again
    os.utime(source, ns=(info.st_atime_ns, info.st_mtime_ns))
    fresh = FileResult(str(source), str(out / "a.png"), "ok")
    assert source.stat().st_ino == made.record.ino  # same file, rewritten in place
    drop._earn(job, fresh, made)
    assert not source.exists() and fresh.extra["input_deleted"]
    (out / "a.png").write_bytes(b"not the output that was written")
    source.write_bytes(first)
    again = FileResult(str(source), str(out / "a.png"), "ok")
    drop._earn(job, again, made)  # its output replaced: no longer proof of anything
    assert source.exists()
    assert again.extra["input_kept"] == "its outputs are no longer all there as they were written"


def test_kill_9_at_random_points_then_a_restart(drop, tmp_path: Path) -> None:
    inbox, watcher = drop
    rng = random.Random(33)
    summary = tmp_path / "summary.json"
    watch = watcher("--summary", str(summary))
    count = 0
    for _ in range(4):
        watch.start()
        deadline = time.monotonic() + rng.uniform(0.5, 4.0)
        while time.monotonic() < deadline:
            count += 1
            inbox.copy(f"p{count}.jpg", photo(count), chunks=rng.choice([1, 3]), pause=0.1)
        watch.kill9()  # at a random point: reading, processing, writing, deleting
        inbox.check()
    watch.start()  # the restart: what was done before the kills is deleted, the rest made
    assert wait_for(lambda: _empty(inbox), 120), watch.text()
    assert watch.stop() == 143
    assert inbox.violations == [] and count >= 4
    for name, versions in inbox.history.items():
        assert inbox.made(versions[-1]), name
    names = sorted(p.name for p in inbox.output.iterdir() if not p.name.startswith("."))
    assert names == sorted(f"p{n}.png" for n in range(1, count + 1))  # each once: no p1-2.png
    assert not [p for p in inbox.output.iterdir() if p.name.startswith(".bgs-")]  # swept
    rows = _rows(summary)  # the last run's: done before (deleted now) or made now
    assert all(r["extra"].get("input_deleted") for versions in rows.values() for r in versions)


def test_two_watchers_share_a_folder(drop, tmp_path: Path) -> None:
    inbox, watcher = drop
    first, second = watcher(name="first"), watcher(name="second")
    first.start()
    second.start()
    first.wait_ready()
    second.wait_ready()
    for n in range(8):
        inbox.copy(f"p{n}.jpg", photo(n), chunks=2, pause=0.05)
    assert wait_for(lambda: _empty(inbox), 90), first.text() + second.text()
    assert first.stop() == 143 and second.stop() == 143
    assert inbox.violations == []
    names = sorted(p.name for p in inbox.output.iterdir() if not p.name.startswith("."))
    assert names == [f"p{n}.png" for n in range(8)]  # each made once, by one or the other
    ledger = Ledger(inbox.output)
    ledger.refresh()
    assert all(len(ledger.made(Path(f"p{n}.jpg"))) == 1 for n in range(8))
    assert "Traceback" not in first.text() + second.text()


def test_a_restart_keeps_inputs_whose_outputs_it_has_no_record_of(drop, tmp_path: Path) -> None:
    """Outputs made before the ledger (or by another tool): skipped as any batch resumes, and
    the input kept, since nothing proves what they were made from."""
    inbox, watcher = drop
    inbox.copy("old.jpg", photo(1))
    inbox.output.mkdir()
    (inbox.output / "old.png").write_bytes(b"made by something else")
    summary = tmp_path / "summary.json"
    watch = watcher("--summary", str(summary))
    watch.start()
    kept = "old.jpg: input kept: its outputs exist, but the ledger"
    assert wait_for(lambda: kept in watch.text())
    assert watch.stop(signal.SIGINT) == 130
    (row,) = _rows(summary)["old.jpg"]
    assert row["status"] == "skipped" and (inbox.folder / "old.jpg").exists()
    assert (inbox.output / "old.png").read_bytes() == b"made by something else"
