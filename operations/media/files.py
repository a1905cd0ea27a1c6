"""Files and names: finding the inputs, naming their outputs, and writing files atomically.

Nothing here looks inside an image; decoding and encoding are :mod:`operations.media.decode` and
:mod:`operations.media.encode`.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import itertools
import logging
import os
import shutil
import socket
import tempfile
from collections.abc import Callable, Container, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO
from urllib.parse import quote

from operations.errors import BackgroundSwapError

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


class ImageError(BackgroundSwapError, ValueError):
    """A file that cannot be used as an image, or written as one; the message is a one-line
    reason. ``incomplete``: it looks cut short (a copy not yet finished?), so a watched folder
    tries it again once it changes."""

    def __init__(self, reason: str, *, incomplete: bool = False) -> None:
        super().__init__(reason)
        self.incomplete = incomplete


class SourceChanged(ImageError):
    """The source changed while it was read or processed (a copy still under way): what was
    made from it is given up."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason, incomplete=True)


def changed(before: os.stat_result, after: os.stat_result) -> str | None:
    """How a file changed between two looks (``None``: it did not): the words a reason uses."""
    if (before.st_dev, before.st_ino) != (after.st_dev, after.st_ino):
        return "replaced"
    if before.st_size != after.st_size:
        return "size changed"
    if before.st_mtime_ns != after.st_mtime_ns:
        return "modified"
    return None


def unreadable(path: Path, exc: OSError) -> ImageError:
    """Why a source cannot be read, in a user's words."""
    if isinstance(exc, FileNotFoundError):
        if path.is_symlink():
            target = printable(os.readlink(path))
            return ImageError(f"broken symbolic link: it points to {target}, which does not exist")
        return ImageError("input disappeared: deleted or moved during the run")
    if isinstance(exc, PermissionError):
        return ImageError("cannot read: permission denied")
    if isinstance(exc, IsADirectoryError):
        return ImageError("cannot read: it is a folder")
    return ImageError(f"cannot read: {(exc.strerror or str(exc)).lower()}")


def read_whole(path: Path) -> tuple[bytes, os.stat_result]:
    """A source file's bytes, read once, and what the file was as they were read.

    Raises:
        ImageError: it cannot be read (permission denied, gone, a broken link, a folder).
        SourceChanged: it changed while it was read.
    """
    try:
        with open(path, "rb") as f:
            before = os.fstat(f.fileno())
            data = f.read()
            after = os.fstat(f.fileno())
    except OSError as exc:
        raise unreadable(path, exc) from None
    how = changed(before, after) or ("size changed" if len(data) != after.st_size else None)
    if how is not None:
        raise SourceChanged(f"still being copied ({how} while it was read)")
    return data, after


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
            log.warning("skipping %s: a symbolic link loop (already read)", printable(here))
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
                    "skipping %s: links to %s, inside the input folder",
                    printable(path),
                    printable(target),
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


# A photo's mask file: NAME.EXT, or NAME.mask.EXT (what --save-mask writes, touched up); the
# lossless formats first where a folder has several.
MASK_PREFERENCE = (".png", ".tif", ".tiff", ".webp", ".bmp")


def _mask_key(path: Path) -> str | None:
    """The photo stem a mask file is for, or None for a file that is no mask."""
    if path.name.startswith("."):
        return None
    stem = path.stem
    return stem[: -len(".mask")] if stem.endswith(".mask") else stem


@functools.lru_cache(maxsize=64)
def _listing(folder: str, stamp: int) -> tuple[str, ...]:
    """A folder's names, read once while it is unchanged (``stamp``: its mtime): a run asks the
    masks' folder once per photo, and a folder of thousands would be read thousands of times."""
    return tuple(sorted(os.listdir(folder)))


def mask_for(folder: Path, relative: Path) -> Path | None:
    """The user's mask for the photo at ``relative`` (inside the input folder): in ``folder``,
    beside where the photo's own sub-folder would be (``SUB/NAME.*``), else ``NAME.*`` at the
    top; ``NAME.mask.*`` counts too. ``None`` when there is none."""
    for where in dict.fromkeys([folder / relative.parent, folder]):
        try:
            names = _listing(str(where), os.stat(where).st_mtime_ns)
        except OSError:
            continue
        found = [
            where / name
            for name in names
            if _mask_key(Path(name)) == relative.stem and (where / name).is_file()
        ]
        if found:
            rank = {suffix: n for n, suffix in enumerate(MASK_PREFERENCE)}
            return min(found, key=lambda p: (rank.get(p.suffix.lower(), len(rank)), p.name))
    return None


