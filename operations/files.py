"""Files and names: finding the inputs, naming their outputs, and writing files atomically.

Nothing here looks inside an image; decoding and encoding are :mod:`operations.decode` and
:mod:`operations.encode`.
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import logging
import os
import socket
import tempfile
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import BinaryIO
from urllib.parse import quote

try:
    import fcntl
except ImportError:  # Windows: no advisory locks; runs do not coordinate there
    fcntl = None  # type: ignore[assignment]

log = logging.getLogger("backgroundswap")

# The formats we write, by file extension (Pillow's names), for --format same and the encoder.
WRITABLE = {
    ".png": "PNG",
    ".jpg": "JPEG",
    ".jpeg": "JPEG",
    ".webp": "WEBP",
    ".tif": "TIFF",
    ".tiff": "TIFF",
    ".bmp": "BMP",
    ".avif": "AVIF",
}
# Files the batch treats as videos, by extension (listing thousands of files must not open them).
VIDEO_EXTENSIONS = frozenset(
    {
        ".mp4",
        ".mov",
        ".m4v",
        ".mkv",
        ".webm",
        ".avi",
        ".mpg",
        ".mpeg",
        ".ts",
        ".mts",
        ".m2ts",
        ".wmv",
        ".flv",
        ".3gp",
        ".ogv",
        ".mxf",
        ".y4m",
    }
)
# Our hidden working files: ".bgs-KEY-RANDOM.tmp" while a file is written, ".bgs-KEY.claim" while
# a run owns a job. KEY is a hash of the final file's name, so the names are short whatever the
# final name's length (a 255-byte name must work) and a run can tell whose temporaries they are.
PREFIX = ".bgs-"
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
    reported by the batch, not silently ignored, and so are broken symbolic links. Hidden files
    and folders (``.DS_Store``, our own temporary files) and the ``exclude`` files and folders
    (an output folder or a summary inside the input folder) are never read. With ``recursive``,
    symbolic links to folders outside the input folder are followed (each real folder once, so
    links that loop stop); a link to a folder inside it is skipped with a warning, its photos
    being read under their own names.
    """
    root = root.resolve()
    excluded = {p.resolve() for p in exclude}
    excluded_names = {p.name for p in excluded}  # resolve a file only when its name could match
    found: list[Path] = []
    seen: set[tuple[int, int]] = set()
    for dirpath, dirnames, filenames in os.walk(root, followlinks=recursive):
        here = Path(dirpath)
        info = here.stat()
        if (info.st_dev, info.st_ino) in seen:  # reached again through links: a loop
            log.warning("skipping %s: a symbolic link loop (already read)", shown(here))
            dirnames.clear()
            continue
        seen.add((info.st_dev, info.st_ino))
        kept = []
        for d in sorted(dirnames):
            path = here / d
            if d.startswith("."):
                continue
            target = path.resolve()
            if target in excluded:
                continue
            if path.is_symlink() and recursive and (target == root or root in target.parents):
                # Its photos are read under their own names (or it is a loop up the tree).
                log.warning(
                    "skipping %s: links to %s, inside the input folder", shown(path), shown(target)
                )
                continue
            kept.append(d)
        dirnames[:] = kept
        if not recursive:
            dirnames.clear()
        for name in filenames:
            path = here / name
            if name.startswith(".") or (name in excluded_names and path.resolve() in excluded):
                continue
            if path.is_file() or (path.is_symlink() and not path.exists()):
                found.append(path.relative_to(root))
    return sorted(found, key=lambda p: p.as_posix())


def is_video(path: Path) -> bool:
    """A file the batch reads as a video (by its extension, see :data:`VIDEO_EXTENSIONS`)."""
    return path.suffix.lower() in VIDEO_EXTENSIONS


def shown(path: Path | str) -> str:
    """A file name for a one-line message: control characters (a newline in a name) and bytes
    that are not UTF-8 escaped, so the line stays one line and readable."""
    text = os.fsencode(path).decode("utf-8", "backslashreplace")
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode() for c in text)


