"""A photographer's side of a drop folder, for the tests and the soak script
(``scripts/soak_drop_folder.py``): copies that are quick, slow, stalled or already under way,
rewrites, files dropped again, deletions, and a watcher killed and restarted. After every event
the invariant is checked:

    no input is ever deleted without a whole output made from its last content.

Each content (a photo, a video) has a pixel size of its own, so an output is traced to the very
content it was made from by its size (and a video's frame count), without trusting the tool's
ledger; "whole" means it decodes to the end (every frame of a video).
"""

from __future__ import annotations

import io
import itertools
import os
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
_sizes = itertools.count(1)


@dataclass(frozen=True)
class Content:
    """One version of a file: its bytes, and what a whole output made from it looks like."""

    data: bytes
    size: tuple[int, int]  # width, height: this content's alone
    frames: int | None = None  # a video's
    video: bool = False


def _size() -> tuple[int, int]:
    n = next(_sizes)
    return 48 + 2 * (n % 40), 32 + 2 * (n // 40)  # even: videos' 4:2:0 needs it


def photo(seed: int = 0) -> Content:
    """A JPEG of a size of its own (a soft disc on noise: something for the model to find)."""
    width, height = _size()
    rng = np.random.default_rng(seed)
    image = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
    y, x = np.mgrid[0:height, 0:width]
    disc = np.hypot(y - height / 2, x - width / 2) < min(width, height) / 3
    image[disc] = (220, 180, 150)
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="JPEG", quality=90)
    return Content(buffer.getvalue(), (width, height))


def video(seed: int = 0, *, container: str = "mp4", frames: int = 24) -> Content:
    """A short clip (H.264, 24 fps) of a size of its own; MP4s with their index first (a copy
    cut short still plays: the hard case), MPEG-TS with no stated length at all."""
    import av

    width, height = _size()
    rng = np.random.default_rng(seed)
    options = {"movflags": "+faststart"} if container == "mp4" else {}
    with tempfile.TemporaryDirectory() as folder:  # faststart rewrites the file: a real one
        path = Path(folder) / f"clip.{container}"
        with av.open(str(path), "w", options=options) as out:
            stream = out.add_stream("libx264", rate=24)
            stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
            stream.time_base = Fraction(1, 24)
            for index in range(frames):
                image = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
                frame = av.VideoFrame.from_ndarray(image, format="rgb24")
                frame.pts = index
                out.mux(stream.encode(frame))
            out.mux(stream.encode(None))
        data = path.read_bytes()
    return Content(data, (width, height), frames, video=True)


def _whole(path: Path) -> tuple[tuple[int, int], int | None] | None:
    """An output's size (and frame count), if it decodes to the end; ``None`` if it does not."""
    try:
        if path.suffix in (".mp4", ".mov", ".webm"):
            import av

            with av.open(str(path)) as container:
                stream = container.streams.video[0]
                count = sum(1 for _ in container.decode(stream))
                return (stream.width, stream.height), count
        with Image.open(path) as image:
            image.load()
            return image.size, None
    except Exception:  # noqa: BLE001 - anything that does not decode is not whole
        return None


