"""Encoding: atomic writes, JPEG/WebP settings."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from operations.media.encode import EncodeSettings, encode
from tests.helpers import random_rgb


def test_encode_is_atomic(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "out" / "a.jpg"
    encode(random_rgb(8, 8), target)
    before = target.read_bytes()

    def broken_save(self, fp, *args, **kwargs):
        fp.write(b"partial data")
        raise OSError("disk full")

    monkeypatch.setattr(Image.Image, "save", broken_save)
    with pytest.raises(OSError, match="disk full"):
        encode(random_rgb(8, 8, seed=1), target)
    assert target.read_bytes() == before  # the old file is intact
    assert [p.name for p in target.parent.iterdir()] == ["a.jpg"]  # no temporary file left


def test_jpeg_and_webp_quality(tmp_path: Path) -> None:
    rgb = random_rgb(64, 64)
    sizes = {}
    for quality in (30, 95):
        path = tmp_path / f"q{quality}.jpg"
        encode(rgb, path, settings=EncodeSettings(quality=quality))
        sizes[quality] = path.stat().st_size
        assert Image.open(path).format == "JPEG"
    assert sizes[30] < sizes[95]
    encode(rgb, tmp_path / "w.webp")
    assert Image.open(tmp_path / "w.webp").format == "WEBP"
