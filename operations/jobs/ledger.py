"""A watched folder's ledger: which content of which input made which outputs.

The ledger is a hidden file in the output folder, ``.backgroundswap-ledger.jsonl``: one JSON
object a line, appended under a lock (several threads, processes or machines may write), each
line written whole and made durable before the outputs it names are renamed into place. So
whatever kills a run (kill -9, a power cut), an output that exists has its line, and a restart
can tell an input that is done (its content is the one recorded, its outputs are the files
recorded) from one that is not, and delete only the first kind.

Two kinds of line::

    {"made": "shoot/a.jpg", "input": {"size": 5012, "mtime_ns": …, "ino": …, "blake2b": "…"},
     "outputs": [["shoot/a.png", 81234, 1733480000123456789]], "complete": true, "at": "…"}
    {"deleted": "shoot/a.jpg", "input": {…}, "at": "…"}

Paths are relative (the input's to the input folder, the outputs' to the output folder),
percent-encoded bytes, so any file name round-trips. ``complete`` is false when the job saw
signs of a file cut short (a video ending before what its container states); such an input is
never deleted, and its outputs are made again when it changes. ``"corrected": true`` (only
then present) marks outputs made with a correction from the review page. A line that is not
whole (a write cut by a crash) is skipped when read.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote_to_bytes

from operations.media.files import SourceChanged, Written, changed, write_atomic

try:
    import fcntl
except ImportError:  # Windows: appends are not coordinated between processes there
    fcntl = None  # type: ignore[assignment]

LEDGER_NAME = ".backgroundswap-ledger.jsonl"
_CHUNK = 1 << 20  # bytes read at a time when a file is hashed from disk


def digest_bytes(data: bytes) -> str:
    """The content's fingerprint: BLAKE2b, 128 bits (hashlib releases the GIL for it)."""
    return hashlib.blake2b(data, digest_size=16).hexdigest()


def digest_file(path: Path) -> tuple[str, os.stat_result]:
    """A file's fingerprint (see :func:`digest_bytes`), read from disk, and what the file was.

    Raises:
        SourceChanged: it changed while it was read.
        OSError: it cannot be read.
    """
    digest = hashlib.blake2b(digest_size=16)
    with open(path, "rb") as f:
        before = os.fstat(f.fileno())
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
        after = os.fstat(f.fileno())
    if (how := changed(before, after)) is not None:
        raise SourceChanged(f"still being copied ({how} while it was read)")
    return digest.hexdigest(), after


