"""Our own HTTP API, ``POST /v1/swap`` and ``POST /v1/mask``: every per-photo choice the command
line offers that makes sense per request, read from a form (or a JSON body) into a
:class:`operations.service.removebg.Plan`. The values are checked by the stages' own settings; a
message names the form field.

Fields (all optional but the photo):

- ``image_file`` (or ``image_file_b64``): the photo.
- ``bg``: ``transparent`` (default), a colour (``white``, ``#f4f4f4``, ``rgb(244,244,244)``) or
  ``blur`` (the photo's own background, blurred); or ``bg_image_file``, an image.
- ``fit`` (``cover``, ``contain``, ``stretch``), ``blur_strength`` (percent).
- ``matting`` (``fast``, ``quality``, ``off``; default: the server's).
- ``harmonize`` (0–1), ``light_wrap`` (px; 0: automatic), ``shadow`` (true/false), ``keep_shadow``
  (true/false: the subject's own cast shadow, kept).
- ``frame`` (``subject``), ``canvas`` (``2000x2000`` or ``4:5``), ``margin`` (%), ``align``.
- ``format`` (``png``, ``jpg``, ``webp``; default PNG when transparent, else JPEG), ``quality``.
- ``mask_file``: your own mask for the photo (grey, or an image's alpha; the photo's shape),
  used instead of the model; ``keep_alpha`` (true/false): a photo's own transparency is its
  mask; ``mask_threshold`` (0–1), ``mask_grow`` (px, negative shrinks), ``mask_feather`` (px).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from operations.errors import SettingError, require
from operations.media.decode import decode, decode_mask
from operations.media.encode import DEFAULT_QUALITY, EncodeSettings
from operations.service.fetch import FetchSettings
from operations.service.removebg import Asked, Plan, Result, fetch_urls, photo_bytes, yes
from operations.service.schema import FILE, FieldDoc
from operations.stages.background import (
    DEFAULT_FIT,
    FIT_MODES,
    TRANSPARENT,
    Background,
    BackgroundSettings,
    parse_colour,
)
from operations.stages.blur import DEFAULT_BLUR_STRENGTH
from operations.stages.framing import ALIGNS, DEFAULT_MARGIN, FrameSettings, parse_canvas
from operations.stages.look import LookSettings
from operations.stages.mask import MaskSettings
from operations.stages.matting import MATTING_METHODS, MattingSettings
from operations.stages.shadow import ShadowSettings

if TYPE_CHECKING:
    from fastapi.responses import Response

    from operations.build import Recipe

T = TypeVar("T")

FIELD_DOCS: list[FieldDoc] = [
    FieldDoc("image_file", FILE, "the photo"),
    FieldDoc("image_url", "string", "the photo's URL (from the server's --allow-fetch hosts)"),
    FieldDoc(
        "bg",
        "string",
        "transparent, a colour (white, #f4f4f4, rgb(244,244,244)), or blur: the photo's own "
        "background blurred",
        default=TRANSPARENT,
    ),
    FieldDoc("bg_image_file", FILE, "a background image instead of bg"),
    FieldDoc("bg_image_url", "string", "a background image's URL (--allow-fetch hosts)"),
    FieldDoc(
        "fit", "string", "how the background meets the photo", enum=FIT_MODES, default=DEFAULT_FIT
    ),
    FieldDoc(
        "blur_strength",
        "number",
        "blur, in % of the photo's shorter side (bg=blur)",
        default=DEFAULT_BLUR_STRENGTH,
    ),
    FieldDoc("matting", "string", "edge refinement (default: the server's)", enum=MATTING_METHODS),
    FieldDoc("harmonize", "number", "the subject's light toward the background's, 0–1"),
    FieldDoc("light_wrap", "integer", "the background's light on the rim, px (0: automatic)"),
    FieldDoc("shadow", "boolean", "a soft drop shadow on the background", default=False),
    FieldDoc(
        "keep_shadow",
        "boolean",
        "keep the subject's own cast shadow (a multiply layer; transparent: in the alpha)",
        default=False,
    ),
    FieldDoc("frame", "string", "place the subject on a canvas", enum=("subject",)),
    FieldDoc("canvas", "string", "with frame: the canvas, 2000x2000 or 4:5"),
    FieldDoc(
        "margin", "number", "with frame: % of the canvas's shorter side", default=DEFAULT_MARGIN
    ),
    FieldDoc(
        "align", "string", "with frame: where the subject stands", enum=ALIGNS, default="center"
    ),
    FieldDoc(
        "format",
        "string",
        "the result's format (default: PNG if transparent, else JPEG)",
        enum=("png", "jpg", "webp"),
    ),
    FieldDoc("quality", "integer", "JPEG/WebP quality, 1–100", default=DEFAULT_QUALITY),
    FieldDoc(
        "mask_file", FILE, "your own mask (grey, or an image's alpha), used instead of the model's"
    ),
    FieldDoc("keep_alpha", "boolean", "a photo's own transparency is its mask", default=False),
    FieldDoc("mask_threshold", "number", "the mask made yes/no at this level, 0–1"),
    FieldDoc("mask_grow", "integer", "grow the mask by px (negative shrinks)", default=0),
    FieldDoc("mask_feather", "number", "soften the finished edge over px", default=0.0),
]
# The text fields a request may hold (files, base64 and URLs are taken out before).
FIELDS = tuple(
    f.name for f in FIELD_DOCS if f.type != FILE and f.name not in ("image_url", "bg_image_url")
)


def _float(fields: dict[str, str], name: str) -> float | None:
    text = fields.get(name, "").strip()
    try:
        return float(text) if text else None
    except ValueError:
        raise SettingError(name, text, "not a number") from None


def _int(fields: dict[str, str], name: str) -> int | None:
    text = fields.get(name, "").strip()
    try:
        return int(text) if text else None
    except ValueError:
        raise SettingError(name, text, "not a whole number") from None


def plan_swap(
    asked: Asked,
    recipe: Recipe,
    max_pixels: int,
    fetching: FetchSettings | None = None,
    *,
    mask: bool = False,
) -> Plan:
    """The request checked (by the stages' own settings), its photo decoded.

    Raises:
        SettingError: a field out of range, or unknown.
        ImageError: the photo or the background is not a readable image.
    """
    fetch_urls(asked, fetching or FetchSettings())
    fields = asked.fields
    unknown = sorted(set(fields) - set(FIELDS))
    require(not unknown, unknown[0] if unknown else "", None, f"not a field of {_FIELDS_SHOWN}")
    photo = decode(Path("image_file"), max_pixels=max_pixels, data=photo_bytes(asked))
    word = fields.get("bg", TRANSPARENT).strip().lower() if not mask else TRANSPARENT
    image = None
    if "bg_image_file" in asked.files and not mask:
        data = asked.files["bg_image_file"]
        decoded = decode(Path("bg_image_file"), max_pixels=max_pixels, data=data)
        image = Background(decoded.rgb, decoded.icc_profile)
        word = ""
    colour = None
    if word not in ("", TRANSPARENT, "blur"):
        try:
            colour = parse_colour(fields["bg"])
        except ValueError as exc:
            raise SettingError("bg", fields["bg"], str(exc)) from None
        require(colour is not None, "bg", fields["bg"], "transparent, blur, or a colour")
    background = BackgroundSettings(
        colour=colour,
        transparent=word == TRANSPARENT,
        blur=word == "blur",
        fit=fields.get("fit", DEFAULT_FIT),
        blur_strength=_or(_float(fields, "blur_strength"), DEFAULT_BLUR_STRENGTH),
        max_pixels=max_pixels,
    )
    harmonize, light_wrap = _float(fields, "harmonize"), _int(fields, "light_wrap")
    shadow = ShadowSettings() if yes(fields, "shadow") else None
    transparent = background.transparent
    for name, value in (("shadow", shadow), ("harmonize", harmonize), ("light_wrap", light_wrap)):
        shown = fields.get(name)
        require(value is None or not transparent, name, shown, "needs a background (bg)")
    look = LookSettings(
        harmonize=harmonize,
        light_wrap=light_wrap,
        shadow=shadow,
        keep_shadow=yes(fields, "keep_shadow"),
    )
    fmt = fields.get("format", "png" if transparent or mask else "jpg").strip().lower()
    require(fmt in ("png", "jpg", "webp"), "format", fmt, "choose from png, jpg, webp")
    quality = EncodeSettings(_or(_int(fields, "quality"), DEFAULT_QUALITY)).quality
    given = None
    if "mask_file" in asked.files:
        height, width = photo.rgb.shape[:2]
        data = asked.files["mask_file"]
        given = decode_mask(Path("mask_file"), height, width, max_pixels=max_pixels, data=data)[0]
    return Plan(
        photo=photo,
        background=background,
        image=image,
        look=look,
        matting=MattingSettings(fields.get("matting", recipe.matting.method)),
        format=fmt,
        channels="alpha" if mask else "rgba",
        framing=_framing(fields, max_pixels, transparent),
        quality=quality,
        mask=_knobs(fields),
        given=given,
    )


def _framing(fields: dict[str, str], max_pixels: int, transparent: bool) -> FrameSettings | None:
    frame = fields.get("frame", "").strip().lower()
    if not frame:
        for name in ("canvas", "margin", "align"):
            require(name not in fields, name, fields.get(name), "goes with frame=subject")
        return None
    require(frame == "subject", "frame", frame, "choose from subject")
    size, aspect = None, None
    if "canvas" in fields:
        try:
            size, aspect = parse_canvas(fields["canvas"])
        except ValueError as exc:
            raise SettingError("canvas", fields["canvas"], str(exc)) from None
    margin = _or(_float(fields, "margin"), DEFAULT_MARGIN)
    return FrameSettings(size, aspect, margin, fields.get("align", "center"), max_pixels)


def _knobs(fields: dict[str, str]) -> MaskSettings:
    """The knobs on the mask, checked; a refusal names the request's field (``mask_grow``), not
    the setting's own (``grow``)."""
    try:
        return MaskSettings(
            threshold=_float(fields, "mask_threshold"),
            grow=_or(_int(fields, "mask_grow"), 0),
            feather=_or(_float(fields, "mask_feather"), 0.0),
            keep_alpha=yes(fields, "keep_alpha"),
        )
    except SettingError as exc:
        raise SettingError(f"mask_{exc.setting}", exc.value, exc.reason) from None


def _or(value: T | None, default: T) -> T:
    return default if value is None else value


_FIELDS_SHOWN = ", ".join(FIELDS)


def respond(result: Result, accept: str) -> Response:
    """The image, with the summary row's doubt, flags and warnings in headers; or all of it as
    JSON (``Accept: application/json``)."""
    import base64
    import json

    from fastapi.responses import JSONResponse, Response

    data, media = result.encoded()
    doubt = result.doubt
    headers = {
        "X-Width": str(result.image.shape[1]),
        "X-Height": str(result.image.shape[0]),
        "X-Doubt": "" if doubt.get("doubt") is None else str(doubt["doubt"]),
        "X-Flags": ",".join(doubt.get("flags", [])),
        # Warnings are free text: JSON in the header (ASCII, one line).
        "X-Warnings": json.dumps(result.warnings),
    }
    if "application/json" in accept:
        body = {
            "result_b64": base64.b64encode(data).decode("ascii"),
            "content_type": media,
            "width": result.image.shape[1],
            "height": result.image.shape[0],
            "warnings": result.warnings,
            **doubt,
        }
        return JSONResponse(body, headers=headers)
    return Response(data, media_type=media, headers=headers)
