from __future__ import annotations

import io
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image, ImageCms

from operations import images
from operations.images import ImageError, decode, encode, find_inputs, plan_outputs
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
    ("content", "reason"),
    [
        (b"", "empty file"),
        (b"hello, I am a text file\n", "not an image"),
        (None, "corrupt"),  # a JPEG cut in half
    ],
)
def test_bad_files_raise_one_line_reasons(tmp_path: Path, content: bytes | None, reason: str):
    path = tmp_path / "bad.jpg"
    if content is None:
        save_rgb(path, 64, 64, quality=90)
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    else:
        path.write_bytes(content)
    with pytest.raises(ImageError, match=reason) as info:
        decode(path)
    assert "\n" not in str(info.value)


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


def test_write_atomic_leaves_nothing_on_failure(tmp_path: Path) -> None:
    def half_then_fail(f) -> None:
        f.write(b"half a file")
        raise KeyboardInterrupt  # even a Ctrl-C mid-write

    with pytest.raises(KeyboardInterrupt):
        images.write_atomic(tmp_path / "a.png", half_then_fail)
    assert list(tmp_path.iterdir()) == []


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
    monkeypatch.setattr(images, "_PNG_MAX_CHUNK", 100)  # a huge image's data, in miniature
    pixels = random_rgb(40, 30)
    data = images.encode_png(pixels, exif=b"Exif\0\0MM\0*\0\0\0\x08\0\0")
    assert data.count(b"IDAT") > 3
    with Image.open(io.BytesIO(data)) as img:
        img.load()  # checks every chunk's CRC on the way
        np.testing.assert_array_equal(np.asarray(img), pixels)


def test_png_refuses_what_it_cannot_store() -> None:
    for bad in (np.zeros((4, 4), np.uint16), np.zeros((4, 4, 5), np.uint8), np.zeros((0, 4))):
        with pytest.raises(ImageError):
            images.encode_png(bad)


def test_encoded_file_mode_follows_umask(tmp_path: Path) -> None:
    target = tmp_path / "a.png"
    encode(random_rgb(4, 4), target)
    assert target.stat().st_mode & 0o777 == 0o666 & ~images._UMASK


def test_jpeg_and_webp_quality(tmp_path: Path) -> None:
    rgb = random_rgb(64, 64)
    sizes = {}
    for quality in (30, 95):
        path = tmp_path / f"q{quality}.jpg"
        encode(rgb, path, settings=images.EncodeSettings(quality=quality))
        sizes[quality] = path.stat().st_size
        assert Image.open(path).format == "JPEG"
    assert sizes[30] < sizes[95]
    encode(rgb, tmp_path / "w.webp")
    assert Image.open(tmp_path / "w.webp").format == "WEBP"


def test_find_inputs_skips_hidden_and_excluded(tmp_path: Path) -> None:
    for rel in ["b.jpg", "a.png", ".DS_Store", "notes.txt", "sub/c.jpg", ".hidden/d.jpg",
                "out/e.png"]:  # fmt: skip
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_bytes(b"x")
    assert find_inputs(tmp_path) == [Path("a.png"), Path("b.jpg"), Path("notes.txt")]
    found = find_inputs(tmp_path, recursive=True, exclude=[tmp_path / "out"])
    assert found == [Path("a.png"), Path("b.jpg"), Path("notes.txt"), Path("sub/c.jpg")]


def test_plan_keeps_relative_path_and_stem() -> None:
    plan = plan_outputs([Path("a/cat.jpg"), Path("dog.jpeg")], "png")
    assert plan == {Path("a/cat.jpg"): [Path("a/cat.png")], Path("dog.jpeg"): [Path("dog.png")]}


def test_plan_resolves_collisions_deterministically() -> None:
    inputs = [Path("x.png"), Path("X.jpg"), Path("x.jpg"), Path("y.gif")]
    plan = plan_outputs(inputs, "png")
    # Sorted order is X.jpg, x.jpg, x.png: the first keeps the plain name, case-insensitively.
    assert plan[Path("X.jpg")] == [Path("X.png")]
    assert plan[Path("x.jpg")] == [Path("x.jpg.png")]
    assert plan[Path("x.png")] == [Path("x.png.png")]
    assert plan[Path("y.gif")] == [Path("y.png")]
    assert plan_outputs(list(reversed(inputs)), "png") == plan  # input order does not matter
    names = [p[0].as_posix().casefold() for p in plan.values()]
    assert len(set(names)) == len(names)


def test_plan_collision_with_a_disambiguated_name() -> None:
    # Three names equal but for case: the whole-file-name fallback collides too, so ~2 is added.
    plan = plan_outputs([Path("a.jpg"), Path("A.jpg"), Path("a.JPG")], "png")
    assert plan[Path("A.jpg")] == [Path("A.png")]
    assert plan[Path("a.JPG")] == [Path("a.JPG.png")]
    assert plan[Path("a.jpg")] == [Path("a.jpg~2.png")]


def test_plan_side_files_and_same_format() -> None:
    plan = plan_outputs([Path("a.jpg"), Path("a.mask.jpg")], "same", [".mask.png"])
    assert plan[Path("a.jpg")] == [Path("a.jpg"), Path("a.mask.png")]
    # a.mask.jpg's own side file would be a.mask.mask.png; its main name a.mask.jpg is free.
    assert plan[Path("a.mask.jpg")] == [Path("a.mask.jpg"), Path("a.mask.mask.png")]
    plan = plan_outputs([Path("a.jpg"), Path("a.mask.png")], "png", [".mask.png"])
    assert plan[Path("a.jpg")] == [Path("a.png"), Path("a.mask.png")]
    assert plan[Path("a.mask.png")][0] == Path("a.mask.png.png")  # a.mask.png was taken
    assert plan_outputs([Path("a.gif")], "same")[Path("a.gif")] == [Path("a.png")]


def test_icc_bytes_roundtrip_helper() -> None:
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    assert images._has_rgb_profile(icc)
    assert not images._has_rgb_profile(b"garbage")
    assert io.BytesIO(icc).read(4)  # sanity: real bytes


def test_rgb_16_bit_png_is_scaled(tmp_path: Path) -> None:
    import cv2

    bgr16 = np.zeros((4, 4, 3), np.uint16)
    bgr16[..., 0], bgr16[..., 1], bgr16[..., 2] = 257, 32896, 65535  # OpenCV writes BGR
    cv2.imwrite(str(tmp_path / "rgb16.png"), bgr16)
    assert decode(tmp_path / "rgb16.png").rgb[0, 0].tolist() == [255, 128, 1]