@dataclass
class Inbox:
    """The drop folder as the photographer fills it, and the invariant checked on demand."""

    folder: Path
    output: Path
    history: dict[str, list[Content]] = field(default_factory=dict)  # name → versions written
    removed: set[str] = field(default_factory=set)  # names the photographer deleted
    violations: list[str] = field(default_factory=list)
    events: int = 0
    _seen: dict[tuple[str, int, int], object] = field(default_factory=dict)
    _made: set[tuple[int, int]] = field(default_factory=set)  # contents (by size) seen made

    def copy(
        self,
        name: str,
        content: Content,
        *,
        chunks: int = 1,
        pause: float = 0.0,
        keep_open: bool = False,
        stop_at: float | None = None,
    ) -> None:
        """Copy ``content`` in as ``name``: in ``chunks`` parts with ``pause`` seconds between
        them; with ``keep_open`` the writer holds the file open throughout (a local copy), else
        it closes and reopens it (a copy whose writer is on another machine, which no lease can
        see). ``stop_at``: stop after that fraction of the bytes (the rest comes with
        :meth:`finish`)."""
        path = self.folder / name
        self.history.setdefault(name, []).append(content)
        self.removed.discard(name)
        data = content.data
        end = len(data) if stop_at is None else int(len(data) * stop_at)
        bounds = np.linspace(0, end, chunks + 1).astype(int)
        handle = None
        try:
            for index, (a, b) in enumerate(itertools.pairwise(bounds)):
                if handle is None:
                    handle = path.open("wb" if index == 0 else "r+b")
                    handle.seek(a)
                handle.write(data[a:b])
                handle.flush()
                if not keep_open:
                    handle.close()
                    handle = None
                self._check_still_there(path, name, a)
                if index < chunks - 1:
                    time.sleep(pause)
                    self.check()
        finally:
            if handle is not None:
                handle.close()
        self._check_still_there(path, name, end)
        self.check()

    def finish(self, name: str, *, chunks: int = 1, pause: float = 0.0) -> None:
        """Write the rest of a copy stopped part way (:meth:`copy` with ``stop_at``)."""
        path = self.folder / name
        data = self.history[name][-1].data
        start = path.stat().st_size
        bounds = np.linspace(start, len(data), chunks + 1).astype(int)
        for index, (a, b) in enumerate(itertools.pairwise(bounds)):
            with path.open("r+b") as handle:
                handle.seek(a)
                handle.write(data[a:b])
            self._check_still_there(path, name, b)
            if index < chunks - 1:
                time.sleep(pause)
                self.check()
        self.check()

    def remove(self, name: str) -> None:
        """The photographer deletes a file of theirs."""
        path = self.folder / name
        if path.exists():
            path.unlink()
            self.removed.add(name)
        self.check()

    def _check_still_there(self, path: Path, name: str, written: int) -> None:
        """A copy's bytes must not vanish under it: a file deleted while it was being written
        loses what was written after."""
        try:
            size = path.stat().st_size
        except FileNotFoundError:
            self.violations.append(f"{name}: deleted while it was being copied ({written} bytes)")
            return
        if size < written:
            self.violations.append(f"{name}: shrank while it was being copied")

    def check(self) -> None:
        """The invariant, now: every input gone (and not deleted by the photographer) has a
        whole output made from its last content."""
        self.events += 1
        for name, versions in self.history.items():
            if name in self.removed or (self.folder / name).exists():
                continue
            if not self.made(versions[-1]):
                self.violations.append(
                    f"{name}: deleted without a whole output of its last content "
                    f"({versions[-1].size[0]}×{versions[-1].size[1]})"
                )
                self.removed.add(name)  # said once

    def made(self, content: Content) -> bool:
        """Some output is a whole result of ``content`` (once seen, remembered: the invariant
        is about the moment an input goes)."""
        if content.size in self._made:
            return True
        want = (content.size, content.frames)
        for path in self.output.rglob("*"):
            if path.name.startswith(".") or not path.is_file() or ".mask." in path.name:
                continue
            info = path.stat()
            key = (str(path), info.st_size, info.st_mtime_ns)
            if key not in self._seen:
                self._seen[key] = _whole(path)
            if self._seen[key] == want:
                self._made.add(content.size)
                return True
        return False


class Watching:
    """A watcher process on the drop folder (run.py --watch --delete-input), started, killed
    and restarted at will; its stderr goes to a file beside the output."""

    def __init__(self, inbox: Path, output: Path, *args: str, settle: float = 0.4, log: Path):
        self.command = [
            sys.executable,
            str(ROOT / "run.py"),
            "-i",
            str(inbox),
            "-o",
            str(output),
            "--blur",
            "--watch",
            "--delete-input",
            "--settle",
            str(settle),
            "--workers",
            "2",
            *args,
        ]
        self.log = log
        self.process: subprocess.Popen | None = None

    def start(self, *more: str) -> None:
        # faulthandler: a watcher that does not stop is sent SIGABRT and says where it hung.
        env = {**os.environ, "PYTHONFAULTHANDLER": "1"}
        with self.log.open("ab") as err:
            self.process = subprocess.Popen(
                [*self.command, *more], stderr=err, stdout=subprocess.DEVNULL, cwd=ROOT, env=env
            )

    def wait_ready(self, seconds: float = 60.0) -> None:
        """Until it says it is watching."""
        deadline = time.monotonic() + seconds
        while "watching" not in self.text():
            assert self.process is not None and self.process.poll() is None, self.text()
            assert time.monotonic() < deadline, self.text()
            time.sleep(0.1)

    def kill9(self) -> None:
        assert self.process is not None
        self.process.kill()
        self.process.wait()

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 60) -> int:
        assert self.process is not None
        os.kill(self.process.pid, sig)
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.send_signal(signal.SIGABRT)  # every thread's stack into the log
            self.process.wait(timeout=30)
            raise AssertionError(f"did not stop in {timeout} s:\n{self.text()}") from None

    def text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""


def wait_for(predicate, seconds: float = 60.0, step: float = 0.1) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(step)
    return predicate()
