"""Decoding: every mode to RGB uint8, orientation, profiles, transparency, limits, bad files."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageCms

from operations.media import decode as decode_module
from operations.media.decode import decode
from operations.media.encode import encode
from operations.media.files import ImageError
from tests.helpers import random_rgb, save_rgb


def _decode_array(tmp_path: Path, img: Image.Image, name: str = "x.png", **params):
    path = tmp_path / name
    img.save(path, **params)
    return decode(path)


@pytest.mark.parametrize("mode", ["1", "L", "P", "RGB", "CMYK", "YCbCr", "I", "F"])
def test_every_mode_becomes_rgb_uint8(tmp_path: Path, mode: str) -> None:
    rgb = random_rgb(24, 32)
    img = Image.fromarray(rgb).convert(mode)
    fmt = {"CMYK": "x.jpg", "YCbCr": "x.jpg", "F": "x.tif", "I": "x.tif"}.get(mode, "x.png")
    decoded = _decode_array(tmp_path, img, fmt)
    assert decoded.rgb.dtype == np.uint8
    assert decoded.rgb.shape == (24, 32, 3)
    assert decoded.alpha is None
    if mode in ("RGB", "P", "L"):  # lossless round trips (P: the palette is exact for grey/RGB)
        expected = np.asarray(img.convert("RGB"))
        np.testing.assert_array_equal(decoded.rgb, expected)


def test_grey_16_bit_is_scaled_not_clipped(tmp_path: Path) -> None:
    values = np.array([[0, 257, 32896, 65535]], dtype=np.uint16)
    img = Image.fromarray(values)
    assert img.mode == "I;16"
    decoded = _decode_array(tmp_path, img)
    assert decoded.rgb[0, :, 0].tolist() == [0, 1, 128, 255]
    assert (decoded.rgb[..., 0] == decoded.rgb[..., 2]).all()


def test_transparency_is_returned_as_alpha(tmp_path: Path) -> None:
    rgba = np.zeros((8, 8, 4), np.uint8)
    rgba[..., 0] = 200
    rgba[:, :4, 3] = 255  # left half opaque, right half transparent
    decoded = _decode_array(tmp_path, Image.fromarray(rgba, "RGBA"))
    assert decoded.rgb.shape == (8, 8, 3)
    assert decoded.alpha is not None
    np.testing.assert_array_equal(decoded.alpha[:, :4], 1.0)
    np.testing.assert_array_equal(decoded.alpha[:, 4:], 0.0)


def test_palette_with_transparency_and_grey_alpha(tmp_path: Path) -> None:
    pal = Image.new("P", (4, 4), 0)
    pal.putpalette([10, 20, 30, 200, 100, 50] + [0] * 762)
    pal.putpixel((0, 0), 1)
    pal.info["transparency"] = 0
    decoded = _decode_array(tmp_path, pal, transparency=0)
    assert decoded.rgb[0, 0].tolist() == [200, 100, 50]
    assert decoded.alpha is not None and decoded.alpha[0, 0] == 1 and decoded.alpha[1, 1] == 0

    la = Image.fromarray(np.dstack([np.full((4, 4), 77, np.uint8), np.full((4, 4), 128, np.uint8)]))
    decoded = _decode_array(tmp_path, la, "la.png")
    assert decoded.rgb[0, 0].tolist() == [77, 77, 77]
    assert decoded.alpha is not None and decoded.alpha[0, 0] == pytest.approx(128 / 255)


def test_opaque_rgba_carries_no_alpha(tmp_path: Path) -> None:
    rgba = np.full((4, 4, 4), 255, np.uint8)
    assert _decode_array(tmp_path, Image.fromarray(rgba, "RGBA")).alpha is None


def test_exif_orientation_is_applied(tmp_path: Path) -> None:
    # Stored 40 wide × 20 high, left half red; orientation 6 means "rotate 90° clockwise to view".
    stored = np.zeros((20, 40, 3), np.uint8)
    stored[:, :20] = (255, 0, 0)
    img = Image.fromarray(stored)
    exif = img.getexif()
    exif[0x0112] = 6
    exif[0x010F] = "TestCam"  # Make: must survive into the output
    decoded = _decode_array(tmp_path, img, exif=exif.tobytes())
    assert decoded.rgb.shape == (40, 20, 3)  # now 20 wide × 40 high
    assert decoded.rgb[0, 10].tolist() == [255, 0, 0]  # the stored left half is now the top half
    assert decoded.rgb[39, 10].tolist() == [0, 0, 0]
    out = tmp_path / "out.png"
    encode(decoded.rgb, out, exif=decoded.exif)
    written = Image.open(out).getexif()
    assert written[0x0112] == 1  # viewers must not rotate the already rotated pixels again
    assert written[0x010F] == "TestCam"


def test_icc_profile_is_kept(tmp_path: Path) -> None:
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    path = save_rgb(tmp_path / "tagged.jpg", icc_profile=icc)
    decoded = decode(path)
    assert decoded.icc_profile == icc
    for name in ("out.png", "out.jpg", "out.webp"):
        encode(decoded.rgb, tmp_path / name, icc_profile=decoded.icc_profile)
        assert Image.open(tmp_path / name).info.get("icc_profile") == icc


def test_grey_profile_is_dropped(tmp_path: Path) -> None:
    grey_icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("LAB")).tobytes()  # not RGB
    path = tmp_path / "g.png"
    Image.new("L", (4, 4), 9).save(path, icc_profile=grey_icc)
    assert decode(path).icc_profile is None


def test_cmyk_with_profile_is_converted_through_it(tmp_path: Path) -> None:
    # A CMYK JPEG tagged with a profile is converted by colour management, not naive inversion.
    cmyk = Image.new("CMYK", (4, 4), (0, 0, 0, 0))  # no ink: white paper
    path = tmp_path / "c.jpg"
    cmyk.save(path)
    assert decode(path).rgb[0, 0].tolist() == [255, 255, 255]


def test_pixel_limit(tmp_path: Path) -> None:
    path = save_rgb(tmp_path / "big.png", 100, 100)
    with pytest.raises(ImageError, match="pixel limit"):
        decode(path, max_pixels=9_999)
    assert decode(path, max_pixels=10_000).rgb.shape == (100, 100, 3)


@pytest.mark.parametrize(
    ("content", "reason", "incomplete"),
    [
        (b"", "empty file", True),
        (b"hello, I am a text file\n", "not an image", False),
        ("png-damaged", "corrupt", False),  # whole, but a byte of its pixel data flipped
        ("jpg", "truncated", True),  # a JPEG cut in half: a copy not finished
        ("webp", "truncated", True),  # its RIFF header states more bytes than it has
        ("png", "truncated", True),
    ],
)
def test_bad_files_raise_one_line_reasons(
    tmp_path: Path, content: bytes | str, reason: str, incomplete: bool
):
    path = tmp_path / "bad.img"
    if isinstance(content, str):
        whole = tmp_path / f"whole.{content.split('-')[0]}"
        save_rgb(whole, 64, 64)
        data = bytearray(whole.read_bytes())
        if content.endswith("-damaged"):
            data[data.index(b"IDAT") + 40] ^= 0xFF
        else:
            data = data[: len(data) // 2]
        content = bytes(data)
    path.write_bytes(content)
    with pytest.raises(ImageError, match=reason) as info:
        decode(path)
    assert "\n" not in str(info.value)
    assert info.value.incomplete is incomplete


def test_an_unreadable_file_says_so(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import builtins

    path = save_rgb(tmp_path / "locked.jpg")
    real_open = builtins.open

    def refusing(file, *args, **kwargs):  # root reads anything: the refusal is simulated
        if Path(file) == path:
            raise PermissionError(13, "Permission denied", str(file))
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", refusing)
    with pytest.raises(ImageError, match=r"^cannot read: permission denied$"):
        decode(path)


def test_a_file_that_grows_while_it_is_read_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import os

    from operations.media.files import SourceChanged, read_whole

    path = save_rgb(tmp_path / "growing.jpg")
    real_fstat, calls = os.fstat, []

    def fstat(fd: int) -> os.stat_result:  # the second look sees the copier's next chunk
        calls.append(fd)
        if len(calls) == 2:
            with path.open("ab") as f:
                f.write(b"more")
        return real_fstat(fd)

    monkeypatch.setattr(os, "fstat", fstat)
    with pytest.raises(SourceChanged, match=r"still being copied \(size changed"):
        read_whole(path)


def test_icc_bytes_roundtrip_helper() -> None:
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    assert decode_module._has_rgb_profile(icc)
    assert not decode_module._has_rgb_profile(b"garbage")
    assert io.BytesIO(icc).read(4)  # sanity: real bytes


def test_rgb_16_bit_png_is_scaled(tmp_path: Path) -> None:
    import cv2

    bgr16 = np.zeros((4, 4, 3), np.uint16)
    bgr16[..., 0], bgr16[..., 1], bgr16[..., 2] = 257, 32896, 65535  # OpenCV writes BGR
    cv2.imwrite(str(tmp_path / "rgb16.png"), bgr16)
    assert decode(tmp_path / "rgb16.png").rgb[0, 0].tolist() == [255, 128, 1]


def _tagged(size: tuple[int, int] = (60, 40)) -> tuple[Image.Image, bytes, bytes]:
    """A photo 60 wide, 40 high, whose EXIF says "turn me 90°" (orientation 6), with a Display
    P3-like ICC profile (Pillow's sRGB profile bytes stand in: any RGB profile is carried)."""
    image = Image.new("RGB", size, (200, 30, 30))
    image.paste((30, 30, 200), (0, 0, 10, 40))  # a blue band on the left
    exif = Image.Exif()
    exif[0x0112] = 6
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    return image, exif.tobytes(), icc


def test_heic_photos_decode_upright_with_their_profile(tmp_path: Path) -> None:
    import pillow_heif

    image, exif, icc = _tagged()
    heif = pillow_heif.from_pillow(image)
    path = tmp_path / "iphone.heic"
    heif.save(path, quality=95, exif=exif, icc_profile=icc)
    decoded = decode(path)
    assert decoded.rgb.shape == (60, 40, 3)  # turned by its orientation: now 40 wide
    assert decoded.icc_profile == icc and decoded.source_format in ("HEIF", "HEIC")
    assert decoded.rgb[2, 20, 2] > 150  # the blue band, rotated to the top


def test_avif_in_and_out(tmp_path: Path) -> None:
    image, exif, icc = _tagged()
    path = tmp_path / "photo.avif"
    image.save(path, format="AVIF", quality=95, exif=exif, icc_profile=icc)
    decoded = decode(path)
    assert decoded.rgb.shape == (60, 40, 3) and decoded.icc_profile == icc
    assert decoded.rgb[2, 20, 2] > 150
    out = tmp_path / "out.avif"
    encode(decoded.rgb, out, icc_profile=decoded.icc_profile, exif=decoded.exif)
    again = decode(out)
    assert again.rgb.shape == (60, 40, 3) and again.icc_profile == icc
    assert np.abs(again.rgb.astype(int) - decoded.rgb).mean() < 8  # lossy, close


def test_a_photos_pixels_are_read_from_its_header(tmp_path: Path) -> None:
    import pillow_heif

    from operations.media.decode import pixel_count

    save_rgb(tmp_path / "a.png", 30, 50)
    pillow_heif.from_pillow(Image.new("RGB", (64, 48))).save(tmp_path / "b.heic")  # an iPhone's
    assert pixel_count(tmp_path / "a.png") == 1500
    assert pixel_count(tmp_path / "b.heic") == 64 * 48
    (tmp_path / "c.jpg").write_bytes(b"not a photo")
    assert pixel_count(tmp_path / "c.jpg") == 0  # its job fails when decoded, saying why
    assert pixel_count(tmp_path / "missing.jpg") == 0
