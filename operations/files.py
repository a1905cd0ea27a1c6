"""Files and names: finding the inputs, naming their outputs, and writing files atomically.

Nothing here looks inside an image; decoding and encoding are :mod:`operations.decode` and
:mod:`operations.encode`.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import BinaryIO

# The formats we write, by file extension (Pillow's names), for --format same and the encoder.
WRITABLE = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".webp": "WEBP", ".tif": "TIFF",
            ".tiff": "TIFF", ".bmp": "BMP"}  # fmt: skip
# mkstemp creates files readable by the owner only; outputs get the usual umask-based mode.
# Read once at import, while no other thread can be affected by the momentary change.
_UMASK = os.umask(0)
os.umask(_UMASK)


class ImageError(ValueError):
    """A file that cannot be used as an image, or written as one; the message is a one-line
    reason."""


def find_inputs(root: Path, *, recursive: bool = False, exclude: Iterable[Path] = ()) -> list[Path]:
    """List candidate input files under ``root``, sorted, as paths relative to ``root``.

    Every regular, non-hidden file is a candidate: files that turn out not to be images are
    reported by the batch, not silently ignored. Hidden files and folders (``.DS_Store``, our
    own temporary files) and the ``exclude`` folders (an output folder inside the input folder)
    are never read.
    """
    root = root.resolve()
    excluded = {p.resolve() for p in exclude}
    found: list[Path] = []
    for dirpath, dirnames, filenames in os.walk(root):
        here = Path(dirpath)
        dirnames[:] = sorted(
            d for d in dirnames if not d.startswith(".") and (here / d).resolve() not in excluded
        )
        if not recursive:
            dirnames.clear()
        for name in filenames:
            path = here / name
            if not name.startswith(".") and path.is_file():
                found.append(path.relative_to(root))
    return sorted(found, key=lambda p: p.as_posix())


def output_extension(relative: Path, fmt: str) -> str:
    """The output's file extension for ``--format`` (``same`` keeps a writable input format)."""
    if fmt == "same":
        suffix = relative.suffix.lower()
        return relative.suffix if suffix in WRITABLE else ".png"
    return f".{fmt}"


def plan_outputs(
    inputs: Iterable[Path], fmt: str, extras: Iterable[str] = ()
) -> dict[Path, list[Path]]:
    """Give every input its output names: the same relative folder and stem, the new extension.

    ``extras`` are suffixes for side files (``".mask.png"``): ``x.jpg`` gets ``x.mask.png``.
    Names are compared case-insensitively so the plan is the same on every file system. When an
    input's names are taken by an earlier input (in sorted order: ``x.jpg`` before ``x.png``,
    both wanting ``x.png``), it is named after its whole file name instead (``x.png.png``), and
    if that is taken too, ``~2``, ``~3``… are added to it.

    Returns:
        input → [main output, *side files], all relative.
    """
    extras = list(extras)
    taken: set[str] = set()
    plan: dict[Path, list[Path]] = {}
    for rel in sorted(inputs, key=lambda p: p.as_posix()):
        ext = output_extension(rel, fmt)
        bases = [rel.stem, rel.name]
        bases += [f"{rel.name}~{n}" for n in range(2, 2 + len(taken) + 2)]
        for base in bases:
            names = [rel.with_name(base + ext)] + [rel.with_name(base + s) for s in extras]
            keys = {n.as_posix().casefold() for n in names}
            if not keys & taken:
                taken |= keys
                plan[rel] = names
                break
    return plan


def write_atomic(path: Path, write: Callable[[BinaryIO], None]) -> None:
    """Call ``write(file)`` on a hidden temporary file beside ``path``, then rename it.

    A run killed mid-write never leaves a truncated file under the final name.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_UMASK)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
