"""A watched folder's arrivals: files taken once they have settled, and taken again when they
change.

Polling, on purpose: it sees files arriving over network shares and synced folders, where
inotify is silent, and a look at a folder twice a second costs nothing beside a photo's
processing. A file is taken when its size and modification time have not changed for
``settle`` seconds and, where the system can tell, no other program has it open (a copy under
way); hidden files (a copier's ``.part`` temporaries among them) never are. The files already
there when the watch starts settle the same way. A file taken before comes back when it changes
(a rewrite, a copy that went on after a stall, a new file dropped under a name already done),
once it has settled again; one that vanishes is forgotten.
"""

from __future__ import annotations

import errno
import os
import signal
import threading
import time
from collections.abc import Iterable
from pathlib import Path

from operations.media.files import find_inputs

try:
    import fcntl
except ImportError:  # Windows: no leases
    fcntl = None  # type: ignore[assignment]

POLL = 0.5  # seconds between looks at the folder
# Seconds a file must stay unchanged to count as whole: longer than the pauses of ordinary
# copies over Wi-Fi and SMB shares (a second or two), and twice the coarsest common
# modification-time step (FAT's 2 s), so a pause always spans a visible change; a drop folder
# waits that long once per file.
DEFAULT_SETTLE = 5.0
# Linux's F_SETLEASE (fcntl.h's F_LINUX_SPECIFIC_BASE + 0), which Python's fcntl has only on
# some versions.
_F_SETLEASE = getattr(fcntl, "F_SETLEASE", 1024)

Identity = tuple[int, int, int, int]  # size, mtime_ns, inode, ctime_ns


def identity(info: os.stat_result) -> Identity:
    """What tells one state of a file from another: a write changes the size or time, a new
    file under the same name (or a rename onto it) the inode, a chmod or a rename the ctime."""
    return (info.st_size, info.st_mtime_ns, info.st_ino, info.st_ctime_ns)


def ignore_lease_breaks() -> bool:
    """Let :func:`open_elsewhere` probe with leases: a lease broken while held (a program opens
    the file in that instant) sends SIGIO, whose default action ends the process. Only the main
    thread can change it; returns whether probing is possible."""
    if fcntl is None or not hasattr(signal, "SIGIO"):
        return False
    if signal.getsignal(signal.SIGIO) == signal.SIG_IGN:
        return True
    if threading.current_thread() is not threading.main_thread():
        return False
    signal.signal(signal.SIGIO, signal.SIG_IGN)
    return True


def open_elsewhere(path: Path) -> bool:
    """Whether another program has ``path`` open (a copy still under way), where the system can
    tell: Linux grants a write lease only on a file nobody else has open (a local file of ours;
    network shares and other owners' files cannot be asked, and answer ``False``). The lease
    is let go at once."""
    if fcntl is None or not hasattr(signal, "SIGIO"):
        return False
    if signal.getsignal(signal.SIGIO) != signal.SIG_IGN:
        return False  # see ignore_lease_breaks
    try:  # non-blocking: a lease somebody else holds would make a plain open wait for it
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except OSError as exc:
        return exc.errno == errno.EWOULDBLOCK
    try:
        fcntl.fcntl(fd, _F_SETLEASE, fcntl.F_WRLCK)
    except OSError as exc:
        return exc.errno in (errno.EAGAIN, errno.EWOULDBLOCK, errno.EBUSY)
    else:
        fcntl.fcntl(fd, _F_SETLEASE, fcntl.F_UNLCK)
        return False
    finally:
        os.close(fd)


class Watcher:
    """Files under ``root``, as paths relative to it, each once it has settled, and again each
    time it has changed and settled again.

    Args:
        root: the folder.
        recursive: look in sub-folders too.
        exclude: files and folders never taken (the output folder, the summary…).
        settle: seconds a file must stay unchanged.
    """

    def __init__(
        self,
        root: Path,
        *,
        recursive: bool = False,
        exclude: Iterable[Path] = (),
        settle: float = DEFAULT_SETTLE,
    ) -> None:
        self.root, self.recursive, self.exclude = root, recursive, list(exclude)
        self.settle = settle
        self.taken: dict[Path, Identity] = {}  # what each file was when it was last taken
        self.open: set[Path] = set()  # settled, but open in another program when last looked
        self._changing: dict[Path, tuple[Identity, float]] = {}  # what it was, since when

    def poll(self) -> list[Path]:
        """The files that have settled since the last look, in name order."""
        now = time.monotonic()
        ready, present = [], set()
        for relative in find_inputs(self.root, recursive=self.recursive, exclude=self.exclude):
            present.add(relative)
            try:
                state = identity((self.root / relative).stat())
            except OSError:  # gone between the listing and the look
                continue
            if self.taken.get(relative) == state:
                continue
            seen = self._changing.get(relative)
            if seen is None or seen[0] != state:
                self._changing[relative] = (state, now)
                self.open.discard(relative)
            elif now - seen[1] >= self.settle:
                if open_elsewhere(self.root / relative):
                    self.open.add(relative)
                    continue
                self.open.discard(relative)
                ready.append(relative)
                self.taken[relative] = state
                del self._changing[relative]
        for forgotten in (set(self._changing) | set(self.taken)) - present:
            self._changing.pop(forgotten, None)  # vanished: a file dropped again is new
            self.taken.pop(forgotten, None)
            self.open.discard(forgotten)
        return ready

    def waiting(self) -> int:
        """Files seen but not yet settled (or still open elsewhere)."""
        return len(self._changing)

    def wait(
        self,
        poll: float = POLL,
        *,
        until: float | None = None,
        stop: threading.Event | None = None,
    ) -> list[Path]:
        """Look every ``poll`` seconds until some files have settled, or until ``until``
        (``time.monotonic()``) has passed. Ctrl-C ends the wait, and so does ``stop``, set
        (:class:`KeyboardInterrupt` either way)."""
        stop = stop if stop is not None else threading.Event()
        while True:
            ready = self.poll()
            if ready or (until is not None and time.monotonic() >= until):
                return ready
            if stop.wait(poll):
                raise KeyboardInterrupt
