"""remove.bg's API (``POST /v1.0/removebg``) on our pipeline: its request read and checked, the
swap it asks for, its response (the image, or JSON with ``Accept: application/json``).

:data:`PARAMETERS` says, parameter by parameter, what is supported, accepted and ignored, or
refused; docs/service.md's table is made from it.
"""

from __future__ import annotations

import base64
import binascii
import io
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from operations.errors import BackgroundSwapError, SettingError, require, setting
from operations.media.decode import DecodedImage, decode
from operations.media.encode import EncodeSettings, encoder
from operations.media.png import encode_png
from operations.media.resize import shrink
from operations.pipeline import GivenMask, Pipeline
from operations.service.fetch import FetchSettings, fetch
from operations.service.schema import FILE, FieldDoc
from operations.stages.background import (
    Background,
    BackgroundSettings,
    BackgroundSource,
    parse_colour,
)
from operations.stages.framing import FrameSettings
from operations.stages.look import LookSettings
from operations.stages.mask import MaskSettings
from operations.stages.matting import MattingSettings
from operations.stages.shadow import ShadowSettings

if TYPE_CHECKING:
    from fastapi import Request
    from fastapi.responses import Response

    from operations.build import Recipe
    from operations.segmenters.base import Segmenter

# remove.bg's sizes: the most pixels of the result (None: as sent, up to the server's limit).
SIZES: dict[str, int | None] = {
    "preview": 250_000,
    "small": 250_000,
    "regular": 250_000,
    "medium": 1_500_000,
    "hd": 4_000_000,
    "full": None,
    "4k": None,
    "auto": None,
}
FORMATS = ("auto", "png", "jpg", "webp", "zip")
PEOPLE_MODELS = ("mediapipe", "deeplab", "yolo")  # X-Type: person; any other model: other
TYPES = ("auto", "person", "product", "animal", "car", "graphic", "transportation", "other")
CHANNELS = ("rgba", "alpha")
# Settings as this front door names them in messages (its form fields).
FIELD_NAMES = {
    "max_pixels": "the server's pixel limit (--max-pixels)",
    "bg": "bg_color / bg_image_file",
    "allow_fetch": "the server's --allow-fetch",
}

FETCHED = "supported from --allow-fetch hosts"
PARAMETERS: list[FieldDoc] = [
    FieldDoc("image_file", FILE, "the photo", how="multipart upload"),
    FieldDoc("image_file_b64", "string", "the photo, base64", how="form field or JSON body"),
    FieldDoc("image_url", "string", "the photo's URL", support=FETCHED, how="else refused (400)"),
    FieldDoc(
        "size",
        "string",
        "the result's size",
        enum=tuple(SIZES),
        default="preview",
        how="preview/small/regular 0.25 MP, medium 1.5 MP, hd 4 MP, "
        "full/4k/auto as sent (up to the server's pixel limit); default preview, as remove.bg",
    ),
    FieldDoc(
        "type",
        "string",
        "what the subject is",
        enum=TYPES,
        default="auto",
        support="supported with --mode auto",
        how="person: the people model; product, animal, car, "
        "graphic, transportation, other: the salient one; auto: chosen by faces (with another "
        "--mode the server's model answers every type); X-Type says person or other",
    ),
    FieldDoc("type_level", "string", "remove.bg's class detail", support="accepted, ignored"),
    FieldDoc(
        "format",
        "string",
        "the result's format",
        enum=FORMATS,
        default="auto",
        how="auto (PNG if transparent, else JPEG), png, jpg, webp, zip",
    ),
    FieldDoc(
        "roi",
        "string",
        "region of interest",
        default="0% 0% 100% 100%",
        support="refused unless the whole image",
        how="0% 0% 100% 100%",
    ),
    FieldDoc(
        "crop",
        "boolean",
        "crop to the subject",
        default=False,
        how="to the subject's box (alpha over 5 %)",
    ),
    FieldDoc(
        "crop_margin",
        "string",
        "margin around the crop",
        default="0",
        how="px or %, one value for every side",
    ),
    FieldDoc(
        "scale", "string", "subject's scale", default="original", support="refused unless original"
    ),
    FieldDoc(
        "position",
        "string",
        "subject's position",
        default="original",
        support="refused unless original",
    ),
    FieldDoc(
        "channels",
        "string",
        "the result's channels",
        enum=CHANNELS,
        default="rgba",
        how="rgba, alpha",
    ),
    FieldDoc(
        "add_shadow",
        "boolean",
        "a shadow under the subject",
        default=False,
        support="supported with a background",
        how="our shadow; ignored on a transparent result",
    ),
    FieldDoc(
        "semitransparency",
        "boolean",
        "soft edges",
        default=True,
        support="accepted, ignored",
        how="the matte is always soft",
    ),
    FieldDoc(
        "bg_color", "string", "a background colour", how="hex (with or without #) or a colour name"
    ),
    FieldDoc("bg_image_file", FILE, "a background image", how="fitted to cover"),
    FieldDoc(
        "bg_image_url",
        "string",
        "a background image's URL",
        support=FETCHED,
        how="else refused (400)",
    ),
]