@dataclass(frozen=True)
class InputRecord:
    """What a job read: the file's size, modification time and inode, and its content's
    fingerprint. A file "still holds" the record when all four are the same."""

    size: int
    mtime_ns: int
    ino: int
    blake2b: str

    @classmethod
    def of(cls, info: os.stat_result, digest: str) -> InputRecord:
        return cls(info.st_size, info.st_mtime_ns, info.st_ino, digest)

    def same_stat(self, info: os.stat_result) -> bool:
        """``info`` (a stat of the path) shows the same file, unchanged (the content itself is
        :meth:`holds`'s to check)."""
        return (info.st_size, info.st_mtime_ns, info.st_ino) == (
            self.size,
            self.mtime_ns,
            self.ino,
        )

    def holds(self, path: Path) -> bool:
        """``path`` holds exactly the content recorded: same size, time and inode, and the same
        bytes (read again)."""
        try:
            if not self.same_stat(path.stat()):
                return False
            digest, info = digest_file(path)
        except (OSError, SourceChanged):
            return False
        return digest == self.blake2b and self.same_stat(info)

    def to_json(self) -> dict[str, object]:
        return {
            "size": self.size,
            "mtime_ns": self.mtime_ns,
            "ino": self.ino,
            "blake2b": self.blake2b,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> InputRecord:
        return cls(int(data["size"]), int(data["mtime_ns"]), int(data["ino"]), str(data["blake2b"]))


@dataclass(frozen=True)
class Made:
    """One job's line: the input (relative to the input folder) as it was read, and the outputs
    (relative to the output folder) as they were written from it."""

    input: Path
    record: InputRecord
    outputs: tuple[tuple[Path, int, int], ...]  # (relative name, size, mtime_ns)
    complete: bool = True
    corrected: bool = False  # made with a correction from the review page (its line says so)

    @classmethod
    def of(
        cls,
        relative: Path,
        record: InputRecord,
        written: list[Written],
        folder: Path,
        *,
        complete: bool = True,
        corrected: bool = False,
    ) -> Made:
        outputs = tuple((w.path.relative_to(folder), w.size, w.mtime_ns) for w in written)
        return cls(relative, record, outputs, complete, corrected)

    @property
    def names(self) -> tuple[Path, ...]:
        return tuple(name for name, _, _ in self.outputs)

    def whole(self, folder: Path) -> bool:
        """Every output is still in ``folder``, the very file that was written (size and time)."""
        return all(
            Written(folder / name, size, mtime).still_there() for name, size, mtime in self.outputs
        )


def _name(path: Path) -> str:
    return quote(os.fsencode(path), safe="/")


def _path(text: str) -> Path:
    return Path(os.fsdecode(unquote_to_bytes(text)))


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


class Ledger:
    """The ledger of the output folder ``folder`` (see the module's notes).

    Writing needs no reading: a job appends its line. The batch reads it (:meth:`refresh` picks
    up what other threads and processes appended since) to decide what is done.
    """

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.path = folder / LEDGER_NAME
        self._offset = 0
        self._made: dict[Path, list[Made]] = {}  # input → its lines, oldest first
        self._owners: dict[str, Path] = {}  # an output's name (case-folded) → the input it is of

    def add(self, made: Made) -> None:
        """Append a job's line (before its outputs are renamed into place)."""
        line = {
            "made": _name(made.input),
            "input": made.record.to_json(),
            "outputs": [[_name(n), size, mtime] for n, size, mtime in made.outputs],
            "complete": made.complete,
            **({"corrected": True} if made.corrected else {}),
            "at": _now(),
        }
        self._append(line)

    def deleted(self, relative: Path, record: InputRecord) -> None:
        """Record that the input ``relative`` (holding ``record``) was deleted."""
        self._append({"deleted": _name(relative), "input": record.to_json(), "at": _now()})

    def _append(self, line: dict[str, object]) -> None:
        data = (json.dumps(line, separators=(",", ":")) + "\n").encode()
        with self._held() as fd:
            end = os.fstat(fd).st_size
            if end and os.pread(fd, 1, end - 1) != b"\n":
                data = b"\n" + data  # after a line a crash cut: start a line of our own
            written = 0
            while written < len(data):
                written += os.write(fd, data[written:])
            os.fsync(fd)

    @contextlib.contextmanager
    def _held(self) -> Iterator[int]:
        """The ledger open for appending and locked: the file now at its path (one another
        process compacted while this one waited for the lock is let go, and the new one taken)."""
        self.folder.mkdir(parents=True, exist_ok=True)
        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)
            try:
                with _locked(fd):
                    try:
                        current = os.stat(self.path).st_ino == os.fstat(fd).st_ino
                    except FileNotFoundError:
                        current = False
                    if current:
                        yield fd
                        return
            finally:
                os.close(fd)

    def compact(self) -> int:
        """Rewrite the ledger with only the lines still of use: those whose outputs are all
        still there as written (a line for outputs since deleted or replaced proves nothing).
        Called before the first :meth:`refresh`. Returns how many lines were dropped."""
        with self._held() as fd:
            with open(fd, "rb", closefd=False) as f:
                raw = f.read().splitlines()
            kept, seen = [], set()
            for line in raw:
                made = _parse(line)
                if made is not None and line not in seen and made.whole(self.folder):
                    kept.append(line)
                    seen.add(line)
            if len(kept) < len(raw):
                text = b"".join(line + b"\n" for line in kept)
                write_atomic(self.path, lambda f: f.write(text))  # replaces it, locked
        return len(raw) - len(kept)

    def refresh(self) -> None:
        """Read what was appended since the last read (by anyone)."""
        try:
            with open(self.path, "rb") as f:
                f.seek(self._offset)
                data = f.read()
        except FileNotFoundError:
            return
        whole = data[: data.rfind(b"\n") + 1]  # a line still being written waits for next time
        self._offset += len(whole)
        for raw in whole.splitlines():
            made = _parse(raw)
            if made is not None:
                self._made.setdefault(made.input, []).append(made)
                self._owners.update((_folded(name), made.input) for name in made.names)

    def made(self, relative: Path) -> list[Made]:
        """The lines of the input ``relative``, oldest first (as read by :meth:`refresh`)."""
        return self._made.get(relative, [])

    def owner(self, name: Path) -> Path | None:
        """The input whose output ``name`` (relative) was last recorded, if any."""
        return self._owners.get(_folded(name))

    def latest(self, relative: Path, names: tuple[Path, ...]) -> Made | None:
        """The newest line of the input ``relative`` that wrote ``names`` (relative outputs)."""
        return next((m for m in reversed(self.made(relative)) if m.names == names), None)


def _folded(name: Path) -> str:
    return name.as_posix().casefold()


def _parse(raw: bytes) -> Made | None:
    """A ``made`` line (``None`` for a ``deleted`` line, or one that is not whole)."""
    try:
        line = json.loads(raw)
        if "made" not in line:
            return None
        outputs = tuple((_path(n), int(size), int(mtime)) for n, size, mtime in line["outputs"])
        return Made(
            _path(line["made"]),
            InputRecord.from_json(line["input"]),
            outputs,
            bool(line["complete"]),
            bool(line.get("corrected", False)),
        )
    except (ValueError, KeyError, TypeError):
        return None


@contextlib.contextmanager
def _locked(fd: int) -> Iterator[None]:
    if fcntl is None:
        yield
        return
    fcntl.flock(fd, fcntl.LOCK_EX)
    try:
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
