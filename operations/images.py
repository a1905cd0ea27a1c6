"""Image files: finding inputs, safe decoding, atomic encoding and output names.

Inside the pipeline an image is RGB ``uint8`` ``H×W×3``. Every conversion from what is on disk
(EXIF orientation, palette, grey, 16-bit, CMYK, transparency, colour profiles) happens here, once.
"""

from __future__ import annotations

import contextlib
import io
import os
import struct
import tempfile
import zlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import cv2
import numpy as np
from PIL import Image, ImageCms, ImageOps, UnidentifiedImageError

# Pillow refuses images over 2 × MAX_IMAGE_PIXELS inside Image.open, before our own, configurable
# limit is consulted; :func:`allow_pixels` raises Pillow's limit to ours when ours is higher.
DEFAULT_MAX_PIXELS = 120_000_000  # a 100 MP medium-format frame passes; decompression bombs do not

OUTPUT_FORMATS = ("png", "jpg", "webp", "same")
# Formats we write, by file extension, for --format same.
_WRITABLE = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".webp": "WEBP", ".tif": "TIFF",
             ".tiff": "TIFF", ".bmp": "BMP"}  # fmt: skip
_EXIF_ORIENTATION = 0x0112
# mkstemp creates files readable by the owner only; outputs get the usual umask-based mode.
# Read once at import, while no other thread can be affected by the momentary change.
_UMASK = os.umask(0)
os.umask(_UMASK)


class ImageError(ValueError):
    """A file that cannot be used as an image; the message is a one-line reason."""


@dataclass
class DecodedImage:
    """A decoded photo in the pipeline's form, plus what the encoder should carry over."""

    rgb: np.ndarray  # H×W×3 uint8; may be read-only (it shares Pillow's buffer)
    alpha: np.ndarray | None = None  # H×W float32 from the file's own transparency, if any
    icc_profile: bytes | None = None  # an RGB profile that describes ``rgb``'s colours
    exif: bytes | None = None  # the file's EXIF with the orientation reset (already applied)
    source_format: str | None = None


def allow_pixels(max_pixels: int) -> None:
    """Let Pillow open images up to ``max_pixels``; :func:`decode` applies our own check."""
    if Image.MAX_IMAGE_PIXELS is not None and max_pixels > Image.MAX_IMAGE_PIXELS:
        Image.MAX_IMAGE_PIXELS = max_pixels


def shrink(image: np.ndarray, width: int, height: int) -> np.ndarray:
    """Downscale with area averaging (no aliasing), fast for large reductions.

    OpenCV's area resampling is quick for exact halvings and slow for arbitrary factors, so the
    image is halved while it is at least twice the target, then resampled once: the same result
    to within about one grey level, five times faster on a 12 MP photo.
    """
    while image.shape[1] >= 2 * width and image.shape[0] >= 2 * height:
        rows, cols = image.shape[0] // 2, image.shape[1] // 2
        # An odd last row or column is dropped (<0.1 % of a photo): an exact halving takes
        # OpenCV's fast path, an odd size its general one, ~15× slower.
        image = cv2.resize(
            image[: 2 * rows, : 2 * cols], (cols, rows), interpolation=cv2.INTER_AREA
        )
    return cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA)


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


def _has_rgb_profile(icc: bytes) -> bool:
    try:
        profile = ImageCms.ImageCmsProfile(io.BytesIO(icc))
    except (OSError, ImageCms.PyCMSError):
        return False
    return profile.profile.xcolor_space.strip() == "RGB"


_SRGB = ImageCms.createProfile("sRGB")


def _to_rgb(img: Image.Image) -> tuple[Image.Image, np.ndarray | None]:
    """Convert any Pillow mode to RGB; return the transparency separately as float alpha."""
    alpha = None
    if img.mode == "P" and "transparency" in img.info:
        img = img.convert("RGBA")
    if img.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        if img.mode in ("RGBa", "La"):  # premultiplied: un-premultiply before dropping alpha
            img = img.convert(img.mode.upper())
        alpha = np.asarray(img.getchannel("A"), dtype=np.float32) / 255.0
        if alpha.min() >= 1.0:  # fully opaque: carry nothing
            alpha = None
    if img.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
        # 16-bit grey (PNG/TIFF). Pillow's convert("RGB") clips at 255 instead of scaling.
        values = np.asarray(img, dtype=np.float64)
        peak = 65535.0 if img.mode.startswith("I;16") or values.max() > 255 else 255.0
        grey = np.clip(np.rint(values * (255.0 / peak)), 0, 255).astype(np.uint8)
        return Image.fromarray(grey, "L").convert("RGB"), alpha
    if img.mode == "F":
        grey = np.clip(np.rint(np.asarray(img, dtype=np.float64)), 0, 255).astype(np.uint8)
        return Image.fromarray(grey, "L").convert("RGB"), alpha
    if img.mode != "RGB":
        img = img.convert("RGB")
    return img, alpha