class ApiError(BackgroundSwapError):
    """An error answered in remove.bg's shape, with its HTTP status."""

    def __init__(self, status: int, title: str, code: str, detail: str | None = None):
        super().__init__(title)
        self.status, self.title, self.code, self.detail = status, title, code, detail

    def body(self) -> dict[str, Any]:
        error = {"title": self.title, "code": self.code}
        if self.detail is not None:
            error["detail"] = self.detail
        return {"errors": [error]}


@dataclass
class Asked:
    """A request's fields (text) and files (bytes)."""

    fields: dict[str, str]
    files: dict[str, bytes]


async def read_request(request: Request, max_upload: int) -> Asked:
    """The request's fields and files, from a multipart or urlencoded form or a JSON body."""
    kind = request.headers.get("content-type", "")
    fields: dict[str, str] = {}
    files: dict[str, bytes] = {}
    if kind.startswith("application/json"):
        try:
            body = await request.json()
        except ValueError:
            raise ApiError(400, "Invalid JSON body", "invalid_json") from None
        if not isinstance(body, dict):
            raise ApiError(400, "Invalid JSON body", "invalid_json", "an object")
        fields = {str(k): _text(v) for k, v in body.items() if v is not None}
    else:
        try:
            form = await request.form(max_files=3, max_fields=40, max_part_size=max_upload)
        except Exception as exc:  # noqa: BLE001 - Starlette's parser errors, all a bad request
            raise ApiError(400, "Invalid form", "invalid_form", str(exc)) from None
        for key, value in form.multi_items():
            if isinstance(value, str):
                fields[key] = value
            else:
                files[key] = await value.read(max_upload + 1)
                if len(files[key]) > max_upload:
                    raise ApiError(413, "Upload too large", "file_too_large")
    for name in ("image_file", "mask_file"):  # remove.bg's one base64 field, and our mask's
        if f"{name}_b64" in fields:
            try:
                files[name] = base64.b64decode(fields.pop(f"{name}_b64"), validate=True)
            except (binascii.Error, ValueError):
                raise ApiError(400, f"{name}_b64 is not base64", "invalid_base64") from None
    return Asked(fields, files)


