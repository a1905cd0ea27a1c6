"""A watched folder: after a batch's own files, the ones that arrive while it runs, each taken
once it has stopped growing (a photo still being copied is never read).

Polling, on purpose: it sees files arriving over network shares and synced folders, where
inotify is silent, and a look at a folder every half second costs nothing beside a photo's
processing. A file is taken when its size and modification time have not changed for
``settle`` seconds; hidden files (a copier's ``.part`` temporaries among them) never are.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from pathlib import Path

from operations.files import find_inputs

POLL = 0.5  # seconds between looks at the folder
SETTLE = 1.0  # seconds a file must stay the same size and age to count as whole


class Watcher:
    """New files under ``root``, as paths relative to it, once each has settled."""

    def __init__(
        self,
        root: Path,
        *,
        known: Iterable[Path] = (),
        recursive: bool = False,
        exclude: Iterable[Path] = (),
        settle: float = SETTLE,
    ) -> None:
        self.root, self.recursive, self.exclude = root, recursive, list(exclude)
        self.settle = settle
        self.known: set[Path] = set(known)  # taken already (or the batch's own)
        self._changing: dict[Path, tuple[tuple[int, int], float]] = {}  # what it was, since

    def poll(self) -> list[Path]:
        """The files that have settled since the last look, in name order (each once)."""
        now = time.monotonic()
        ready = []
        present = set()
        for relative in find_inputs(self.root, recursive=self.recursive, exclude=self.exclude):
            if relative in self.known:
                continue
            present.add(relative)
            try:
                info = (self.root / relative).stat()
            except OSError:  # gone between the listing and the look
                continue
            state = (info.st_size, info.st_mtime_ns)
            seen = self._changing.get(relative)
            if seen is None or seen[0] != state:
                self._changing[relative] = (state, now)
            elif now - seen[1] >= self.settle and info.st_size > 0:
                ready.append(relative)
        for relative in list(self._changing):  # vanished before it settled: forgotten
            if relative not in present:
                del self._changing[relative]
        for relative in ready:
            self.known.add(relative)
            del self._changing[relative]
        return ready

    def wait(self, poll: float = POLL) -> list[Path]:
        """Look every ``poll`` seconds until some files have settled (Ctrl-C ends the wait)."""
        while True:
            ready = self.poll()
            if ready:
                return ready
            time.sleep(poll)