def masks_for_no_photo(folder: Path, relatives: Iterable[Path]) -> list[Path]:
    """The mask files in ``folder`` (and its sub-folders) that no photo of ``relatives`` takes."""
    taken = {mask for r in relatives if (mask := mask_for(folder, r)) is not None}
    every = [folder / r for r in find_inputs(folder, recursive=True)]
    return [path for path in every if path not in taken and _mask_key(path) is not None]


def is_video(path: Path) -> bool:
    """A file the batch reads as a video (by its extension, see :data:`VIDEO_EXTENSIONS`)."""
    return path.suffix.lower() in VIDEO_EXTENSIONS


def printable(path: Path | str) -> str:
    """A file name, printable in a one-line message: control characters (a newline in a
    name) and bytes that are not UTF-8 escaped, so the line stays one line and readable."""
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
# ``x.mask.mp4``, the main codec's extension after it; a cut-out's is ``--video-format``'s:
# ``x.cutout.mov``, ``.webm``, ``.webp``, or the folder ``x.cutout`` of PNG frames).
MASK_SUFFIX = ".mask.png"
CUTOUT_SUFFIX = ".cutout.png"
VIDEO_MASK_SUFFIX = ".mask"
VIDEO_CUTOUT_SUFFIX = ".cutout"


def side_suffixes(
    *,
    mask: bool,
    cutout: bool,
    video_extension: str | None = None,
    cutout_extension: str = ".mov",
    frames: bool = False,
) -> list[str]:
    """The side files' suffixes, in the outputs' order (mask, cut-out): a photo's, or with
    ``video_extension`` (the main video codec's, ``.mp4``) a video's, its cut-out in
    ``cutout_extension`` (``""``: a folder of frames); ``frames``: its mask a folder of frames."""
    if video_extension is None:
        return [MASK_SUFFIX] * mask + [CUTOUT_SUFFIX] * cutout
    masks = VIDEO_MASK_SUFFIX + ("" if frames else video_extension)
    return [masks] * mask + [VIDEO_CUTOUT_SUFFIX + cutout_extension] * cutout


def plan_outputs(
    inputs: Iterable[Path],
    fmt: str,
    extras: Iterable[str] = (),
    *,
    video: tuple[str, Iterable[str]] | None = None,
    taken: Iterable[Path] = (),
    busy: Callable[[Path, Path], bool] | None = None,
    again: Container[Path] = (),
) -> dict[Path, list[Path]]:
    """Give every input its output names: the same relative folder and stem, the new extension.

    ``extras`` are suffixes for side files (``".mask.png"``): ``x.jpg`` gets ``x.mask.png``.
    ``video`` is the extension and side-file suffixes of video inputs (by extension, see
    :data:`VIDEO_EXTENSIONS`), which ``fmt`` does not apply to.
    Names are compared case-insensitively so the plan is the same on every file system. When an
    input's names are taken by an earlier input (in sorted order: ``x.jpg`` before ``x.png``,
    both wanting ``x.png``), it is named after its whole file name instead (``x.png.png``), and
    if that is taken too, ``~2``, ``~3``… are added to it.

    Args:
        taken: names (relative) that earlier plans gave out (a watched folder's later arrivals
            are planned around them).
        busy: ``busy(input, name)``: whether the name (relative) belongs to some other file
            already (a watched folder's outputs of inputs since deleted).
        again: inputs dropped again under a name whose outputs were made from other content:
            they get the next free name after their own, ``x-2.png``, ``x-3.png``…, never those.

    Returns:
        input → [main output, *side files], all relative.
    """
    extras = list(extras)
    video_ext, video_extras = (video[0], list(video[1])) if video is not None else ("", [])
    given = {name.as_posix().casefold() for name in taken}
    plan: dict[Path, list[Path]] = {}
    for rel in sorted(inputs, key=lambda p: p.as_posix()):
        moving = video is not None and rel.suffix.lower() in VIDEO_EXTENSIONS
        ext = video_ext if moving else output_extension(rel, fmt)
        sides = video_extras if moving else extras
        # Made lazily: the candidates were once a list as long as the names taken, which made
        # planning quadratic (a 20,000-photo folder took 45 s to plan, 100,000 never finished).
        if rel in again:
            bases: Iterable[str] = (f"{rel.stem}-{n}" for n in itertools.count(2))
        else:
            bases = itertools.chain(
                [rel.stem, rel.name], (f"{rel.name}~{n}" for n in itertools.count(2))
            )
        for base in bases:
            names = [rel.with_name(base + ext)] + [rel.with_name(base + s) for s in sides]
            keys = {n.as_posix().casefold() for n in names}
            if keys & given or (busy is not None and any(busy(rel, n) for n in names)):
                continue
            given |= keys
            plan[rel] = names
            break
    return plan