def _text(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


@dataclass(frozen=True)
class Plan:
    """One request, checked: what to do to which photo (remove.bg's, or our own /v1/swap's)."""

    photo: DecodedImage
    background: BackgroundSettings
    image: Background | None
    look: LookSettings
    matting: MattingSettings
    format: str
    channels: str = "rgba"
    crop: bool = False
    crop_margin: str = "0"
    size: str = "full"
    framing: FrameSettings | None = None
    quality: int = 90
    type: str = "auto"  # remove.bg's: which model, where the server has a choice (--mode auto)
    mask: MaskSettings = field(default_factory=MaskSettings)  # /v1/swap's knobs on the mask
    given: np.ndarray | None = None  # /v1/swap's mask_file: the user's mask at the photo's size

    def run(self, segmenter: Segmenter | None) -> Result:
        assert segmenter is not None  # admitted only once the model is ready
        segmenter = _for_type(segmenter, self.type)
        source = BackgroundSource(self.background, image=self.image)
        pipeline = Pipeline(
            segmenter,
            source,
            matting=self.matting,
            look=self.look,
            framing=self.framing,
            mask=self.mask,
        )
        given = self.given
        rgb, alpha_in = self.photo.rgb, self.photo.alpha
        most = SIZES[self.size]
        height, width = rgb.shape[:2]
        if most is not None and height * width > most:
            scale = (most / (height * width)) ** 0.5
            w, h = max(1, round(width * scale)), max(1, round(height * scale))
            rgb = shrink(np.ascontiguousarray(rgb), w, h)
            alpha_in = None if alpha_in is None else shrink(alpha_in, w, h)
            given = None if given is None else shrink(given, w, h)
        swapped = pipeline.swap(
            rgb,
            alpha_in=alpha_in,
            icc_profile=self.photo.icc_profile,
            given=None if given is None else GivenMask(given, max(given.shape), "mask_file"),
        )
        image = swapped.image
        # The subject's alpha where it lies in the result (framed: on the canvas).
        alpha = image[..., 3] / np.float32(255) if image.shape[2] == 4 else swapped.alpha
        if alpha.shape != image.shape[:2]:
            alpha = np.ones(image.shape[:2], np.float32)
        box = _box(alpha)
        if self.crop:
            top, left, box_h, box_w = box
            pad_y, pad_x = _margin(self.crop_margin, box_h, box_w)
            y0, x0 = max(0, top - pad_y), max(0, left - pad_x)
            y1 = min(image.shape[0], top + box_h + pad_y)
            x1 = min(image.shape[1], left + box_w + pad_x)
            image, alpha = image[y0:y1, x0:x1], alpha[y0:y1, x0:x1]
            box = (top - y0, left - x0, box_h, box_w)
        chosen = swapped.extra.get("segmenter")
        name = chosen["name"] if isinstance(chosen, dict) else segmenter.name
        return Result(
            image,
            alpha,
            box,
            self.format,
            self.channels,
            self.background.transparent,
            quality=self.quality,
            warnings=swapped.warnings,
            doubt=swapped.doubt.to_dict() if swapped.doubt is not None else {},
            kind="person" if name in PEOPLE_MODELS else "other",
        )


def _for_type(segmenter: Segmenter, kind: str) -> Segmenter:
    """The model for remove.bg's ``type``: with ``--mode auto``'s pair, the one asked for."""
    from operations.segmenters.auto import AutoSegmenter

    if kind == "auto" or not isinstance(segmenter, AutoSegmenter):
        return segmenter
    if kind == "person" or segmenter.other is None:  # no salient model: the people one
        return segmenter.people
    return segmenter.other


@dataclass(frozen=True)
class Result:
    image: np.ndarray  # RGBA when transparent, else RGB
    alpha: np.ndarray
    box: tuple[int, int, int, int]  # the subject's top, left, height, width
    format: str
    channels: str
    transparent: bool
    quality: int = 90
    warnings: list[str] = field(default_factory=list)
    doubt: dict[str, Any] = field(default_factory=dict)  # the summary row's doubt, flags, signals
    kind: str = "other"  # X-Type: "person" when a people model made the mask

    def encoded(self) -> tuple[bytes, str]:
        """The response's bytes and Content-Type."""
        alpha8 = np.clip(self.alpha * 255 + 0.5, 0, 255).astype(np.uint8)
        if self.format == "zip":
            colour = self.image[..., :3]
            buffer = io.BytesIO()
            with zipfile.ZipFile(buffer, "w") as archive:
                archive.writestr("color.jpg", _encode(np.ascontiguousarray(colour), "jpg", 90))
                archive.writestr("alpha.png", encode_png(alpha8))
            return buffer.getvalue(), "application/zip"
        image = alpha8 if self.channels == "alpha" else self.image
        fmt = self.format
        if fmt == "auto":
            fmt = "png" if self.transparent or self.channels == "alpha" else "jpg"
        if fmt == "jpg" and image.ndim == 3 and image.shape[2] == 4:  # remove.bg: on white
            a = image[..., 3:4].astype(np.float32) / 255
            image = (image[..., :3] * a + 255 * (1 - a) + 0.5).astype(np.uint8)
        return _encode(np.ascontiguousarray(image), fmt, self.quality), f"image/{_MEDIA[fmt]}"


_MEDIA = {"png": "png", "jpg": "jpeg", "webp": "webp"}


def _encode(image: np.ndarray, fmt: str, quality: int) -> bytes:
    buffer = io.BytesIO()
    encoder(image, Path(f"result.{fmt}"), settings=EncodeSettings(quality=quality))(buffer)
    return buffer.getvalue()


def _box(alpha: np.ndarray) -> tuple[int, int, int, int]:
    rows = np.flatnonzero((alpha > 0.05).any(axis=1))
    cols = np.flatnonzero((alpha > 0.05).any(axis=0))
    if rows.size == 0:
        return 0, 0, 0, 0
    return int(rows[0]), int(cols[0]), int(rows[-1] - rows[0] + 1), int(cols[-1] - cols[0] + 1)


def _margin(text: str, height: int, width: int) -> tuple[int, int]:
    text = text.strip()
    if text.endswith("%"):
        share = float(text[:-1]) / 100
        return round(height * share), round(width * share)
    pixels = round(float(text.removesuffix("px")))
    return pixels, pixels


def _choice(fields: dict[str, str], name: str, default: str, choices: tuple[str, ...]) -> str:
    value = fields.get(name, default).strip().lower() or default
    require(value in choices, name, value, f"choose from {', '.join(choices)}")
    return value


def yes(fields: dict[str, str], name: str) -> bool:
    """A true/false field (``true``, ``false``, ``1``, ``0``; absent: false)."""
    value = fields.get(name, "false").strip().lower()
    require(value in ("true", "false", "1", "0", ""), name, value, "true or false")
    return value in ("true", "1")


def photo_bytes(asked: Asked) -> bytes:
    """The photo's bytes (``image_file``, or ``image_file_b64`` decoded)."""
    data = asked.files.get("image_file")
    require(data is not None, "image_file", None, "give image_file or image_file_b64")
    assert data is not None
    return data


def fetch_urls(asked: Asked, fetching: FetchSettings) -> None:
    """``image_url`` and ``bg_image_url`` fetched into the request's files, where the server
    allows it (see :mod:`operations.service.fetch`); refused otherwise."""
    for name, file in (("image_url", "image_file"), ("bg_image_url", "bg_image_file")):
        url = asked.fields.pop(name, None)
        if url is None:
            continue
        why = f"this server fetches no URLs (see {setting('allow_fetch')})"
        require(bool(fetching.hosts), name, url, why)
        require(file not in asked.files, name, url, f"give {file} or {name}, not both")
        asked.files[file] = fetch(url, name, fetching)


def plan(
    asked: Asked, recipe: Recipe, max_pixels: int, fetching: FetchSettings | None = None
) -> Plan:
    """The request checked (every parameter first, then URLs fetched, then the photos decoded:
    a bomb refused from its header).

    Raises:
        SettingError: a parameter this server refuses, or a value out of range.
        ImageError: the photo (or the background) is not a readable image.
    """
    fields = asked.fields
    for name in ("scale", "position"):
        value = fields.get(name, "original").strip().lower()
        require(value == "original", name, value, "only original is supported")
    roi = " ".join(fields.get("roi", "0% 0% 100% 100%").split())
    require(roi == "0% 0% 100% 100%", "roi", roi, "only the whole image is supported")
    margin = fields.get("crop_margin", "0")
    try:
        _margin(margin, 1, 1)
    except ValueError:
        raise SettingError("crop_margin", margin, "px or % (e.g. 30px or 10%)") from None
    yes(fields, "semitransparency")
    colour = _colour(fields)
    size = _choice(fields, "size", "preview", tuple(SIZES))
    fmt = _choice(fields, "format", "auto", FORMATS)
    channels = _choice(fields, "channels", "rgba", CHANNELS)
    kind = _choice(fields, "type", "auto", TYPES)
    crop = yes(fields, "crop")
    shadow = yes(fields, "add_shadow")
    fetch_urls(asked, fetching or FetchSettings())
    photo = decode(Path("image_file"), max_pixels=max_pixels, data=photo_bytes(asked))
    image = None
    if "bg_image_file" in asked.files:
        data = asked.files["bg_image_file"]
        decoded = decode(Path("bg_image_file"), max_pixels=max_pixels, data=data)
        image = Background(decoded.rgb, decoded.icc_profile)
    transparent = colour is None and image is None
    return Plan(
        photo=photo,
        background=BackgroundSettings(
            colour=colour, transparent=transparent, max_pixels=max_pixels
        ),
        image=image,
        look=LookSettings(shadow=ShadowSettings() if shadow and not transparent else None),
        matting=recipe.matting,
        format=fmt,
        channels=channels,
        crop=crop,
        crop_margin=margin,
        size=size,
        type=kind,
    )


def _colour(fields: dict[str, str]) -> tuple[int, int, int] | None:
    """``bg_color``: remove.bg's hex without ``#`` (``81d4fa``), or any colour we read."""
    if "bg_color" not in fields:
        return None
    text = fields["bg_color"].strip()
    hexadecimal = len(text) in (3, 6) and all(c in "0123456789abcdefABCDEF" for c in text)
    try:
        colour = parse_colour(f"#{text}" if hexadecimal else text)
    except ValueError as exc:
        raise SettingError("bg_color", text, str(exc)) from None
    require(colour is not None, "bg_color", text, "not a colour (hex, or a name)")
    return colour


def respond(result: Result, accept: str) -> Response:
    """The image, or remove.bg's JSON, with its headers."""
    from fastapi.responses import JSONResponse, Response

    data, media = result.encoded()
    top, left, height, width = result.box
    headers = {
        "X-Width": str(result.image.shape[1]),
        "X-Height": str(result.image.shape[0]),
        "X-Type": result.kind,
        "X-Foreground-Top": str(top),
        "X-Foreground-Left": str(left),
        "X-Foreground-Width": str(width),
        "X-Foreground-Height": str(height),
        "X-Credits-Charged": "0",
    }
    if "application/json" in accept:
        body: dict[str, Any] = {
            "data": {
                "result_b64": base64.b64encode(data).decode("ascii"),
                "foreground_top": top,
                "foreground_left": left,
                "foreground_width": width,
                "foreground_height": height,
            }
        }
        return JSONResponse(body, headers=headers)
    return Response(data, media_type=media, headers=headers)
