"""A run's events as JSON Lines (``--events FILE|-``), for a script that follows a run as it goes.

One object a line, written whole and flushed as it happens (a reader sees each line as soon as
it is written), every one with ``event`` and ``time`` (ISO 8601, UTC):

- ``{"event": "run_started", "time", "version", "settings": {...}}``: the run's settings, as the
  summary's ``options`` writes them;
- ``{"event": "file", "time", "status": "ok"|"skipped"|"failed", "row": {...}}``: a file done,
  skipped or failed, its row as the summary writes it (a watched folder's file tried again
  gives a new line; the summary keeps the last);
- ``{"event": "run_finished", "time", "counts": {"ok", "skipped", "failed"}, "seconds",
  "interrupted", "exit_code"}`` (``exit_code`` null when interrupted: the process's own status
  says by which signal).
"""

from __future__ import annotations

import json
import sys
import threading
from datetime import datetime, timezone
from pathlib import Path
from typing import IO, Any

STDOUT = "-"


class Events:
    """Where a run's events go: a file (made anew) or standard output (``-``)."""

    def __init__(self, target: str | Path) -> None:
        self._lock = threading.Lock()
        self._owned = str(target) != STDOUT
        self._out: IO[str] = (
            open(target, "w", encoding="utf-8") if self._owned else sys.stdout  # noqa: SIM115
        )

    def emit(self, event: str, **data: Any) -> None:
        stamp = datetime.now(timezone.utc).isoformat(timespec="milliseconds")
        line = json.dumps({"event": event, "time": stamp, **data}, ensure_ascii=False)
        with self._lock:
            self._out.write(line + "\n")
            self._out.flush()

    def close(self) -> None:
        if self._owned:
            self._out.close()
