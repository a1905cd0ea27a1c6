"""Encoding: the pipeline's ``uint8`` arrays written as PNG, JPEG, WebP, TIFF or BMP files,
atomically, with the photo's colour profile and EXIF carried over."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np
from PIL import Image

from operations.errors import require
from operations.media.files import WRITABLE, ImageError, write_atomic
from operations.media.png import encode_png

OUTPUT_FORMATS = ("png", "jpg", "webp", "avif", "same")
DEFAULT_FORMAT = "png"
DEFAULT_QUALITY = 95  # JPEG/WebP: visually lossless for photos


@dataclass(frozen=True)
class EncodeSettings:
    quality: int = DEFAULT_QUALITY  # JPEG, WebP and AVIF

    def __post_init__(self) -> None:
        require(1 <= self.quality <= 100, "quality", self.quality, "must be between 1 and 100")


def pillow_format(path: Path) -> str:
    """Pillow's format name for the file's extension.

    Raises:
        ImageError: an extension we do not write.
    """
    try:
        return WRITABLE[path.suffix.lower()]
    except KeyError:
        raise ImageError(f"cannot write {path.suffix!r} files") from None


def encode(
    image: np.ndarray,
    path: Path,
    *,
    icc_profile: bytes | None = None,
    exif: bytes | None = None,
    settings: EncodeSettings | None = None,
) -> None:
    """Write ``image`` (RGB, RGBA or grey ``uint8``) to ``path`` atomically.

    The file is written under a hidden temporary name in the same folder and renamed into place,
    so an interrupted run never leaves a truncated file under the final name (a job's outputs
    are staged together instead: :class:`operations.media.files.StagedOutputs` and :func:`encoder`).
    """
    write_atomic(path, encoder(image, path, icc_profile=icc_profile, exif=exif, settings=settings))


def encoder(
    image: np.ndarray,
    path: Path,
    *,
    icc_profile: bytes | None = None,
    exif: bytes | None = None,
    settings: EncodeSettings | None = None,
) -> Callable[[BinaryIO], object]:
    """What writes ``image`` into an open file in the format ``path``'s extension names. PNGs go
    through our own encoder (:mod:`operations.media.png`), the rest through Pillow.

    Raises:
        ImageError: a format we do not write, or JPEG asked to keep transparency.
    """
    settings = settings or EncodeSettings()
    fmt = pillow_format(path)
    if fmt == "PNG":
        return lambda f: f.write(encode_png(image, icc_profile=icc_profile, exif=exif))
    pil = Image.fromarray(image)
    params: dict[str, object] = {}
    if icc_profile and pil.mode in ("RGB", "RGBA"):
        params["icc_profile"] = icc_profile
    if exif and fmt in ("JPEG", "PNG", "WEBP", "TIFF"):
        params["exif"] = exif
    if fmt == "JPEG":
        params.update(quality=settings.quality, subsampling=0 if settings.quality >= 90 else 2)
        if pil.mode == "RGBA":
            raise ImageError("JPEG cannot store transparency")
    elif fmt == "WEBP":
        params.update(quality=settings.quality, method=4)
    elif fmt == "AVIF":
        params.update(quality=settings.quality)
    return lambda f: pil.save(f, format=fmt, **params)
