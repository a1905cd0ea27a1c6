"""Whether a file is cut short, by its own container's account: the sizes its structure
states, read from a few headers (never the whole file).

A copy still under way, or one that stopped, leaves a file that decoders often take for a
shorter one: an MPEG-TS that ends early plays, an MP4 with its index first plays up to the cut.
Most containers say how long they are, and a file shorter than that is cut short whatever a
decoder makes of it:

- ISO base media (MP4, MOV, M4V, 3GP, HEIC, AVIF): a chain of boxes, each stating its size;
- Matroska (MKV, WebM): the segment's size (unless the writer left it "unknown", as live
  recorders do);
- RIFF (AVI, WebP, WAV): the size after its first eight bytes;
- MPEG-TS: whole 188-byte packets (M2TS/MTS: 192), each starting with the sync byte.

Formats that state no length (JPEG, PNG, GIF) are left to their decoders, which notice.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import BinaryIO

_MAX_BOXES = 100_000  # a chain longer than this is not walked to its end
_ISO_TYPES = {b"ftyp", b"moov", b"mdat", b"free", b"skip", b"wide", b"pnot", b"meta", b"styp"}
_TS_PACKETS = {".ts": (188, 0), ".m2ts": (192, 4), ".mts": (192, 4)}  # size, sync's offset


def cut_short_file(path: Path) -> str | None:
    """Why the file at ``path`` is cut short, in a few words (``None``: it is not, or its
    container states no length). Unreadable files are left to the decoders."""
    try:
        with open(path, "rb") as f:
            return cut_short(f, path.stat().st_size, path.suffix.lower())
    except OSError:
        return None


def cut_short_bytes(data: bytes, suffix: str = "") -> str | None:
    """:func:`cut_short_file` for bytes already read."""
    return cut_short(io.BytesIO(data), len(data), suffix.lower())


def cut_short(f: BinaryIO, size: int, suffix: str = "") -> str | None:
    """Why a file of ``size`` bytes read through ``f`` is cut short (``suffix``: its extension,
    for MPEG-TS, which has no signature of its own)."""
    head = f.read(12)
    if head[:4] == b"RIFF" and len(head) >= 8:
        stated = int.from_bytes(head[4:8], "little") + 8
        return _shorter(stated, size)
    if head[:4] == b"\x1a\x45\xdf\xa3":
        return _matroska(f, size)
    if head[4:8] in _ISO_TYPES:
        return _iso(f, size)
    if suffix in _TS_PACKETS:
        packet, sync = _TS_PACKETS[suffix]
        if len(head) > sync and head[sync] == 0x47 and size % packet:
            return f"it ends inside a {packet}-byte packet ({size % packet} bytes of one)"
    return None


def _shorter(stated: int, size: int) -> str | None:
    if stated > size:
        return f"its container states {stated:,} bytes, the file has {size:,}"
    return None


def _iso(f: BinaryIO, size: int) -> str | None:
    position = 0
    for _ in range(_MAX_BOXES):
        if position + 8 > size:
            return None if position == size else "it ends inside a box's header"
        f.seek(position)
        header = f.read(16)
        length = int.from_bytes(header[:4], "big")
        kind = header[4:8].decode("latin-1")
        if length == 1:  # a 64-bit size follows
            if len(header) < 16:
                return "it ends inside a box's header"
            length = int.from_bytes(header[8:16], "big")
        elif length == 0:  # the last box, to the end of the file
            return None
        if length < 8:
            return None  # not a box chain we understand: the decoder decides
        if position + length > size:
            return f"its {kind!r} box ends at byte {position + length:,}, the file has {size:,}"
        position += length
    return None


def _vint(f: BinaryIO) -> tuple[int, int] | None:
    """An EBML variable-length integer: (value, its length in bytes); ``None`` at the end."""
    first = f.read(1)
    if not first:
        return None
    byte = first[0]
    length = 1
    while length <= 8 and not byte & (0x80 >> (length - 1)):
        length += 1
    if length > 8:
        return None
    rest = f.read(length - 1)
    if len(rest) < length - 1:
        return None
    value = byte & (0xFF >> length)
    for b in rest:
        value = (value << 8) | b
    return value, length


def _matroska(f: BinaryIO, size: int) -> str | None:
    f.seek(4)
    header = _vint(f)  # the EBML header's size
    if header is None:
        return "it ends inside its header"
    f.seek(f.tell() + header[0])
    if f.read(4) != b"\x18\x53\x80\x67":  # the Segment's ID
        return None if f.tell() < size else "it ends before its segment"
    segment = _vint(f)
    if segment is None:
        return "it ends inside its header"
    value, length = segment
    if value == (1 << (7 * length)) - 1:  # "unknown": a live recording's
        return None
    return _shorter(f.tell() + value, size)