def name_fields(key: str, path: Path | str | None) -> dict[str, str | None]:
    """A path for a JSON report, losslessly: ``key`` as readable text (bytes that are not UTF-8
    become U+FFFD), plus ``key_bytes``, percent-encoded, only when the name is not valid UTF-8
    (``urllib.parse.unquote_to_bytes`` restores the exact name)."""
    if path is None:
        return {key: None}
    raw = os.fsencode(path)
    fields: dict[str, str | None] = {key: raw.decode("utf-8", "replace")}
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        fields[f"{key}_bytes"] = quote(raw, safe="/")
    return fields


def output_extension(relative: Path, fmt: str) -> str:
    """The output's file extension for ``--format`` (``same`` keeps a writable input format)."""
    if fmt == "same":
        suffix = relative.suffix.lower()
        return relative.suffix if suffix in WRITABLE else ".png"
    return f".{fmt}"


# Side files' suffixes: a photo's (``x.jpg`` → ``x.mask.png``) and a video's (``x.mov`` →
# ``x.mask.mp4``, the main codec's extension after it; cut-outs are ProRes 4444 ``.mov``).
MASK_SUFFIX = ".mask.png"
CUTOUT_SUFFIX = ".cutout.png"
VIDEO_MASK_SUFFIX = ".mask"
VIDEO_CUTOUT_SUFFIX = ".cutout.mov"


def side_suffixes(*, mask: bool, cutout: bool, video_extension: str | None = None) -> list[str]:
    """The side files' suffixes, in the outputs' order (mask, cut-out): a photo's, or with
    ``video_extension`` (the main video codec's, ``.mp4``) a video's."""
    if video_extension is None:
        return [MASK_SUFFIX] * mask + [CUTOUT_SUFFIX] * cutout
    return [VIDEO_MASK_SUFFIX + video_extension] * mask + [VIDEO_CUTOUT_SUFFIX] * cutout


def plan_outputs(
    inputs: Iterable[Path],
    fmt: str,
    extras: Iterable[str] = (),
    *,
    video: tuple[str, Iterable[str]] | None = None,
    taken: Iterable[Path] = (),
) -> dict[Path, list[Path]]:
    """Give every input its output names: the same relative folder and stem, the new extension.

    ``extras`` are suffixes for side files (``".mask.png"``): ``x.jpg`` gets ``x.mask.png``.
    ``video`` is the extension and side-file suffixes of video inputs (by extension, see
    :data:`VIDEO_EXTENSIONS`), which ``fmt`` does not apply to.
    Names are compared case-insensitively so the plan is the same on every file system. When an
    input's names are taken by an earlier input (in sorted order: ``x.jpg`` before ``x.png``,
    both wanting ``x.png``), it is named after its whole file name instead (``x.png.png``), and
    if that is taken too, ``~2``, ``~3``… are added to it. ``taken``: names (relative) that
    earlier plans gave out (a watched folder's later arrivals are planned around them).

    Returns:
        input → [main output, *side files], all relative.
    """
    extras = list(extras)
    video_ext, video_extras = (video[0], list(video[1])) if video is not None else ("", [])
    taken = {name.as_posix().casefold() for name in taken}
    plan: dict[Path, list[Path]] = {}
    for rel in sorted(inputs, key=lambda p: p.as_posix()):
        moving = video is not None and rel.suffix.lower() in VIDEO_EXTENSIONS
        ext = video_ext if moving else output_extension(rel, fmt)
        sides = video_extras if moving else extras
        # Made lazily: the candidates were once a list as long as the names taken, which made
        # planning quadratic (a 20,000-photo folder took 45 s to plan, 100,000 never finished).
        bases = itertools.chain(
            [rel.stem, rel.name], (f"{rel.name}~{n}" for n in itertools.count(2))
        )
        for base in bases:
            names = [rel.with_name(base + ext)] + [rel.with_name(base + s) for s in sides]
            keys = {n.as_posix().casefold() for n in names}
            if not keys & taken:
                taken |= keys
                plan[rel] = names
                break
    return plan


def _key(path: Path) -> str:
    return hashlib.sha1(os.fsencode(path.name)).hexdigest()[:12]


def standing_for(name: str | os.PathLike[str], outputs: Iterable[Path]) -> Path | None:
    """The output whose hidden temporary (:func:`temporary`) ``name`` is, if it is one: a
    reason names the file the user asked for, never ours."""
    base = os.path.basename(os.fsdecode(name))
    if not base.startswith(PREFIX):
        return None
    return next((o for o in outputs if base.startswith(f"{PREFIX}{_key(o)}-")), None)


