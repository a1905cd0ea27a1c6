"""Model weights, resolved in one place for every network, and a download that never hangs.

Order, for every network: an explicit local file (``--weights``) → the library's own cache
(``TORCH_HOME`` for torchvision, Ultralytics' weights folder) → a download, only when not offline,
with bounded waits → otherwise :class:`WeightsError` naming the file, the cache path and the
option or variable that fixes it.

torch.hub and huggingface_hub wait forever on a network that accepts connections and never
answers, and Ultralytics retries for minutes, so downloads here use our own client: every
network wait (connecting, each read) is bounded by ``timeout`` seconds.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import re
import socket
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from operations.errors import BackgroundSwapError, setting
from operations.media.files import write_atomic

DEFAULT_TIMEOUT = 10.0  # seconds any single network wait may take
DEVICES = ("auto", "cpu", "cuda", "mps")
DEFAULT_DEVICE = "auto"
# (Not YOLO_OFFLINE: we set it ourselves to keep Ultralytics off the network.)
_OFFLINE_VARIABLES = ("BACKGROUNDSWAP_OFFLINE", "HF_HUB_OFFLINE")


class WeightsError(BackgroundSwapError, RuntimeError):
    """Weights that cannot be found or fetched. The message says how to fix it."""


def download_command(names: str) -> str:
    """The command that fetches ``names`` ahead, as this program was started: ``backgroundswap
    download …`` for the installed command, ``python run.py download …`` otherwise."""
    program = Path(sys.argv[0]).name if sys.argv and sys.argv[0] else ""
    start = "backgroundswap" if program == "backgroundswap" else "python run.py"
    return f"{start} download {names}".rstrip()


def models_home() -> Path:
    """Our own model folder: ``$BACKGROUNDSWAP_HOME/models``, default
    ``~/.cache/backgroundswap/models`` (for the weights no other library caches for us)."""
    home = os.environ.get("BACKGROUNDSWAP_HOME") or "~/.cache/backgroundswap"
    return Path(home).expanduser() / "models"


@contextlib.contextmanager
def caches_kept(variable: str, folder: str) -> Iterator[None]:
    """While a library loads, the files it writes at import under ``variable``'s folder go to
    ours (``$BACKGROUNDSWAP_HOME/folder``) rather than the user's home: matplotlib's font
    cache and settings (``MPLCONFIGDIR``; MediaPipe imports matplotlib), ONNX Runtime's
    telemetry files (``XDG_CACHE_HOME``). The variable is as it was afterwards; one the user
    set is left alone."""
    if os.environ.get(variable):
        yield
        return
    home = os.environ.get("BACKGROUNDSWAP_HOME") or "~/.cache/backgroundswap"
    os.environ[variable] = str(Path(home).expanduser() / folder)
    try:
        yield
    finally:
        os.environ.pop(variable, None)


def offline_from_environment() -> bool:
    """True when a usual offline variable is set (``HF_HUB_OFFLINE=1`` and the like)."""
    return any(
        os.environ.get(name, "").strip().lower() in ("1", "true", "yes", "on")
        for name in _OFFLINE_VARIABLES
    )


class DeviceError(BackgroundSwapError, RuntimeError):
    """A device asked for by name that is not there."""


@dataclass(frozen=True)
class WeightsSpec:
    """Where a network's weights come from and where they are cached."""

    name: str  # what the user calls it: "deeplabv3_resnet101", "yolov8n-seg"
    url: str
    cache_dir: Path
    option: str  # the setting that points at a local file (marked: errors.setting)
    cache_variable: str  # the environment variable that moves the cache
    sha256_prefix: str | None = None  # published checksum prefix (torchvision's file names)
    md5: str | None = None  # a published MD5 (rembg's model registry publishes these)
    file_name: str | None = None  # the name in the cache, when not the URL's last part
    # Other tools' caches that may already hold the same file (read, never written).
    alternates: tuple[Path, ...] = ()
    download_name: str | None = None  # what to pass to `download` to fetch it ahead

    @property
    def filename(self) -> str:
        return self.file_name or self.url.rsplit("/", 1)[-1]

    @property
    def cached(self) -> Path:
        return self.cache_dir / self.filename

    @property
    def checksum(self) -> str | None:
        """How the download is verified, in words; ``None`` when the source publishes nothing."""
        if self.md5:
            return f"MD5 {self.md5}"
        return f"SHA-256 {self.sha256_prefix}…" if self.sha256_prefix else None


