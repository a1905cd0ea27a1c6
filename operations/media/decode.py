"""Decoding: an image file → the pipeline's RGB ``uint8`` ``H×W×3`` array, safely.

Every conversion from what is on disk (EXIF orientation, palette, grey, 16-bit, CMYK,
transparency, colour profiles) happens here, once; what the encoder should carry over (the colour
profile, EXIF) comes back beside the pixels.
"""

from __future__ import annotations

import contextlib
import functools
import io
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageCms, ImageOps, UnidentifiedImageError

from operations.errors import setting
from operations.media.containers import cut_short_bytes
from operations.media.files import ImageError, printable, read_whole

# Pillow refuses images over 2 × MAX_IMAGE_PIXELS inside Image.open, before our own, configurable
# limit is consulted; :func:`allow_pixels` raises Pillow's limit to ours when ours is higher.
DEFAULT_MAX_PIXELS = 120_000_000  # a 100 MP medium-format frame passes; decompression bombs do not
_EXIF_ORIENTATION = 0x0112
# What decoders say of a file that ends too soon (Pillow's "image file is truncated",
# libheif's "Unexpected end of file", EOFError's empty message aside).
_TRUNCATED = ("truncated", "end of file", "unexpected end", "premature end")


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


@functools.cache
def _register_heif() -> None:
    """Teach Pillow HEIC/HEIF (iPhone photos) through pillow-heif, once; AVIF is Pillow's own."""
    with contextlib.suppress(ImportError):  # a core requirement; without it HEIC is "not an image"
        from pillow_heif import register_heif_opener

        register_heif_opener()


def pixel_count(path: Path) -> int:
    """An image file's width × height from its header, without decoding it; 0 when it cannot
    be read (:func:`decode` then says why). Pillow reads a few kilobytes; pillow-heif reads a
    HEIC file whole (a second read of it, before the one that decodes it)."""
    _register_heif()
    try:
        with Image.open(path) as image:
            width, height = image.size
    except Exception:  # noqa: BLE001 - any unreadable file: decode() gives the reason
        return 0
    return width * height


def decode(
    path: Path, *, max_pixels: int = DEFAULT_MAX_PIXELS, data: bytes | None = None
) -> DecodedImage:
    """Decode an image file into the pipeline's form.

    Applies the EXIF orientation; converts every mode to RGB (16-bit grey is scaled, not
    clipped; CMYK goes through its ICC profile when it has one); returns transparency as a
    separate alpha; keeps an RGB ICC profile and the EXIF block for the encoder.

    Args:
        path: the file (named in reasons; read here unless ``data`` is given).
        data: the file's bytes, already read (:func:`operations.media.files.read_whole`).

    Raises:
        ImageError: unreadable, empty, not an image, corrupt, truncated (``incomplete``), or
            over ``max_pixels``.
    """
    _register_heif()
    if data is None:
        data = read_whole(path)[0]
    if not data:
        raise ImageError("empty file", incomplete=True)
    try:
        with Image.open(io.BytesIO(data)) as opened:
            img: Image.Image = opened
            width, height = img.size
            if width * height > max_pixels:
                raise ImageError(
                    f"{width}×{height} = {width * height / 1e6:.0f} MP is over the pixel limit "
                    f"of {max_pixels / 1e6:.0f} MP (raise it with {setting('max_pixels')} if you "
                    "trust it)"
                )
            source_format = img.format
            img.load()
            icc = img.info.get("icc_profile") or None
            exif = img.getexif()
            if exif.get(_EXIF_ORIENTATION, 1) != 1:
                img = ImageOps.exif_transpose(img)
            if img.mode == "CMYK" and icc:
                converted = ImageCms.profileToProfile(
                    img, ImageCms.ImageCmsProfile(io.BytesIO(icc)), _SRGB, outputMode="RGB"
                )
                assert converted is not None  # None only when converted in place
                img = converted
                icc = None  # now sRGB, which is what an untagged file means anyway
            rgb_img, alpha = _to_rgb(img)
            rgb = np.asarray(rgb_img, dtype=np.uint8)
    except ImageError:
        raise
    except UnidentifiedImageError:
        if (cut := cut_short_bytes(data)) is not None:  # a HEIC, AVIF or WebP cut short
            raise ImageError(f"truncated (a copy not finished?): {cut}", incomplete=True) from None
        raise ImageError("not an image (Pillow cannot identify the format)") from None
    except Image.DecompressionBombError as exc:
        raise ImageError(f"refused as a decompression bomb: {exc}") from None
    except (OSError, SyntaxError, ValueError, EOFError, ImageCms.PyCMSError) as exc:
        # Truncated or corrupt data surfaces as OSError/SyntaxError/ValueError from the decoders.
        reason = " ".join(str(exc).split())  # one line (pillow-heif's end with a newline)
        structure = cut_short_bytes(data)
        truncated = structure is not None or any(word in reason.lower() for word in _TRUNCATED)
        what = "truncated (a copy not finished?)" if truncated else "corrupt or unsupported image"
        raise ImageError(f"{what}: {structure or reason}", incomplete=truncated) from None
    if icc and not _has_rgb_profile(icc):
        icc = None  # a grey or CMYK profile no longer describes the RGB pixels
    exif_bytes = None
    if exif:
        exif[_EXIF_ORIENTATION] = 1
        exif_bytes = exif.tobytes()
    return DecodedImage(rgb, alpha, icc, exif_bytes, source_format)


# A mask whose shape differs from its photo's by more than this was made for another picture
# (or the photo before its EXIF rotation): stretching it would misplace the subject.
MASK_ASPECT_TOLERANCE = 0.02


def decode_mask(
    path: Path,
    height: int,
    width: int,
    *,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    data: bytes | None = None,
) -> tuple[np.ndarray, int]:
    """A user's mask file as an alpha at its photo's size.

    A grey image is the alpha itself (white: subject); an image with transparency gives its
    alpha channel; a colour image without one, its grey. Any size of the photo's shape.

    Args:
        path: the file (named in reasons; read here unless ``data`` is given).

    Returns:
        ``H×W`` ``float32`` in [0, 1] at ``height``×``width``, and the long side the mask had.

    Raises:
        ImageError: not an image, unreadable, or of another shape than the photo.
    """
    try:
        decoded = decode(path, max_pixels=max_pixels, data=data)
        with Image.open(io.BytesIO(data) if data is not None else path) as opened:
            bands = opened.getbands()  # an alpha channel counts even where it is all opaque
    except ImageError as exc:
        raise ImageError(f"mask {printable(path)}: {exc}") from None
    if decoded.alpha is not None:
        alpha = decoded.alpha
    elif "A" in bands or "a" in bands:
        alpha = np.ones(decoded.rgb.shape[:2], np.float32)
    else:
        grey = cv2.cvtColor(np.ascontiguousarray(decoded.rgb), cv2.COLOR_RGB2GRAY)
        alpha = grey.astype(np.float32) * np.float32(1 / 255)
    own_h, own_w = alpha.shape
    if abs((own_w / own_h) / (width / height) - 1) > MASK_ASPECT_TOLERANCE:
        raise ImageError(
            f"mask {printable(path)} is {own_w}×{own_h}, the photo (upright) {width}×{height}: "
            "a mask must have the photo's shape"
        )
    if (own_h, own_w) != (height, width):
        shrinking = own_w > width
        how = cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR
        alpha = cv2.resize(alpha, (width, height), interpolation=how)
    return np.clip(alpha, 0.0, 1.0, out=alpha), max(own_h, own_w)