def _key(path: Path) -> str:
    return hashlib.sha1(os.fsencode(path.name)).hexdigest()[:12]


def output_of_temporary(name: str | os.PathLike[str], outputs: Iterable[Path]) -> Path | None:
    """The output whose hidden temporary (:func:`temporary`) ``name`` is, if it is one: a
    reason names the file the user asked for, never ours."""
    base = os.path.basename(os.fsdecode(name))
    if not base.startswith(PREFIX):
        return None
    return next((o for o in outputs if base.startswith(f"{PREFIX}{_key(o)}-")), None)


@dataclass(frozen=True)
class Written:
    """A file as it was written: its name, size and modification time (a rename keeps both, so
    a later look can tell that the file at ``path`` is still the one written)."""

    path: Path
    size: int
    mtime_ns: int

    def still_there(self) -> bool:
        """The file at :attr:`path` is still this one, whole."""
        try:
            info = self.path.stat()
        except OSError:
            return False
        return (info.st_size, info.st_mtime_ns) == (self.size, self.mtime_ns)


class StagedOutputs:
    """A job's outputs, each written to a hidden temporary beside it (:func:`temporary`'s
    names), then renamed into place together by :meth:`commit`: the side files first and the
    main output last, so a job is done (its main output exists) only once every file is in
    place. If anything fails before or during the commit, none of them is left.

    Use as a context manager; writers that open files themselves (a video muxer) write to
    :attr:`temporaries`, others call :meth:`write`.
    """

    def __init__(self, outputs: Iterable[Path], folders: Container[int] = ()) -> None:
        self.outputs = list(outputs)
        self.folders = folders  # the outputs (by index) that are folders of files
        self.temporaries: list[Path] = []
        self._fds: list[int] = []
        self._committed = False

    def __enter__(self) -> StagedOutputs:
        try:
            for index, path in enumerate(self.outputs):
                path.parent.mkdir(parents=True, exist_ok=True)
                prefix = f"{PREFIX}{_key(path)}-"
                if index in self.folders:  # a folder, held by a descriptor of its own
                    name = tempfile.mkdtemp(prefix=prefix, suffix=".tmp", dir=path.parent)
                    fd = os.open(name, os.O_RDONLY | os.O_DIRECTORY)
                else:
                    fd, name = tempfile.mkstemp(prefix=prefix, suffix=".tmp", dir=path.parent)
                self._fds.append(fd)
                self.temporaries.append(Path(name))
                if fcntl is not None:  # held while writing: another run's sweep leaves it alone
                    fcntl.flock(fd, fcntl.LOCK_EX)
        except BaseException:
            self._discard()
            raise
        return self

    def write(self, index: int, write: Callable[[BinaryIO], object]) -> None:
        """Call ``write(file)`` on output ``index``'s temporary."""
        with os.fdopen(os.dup(self._fds[index]), "wb") as f:
            write(f)

    def commit(self, check: Callable[[list[Written]], None] | None = None) -> list[Written]:
        """Make every output durable, call ``check(written)`` (it may raise to give them all
        up: the source changed meanwhile, say), then rename them into place.

        Returns:
            Each output as written (in the outputs' order).
        """
        written = []
        for index, (fd, path) in enumerate(zip(self._fds, self.outputs, strict=True)):
            if index in self.folders:
                _sync_files(self.temporaries[index])
            os.fsync(fd)  # the descriptor is of the same file whoever wrote it
            info = os.fstat(fd)  # a folder's: its own size and time, which a rename keeps
            written.append(Written(path, info.st_size, info.st_mtime_ns))
        if check is not None:
            check(written)
        placed: list[Path] = []
        order = [*range(1, len(self.outputs)), 0]  # the main output last
        try:
            for index in order:
                if index in self.folders:
                    os.chmod(self.temporaries[index], 0o777 & ~_UMASK)
                    _replace_folder(self.temporaries[index], self.outputs[index])
                else:
                    os.chmod(self.temporaries[index], 0o666 & ~_UMASK)
                    os.replace(self.temporaries[index], self.outputs[index])
                placed.append(self.outputs[index])
        except BaseException:
            for path in placed:  # all or none: the ones already placed go again
                with contextlib.suppress(OSError):
                    _remove(path)
            raise
        self._committed = True
        return written

    def _discard(self) -> None:
        if not self._committed:
            for tmp in self.temporaries:
                with contextlib.suppress(OSError):
                    _remove(tmp)
        for fd in self._fds:
            os.close(fd)
        self._fds = []

    def __exit__(self, *exc: object) -> None:
        self._discard()


