"""The PNG encoder: "Up" row filter and ISA-L deflate, several times faster than OpenCV's.

PNG encoding is most of a batch's time, and both Pillow and OpenCV spend it in zlib: Pillow also
tries five row filters on every row, OpenCV runs zlib 1.2 at level 1. Here every row gets the PNG
"Up" filter (minus the row above: one NumPy subtraction; neighbouring rows of a photo are alike)
and the data is deflated by ISA-L (``isal``) at level 1. ``benchmarks/bench_png.py``: 4× faster
than OpenCV's encoder, files ~15 % smaller. Any PNG reader decodes the result; the tests check
Pillow and OpenCV.
"""

from __future__ import annotations

import struct
import zlib

import numpy as np

from operations.media.files import ImageError

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

    Raises:
        ImageError: an image PNG cannot store (not ``uint8``, empty, or 5+ channels).
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
