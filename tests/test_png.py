"""Our PNG encoder: lossless for every channel count (read back by Pillow and by libpng), chunks."""

from __future__ import annotations

import io
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from operations.media import png
from operations.media.encode import encode
from operations.media.files import ImageError
from tests.helpers import random_rgb


@pytest.mark.parametrize("channels", [None, 2, 3, 4])
@pytest.mark.parametrize("shape", [(17, 23), (1, 1), (1, 9), (6, 1)])
def test_png_round_trip_is_lossless(
    tmp_path: Path, channels: int | None, shape: tuple[int, int]
) -> None:
    rng = np.random.default_rng(channels)
    shape = shape if channels is None else (*shape, channels)
    # Random rows: half the differences the row filter stores are negative and wrap modulo 256.
    pixels = rng.integers(0, 256, shape, dtype=np.uint8)
    encode(pixels, tmp_path / "x.png")
    with Image.open(tmp_path / "x.png") as img:
        assert img.mode == {None: "L", 2: "LA", 3: "RGB", 4: "RGBA"}[channels]
        np.testing.assert_array_equal(np.asarray(img), pixels)
    # A second, independent decoder (libpng through OpenCV) reads the same pixels.
    read = cv2.imread(str(tmp_path / "x.png"), cv2.IMREAD_UNCHANGED)
    if channels in (3, 4):
        read = cv2.cvtColor(read, cv2.COLOR_BGR2RGB if channels == 3 else cv2.COLOR_BGRA2RGBA)
    if channels != 2:  # OpenCV reads grey + alpha as BGRA
        np.testing.assert_array_equal(read.reshape(pixels.shape), pixels)


def test_png_image_data_split_into_chunks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(png, "_PNG_MAX_CHUNK", 100)  # a huge image's data, in miniature
    pixels = random_rgb(40, 30)
    data = png.encode_png(pixels, exif=b"Exif\0\0MM\0*\0\0\0\x08\0\0")
    assert data.count(b"IDAT") > 3
    with Image.open(io.BytesIO(data)) as img:
        img.load()  # checks every chunk's CRC on the way
        np.testing.assert_array_equal(np.asarray(img), pixels)


def test_png_refuses_what_it_cannot_store() -> None:
    for bad in (np.zeros((4, 4), np.uint16), np.zeros((4, 4, 5), np.uint8), np.zeros((0, 4))):
        with pytest.raises(ImageError):
            png.encode_png(bad)