def decode(path: Path, *, max_pixels: int = DEFAULT_MAX_PIXELS) -> DecodedImage:
    """Decode an image file into the pipeline's form.

    Applies the EXIF orientation; converts every mode to RGB (16-bit grey is scaled, not
    clipped; CMYK goes through its ICC profile when it has one); returns transparency as a
    separate alpha; keeps an RGB ICC profile and the EXIF block for the encoder.

    Raises:
        ImageError: empty, not an image, corrupt, truncated, or over ``max_pixels``.
    """
    try:
        if path.stat().st_size == 0:
            raise ImageError("empty file")
        with Image.open(path) as img:
            width, height = img.size
            if width * height > max_pixels:
                raise ImageError(
                    f"{width}×{height} = {width * height / 1e6:.0f} MP is over the pixel limit "
                    f"of {max_pixels / 1e6:.0f} MP (raise it with --max-pixels if you trust it)"
                )
            source_format = img.format
            img.load()
            icc = img.info.get("icc_profile") or None
            exif = img.getexif()
            if exif.get(_EXIF_ORIENTATION, 1) != 1:
                img = ImageOps.exif_transpose(img)
            if img.mode == "CMYK" and icc:
                img = ImageCms.profileToProfile(
                    img, ImageCms.ImageCmsProfile(io.BytesIO(icc)), _SRGB, outputMode="RGB"
                )
                icc = None  # now sRGB, which is what an untagged file means anyway
            rgb_img, alpha = _to_rgb(img)
            rgb = np.asarray(rgb_img, dtype=np.uint8)
    except ImageError:
        raise
    except UnidentifiedImageError:
        raise ImageError("not an image (Pillow cannot identify the format)") from None
    except Image.DecompressionBombError as exc:
        raise ImageError(f"refused as a decompression bomb: {exc}") from None
    except (OSError, SyntaxError, ValueError, ImageCms.PyCMSError) as exc:
        # Truncated or corrupt data surfaces as OSError/SyntaxError/ValueError from the decoders.
        raise ImageError(f"corrupt or unsupported image: {exc}") from None
    if icc and not _has_rgb_profile(icc):
        icc = None  # a grey or CMYK profile no longer describes the RGB pixels
    exif_bytes = None
    if exif:
        exif[_EXIF_ORIENTATION] = 1
        exif_bytes = exif.tobytes()
    return DecodedImage(rgb, alpha, icc, exif_bytes, source_format)


@dataclass
class EncodeSettings:
    quality: int = 95


def pillow_format(path: Path) -> str:
    try:
        return _WRITABLE[path.suffix.lower()]
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
    so an interrupted run never leaves a truncated file under the final name.
    """
    settings = settings or EncodeSettings()
    fmt = pillow_format(path)
    if fmt == "PNG":
        data = encode_png(image, icc_profile=icc_profile, exif=exif)
        write_atomic(path, lambda f: f.write(data))
        return
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
    write_atomic(path, lambda f: pil.save(f, format=fmt, **params))


_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_PNG_COLOUR_TYPES = {1: 0, 2: 4, 3: 2, 4: 6}  # channels → grey, grey + alpha, RGB, RGBA
_PNG_MAX_CHUNK = 1 << 30  # a chunk's length field allows 2³¹ − 1 bytes; split well below it


def _png_chunk(kind: bytes, data: bytes) -> list[bytes]:
    """A chunk as pieces, joined once with the whole file (the image data is megabytes)."""
    crc = zlib.crc32(data, zlib.crc32(kind))
    return [struct.pack(">I", len(data)) + kind, data, struct.pack(">I", crc)]


def encode_png(
    image: np.ndarray, *, icc_profile: bytes | None = None, exif: bytes | None = None
) -> bytes:
    """PNG bytes of a grey, grey + alpha, RGB or RGBA ``uint8`` image, with profile and EXIF.

    Written here, not by Pillow or OpenCV, because PNG encoding is most of a batch's time and
    both spend it in zlib: Pillow also tries five row filters on every row, OpenCV runs zlib
    1.2 at level 1. Here every row gets the PNG "Up" filter (minus the row above: one NumPy
    subtraction; neighbouring rows of a photo are alike) and the data is deflated by ISA-L
    (``isal``) at level 1. ``benchmarks/bench_png.py``: 4× faster than OpenCV's encoder, files
    ~15 % smaller. Any PNG reader decodes the result; the tests check Pillow and OpenCV.
    """
    from isal import isal_zlib

    if image.dtype != np.uint8 or image.ndim not in (2, 3):
        raise ImageError(f"cannot write a {image.dtype} {image.shape} image as PNG")
    height, width = image.shape[:2]
    channels = 1 if image.ndim == 2 else image.shape[2]
    if channels not in _PNG_COLOUR_TYPES or height == 0 or width == 0:
        raise ImageError(f"cannot write a {image.shape} image as PNG")
    rows = np.ascontiguousarray(image).reshape(height, width * channels)
    filtered = np.empty((height, 1 + width * channels), np.uint8)
    filtered[:, 0] = 2  # filter type "Up"; above the first row the standard assumes zeros
    filtered[0, 1:] = rows[0]
    np.subtract(rows[1:], rows[:-1], out=filtered[1:, 1:])  # modulo 256, as the standard wants
    compressed = isal_zlib.compress(filtered, 1)
    header = struct.pack(">IIBBBBB", width, height, 8, _PNG_COLOUR_TYPES[channels], 0, 0, 0)
    parts = [_PNG_SIGNATURE, *_png_chunk(b"IHDR", header)]
    # Metadata goes before the image data, where the PNG specification wants it.
    if icc_profile and channels >= 3:
        parts += _png_chunk(b"iCCP", b"ICC profile\0\0" + zlib.compress(icc_profile))
    if exif:
        parts += _png_chunk(b"eXIf", exif.removeprefix(b"Exif\0\0"))
    for start in range(0, len(compressed), _PNG_MAX_CHUNK):
        parts += _png_chunk(b"IDAT", compressed[start : start + _PNG_MAX_CHUNK])
    parts += _png_chunk(b"IEND", b"")
    return b"".join(parts)


def write_atomic(path: Path, write: Callable[[BinaryIO], None]) -> None:
    """Call ``write(file)`` on a hidden temporary file beside ``path``, then rename it."""
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


def output_extension(relative: Path, fmt: str) -> str:
    """The output's file extension for ``--format`` (``same`` keeps a writable input format)."""
    if fmt == "same":
        suffix = relative.suffix.lower()
        return relative.suffix if suffix in _WRITABLE else ".png"
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