def _sync_files(folder: Path) -> None:
    """Make a folder's files durable (a writer wrote them by name)."""
    for entry in os.scandir(folder):
        if entry.is_file(follow_symlinks=False):
            fd = os.open(entry.path, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)


def _replace_folder(staged: Path, target: Path) -> None:
    """Put the folder ``staged`` at ``target``. An earlier folder there (``--overwrite``) is
    renamed aside first and removed after: at every moment ``target`` is one whole folder or
    none (a rename cannot replace a folder that holds files)."""
    if not target.is_dir() or target.is_symlink():
        os.replace(staged, target)
        return
    aside = Path(
        tempfile.mkdtemp(prefix=f"{PREFIX}{_key(target)}-", suffix=".old", dir=target.parent)
    )
    os.replace(target, aside)  # onto the empty folder just made
    # Held while it may have to come back: another run's sweep leaves a locked folder alone.
    held = os.open(aside, os.O_RDONLY | os.O_DIRECTORY)
    try:
        if fcntl is not None:
            fcntl.flock(held, fcntl.LOCK_EX)
        try:
            os.replace(staged, target)
        except BaseException:
            os.replace(aside, target)
            raise
        shutil.rmtree(aside, ignore_errors=True)
    finally:
        os.close(held)


def _remove(path: Path) -> None:
    """Remove a file, or a folder with its files."""
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink()


def name_max(folder: Path) -> int:
    """The longest file name (in bytes) the file system holding ``folder`` (or the nearest
    folder above it that exists) accepts."""
    for candidate in (folder, *folder.parents):
        try:
            return os.pathconf(candidate, "PC_NAME_MAX")
        except (OSError, ValueError):
            continue
    return 255


def check_names(outputs: Iterable[Path]) -> None:
    """Refuse outputs whose names the file system cannot hold, before anything is written (a
    long photo name plus ``.mask.png`` may not fit where the photo's own name did).

    Raises:
        ImageError: one of the names is too long.
    """
    for path in outputs:
        length, limit = len(os.fsencode(path.name)), name_max(path.parent)
        if length > limit:
            raise ImageError(
                f"its output name {printable(path.name)[:40]}… would be {length} bytes, over the "
                f"file system's limit of {limit}: rename the input (shorter), or leave out "
                "the side files"
            )


def write_atomic(path: Path, write: Callable[[BinaryIO], object]) -> None:
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
            elif name.endswith((".tmp", ".old")):  # .old: a folder put aside, not yet removed
                with contextlib.suppress(OSError):
                    if path.stat().st_mtime < before and (held := _take(path)) is not None:
                        if path.is_dir():  # a folder of frames: locked while it is written
                            shutil.rmtree(path, ignore_errors=True)
                        held.release()
                        removed += 1
    return removed


def _take(path: Path) -> Claim | None:
    """Lock an existing file (or folder) of ours if nobody holds it (``None`` if somebody
    does)."""
    try:
        folder = path.is_dir() and not path.is_symlink()
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY if folder else os.O_RDWR)
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        return None
    return Claim(path, fd)


@contextlib.contextmanager
def output_claim(output: Path) -> Iterator[Claim | str | None]:
    """:meth:`Claim.take` as a context manager that releases the claim it took."""
    claim = Claim.take(output)
    try:
        yield claim
    finally:
        if isinstance(claim, Claim):
            claim.release()
