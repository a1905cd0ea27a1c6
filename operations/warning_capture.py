"""Library warnings (Python's ``warnings``) as the warnings of the job they were raised in.

The command line calls :func:`capture_warnings` once; a job collects what is raised while it
works with :func:`collecting` (its summary row, logged with the file's name).
"""

from __future__ import annotations

import contextlib
import logging
import threading
import warnings
from collections.abc import Iterator

log = logging.getLogger("backgroundswap")

# The warnings raised while this thread works on a job (see capture_warnings).
_current = threading.local()
_NOISE = (DeprecationWarning, PendingDeprecationWarning, FutureWarning)


def capture_warnings(*, verbose: bool = False) -> None:
    """Route library warnings (Python's ``warnings``) away from the terminal: deprecations and
    other notices meant for developers are dropped (shown with ``verbose``); the rest become
    the warnings of the job they were raised in (its summary row, logged with the file's name),
    or, raised outside any job, one log line. The command line calls this once."""
    warnings.simplefilter("always")  # every file's own warning, not only the first one's
    warnings.filterwarnings("ignore", message=r"(?i).*\bdeprecat")  # "…is deprecated" notices
    for category in _NOISE:
        warnings.filterwarnings("ignore", category=category)

    def show(message, category, filename, lineno, file=None, line=None) -> None:
        text = f"{category.__name__}: {str(message).strip().splitlines()[0]}"
        found = getattr(_current, "warnings", None)
        if found is not None:
            found.append(text)
        elif verbose:
            log.warning("%s (%s:%s)", text, filename, lineno)
        else:
            log.debug("%s (%s:%s)", text, filename, lineno)

    warnings.showwarning = show
    if verbose:  # show the developers' notices too, once each
        for category in _NOISE:
            warnings.simplefilter("default", category)


@contextlib.contextmanager
def collecting() -> Iterator[list[str]]:
    """The warnings raised in this thread while the block runs (once :func:`capture_warnings`
    has been called), as one-line texts."""
    caught: list[str] = []
    _current.warnings = caught
    try:
        yield caught
    finally:
        _current.warnings = None