def torchvision_spec(
    name: str,
    weights: object,
    *,
    option: str = setting("weights"),
    download_name: str | None = None,
) -> WeightsSpec:
    """The spec of a torchvision weights enum entry, cached where ``torch.hub`` caches it."""
    import torch

    url = weights.url  # type: ignore[attr-defined]
    # torchvision's file names end in the first hex digits of the file's SHA-256 (torch.hub's
    # convention, checked by its check_hash): "deeplabv3_resnet101_coco-586e9e4e.pth".
    match = re.search(r"-([a-f0-9]{6,})\.", url.rsplit("/", 1)[-1])
    return WeightsSpec(
        name=name,
        url=url,
        cache_dir=Path(torch.hub.get_dir()) / "checkpoints",
        option=option,
        cache_variable="TORCH_HOME",
        sha256_prefix=match.group(1) if match else None,
        download_name=download_name,
    )


def resolve(
    spec: WeightsSpec,
    explicit: Path | None = None,
    *,
    offline: bool = False,
    timeout: float = DEFAULT_TIMEOUT,
) -> Path:
    """Find the weights file: explicit path → cache → bounded download → clear error."""
    if explicit is not None:
        explicit = Path(explicit).expanduser()
        if not explicit.is_file():
            raise WeightsError(f"{spec.option} {str(explicit)!r}: no such file")
        return explicit
    if spec.cached.is_file():
        return spec.cached
    for folder in spec.alternates:
        if (folder / spec.filename).is_file():
            return folder / spec.filename
    fetch_ahead = f"`{download_command(spec.download_name or '')}`".replace(" `", "`")
    fix = (
        f"put the file there, point {spec.option} at a copy, set {spec.cache_variable} to a "
        f"folder that has it, or fetch it ahead with {fetch_ahead} on a machine "
        f"with network access"
    )
    if offline or offline_from_environment():
        raise WeightsError(
            f"{spec.name} weights are not cached ({spec.cached}) and downloads are off "
            f"({setting('offline')} or an *_OFFLINE variable): {fix}"
        )
    try:
        return fetch(spec, timeout=timeout)
    except WeightsError as exc:
        raise WeightsError(
            f"{spec.name} weights are not cached ({spec.cached}) and the download failed: {exc}. "
            f"To fix: {fix}"
        ) from None


def fetch(spec: WeightsSpec, *, timeout: float = DEFAULT_TIMEOUT, progress: bool = False) -> Path:
    """Download a spec's file into its cache, verified by its published checksum."""
    return download(
        spec.url,
        spec.cached,
        sha256_prefix=spec.sha256_prefix,
        md5=spec.md5,
        timeout=timeout,
        progress=progress,
    )


def download(
    url: str,
    destination: Path,
    *,
    sha256_prefix: str | None = None,
    md5: str | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    progress: bool = False,
) -> Path:
    """Download ``url`` to ``destination`` atomically, every network wait bounded by ``timeout``.

    Raises:
        WeightsError: no answer in time, an HTTP error, or a checksum that does not match.
    """
    digest = hashlib.sha256()
    md5_digest = hashlib.md5(usedforsecurity=False)
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            total = int(response.headers.get("Content-Length") or 0) or None

            def write(file) -> None:
                bar = None
                if progress:
                    from tqdm import tqdm

                    bar = tqdm(total=total, unit="B", unit_scale=True, desc=destination.name)
                while chunk := response.read(1 << 20):
                    digest.update(chunk)
                    md5_digest.update(chunk)
                    file.write(chunk)
                    if bar is not None:
                        bar.update(len(chunk))
                if bar is not None:
                    bar.close()
                if total is not None and file.tell() != total:
                    raise WeightsError(f"incomplete: {file.tell()} of {total} bytes")
                if sha256_prefix and not digest.hexdigest().startswith(sha256_prefix):
                    raise WeightsError(
                        f"checksum mismatch: SHA-256 {digest.hexdigest()[:12]}…, "
                        f"expected {sha256_prefix}…"
                    )
                if md5 and md5_digest.hexdigest() != md5:
                    raise WeightsError(
                        f"checksum mismatch: MD5 {md5_digest.hexdigest()}, expected {md5}"
                    )

            write_atomic(destination, write)
    except TimeoutError:
        raise WeightsError(f"no answer from {url} within {timeout:g} s") from None
    except urllib.error.HTTPError as exc:
        raise WeightsError(f"{url} answered HTTP {exc.code} {exc.reason}") from None
    except urllib.error.URLError as exc:
        reason = exc.reason
        if isinstance(reason, TimeoutError | socket.timeout):
            raise WeightsError(f"no answer from {url} within {timeout:g} s") from None
        raise WeightsError(f"cannot reach {url}: {reason}") from None
    except OSError as exc:
        raise WeightsError(f"download of {url} failed: {exc}") from None
    return destination


