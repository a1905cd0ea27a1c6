"""``-`` as ``--input`` (one image on standard input) and as ``--output`` (the result on
standard output), as rembg's ``i`` and ImageMagick take it.

Standard input is read whole, its format sniffed (Pillow), and handed to the run as a file in a
private temporary folder; the result is written there and copied to standard output once the
run is done, so nothing else is written to standard output and a failed photo writes nothing
there. Refused, in one line, where it cannot work: a terminal on either side, a folder, a video,
``--watch``, side files (they would have nowhere to go), ``--events -`` with ``-o -``.
"""

from __future__ import annotations

import contextlib
import io
import shutil
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from PIL import Image, UnidentifiedImageError

from operations.options import OptionsError

STDIO = "-"
# Pillow's format name → the extension a file of it is read by.
EXTENSIONS = {"JPEG": ".jpg", "PNG": ".png", "WEBP": ".webp", "TIFF": ".tif", "BMP": ".bmp",
              "GIF": ".gif", "AVIF": ".avif", "HEIF": ".heic", "MPO": ".jpg"}  # fmt: skip


def _sniffed(data: bytes) -> str:
    """The extension of an image's bytes.

    Raises:
        OptionsError: no image (a video, or nothing).
    """
    from operations.media.decode import _register_heif

    _register_heif()
    if not data:
        raise OptionsError("--input", STDIO, "standard input is empty: pipe an image into it")
    try:
        with Image.open(io.BytesIO(data)) as image:
            kind = image.format or ""
    except (UnidentifiedImageError, OSError):
        raise OptionsError(
            "--input",
            STDIO,
            "standard input holds no image Pillow can read (a video cannot be read from "
            "standard input: give its file)",
        ) from None
    return EXTENSIONS.get(kind, ".png")


@contextlib.contextmanager
def standard_streams(args: Any) -> Iterator[Callable[[], None]]:
    """``args`` with ``-`` replaced by files in a private temporary folder, for the run; then
    ``finish()`` copies the result to standard output. The folder is removed at the end.

    Raises:
        OptionsError: ``-`` where it cannot work.
    """
    reading, writing = str(args.input) == STDIO, str(args.output) == STDIO
    if not (reading or writing):
        yield lambda: None
        return
    _refuse(args, reading, writing)
    folder = Path(tempfile.mkdtemp(prefix="backgroundswap-stdio-"))
    try:
        suffix = None
        if reading:
            data = sys.stdin.buffer.read()
            suffix = _sniffed(data)
            args.input = folder / f"stdin{suffix}"
            args.input.write_bytes(data)
        result = None
        if writing:
            fmt = args.format
            if fmt == "same":
                fmt = (suffix or Path(args.input).suffix or ".png").lstrip(".")
            result = folder / "out" / f"{Path(args.input).stem}.{fmt}"
            args.output, args.format = result, "png"  # the file's extension says the format

        def finish() -> None:
            if result is not None and result.is_file():
                sys.stdout.buffer.write(result.read_bytes())
                sys.stdout.buffer.flush()

        yield finish
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _refuse(args: Any, reading: bool, writing: bool) -> None:
    if reading and sys.stdin.isatty():
        raise OptionsError("--input", STDIO, "standard input is a terminal: pipe an image into it")
    if writing and sys.stdout.isatty():
        raise OptionsError(
            "--output", STDIO, "standard output is a terminal: redirect it to a file or a pipe"
        )
    if args.watch:
        raise OptionsError("--watch", None, "watches a folder: not - (standard input)")
    if writing:
        if not reading and Path(args.input).is_dir():
            raise OptionsError("--output", STDIO, "takes one image in, not a folder")
        for name in ("save_mask", "save_cutout"):
            if getattr(args, name):
                flag = "--" + name.replace("_", "-")
                raise OptionsError(flag, None, "side files have nowhere to go with -o -")
        if str(args.events) == STDIO:
            raise OptionsError("--events", STDIO, "standard output carries the image (-o -)")
        if args.format not in ("png", "jpg", "webp", "avif", "same"):
            raise OptionsError("--format", args.format, "not an image format for -o -")