def write_atomic(path: Path, write: Callable[[BinaryIO], None]) -> None:
    """Call ``write(file)`` on a hidden temporary file beside ``path``, then rename it.

    A run killed mid-write never leaves a truncated file under the final name; the temporary's
    name is short (``.bgs-KEY-RANDOM.tmp``, 30 bytes) whatever the final name's length.
    """
    with temporary(path) as (_, fd), os.fdopen(os.dup(fd), "wb") as f:
        write(f)


@contextlib.contextmanager
def temporary(path: Path) -> Iterator[tuple[Path, int]]:
    """A hidden temporary file beside ``path`` (its name and an open descriptor), renamed to
    ``path`` when the block ends normally and removed when it raises: writers that open files
    themselves (a video muxer) write to the name; the file is locked meanwhile, so another
    run's sweep leaves it alone."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f"{PREFIX}{_key(path)}-", suffix=".tmp", dir=path.parent)
    tmp = Path(name)
    if fcntl is not None:  # held while writing: a sweep by another run leaves it alone
        fcntl.flock(fd, fcntl.LOCK_EX)
    try:
        yield tmp, fd
        os.fsync(fd)  # the descriptor is of the same file whoever wrote it
        os.chmod(tmp, 0o666 & ~_UMASK)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    finally:
        os.close(fd)


class Claim:
    """A run's hold on one job while it works on it: an advisory lock on ``.bgs-KEY.claim``
    beside the job's main output.

    The kernel releases the lock when its process dies however it dies (kill -9 included), so a
    claim never outlives its run, and another run (or another machine, where the shared file
    system supports locks, as NFS does) can tell a job in progress from a stale leftover without
    guessing from process ids.
    """

    def __init__(self, path: Path, fd: int) -> None:
        self.path, self._fd = path, fd

    @classmethod
    def take(cls, output: Path) -> Claim | str | None:
        """Claim the job whose main output is ``output``.

        Returns:
            The claim; or who holds it (``"PID 123 on host"``) when another run does; or
            ``None`` where claims cannot be made (no ``fcntl``), and the job goes ahead.
        """
        if fcntl is None:
            return None
        output.parent.mkdir(parents=True, exist_ok=True)
        path = output.parent / f"{PREFIX}{_key(output)}.claim"
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            owner = os.pread(fd, 200, 0).decode("utf-8", "replace").strip() or "another run"
            os.close(fd)
            return owner
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"PID {os.getpid()} on {socket.gethostname()}".encode(), 0)
        return cls(path, fd)

    def release(self) -> None:
        with contextlib.suppress(OSError):
            os.unlink(self.path)  # while still locked: nobody sees a free claim half-removed
        os.close(self._fd)


def sweep(folders: Iterable[Path], *, before: float) -> int:
    """Remove our stale working files from ``folders``: only ours (``.bgs-…``), and only what no
    running process holds: a killed run's temporaries (a writer locks its temporary for as long
    as it writes, and ``before`` — this run's start — spares any created since) and claims.

    Returns:
        How many files were removed.
    """
    if fcntl is None:
        return 0
    removed = 0
    for folder in folders:
        try:
            names = sorted(n for n in os.listdir(folder) if n.startswith(PREFIX))
        except OSError:
            continue
        for name in names:
            path = Path(folder) / name
            if name.endswith(".claim"):
                claim = _take(path)
                if claim is not None:
                    claim.release()
                    removed += 1
            elif name.endswith(".tmp"):
                with contextlib.suppress(OSError):
                    if path.stat().st_mtime < before and (held := _take(path)) is not None:
                        held.release()
                        removed += 1
    return removed


def _take(path: Path) -> Claim | None:
    """Lock an existing file of ours if nobody holds it (``None`` if somebody does)."""
    try:
        fd = os.open(path, os.O_RDWR)
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        return None
    return Claim(path, fd)


@contextlib.contextmanager
def claimed(output: Path) -> Iterator[Claim | str | None]:
    """:meth:`Claim.take` as a context manager that releases the claim it took."""
    claim = Claim.take(output)
    try:
        yield claim
    finally:
        if isinstance(claim, Claim):
            claim.release()