def first_line(exc: BaseException) -> str:
    """An exception's message cut to its first line (libraries' errors can run to a page)."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def load_state_dict(path: Path, what: str) -> dict:
    """A PyTorch ``state_dict`` file, read safely (``weights_only``).

    Raises:
        WeightsError: a file that is not one (corrupt, truncated, another format), naming it.
    """
    import torch

    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - unpickling raises many types for a bad file
        kind = type(exc).__name__
        raise WeightsError(
            f"{path} is not {what}: torch cannot read it ({kind}); the file is "
            "corrupt, truncated or of another kind"
        ) from None
    if not isinstance(state, dict):
        raise WeightsError(f"{path} is not {what} (it holds a {type(state).__name__})")
    return state


def torch_device(requested: str) -> str:
    """The torch device for ``--device``: ``auto`` picks CUDA, then Apple's MPS, then the CPU.

    Raises:
        WeightsError: a device that is asked for by name but is not there (never a silent CPU run).
    """
    import torch

    cuda = torch.cuda.is_available()
    mps = getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available()
    if requested == "auto":
        return "cuda" if cuda else "mps" if mps else "cpu"
    if requested == "cuda" and not cuda:
        raise DeviceError(f"{setting('device')} cuda: no CUDA GPU is visible to PyTorch here")
    if requested == "mps" and not mps:
        raise DeviceError(f"{setting('device')} mps: Apple's MPS backend is not available here")
    return requested


def onnx_metadata(path: Path) -> dict[str, str]:
    """An ONNX file's metadata (``ModelProto.metadata_props``: what an exporter wrote there,
    Ultralytics' ``task`` and ``names`` among them), read from its top-level fields alone: the
    graph and its weights are skipped, never read, and no ONNX library is needed.

    Returns:
        key → value; empty when the file is no ONNX model (or has none).
    """
    found: dict[str, str] = {}
    try:
        with open(path, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            while f.tell() < size:
                field, wire = divmod(_varint(f), 8)
                if wire == 0:
                    _varint(f)
                elif wire == 1:
                    f.seek(8, os.SEEK_CUR)
                elif wire == 5:
                    f.seek(4, os.SEEK_CUR)
                elif wire == 2:
                    length = _varint(f)
                    if field == 14:  # metadata_props: StringStringEntryProto {1: key, 2: value}
                        entry = _fields(f.read(length))
                        found[entry.get(1, "")] = entry.get(2, "")
                    else:
                        f.seek(length, os.SEEK_CUR)
                else:
                    break  # not a protobuf we understand: no metadata
    except (OSError, ValueError):
        return found
    return found


def _varint(f: BinaryIO) -> int:
    value, shift = 0, 0
    while True:
        byte = f.read(1)
        if not byte:
            raise ValueError("ends inside a number")
        value |= (byte[0] & 0x7F) << shift
        if byte[0] < 0x80:
            return value
        shift += 7
        if shift > 63:
            raise ValueError("a number too long")


def _fields(data: bytes) -> dict[int, str]:
    """A small message's length-delimited fields, as text."""
    stream, out = io.BytesIO(data), {}
    while stream.tell() < len(data):
        field, wire = divmod(_varint(stream), 8)
        if wire != 2:
            break
        length = _varint(stream)
        out[field] = stream.read(length).decode("utf-8", "replace")
    return out
