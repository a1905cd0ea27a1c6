"""--watch's parts: the watcher (a file is taken once it has settled, again when it changes,
never while another program has it open), the ledger, the container check that tells a cut
copy, and a job that writes nothing when its source changed under it. The drop folder as a
whole (real processes, real copies, kill -9) is tests/test_drop_folder.py."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from operations.jobs.job import JobSettings, PhotoJob
from operations.jobs.ledger import LEDGER_NAME, InputRecord, Ledger, Made, digest_bytes
from operations.jobs.watch import Watcher, ignore_lease_breaks, open_elsewhere
from operations.media.containers import cut_short_bytes
from operations.media.decode import decode
from operations.media.files import ImageError, StagedOutputs, Written
from operations.pipeline import Pipeline
from tests.dropfolder import photo, video
from tests.helpers import ROOT, DiscSegmenter, save_rgb


def test_a_file_is_taken_once_it_has_settled_and_again_when_it_changes(tmp_path: Path) -> None:
    (tmp_path / "there.jpg").write_bytes(b"x")  # there at the start: it settles too
    watcher = Watcher(tmp_path, settle=0.3)
    growing = tmp_path / "new.jpg"
    growing.write_bytes(b"half")
    assert watcher.poll() == []  # first seen
    time.sleep(0.15)
    with growing.open("ab") as f:
        f.write(b" and the rest")  # still growing: the clock starts again
    assert watcher.poll() == []
    time.sleep(0.35)
    assert watcher.poll() == [Path("new.jpg"), Path("there.jpg")]  # unchanged for the settle
    assert watcher.poll() == []  # once
    growing.write_bytes(b"a new version")  # a rewrite: taken again once it settles
    assert watcher.poll() == []
    time.sleep(0.35)
    assert watcher.poll() == [Path("new.jpg")]
    (tmp_path / "there.jpg").unlink()  # deleted (by the drop folder, say) ...
    assert watcher.poll() == []
    (tmp_path / "there.jpg").write_bytes(b"x")  # ... then dropped again: a new arrival
    time.sleep(0.35)
    assert watcher.poll() == []  # first seen again
    time.sleep(0.35)
    assert watcher.poll() == [Path("there.jpg")]
    gone = tmp_path / "gone.jpg"
    gone.write_bytes(b"soon deleted")
    assert watcher.poll() == []
    gone.unlink()
    time.sleep(0.35)
    assert watcher.poll() == []  # vanished before it settled: forgotten, no error
    (tmp_path / ".copying.part").write_bytes(b"hidden")
    time.sleep(0.35)
    assert watcher.poll() == [] and watcher.poll() == []  # hidden files never


def test_a_file_another_program_has_open_is_not_taken(tmp_path: Path) -> None:
    assert ignore_lease_breaks(), "the tests run on the main thread of a POSIX system"
    path = tmp_path / "copying.jpg"
    path.write_bytes(b"the first part")
    assert not open_elsewhere(path)
    writer = subprocess.Popen(  # a copier that stalls with the file open
        [sys.executable, "-c", f"f = open({str(path)!r}, 'ab'); import time; time.sleep(30)"]
    )
    try:
        time.sleep(0.5)  # it has opened it
        assert open_elsewhere(path)
        watcher = Watcher(tmp_path, settle=0.2)
        watcher.poll()
        time.sleep(0.3)
        assert watcher.poll() == []  # settled in size and time, but still open: not taken
        assert watcher.open == {Path("copying.jpg")}
    finally:
        writer.kill()
        writer.wait()
    assert watcher.poll() == [Path("copying.jpg")]  # closed: taken
    assert not open_elsewhere(path)


def test_the_ledger_reads_what_was_appended_and_skips_a_torn_line(tmp_path: Path) -> None:
    source = save_rgb(tmp_path / "in" / "a.jpg")
    out = tmp_path / "out"
    output = out / "sub" / "a b.png"
    output.parent.mkdir(parents=True)
    output.write_bytes(b"result")
    info = source.stat()
    record = InputRecord.of(info, digest_bytes(source.read_bytes()))
    made = Made.of(Path("a.jpg"), record, [Written(output, 6, output.stat().st_mtime_ns)], out)
    ledger = Ledger(out)
    ledger.add(made)
    with (out / LEDGER_NAME).open("ab") as f:
        f.write(b'{"made": "torn.jpg", "input": {"si')  # a crash in the middle of a line
    reader = Ledger(out)
    reader.refresh()
    assert reader.made(Path("a.jpg")) == [made]
    assert reader.owner(Path("SUB/A B.png")) == Path("a.jpg")  # names compared case-folded
    assert reader.latest(Path("a.jpg"), (Path("sub/a b.png"),)) == made
    assert made.whole(out) and record.holds(source)
    ledger.add(made)  # appended by another writer: read from where the last read stopped
    reader.refresh()
    assert reader.made(Path("a.jpg")) == [made, made]
    output.write_bytes(b"resulT")  # same size, new time: no longer the file written
    assert not made.whole(out)
    source.write_bytes(source.read_bytes())  # same bytes, new time
    assert not record.holds(source)


@pytest.mark.parametrize("container", ["mp4", "ts", "mkv", "avi"])
def test_a_video_cut_short_is_told_by_its_container(container: str) -> None:
    clip = video(container=container).data
    suffix = f".{container}"
    assert cut_short_bytes(clip, suffix) is None
    # Where copies stop: after a whole number of their chunks (here 4 KiB, never a multiple
    # of a 188-byte MPEG-TS packet), or a few bytes before the end.
    for cut in (4096 * (len(clip) // 8192), len(clip) - 3):
        assert cut_short_bytes(clip[:cut], suffix) is not None, (container, cut)


def test_a_photo_cut_short_is_truncated_not_corrupt() -> None:
    from pillow_heif import register_heif_opener

    register_heif_opener()
    image = Image.fromarray(np.zeros((40, 60, 3), np.uint8))
    for fmt in ("HEIF", "AVIF", "WEBP"):
        buffer = io.BytesIO()
        image.save(buffer, format=fmt)
        data = buffer.getvalue()
        with pytest.raises(ImageError, match=r"^truncated \(a copy not finished\?\)") as info:
            decode(Path(f"x.{fmt.lower()}"), data=data[: len(data) // 2])
        assert info.value.incomplete, fmt


def _pipeline(on_swap=None) -> Pipeline:
    from operations.stages.background import BackgroundSettings, BackgroundSource

    source = BackgroundSource(BackgroundSettings(colour=(255, 255, 255)))
    pipeline = Pipeline(DiscSegmenter(), source)
    if on_swap is not None:
        swap = pipeline.swap

        def swapping(*args, **kwargs):
            on_swap()
            return swap(*args, **kwargs)

        pipeline.swap = swapping  # type: ignore[method-assign]
    return pipeline


def test_a_job_whose_source_changes_while_it_is_processed_writes_nothing(tmp_path: Path) -> None:
    source = tmp_path / "in" / "a.jpg"
    source.parent.mkdir()
    source.write_bytes(photo().data)
    out = tmp_path / "out"
    job = PhotoJob(source, Path("a.jpg"), (out / "a.png", out / "a.mask.png"))

    def copy_goes_on() -> None:  # the copier writes more while the model works
        with source.open("ab") as f:
            f.write(b"\0" * 100)

    settings = JobSettings(save_mask=True, ledger=True, output_folder=out)
    result = job.process(_pipeline(copy_goes_on), settings)
    assert result.status == "failed"
    assert result.error == "changed while it was processed (size changed): nothing written"
    assert sorted(p.name for p in out.iterdir()) == []  # no output, no side file, no ledger
    result = job.process(_pipeline(), settings)  # unchanged now: made, and recorded
    assert result.status == "ok"
    ledger = Ledger(out)
    ledger.refresh()
    (made,) = ledger.made(Path("a.jpg"))
    assert made.names == (Path("a.png"), Path("a.mask.png")) and made.complete
    assert made.record.holds(source) and made.whole(out)


def test_a_job_writes_all_its_files_or_none(tmp_path: Path) -> None:
    name = "p" * 247  # 251 bytes with ".jpg"; with ".mask.png" its side file would be 256
    source = tmp_path / "in" / f"{name}.jpg"
    source.parent.mkdir()
    source.write_bytes(photo().data)
    out = tmp_path / "out"
    outputs = (out / f"{name}.png", out / f"{name}.mask.png")
    result = PhotoJob(source, Path(source.name), outputs).process(
        _pipeline(), JobSettings(save_mask=True)
    )
    assert result.status == "failed"
    assert "bytes, over the file system's limit of 255" in result.error
    assert not out.exists() or list(out.iterdir()) == []  # neither file, not even the main one


def test_a_rename_that_fails_takes_back_the_files_already_placed(tmp_path: Path) -> None:
    out = tmp_path / "out"
    outputs = [out / "a.png", out / "a.mask.png", out / "a.cutout.png"]
    (out / "a.cutout.png").mkdir(parents=True)  # a folder where the last side file goes
    with pytest.raises(OSError), StagedOutputs(outputs) as staged:
        for index in range(3):
            staged.write(index, lambda f: f.write(b"data"))
        staged.commit()
    assert sorted(p.name for p in out.iterdir()) == ["a.cutout.png"]  # the folder alone


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


def test_compacting_the_ledger_loses_no_line_appended_meanwhile(tmp_path: Path) -> None:
    import threading

    out = tmp_path / "out"
    out.mkdir()
    record = InputRecord(1, 2, 3, "ab" * 16)

    def line(n: int, *, keep: bool) -> Made:
        output = out / f"p{n}.png"
        output.write_bytes(b"x" * (n + 1))
        written = Written(output, n + 1, output.stat().st_mtime_ns)
        if not keep:
            output.unlink()  # its output since deleted: a line that proves nothing
        return Made.of(Path(f"p{n}.jpg"), record, [written], out)

    ledger = Ledger(out)
    for n in range(20):
        ledger.add(line(n, keep=n % 2 == 0))
    assert ledger.compact() == 10
    done = threading.Event()

    def compacting() -> None:
        while not done.is_set():
            Ledger(out).compact()

    threads = [threading.Thread(target=compacting) for _ in range(2)]
    for thread in threads:
        thread.start()
    try:
        for n in range(20, 120):  # appended while two others compact over and over
            ledger.add(line(n, keep=True))
    finally:
        done.set()
        for thread in threads:
            thread.join()
    reader = Ledger(out)
    reader.refresh()
    kept = [n for n in range(120) if reader.made(Path(f"p{n}.jpg"))]
    assert kept == [n for n in range(120) if n >= 20 or n % 2 == 0]
