"""The run's settings: one dataclass, validated once; every error names the option and its value.

Each setting is declared once, as a field of :class:`Options`: its default (a constant of the
module that uses it: ``encode.DEFAULT_QUALITY``, ``yolo.DEFAULT_CONFIDENCE``…), and in the
field's metadata its command-line flag (:class:`Flag`: group, help, metavar, the docs'
wording). The parser (``run.build_parser``) and the options table of docs/options.md
(:func:`options_table`) are made from these declarations. Validation only checks: the run
creates what it needs (the output folder) once it starts.

:class:`Options` is the top of the settings' flow: it builds each stage's own settings
(:meth:`Options.recipe`, :meth:`Options.engine_settings`), and no module below imports it.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import os
from collections.abc import Callable, Iterator
from dataclasses import Field, asdict, dataclass, field, fields, make_dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from operations.build import Recipe
from operations.errors import OptionsError, SettingError
from operations.jobs import engines
from operations.jobs.drop_folder import DropSettings
from operations.jobs.engines import EngineSettings, default_workers
from operations.jobs.job import JobSettings
from operations.jobs.report import PAGE_NAME
from operations.jobs.watch import DEFAULT_SETTLE
from operations.media import video
from operations.media.decode import DEFAULT_MAX_PIXELS
from operations.media.encode import DEFAULT_FORMAT, DEFAULT_QUALITY, OUTPUT_FORMATS
from operations.media.files import VIDEO_EXTENSIONS, WRITABLE, find_inputs, is_video
from operations.models import DEFAULT_DEVICE, DEVICES
from operations.segmenters import (
    DEFAULT_SEGMENTER,
    backends,
    resolve_segmenter_name,
    segmenter_help,
)
from operations.segmenters.base import Backend, SegmenterSettings
from operations.stages import temporal
from operations.stages import text_to_image as sd
from operations.stages.background import (
    BG_MATCH,
    DEFAULT_FIT,
    FIT_MODES,
    TRANSPARENT,
    BackgroundKind,
    BackgroundSettings,
    Folder,
    generation,
    kind_of,
    parse_colour,
)
from operations.stages.blur import DEFAULT_BLUR_STRENGTH
from operations.stages.framing import ALIGNS, DEFAULT_MARGIN, FrameSettings, parse_canvas
from operations.stages.harmonize import DEFAULT_STRENGTH as DEFAULT_HARMONIZE
from operations.stages.light_wrap import DEFAULT_WIDTH as DEFAULT_WRAP
from operations.stages.look import LookSettings
from operations.stages.mask import MaskSettings
from operations.stages.matting import DEFAULT_METHOD as DEFAULT_MATTING
from operations.stages.matting import MATTING_METHODS, MattingSettings
from operations.stages.neural_style_transfer import OPTIMIZERS, StyleSettings
from operations.stages.shadow import ShadowSettings

__all__ = ["Options", "OptionsError", "default_workers"]

T = TypeVar("T")


_NST = (
    "nst_size",
    "nst_steps",
    "nst_optimizer",
    "nst_content_weight",
    "nst_style_weight",
    "nst_tv_weight",
)
_PROMPT = (
    "around",
    "negative_prompt",
    "sd_model",
    "sd_size",
    "seed",
    "sd_steps",
    "sd_guidance",
    "sd_attention_slicing",
    "sd_cpu_offload",
)


def check_installed(option: str, value: str | None, extra: str, modules: tuple[str, ...]) -> None:
    """Stop at once, with the exact command, when an option's optional install is missing."""
    missing = [m for m in modules if importlib.util.find_spec(m) is None]
    if missing:
        raise OptionsError(
            option,
            value,
            f"needs {', '.join(missing)}, which "
            f"{'is' if len(missing) == 1 else 'are'} not installed: "
            f"pip install -r requirements-{extra}.txt "
            f"(or, from the checkout, pip install '.[{extra}]')",
        )


def _check_folder_writable(option: str, path: Path, made: Path | None = None) -> None:
    """A file the run will write: its folder must exist and be writable, or lie inside
    ``made``, the folder the run creates (its output folder), whose nearest existing folder
    above must be writable."""
    folder = path.parent
    if made is not None and (
        folder.resolve() == made.resolve() or made.resolve() in folder.resolve().parents
    ):
        folder = next((f for f in (folder, *folder.parents) if f.exists()), Path("."))
    if not folder.is_dir() or not os.access(folder, os.W_OK):
        raise OptionsError(option, path, "its folder does not exist or is not writable")


def _whole_number(text: str) -> int:
    try:
        return int(text.replace("_", ""))
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None


def _pair(text: str) -> tuple[float, float]:
    try:
        x, y = (float(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"give two numbers X,Y: {text!r}") from None
    return x, y


def _names(text: str) -> list[str]:
    return [c.strip() for c in text.split(",") if c.strip()]


@dataclass(frozen=True)
class Flag:
    """A setting's command-line flag, declared with its field (in the field's metadata).

    ``help`` is ``--help``'s line (argparse's ``%(default)s`` allowed); ``doc`` the options
    table's wording when it says more (``{default}`` is the field's default). The flag is
    ``--`` + the field's name with dashes unless ``name`` says otherwise.
    """

    group: str
    help: str
    short: str | None = None
    name: str | None = None
    metavar: str | None = None
    type: Callable[[str], Any] | None = None
    choices: tuple[str, ...] | None = None
    nargs: str | None = None
    const: Any = None
    required: bool = False
    doc: str | None = None

    def flags(self, field_name: str) -> list[str]:
        long = self.name or "--" + field_name.replace("_", "-")
        return [self.short, long] if self.short else [long]


def _option(default: Any = None, *, factory: Callable[[], Any] | None = None, **flag: Any) -> Any:
    """A settings field with its flag (see :class:`Flag`)."""
    metadata = {"flag": Flag(**flag)}
    if factory is not None:
        return field(default_factory=factory, metadata=metadata)
    return field(default=default, metadata=metadata)


IO = "input and output"
BG = "background"
CLIPS = (
    "videos (.mp4 .mov .m4v .mkv .webm .avi …: every frame, with the sound, timing and "
    "rotation kept)"
)
LIGHT = "the scene's light (with a new background)"
SD = "generated backgrounds (--prompt)"
NST = "style transfer (--nst)"
SEG = "segmentation"
MASK = "the subject's mask (yours, or the model's reshaped)"
SCALE = "scaling out (--engine ray)"
RUN = "run"


def _groups() -> list[str]:
    """The help's groups in order; each backend's own settings come after segmentation's."""
    backend_groups = [f"--mode {b}" for b in backends()]
    return [IO, BG, CLIPS, LIGHT, SD, NST, SEG, MASK, *backend_groups, SCALE, RUN]


@dataclass
class _Settings:
    """Every setting of a run. Paths may be ``None`` when the library is used image by image.

    The segmentation backends' own settings (``mp_model``, ``yolo_conf``…) are fields too,
    declared by their modules (:attr:`Backend.options`) and added by :data:`Options` below.
    """

    input: Path | None = _option(
        group=IO,
        short="-i",
        type=Path,
        required=True,
        metavar="DIR|PHOTO",
        help="folder of photos, or one photo",
        doc="folder of photos (and videos), or one photo or video (required)",
    )
    output: Path | None = _option(
        group=IO,
        short="-o",
        type=Path,
        required=True,
        metavar="DIR|FILE",
        help="folder for the results (created if missing; must not be --input); with one photo "
        "in, also a file name (result.png, result.jpg)",
        doc="folder for the results, created if missing (required). It may not be the input "
        "folder; if it lies inside it, it is never read as input. With one photo in, it may "
        "name the file (`-i photo.jpg -o result.png`; its extension sets the format, side files "
        "go beside it as `result.mask.png`)",
    )
    recursive: bool = _option(
        False,
        group=IO,
        short="-r",
        help="also read sub-folders; the output mirrors them",
        doc="read sub-folders too; the output mirrors them",
    )
    format: str = _option(
        DEFAULT_FORMAT,
        group=IO,
        choices=OUTPUT_FORMATS,
        help="output format; 'same' keeps the input's (default: %(default)s)",
        doc="output format (default `{default}`); `same` keeps the input's format when it is one "
        "we write (PNG, JPEG, WebP, AVIF, TIFF, BMP), otherwise PNG (HEIC photos come out as "
        "PNG)",
    )
    quality: int = _option(
        DEFAULT_QUALITY,
        group=IO,
        type=int,
        metavar="1-100",
        help="JPEG/WebP/AVIF quality (default: %(default)s)",
        doc="JPEG/WebP/AVIF quality (default {default})",
    )
    overwrite: bool = _option(
        False,
        group=IO,
        help="redo files whose outputs exist (default: skip them, so reruns resume)",
        doc="redo files whose outputs exist (by default they are skipped, so a rerun resumes)",
    )
    save_mask: bool = _option(
        False,
        group=IO,
        help="also write the subject's alpha as NAME.mask.png",
        doc="also write the subject's alpha as `NAME.mask.png` (8-bit grey)",
    )
    save_cutout: bool = _option(
        False,
        group=IO,
        help="also write the subject alone as a transparent NAME.cutout.png",
        doc="also write the subject alone as `NAME.cutout.png` (RGBA)",
    )
    watch: bool = _option(
        False,
        group=IO,
        help="keep processing the folder's files as they arrive (a drop folder), each once it "
        "has settled (--settle), again when it changes; Ctrl-C or SIGTERM ends it with the "
        "summary",
        doc="a studio's drop folder: keep processing the folder's files, those there at the "
        "start and those that arrive, each once it has not changed for `--settle` seconds (and, "
        "where the system can tell, no other program has it open), so a photo still being "
        "copied is never read; a file that changes is taken again (a new file under a name "
        "already done is written as `NAME-2.png`); a record in the output folder makes "
        "restarts safe; Ctrl-C or SIGTERM ends it (exit 130 / 143) with the summary and the "
        "review page. See [Drop folders](drop-folders.md)",
    )
    delete_input: bool = _option(
        False,
        group=IO,
        help="with --watch: delete each input once every output is written from its whole, "
        "last content (checked again just before; anything else keeps it and says why)",
        doc="with --watch: delete each input once every output has been written from its "
        "whole, last content, checked again just before the deletion; an input that is cut "
        "short, changed, or still open in another program is kept, and its row says why. See "
        "[Drop folders](drop-folders.md)",
    )
    settle: float = _option(
        DEFAULT_SETTLE,
        group=IO,
        type=float,
        metavar="SECONDS",
        help="with --watch: how long a file must stay unchanged (size and time) before it is "
        "taken (default: %(default)s)",
        doc="with --watch: how long a file must stay unchanged (size and modification time) "
        "before it is taken (default {default}: longer than the pauses of copies over Wi-Fi "
        "and SMB, and twice FAT's 2 s time step)",
    )
    max_pixels: int = _option(
        DEFAULT_MAX_PIXELS,
        group=IO,
        type=_whole_number,
        metavar="N",
        help="refuse images with more pixels than this, e.g. decompression bombs "
        "(default: %(default)s)",
        doc="refuse images larger than N pixels (default {default:,}: a 100 MP frame passes, a "
        "decompression bomb does not)",
    )
    events: str | None = _option(
        group=IO,
        metavar="FILE|-",
        help="write the run's events as JSON Lines as they happen (- for standard output)",
        doc="write the run's events, one JSON object a line, flushed as they happen (`-`: "
        "standard output): `run_started` with the settings, `file` with its `status` and its "
        "row as the summary writes it, `run_finished` with the counts. See "
        "[Scripting](scripting.md)",
    )
    summary: Path | None = _option(
        group=IO,
        type=Path,
        metavar="FILE.json",
        help="write a JSON report: per file input, output, status, seconds, error, doubt",
        doc="write a report: per file `input`, `output`, `status` (`ok`, `skipped`, `failed`), "
        "`seconds`, `error`, `warnings`, `doubt` (0–1), `flags` and the `signals` behind them"
        " (see [Reviewing results](review.md)), `extra` (what a stage "
        "recorded: a generated background's seed, a video's frames, `--mode auto`'s "
        "`segmenter`); plus counts and the options used. A name that is not valid UTF-8 is "
        "given readably in `input` (undecodable bytes as U+FFFD) and exactly in "
        "`input_bytes`, percent-encoded (`urllib.parse.unquote_to_bytes` restores it). The "
        "file is written atomically; a summary inside the input folder is never read as an "
        "input",
    )
    report: Path | bool | None = _option(
        group=IO,
        nargs="?",
        const=True,
        type=Path,
        metavar="FILE.html",
        help="write a review page: every result beside its input, the doubtful ones first "
        f"(default FILE: {PAGE_NAME} in the output folder; thumbnails in report_files/). "
        "`backgroundswap report OUTPUT_DIR` rebuilds it later",
        doc="write a review page: every result beside its input, the doubtful ones first "
        f"(default `{PAGE_NAME}` in the output folder, thumbnails in `report_files/` beside it). "
        "`backgroundswap report OUTPUT_DIR` rebuilds it later. See "
        "[Reviewing results](review.md)",
    )

    frame: str | None = _option(
        group=BG,
        choices=("subject",),
        help="frame the subject: crop to its box (specks apart) and place it on a canvas "
        "(--canvas, --margin, --align) that the background fills",
        doc="frame the subject: crop to its box (specks of mask apart) and place it on a canvas "
        "the background fills (an image, a colour, or transparent) — every product the same "
        "size with the same margin. See [For shops](shops.md)",
    )
    canvas: str | None = _option(
        group=BG,
        metavar="WxH|W:H",
        help="with --frame: the canvas, in pixels (2000x2000) or an aspect ratio (4:5, at the "
        "photo's own scale) (default: the subject's box plus the margin)",
    )
    margin: float = _option(
        DEFAULT_MARGIN,
        group=BG,
        type=float,
        metavar="PCT",
        help="with --frame: the space around the subject, in %% of the canvas's shorter side "
        "(default: %(default)s)",
    )
    align: str = _option(
        "center",
        group=BG,
        choices=ALIGNS,
        help="with --frame: centre the subject, or stand it on the bottom margin (products on a "
        "floor) (default: %(default)s)",
    )
    bg: Path | None = _option(
        group=BG,
        short="-b",
        type=Path,
        metavar="FILE|DIR|COLOUR",
        help="background image, a folder of them (see --bg-match), a video (each frame of a "
        "video gets the frame at its time, looped; a photo gets the first frame), a colour "
        "(white, '#f4f4f4', 'rgb(244,244,244)'), or transparent (the result is the subject's "
        "RGBA cut-out: PNG, WebP or TIFF)",
        doc="background image, a video (see [Videos](videos.md)), or a folder of images: each "
        "photo gets the next one in name order, round and round, or with `--bg-match name` the "
        "one named like the photo (`cat.jpg` → `DIR/cat.*`; a photo with none fails with that "
        "reason). The summary records each photo's background. Or a plain colour, as CSS "
        "writes it (`white`, `'#f4f4f4'`, `'rgb(244,244,244)'`), or `transparent`: the result "
        "is the subject's RGBA cut-out (PNG, WebP or TIFF; JPEG is refused), with `--shadow` a "
        "semi-transparent shadow layer under it. A file of that name wins over the word",
    )
    bg_match: str = _option(
        "cycle",
        group=BG,
        choices=BG_MATCH,
        help="with --bg DIR: cycle = each photo gets the next background in name order; name = "
        "the one named like the photo (cat.jpg → DIR/cat.*) (default: %(default)s)",
        doc="how photos and a `--bg` folder's backgrounds are paired (default `{default}`)",
    )
    prompt: str | None = _option(
        group=BG,
        short="-p",
        metavar="TEXT",
        help="generate the background from a text prompt with Stable Diffusion (when no --bg)",
        doc="generate the background from a text prompt with Stable Diffusion (instead of "
        "`--bg`). One background per run by default, generated at the first photo's aspect "
        "ratio (long side: the model's native size, rounded to its size step) and fitted to "
        "each photo like any background",
    )
    fit: str = _option(
        DEFAULT_FIT,
        group=BG,
        choices=FIT_MODES,
        help="fit the background to each photo: cover = fill and centre-crop, "
        "contain = whole background with black bars, stretch = distort to fit "
        "(default: %(default)s)",
        doc="how the background meets each photo's size: `cover` (default) scales to fill and "
        "crops the centre; `contain` shows the whole background with black bars; `stretch` "
        "distorts it to fit (the original tool's behaviour)",
    )
    matting: str = _option(
        DEFAULT_MATTING,
        group=BG,
        choices=MATTING_METHODS,
        help="edge refinement: fast = a coarse mask (mediapipe, deeplab, yolo) follows the "
        "photo's own edges, a fine one (salient) is kept; the old background's colour is "
        "removed from the edge pixels; quality = closed-form matting (coarse masks) or "
        "multi-level colour estimation (fine ones), several times slower; off = the model's "
        "soft mask and the photo's colours as they are (default: %(default)s)",
        doc="edge refinement. `fast` (default): a coarse mask (MediaPipe, DeepLab, YOLO) is "
        "fitted to the photo's own edges, hair strands included; a fine one (the salient "
        "models') is kept as the model gave it; either way the old background's colour is "
        "taken out of the edge pixels. `quality`: closed-form matting for a coarse mask (about "
        "a second per megapixel), pymatting's multi-level colour estimation for a fine one; "
        "`off`: the model's soft mask and the photo's colours as they are. See "
        "[Edge quality](how-it-works.md#edge-quality)",
    )
    masks: Path | None = _option(
        None,
        group=MASK,
        type=Path,
        metavar="DIR",
        help="a folder of your own masks, by the photo's name (DIR/NAME.png: grey, or an RGBA "
        "image's alpha; any size): used instead of the model; photos with none use the model",
        doc="a folder of your own masks, found by the photo's name: `DIR/NAME.*` (with "
        "`--recursive`, `DIR/SUB/NAME.*` first), a grey image or an RGBA image's alpha, any "
        "size (resized to the photo; its shape must match the photo's upright one). Used instead "
        "of the model and refined by the edge stage unless `--matting off`; photos with none use "
        "the model, and each row of the summary says which (`extra.mask`). Photos only. See "
        "[Corrections](corrections.md)",
    )
    keep_alpha: bool = _option(
        False,
        group=MASK,
        help="a photo with its own transparency (not fully opaque) keeps it as its mask",
        doc="a photo that has its own transparency (a PNG, WebP or TIFF cut out before, not "
        "fully opaque) keeps that alpha as its mask instead of the model's",
    )
    mask_threshold: float | None = _option(
        None,
        group=MASK,
        type=float,
        metavar="T",
        help="make the mask yes/no at this level, 0–1, before the edge stage",
        doc="make the mask yes/no at this level, 0–1 (first of the knobs: threshold, then grow "
        "or shrink, then the edge stage, then feather)",
    )
    mask_grow: int = _option(
        0,
        group=MASK,
        type=int,
        metavar="PX",
        help="grow the mask by PX pixels (negative: shrink) before the edge stage (default: 0)",
        doc="grow the mask by `PX` pixels at the photo's size, or shrink it with a negative "
        "number, before the edge stage (default: 0)",
    )
    mask_feather: float = _option(
        0.0,
        group=MASK,
        type=float,
        metavar="PX",
        help="soften the finished edge over about PX pixels (default: 0)",
        doc="soften the finished edge over about `PX` pixels, after the edge stage (default: 0)",
    )
    blur: bool = _option(
        False,
        group=BG,
        help="blur the background; without --bg, blur the photo's own background (portrait mode)",
        doc="blur the background layer. Without `--bg`: portrait mode, the photo's own "
        "background blurred without smearing the subject into it",
    )
    blur_strength: float = _option(
        DEFAULT_BLUR_STRENGTH,
        group=BG,
        type=float,
        metavar="PCT",
        help="blur sigma as a percentage of the photo's shorter side (default: %(default)s)",
        doc="Gaussian sigma as a percentage of the photo's shorter side (default {default}), so "
        "mixed resolutions get the same look",
    )
    nst: bool = _option(
        False,
        group=BG,
        short="-n",
        help="repaint each photo's own background in the style of the --bg image (VGG19 neural "
        "style transfer, masked so the subject is untouched)",
        doc="repaint each photo's own background in the style of the `--bg` image (VGG19 neural "
        "style transfer, masked so the subject is untouched); slow on a CPU (about a minute a "
        "photo), fast on a GPU",
    )

    video_codec: str = _option(
        video.DEFAULT_VIDEO_CODEC,
        group=CLIPS,
        choices=tuple(video.VIDEO_CODECS),
        help="h264 = .mp4 that plays everywhere; hevc = smaller .mp4; vp9 = .webm "
        "(default: %(default)s; cut-outs take --video-format, which keeps the alpha)",
        doc="videos' output: `.mp4` (default), smaller `.mp4`, `.webm`; cut-outs take "
        "`--video-format`, which keeps the alpha",
    )
    video_format: str = _option(
        video.DEFAULT_VIDEO_FORMAT,
        group=CLIPS,
        choices=tuple(video.TRANSPARENT_FORMATS),
        help="transparent videos (--save-cutout): mov = ProRes 4444 for editors; webm = VP9 "
        "with alpha for web pages; webp = animated WebP for stickers and previews (no sound); "
        "png = a folder NAME.cutout/000001.png… with the sound as NAME.cutout/audio.m4a (masks "
        "too: NAME.mask/, grey frames) (default: %(default)s)",
        doc="transparent videos (`--save-cutout`): `mov` ProRes 4444 for editors (default), "
        "`webm` VP9 with alpha for web pages and browsers, `webp` an animated WebP for stickers "
        "and previews (no sound), `png` a folder `NAME.cutout/000001.png…` with the sound as "
        "`NAME.cutout/audio.m4a` (the masks too: `NAME.mask/`, grey frames)",
    )
    video_quality: int = _option(
        video.DEFAULT_VIDEO_QUALITY,
        group=CLIPS,
        type=int,
        metavar="1-100",
        help="higher is better and larger; mapped onto the codec's CRF (%(default)s = x264's "
        "CRF 20) (default: %(default)s)",
        doc="videos: higher is better and larger, mapped onto the codec's CRF (default {default} "
        "= x264's CRF 20)",
    )
    temporal_smoothing: float = _option(
        temporal.DEFAULT_STRENGTH,
        group=CLIPS,
        type=float,
        metavar="0-0.99",
        help="steady a still subject's edge from frame to frame: the weight of the previous "
        "frame's alpha where the picture did not move (it follows at once where it did); "
        "0 = off (default: %(default)s)",
        doc="videos: the weight of the last frame's alpha where the picture did not move "
        "(default {default}; 0 = off)",
    )

    harmonize: float | None = _option(
        group=LIGHT,
        nargs="?",
        const=DEFAULT_HARMONIZE,
        type=float,
        metavar="STRENGTH",
        help="move the subject's colour and light toward the new background's, 0-1 "
        f"(given alone: {DEFAULT_HARMONIZE}); texture and detail are kept, the change is bounded",
        doc="move the subject's colour and light toward the new background's, 0–1 (given alone: "
        f"{DEFAULT_HARMONIZE}); texture and detail kept, the change bounded. See "
        "[The scene's light](scene-light.md)",
    )
    light_wrap: int | None = _option(  # px; 0: light_wrap.DEFAULT_WIDTH of the long side
        group=LIGHT,
        nargs="?",
        const=0,
        type=_whole_number,
        metavar="PX",
        help="let the background's light bleed PX pixels into the subject's edge "
        f"(given alone: {DEFAULT_WRAP * 100:g} %% of the photo's long side)",
        doc="let the background's light bleed into the subject's edge, PX wide (given alone: "
        f"{DEFAULT_WRAP * 100:g} % of the photo's long side)",
    )
    shadow: bool = _option(
        False,
        group=LIGHT,
        help="cast a soft drop shadow of the subject on the new background",
        doc="cast a soft drop shadow of the subject on the new background (never on the subject)",
    )
    keep_shadow: bool = _option(
        False,
        group=LIGHT,
        help="keep the shadow the subject casts on its backdrop (a product's on the table or "
        "sweep) and carry it onto the new background, as soft and dark as photographed; on a "
        "busy floor or a wall it warns and keeps none",
        doc="keep the shadow the subject casts on its own backdrop (a product's on the table or "
        "sweep) and carry it onto the new background as photographed (a multiply layer; with "
        "`-b transparent`, a dark layer in the alpha); on a busy floor or a shadow on a wall it "
        "warns and keeps none. See [shops](shops.md#the-products-own-shadow)",
    )
    shadow_offset: tuple[float, float] = _option(
        ShadowSettings.offset,
        group=LIGHT,
        type=_pair,
        metavar="X,Y",
        help="the shadow's offset right and down, in %% of the long side (default: "
        f"{','.join(map(str, ShadowSettings.offset))})",
        doc="the shadow's offset right and down, in % of the long side (default "
        f"`{','.join(map(str, ShadowSettings.offset))}`)",
    )
    shadow_softness: float = _option(
        ShadowSettings.softness,
        group=LIGHT,
        type=float,
        metavar="PCT",
        help="the shadow's blur, in %% of the long side (default: %(default)s)",
    )
    shadow_opacity: float = _option(
        ShadowSettings.opacity,
        group=LIGHT,
        type=float,
        metavar="0-1",
        help="how dark the shadow is under the subject (default: %(default)s)",
    )

    negative_prompt: str | None = _option(
        group=SD, metavar="TEXT", help="what the background must not show"
    )
    sd_model: str = _option(
        sd.DEFAULT_MODEL,
        group=SD,
        metavar="ID|DIR",
        help="diffusers model id or local pipeline folder (default: %(default)s, "
        "CreativeML OpenRAIL-M licence)",
        doc="any diffusers text-to-image model id or local pipeline folder (default `{default}`, "
        "CreativeML OpenRAIL-M licence: read it before commercial use)",
    )
    seed: int = _option(
        sd.DEFAULT_SEED,
        group=SD,
        type=int,
        metavar="SEED",
        help="random seed: the same seed gives the same background (default: %(default)s)",
    )
    sd_steps: int = _option(
        sd.DEFAULT_STEPS,
        group=SD,
        name="--steps",
        type=int,
        metavar="N",
        help="denoising steps (default: %(default)s)",
    )
    sd_guidance: float = _option(
        sd.DEFAULT_GUIDANCE,
        group=SD,
        name="--guidance",
        type=float,
        metavar="SCALE",
        help="classifier-free guidance scale (default: %(default)s)",
    )
    sd_size: int | None = _option(  # None: the model's native size
        group=SD,
        type=int,
        metavar="PX",
        help="long side to generate at (default: the model's native size)",
    )
    bg_per_image: bool = _option(
        False,
        group=SD,
        help="generate one background per photo (seed + the photo's index) instead "
        "of one for the run",
        doc="one background per photo, at its own aspect ratio, seed + the photo's index "
        "(recorded in the summary JSON)",
    )
    around: bool = _option(
        False,
        group=SD,
        help="paint the background around each photo's subject, at the photo's own framing, "
        "with an inpainting model (default with it: "
        f"{sd.DEFAULT_INPAINT_MODEL}); the subject's pixels stay as shot; seed + the photo's "
        "index",
        doc="generate the scene *around* each photo's subject: an inpainting model paints "
        "everything but the subject (its mask, dilated a little), at the photo's own size and "
        "framing, so the floor meets the feet and the light follows the photo; the subject is "
        "composited back with the edge stage, its pixels as shot. One background per photo, "
        "seed + the photo's index (in the summary). Default model with it: "
        f"`{sd.DEFAULT_INPAINT_MODEL}` (CreativeML OpenRAIL-M); any inpainting pipeline (SDXL "
        "inpainting, a local folder) via `--sd-model`. See [Generated around the "
        "subject](generated-backgrounds.md)",
    )
    strength: float = _option(
        sd.DEFAULT_STRENGTH,
        group=SD,
        type=float,
        metavar="0-1",
        help="with --around: 1 paints the background anew, less keeps more of the photo's "
        "(default: %(default)s)",
    )
    sd_attention_slicing: bool = _option(
        False, group=SD, help="lower GPU memory use, a little slower"
    )
    sd_cpu_offload: bool = _option(
        False, group=SD, help="CUDA: keep only the running part of the model on the GPU"
    )

    nst_size: int = _option(
        StyleSettings.size,
        group=NST,
        type=int,
        metavar="PX",
        help="working size, long side; larger = finer strokes, slower (default: %(default)s)",
        doc="style transfer's working size, long side (default {default}: VGG's receptive field "
        "makes the strokes' size relative to it; a forward and backward pass stays under a "
        "second on a 2-core CPU); the result is enlarged to the photo",
    )
    nst_steps: int = _option(
        StyleSettings.steps,
        group=NST,
        type=int,
        metavar="N",
        help="loss evaluations at the finest of two pyramid levels; stops early "
        "when the loss stops improving (default: %(default)s)",
        doc="loss evaluations at the finer of two pyramid levels (half as many at the coarser "
        "one); stops early when the loss improves by less than 0.1 % (default {default})",
    )
    nst_optimizer: str = _option(
        StyleSettings.optimizer,
        group=NST,
        choices=OPTIMIZERS,
        help="(default: %(default)s)",
        doc="the optimiser (default `{default}`)",
    )
    nst_content_weight: float = _option(
        StyleSettings.content_weight,
        group=NST,
        type=float,
        metavar="W",
        help="(default: %(default)g)",
        doc="the content loss's weight (default {default:g}: the original tool's)",
    )
    nst_style_weight: float = _option(
        StyleSettings.style_weight,
        group=NST,
        type=float,
        metavar="W",
        help="(default: %(default)g)",
        doc="the style loss's weight (default {default:g}: the original tool's)",
    )
    nst_tv_weight: float = _option(
        StyleSettings.tv_weight,
        group=NST,
        type=float,
        metavar="W",
        help="total-variation weight (default: %(default)g)",
        doc="the total-variation loss's weight (default {default:g}: the original tool's)",
    )
    nst_weights: Path | None = _option(
        group=NST,
        type=Path,
        metavar="FILE",
        help="a local torchvision VGG19 weights file (vgg19-dcbb9e9d.pth)",
        doc="a local torchvision VGG19 weights file (`vgg19-dcbb9e9d.pth`)",
    )

    mode: str = _option(
        DEFAULT_SEGMENTER,
        group=SEG,
        short="-m",
        metavar="MODE",
        help=f"segmentation backend, by number or name: {segmenter_help()} (default: %(default)s)",
        doc="segmentation backend: `0`/`mediapipe` (default; people), `1`/`deeplab` "
        "(torchvision DeepLabv3; the 20 PASCAL VOC classes: people, animals, vehicles…), "
        "`2`/`yolo` (Ultralytics YOLOv8-seg; the 80 COCO classes, every instance), `3`/`salient` "
        "(class-agnostic salient object: whatever the photo is of — a lion, a shoe, a bottle), "
        "`auto` (per photo: `mediapipe` when it shows a face, `salient` for anything else; the "
        "choice is in the summary and on the review page)",
    )
    classes: list[str] | None = _option(
        group=SEG,
        type=_names,
        metavar="NAME[,NAME...]",
        help="DeepLab/YOLO: the classes that count as subject, by the model's own names (VOC "
        "for DeepLab: person, dog, cat…; COCO for YOLO); default: every class it detects",
        doc="DeepLab/YOLO: the classes that count as subject, in the model's own names "
        "(`person,dog`); default every class the model detects. An unknown name stops with the "
        "list of valid ones; with a backend that has no classes it is refused, as is any "
        "backend's own option (`--yolo-conf`…) given with another backend",
    )
    weights: Path | None = _option(
        group=SEG,
        type=Path,
        metavar="FILE",
        help="a local weights file for the chosen backend, instead of the cache or a download",
    )
    offline: bool = _option(
        False,
        group=SEG,
        help="never use the network (also HF_HUB_OFFLINE=1 or YOLO_OFFLINE=1); weights must be "
        "cached or given with --weights",
        doc="never use the network (`HF_HUB_OFFLINE=1` does the same): weights must be cached or "
        "given with `--weights`",
    )
    device: str = _option(
        DEFAULT_DEVICE,
        group=SEG,
        choices=DEVICES,
        help="where the run's models run, each if it can (default: %(default)s; MediaPipe is CPU "
        "only)",
        doc="where models run (`auto`: CUDA, then MPS, then CPU). On CUDA, DeepLab and YOLO run "
        "in half precision. A device asked for by name that is not there is an error, never a "
        "silent CPU run. Each model of the run runs there if it can: MediaPipe runs on the CPU "
        "only (it stays there when the device is for the generator or the style network), "
        "salient models on the CPU or, with `onnxruntime-gpu` installed in place of "
        "`onnxruntime`, CUDA; a device no model of the run can use is refused",
    )
    batch_size: int = _option(
        1,
        group=SEG,
        type=int,
        metavar="N",
        help="segment up to N images per model call (DeepLab/YOLO; worth it on a GPU); raises "
        "--workers to at least N (default: %(default)s)",
        doc="DeepLab/YOLO/salient: segment up to N images per model call (worth it on a GPU; "
        "salient models whose graph has a free batch axis); raises `--workers` to N",
    )

    engine: str = _option(
        engines.DEFAULT_ENGINE,
        group=SCALE,
        choices=tuple(engines.ENGINES),
        help="local: threads on this machine; ray: a Ray cluster's workers, "
        "same outputs (default: %(default)s)",
        doc="where the photos are processed: threads on this machine (default), or a Ray "
        "cluster's workers (see [Scaling out](scaling-out.md))",
    )
    ray_address: str | None = _option(  # None: start a local Ray instance
        group=SCALE,
        metavar="ADDRESS",
        help="the cluster's head, HOST:PORT (its `ray start --head --port`), ray://HOST:PORT or "
        "auto (default: start a local Ray instance)",
        doc="the cluster's head, `HOST:PORT` (`ray://HOST:PORT` and `auto` also work); default: "
        "a local Ray instance",
    )
    cpus_per_worker: float = _option(
        1.0,
        group=SCALE,
        type=float,
        metavar="F",
        help="CPUs per Ray worker: one worker (one model, F + 1 threads) per F CPUs of the "
        "cluster (default: %(default)s)",
    )
    gpus_per_worker: float = _option(
        0.0,
        group=SCALE,
        type=float,
        metavar="F",
        help="GPUs per Ray worker (0.5: two workers share a GPU) (default: %(default)s)",
    )
    workers: int = _option(
        factory=default_workers,
        group=RUN,
        type=int,
        metavar="N",
        help="threads that decode, composite and encode in parallel, on at most 64 MP of "
        "photos at once (local engine; a Ray worker has --cpus-per-worker + 1) (default: "
        "%(default)s)",
        doc="threads that decode, composite and encode in parallel (default: cores + 1, at most "
        "8), on at most 64 megapixels of photos at once (a larger photo alone); the model "
        "itself takes one image at a time. The local engine's: refused with "
        "`--engine ray`",
    )
    quiet: bool = _option(
        False, group=RUN, short="-q", help="no progress bar or summary line; errors only"
    )
    verbose: bool = _option(False, group=RUN, short="-v", help="log every file")

    def to_dict(self) -> dict[str, object]:
        return {k: str(v) if isinstance(v, Path) else v for k, v in asdict(self).items()}

    def validated(self, *, batch: bool = True) -> Options:
        """Return a checked, normalised copy (``mode`` becomes the backend's name).

        A value on its own is checked by the stage's settings it becomes (``StyleSettings``
        refuses a size of 10, naming its own field; :meth:`recipe` names the option); here are
        the checks that span several settings, the file system, or what is installed.

        Args:
            batch: also check what a batch run needs: the input and output folders, and a
                background source (the library's one-image API may pass an in-memory one).

        Raises:
            OptionsError: the first invalid setting.
        """
        try:
            mode = resolve_segmenter_name(self.mode)
        except ValueError as exc:
            raise self._error("mode", str(exc)) from None
        self._check_words()
        self._check_background()
        self._check_generation()
        self._check_choices()
        self._check_files()
        if self.quiet and self.verbose:
            raise OptionsError("--quiet", None, "cannot be combined with --verbose")
        uses = backends()[mode].uses
        for name, backend in backends().items():
            self._check_backend(backend, chosen=name == mode, used=name in uses)
        self._check_combinations(backends()[mode])
        self.engine_settings()  # each stage's settings check their own values,
        self.recipe()  # before what is installed is asked for
        self._check_installs(mode)
        checked = self._normalised(mode)
        if checked.watch:
            checked.drop_settings(())
        if batch:
            checked._check_batch()
            if checked.report is True:
                checked = replace(checked, report=checked.output_folder / PAGE_NAME)
        return checked

    def _check_words(self) -> None:
        """Settings written as words the top parses: a colour, a canvas."""
        try:
            self._bg_parsed()  # a colour written out of range, or with transparency
        except ValueError as exc:
            raise self._error("bg", str(exc)) from None
        if self.canvas is not None:
            try:
                size = parse_canvas(self.canvas)[0]
            except ValueError as exc:
                raise self._error("canvas", str(exc)) from None
            if size is not None and max(size) > 20000:
                raise self._error("canvas", "at most 20000 px a side")

    def _check_background(self) -> None:
        """What goes behind the subject: one source, and what each needs of it."""
        if self.prompt is not None and self.bg is not None:
            raise self._error("prompt", "give --bg or --prompt, not both")
        kind = self._background_kind()
        if self.frame is not None and (kind.own or self.nst):
            raise OptionsError(
                "--frame",
                self.frame,
                "needs a new background to fill the canvas (--bg FILE, a colour, transparent, "
                "or --prompt), not the photo's own",
            )
        if self.nst and not kind.styles and not self.around:  # --around: see _check_generation
            raise OptionsError(
                "--nst",
                None,
                "needs a style image: give --bg FILE or --prompt"
                if kind.own
                else "needs a style image: a colour or transparent has "
                "no style; give --bg FILE or --prompt",
            )

    def _check_generation(self) -> None:
        """A generated background: painting around the subject and one per photo."""
        if self.around and self.bg_per_image:
            raise OptionsError("--bg-per-image", None, "--around already paints one per photo")
        if self.around and self.nst:
            raise OptionsError(
                "--around",
                None,
                "paints a new background; --nst restyles the photo's own: give one",
            )
        if self.around and (channels := sd.model_in_channels(self._sd_model())) not in (
            None,
            sd.INPAINT_CHANNELS,
        ):
            why = sd.not_inpainting(self._sd_model(), channels).split(": ", 1)[1]
            raise OptionsError("--sd-model", self._sd_model(), why)
        if self.bg_per_image and self.prompt is None:
            raise OptionsError("--bg-per-image", None, "goes with --prompt")

    def _check_choices(self) -> None:
        """The core's declared choices (``--fit``, ``--engine`` …); a backend's are checked
        with its backend, after what they go with."""
        for name, spec in _flags().items():
            if spec.group.startswith("--mode "):
                continue
            value = getattr(self, name)
            if spec.choices is not None and value is not None and value not in spec.choices:
                raise self._error(name, f"choose from {', '.join(spec.choices)}")

    def _check_files(self) -> None:
        """Files the settings name: they must be there."""
        if self.nst_weights is not None and not Path(self.nst_weights).is_file():
            raise self._error("nst_weights", "no such file")
        if self.masks is not None and not Path(self.masks).is_dir():
            raise self._error("masks", "no such folder (name the folder that holds the masks)")
        if self.bg is None or self._bg_parsed() is not None:
            return
        bg = Path(self.bg)
        if not bg.exists():
            raise OptionsError(
                "--bg",
                bg,
                "no such file or folder, and not a colour (white, #f4f4f4, "
                "rgb(244,244,244)) or 'transparent'",
            )
        if bg.is_dir() and not find_inputs(bg):
            raise OptionsError("--bg", bg, "the folder holds no files")
        if not bg.is_file() and not bg.is_dir():
            raise OptionsError("--bg", bg, "not a file or a folder")

    def _check_installs(self, mode: str) -> None:
        """What the run needs installed: stop at once, with the command that installs it."""
        backend = backends()[mode]
        if backend.extra is not None:
            check_installed("--mode", mode, backend.extra, backend.requires)
        if self.nst:
            check_installed("--nst", None, "torch", ("torch", "torchvision"))
        if self.prompt is not None:
            check_installed("--prompt", None, "sd", ("torch", "diffusers", "transformers"))
        if self.engine == "ray":
            check_installed("--engine", "ray", "ray", ("ray",))

    def _normalised(self, mode: str) -> Options:
        """The backend's own name, paths as paths, and as many workers as a batch needs
        (a batch gathers its images from the worker threads)."""
        paths: dict[str, Any] = {
            name: Path(value)
            for name in ("input", "output", "bg", "summary", "weights", "nst_weights", "report")
            if (value := getattr(self, name)) not in (None, True)
        }
        workers = max(self.workers, self.batch_size)
        return replace(self, mode=mode, workers=workers, **paths)

    def _check_combinations(self, backend: Backend) -> None:
        """An option that would be silently ignored is refused: it says what it goes with."""
        defaults = type(self)()
        kind = self._background_kind()
        transparent, new_background = kind.transparent, not kind.own
        # -o FILE: its extension says the format
        suffix = Path(self.output).suffix.lower() if self.output_file and self.output else None
        lossy = (self.format in ("jpg", "webp", "avif", "same") and not self.output_file) or (
            suffix in (".jpg", ".jpeg", ".webp", ".avif")
        )
        rules = [
            (("blur_strength",), self.blur, "--blur"),
            (("bg_match",), kind is Folder, "--bg DIR"),
            (
                ("fit",),
                kind.fitted and not self.nst,
                "--bg or --prompt (without --nst or --around)",
            ),
            (("strength",), self.around, "--around"),
            (("canvas", "margin", "align"), self.frame is not None, "--frame subject"),
            (("delete_input", "settle"), self.watch, "--watch"),
            (
                ("harmonize",),
                new_background and not transparent,
                "a new background (--bg or --prompt; not transparent)",
            ),
            (("light_wrap",), not transparent, "a background to take light from (not transparent)"),
            (("blur",), not transparent, "a background to blur (not --bg transparent)"),
            (("shadow", "keep_shadow"), new_background, "a new background (--bg or --prompt)"),
            (("shadow_offset", "shadow_softness", "shadow_opacity"), self.shadow, "--shadow"),
            (("quality",), lossy, "JPEG, WebP or AVIF output (--format, or -o FILE.jpg)"),
            (("format",), not self.output_file, "an output folder (-o FILE: its extension)"),
            ((*_NST, "nst_weights"), self.nst, "--nst"),
            (_PROMPT, self.prompt is not None, "--prompt"),
            (
                ("ray_address", "cpus_per_worker", "gpus_per_worker"),
                self.engine == "ray",
                "--engine ray",
            ),
            (
                ("workers",),
                self.engine == "local",
                "--engine local (Ray's workers are sized by --cpus-per-worker)",
            ),
            (("weights",), backend.weights != {}, f"a backend with weights, not {backend.name}"),
        ]
        opaque_output = (not self.output_file and self.format in ("jpg", "same")) or suffix in (
            ".jpg",
            ".jpeg",
            ".bmp",
        )
        if transparent and opaque_output:
            raise OptionsError(
                "--bg",
                TRANSPARENT,
                "needs an output that keeps transparency: --format png, webp or avif (-o "
                "FILE.png, .webp, .avif, .tif)",
            )
        for names, applies, goes_with in rules:
            for name in names:
                value = getattr(self, name)
                if not applies and value != getattr(defaults, name):
                    flag = flag_for(name)
                    shown_value = None if isinstance(value, bool) else value  # a flag: its name
                    raise OptionsError(flag, shown_value, f"goes with {goes_with}")

    def _check_backend(self, backend: Backend, *, chosen: bool, used: bool = False) -> None:
        """A backend's own settings, as it declares them; for the chosen one, what it can run
        with. Another backend's setting changed from its default would be silently ignored:
        refused instead (unless the chosen one ``used`` it: ``--mode auto``'s)."""
        for option in backend.options:
            value = getattr(self, option.field)
            if not (chosen or used):
                if value != option.default:
                    raise OptionsError(option.flag, value, f"goes with --mode {backend.name}")
                continue
            if option.choices is not None and value not in option.choices:
                raise OptionsError(option.flag, value, f"choose from {', '.join(option.choices)}")
            reason = option.check(value) if option.check is not None else None
            if reason is not None:
                raise OptionsError(option.flag, value, reason)
        if not chosen:
            return
        if self.device != "auto" and self.device not in backend.devices and not self._others():
            where = "the CPU" if backend.devices == ("cpu",) else ", ".join(backend.devices)
            able = [b.name for b in backends().values() if self.device in b.devices]
            reason = (
                f"nothing in this run can use it: the segmentation model ({backend.name}) runs "
                f"on {where} only; use --device auto or {' or '.join(backend.devices)}"
                + (
                    f", or a backend that runs on {self.device} (--mode {', '.join(able)})"
                    if able
                    else ""
                )
            )
            raise self._error("device", reason)
        if self.classes is not None and not backend.classes:
            aware = " or ".join(b.name for b in backends().values() if b.classes)
            reason = f"the {backend.name} backend has no classes; they go with --mode {aware}"
            raise OptionsError("--classes", ",".join(self.classes), reason)

    def _others(self) -> list[str]:
        """The run's models besides the segmenter, which run where ``--device`` says."""
        return [
            model
            for model, used in (("the generator", self.prompt is not None), ("style", self.nst))
            if used
        ]

    def _error(self, name: str, reason: str) -> OptionsError:
        """The error for the setting ``name`` at its value, naming its flag."""
        return OptionsError(flag_for(name), getattr(self, name), reason)

    def recipe(self) -> Recipe:
        """Each stage's own settings, as these options ask (see :mod:`operations.build`).

        Raises:
            OptionsError: a stage's settings refused a value (naming the option that set it).
        """
        backend = backends()[resolve_segmenter_name(self.mode)]
        folder = self.output_folder if self.output is not None else None
        framing = None
        if self.frame is not None:
            size, aspect = parse_canvas(self.canvas) if self.canvas else (None, None)
            framing = _built(
                FrameSettings,
                canvas=size,
                aspect=aspect,
                margin=self.margin,
                align=self.align,
                max_pixels=self.max_pixels,
            )
        shadow = None
        if self.shadow:
            shadow = _built(
                ShadowSettings,
                offset=tuple(self.shadow_offset),
                softness=self.shadow_softness,
                opacity=self.shadow_opacity,
            )
        return Recipe(
            mode=backend.name,
            framing=framing,
            segmenter=self._segmenter_settings(backend),
            background=self._background_settings(),
            prompt=self._prompt_settings(),
            style=self._style_settings(),
            style_weights=self.nst_weights,
            device=self.device,
            offline=self.offline,
            matting=_built(MattingSettings, method=self.matting),
            mask=self.mask_settings(),
            look=_built(
                LookSettings,
                harmonize=self.harmonize,
                light_wrap=self.light_wrap,
                shadow=shadow,
                keep_shadow=self.keep_shadow,
            ),
            folder=folder,
            progress=not self.quiet,
        )

    def mask_settings(self) -> MaskSettings:
        """The knobs on every photo's mask."""
        return _built(
            MaskSettings,
            threshold=self.mask_threshold,
            grow=self.mask_grow,
            feather=self.mask_feather,
            keep_alpha=self.keep_alpha,
        )

    def _segmenter_settings(self, backend: Backend) -> SegmenterSettings:
        used = [backend, *(backends()[name] for name in backend.uses)]
        own = tuple((o.field, getattr(self, o.field)) for b in used for o in b.options)
        # Each model runs where --device says if it can: a CPU-only segmenter (MediaPipe)
        # stays on the CPU when the device is for the run's other models.
        device = self.device if self.device in (*backend.devices, "auto") else "cpu"
        return _built(
            SegmenterSettings,
            device=device,
            weights=self.weights,
            offline=self.offline,
            classes=tuple(self.classes) if self.classes is not None else None,
            batch_size=self.batch_size,
            own=own,
        )

    def _background_settings(self) -> BackgroundSettings:
        return _built(
            BackgroundSettings,
            **self._bg_fields(),
            fit=self.fit,
            match=self.bg_match,
            blur=self.blur,
            blur_strength=self.blur_strength,
            nst=self.nst,
            max_pixels=self.max_pixels,
        )

    def _prompt_settings(self) -> sd.PromptSettings | None:
        if self.prompt is None:
            return None
        return _built(
            sd.PromptSettings,
            prompt=self.prompt,
            negative_prompt=self.negative_prompt,
            model=self._sd_model(),
            size=self.sd_size,
            seed=self.seed,
            steps=self.sd_steps,
            guidance=self.sd_guidance,
            per_image=self.bg_per_image,
            around=self.around,
            strength=self.strength,
            attention_slicing=self.sd_attention_slicing,
            cpu_offload=self.sd_cpu_offload,
            device=self.device,
            offline=self.offline,
        )

    def _style_settings(self) -> StyleSettings | None:
        if not self.nst:
            return None
        return _built(
            StyleSettings,
            size=self.nst_size,
            steps=self.nst_steps,
            optimizer=self.nst_optimizer,
            content_weight=self.nst_content_weight,
            style_weight=self.nst_style_weight,
            tv_weight=self.nst_tv_weight,
        )

    def _job_settings(self) -> JobSettings:
        folder = self.output_folder if self.output is not None else None
        return _built(
            JobSettings,
            max_pixels=self.max_pixels,
            quality=self.quality,
            save_mask=self.save_mask,
            save_cutout=self.save_cutout,
            overwrite=self.overwrite,
            report_page=self.report_page if self.output is not None else None,
            output_folder=folder,
            video_codec=self.video_codec,
            video_format=self.video_format,
            video_quality=self.video_quality,
            temporal_smoothing=self.temporal_smoothing,
            workers=self.workers,
            ledger=self.watch,
            masks=self.masks,
        )

    def _bg_fields(self) -> dict[str, Any]:
        """``--bg`` as the background's settings: a path, a colour, or transparent."""
        word = self._bg_parsed()
        return {
            "bg": self.bg if word is None else None,
            "colour": word if isinstance(word, tuple) else None,
            "transparent": word == TRANSPARENT,
        }

    def _background_kind(self) -> type[BackgroundKind]:
        """The kind of background asked for (``--nst`` restyles the photo's own in its
        image's style)."""
        generating = generation(self.prompt is not None, self.bg_per_image, self.around)
        return kind_of(BackgroundSettings(**self._bg_fields()), generating)

    def _bg_parsed(self) -> str | tuple[int, int, int] | None:
        """``--bg`` as a word: ``transparent``, or a colour's RGB; ``None`` for a path (a file
        or folder of that name wins over the word)."""
        if self.bg is None or Path(self.bg).exists():
            return None
        text = str(self.bg).strip()
        return TRANSPARENT if text.lower() == TRANSPARENT else parse_colour(text)

    def _sd_model(self) -> str:
        """The diffusion model: ``--sd-model``, or with ``--around`` and no model given, the
        default inpainting one."""
        if self.around and self.sd_model == sd.DEFAULT_MODEL:
            return sd.DEFAULT_INPAINT_MODEL
        return self.sd_model

    def engine_settings(self) -> EngineSettings:
        """The engine's settings, as these options ask for them."""
        return _built(
            EngineSettings,
            name=self.engine,
            workers=self.workers,
            ray_address=self.ray_address,
            cpus_per_worker=self.cpus_per_worker,
            gpus_per_worker=self.gpus_per_worker,
            batch_size=self.batch_size,
            verbose=self.verbose,
            quiet=self.quiet,
            jobs=self._job_settings(),
        )

    def drop_settings(self, exclude: tuple[Path, ...]) -> DropSettings:
        """The drop folder's settings (``--watch``); ``exclude``: paths it never takes."""
        return _built(
            DropSettings,
            root=Path(self.input) if self.input is not None else Path(),
            output=self.output_folder if self.output is not None else Path(),
            recursive=self.recursive,
            exclude=exclude,
            settle=self.settle,
            delete_input=self.delete_input,
            overwrite=self.overwrite,
        )

    @property
    def output_file(self) -> bool:
        """One photo in and ``--output`` names a file (``result.png``), not a folder."""
        if self.input is None or self.output is None or not Path(self.input).is_file():
            return False
        target = Path(self.output)
        return not target.is_dir() and target.suffix != ""

    @property
    def report_page(self) -> Path | None:
        """The review page to write, if any (``--report``)."""
        if not self.report:
            return None
        return self.output_folder / PAGE_NAME if self.report is True else Path(self.report)

    @property
    def output_folder(self) -> Path:
        """Where the outputs go: ``--output``, or the folder of ``--output FILE``."""
        assert self.output is not None
        target = Path(self.output)
        return target.parent if self.output_file else target

    def _check_batch(self) -> None:
        if self._background_kind().own and not self.blur:
            raise OptionsError(
                "--bg",
                None,
                "nothing to put behind the subject: give --bg FILE, --prompt TEXT, "
                "or --blur alone to blur the photo's own background",
            )
        if self.input is None:
            raise OptionsError("--input", None, "is required")
        if self.output is None:
            raise OptionsError("--output", None, "is required")
        source, target = Path(self.input), Path(self.output)
        if not source.exists() and not source.is_symlink():
            raise OptionsError("--input", source, "no such file or folder")
        self._check_input_output(source, target)
        self._check_side_files()

    def _check_input_output(self, source: Path, target: Path) -> None:
        """One photo in and one file or a folder out, or a folder in and a folder out; never
        the input overwritten."""
        if source.is_file():  # one photo in: one file out (-o FILE) or into a folder (-o DIR)
            if self.recursive:
                raise OptionsError("--recursive", None, "goes with a folder of photos")
            if self.watch:
                raise OptionsError("--watch", None, "goes with a folder to watch")
            if target.exists() and target.resolve() == source.resolve():
                raise OptionsError("--output", target, "is the input photo; choose another name")
            if self.output_file and is_video(source):
                wanted = video.VIDEO_CODECS[self.video_codec].extension
                if target.suffix.lower() != wanted:
                    raise OptionsError(
                        "--output",
                        target,
                        f"a video comes out as {wanted} with "
                        f"--video-codec {self.video_codec}; name it so, or give "
                        "a folder",
                    )
            elif self.output_file and target.suffix.lower() not in WRITABLE:
                raise OptionsError(
                    "--output",
                    target,
                    "cannot write this kind of file; use "
                    f"{', '.join(sorted(set(WRITABLE)))}, or a folder",
                )
        elif not source.is_dir():
            raise OptionsError("--input", source, "not a photo or a folder")
        elif not target.exists() and target.suffix.lower() in {*WRITABLE, *VIDEO_EXTENSIONS}:
            raise OptionsError(
                "--output",
                target,
                "names a file, but --input is a folder: give a folder for the results (or one "
                "photo as --input)",
            )
        elif target.resolve() == source.resolve():
            raise OptionsError(
                "--output", target, "is the input folder; choose another so no photo is overwritten"
            )
        if not self.output_file and target.exists() and not target.is_dir():
            raise OptionsError("--output", target, "exists and is not a folder")

    def _check_side_files(self) -> None:
        """The review page and the summary: names the run can write."""
        if isinstance(self.report, (str, Path)):
            page = Path(self.report)
            if page.suffix.lower() not in (".html", ".htm"):
                raise OptionsError("--report", page, "name an .html file")
            # The output folder is created when the run starts; any other must exist.
            _check_folder_writable("--report", page, made=self.output_folder)
        if self.summary is not None:
            summary = Path(self.summary)
            try:
                os.stat(summary)
            except FileNotFoundError:
                pass
            except OSError as exc:  # a name too long for the file system, say
                raise OptionsError("--summary", summary, str(exc.strerror)) from None
            if summary.is_dir():
                raise OptionsError("--summary", summary, "is a folder; give a file name")
            _check_folder_writable("--summary", summary, made=self.output_folder)


# A stage's settings field → the option that sets it, where the two names differ.
_RENAMED: dict[str, dict[str, str]] = {
    "MaskSettings": {"threshold": "mask_threshold", "grow": "mask_grow", "feather": "mask_feather"},
    "StyleSettings": {
        "size": "nst_size",
        "steps": "nst_steps",
        "optimizer": "nst_optimizer",
        "content_weight": "nst_content_weight",
        "style_weight": "nst_style_weight",
        "tv_weight": "nst_tv_weight",
    },
    "PromptSettings": {
        "model": "sd_model",
        "size": "sd_size",
        "steps": "sd_steps",
        "guidance": "sd_guidance",
        "per_image": "bg_per_image",
        "attention_slicing": "sd_attention_slicing",
        "cpu_offload": "sd_cpu_offload",
    },
    "ShadowSettings": {
        "offset": "shadow_offset",
        "softness": "shadow_softness",
        "opacity": "shadow_opacity",
    },
    "BackgroundSettings": {"match": "bg_match"},
    "MattingSettings": {"method": "matting"},
    "EngineSettings": {"name": "engine"},
}


def _built(kind: Callable[..., T], **values: Any) -> T:
    """``kind(**values)``: a stage's settings, which check their own values; a value refused
    comes out as an :class:`OptionsError` naming the option that set it."""
    try:
        return kind(**values)
    except SettingError as exc:
        name = _RENAMED.get(getattr(kind, "__name__", ""), {}).get(exc.setting, exc.setting)
        raise OptionsError(flag_for(name), exc.value, exc.reason) from None


def _backend_field(backend: Backend, option: Any) -> tuple[str, Any, Field]:
    flag = Flag(
        group=f"--mode {backend.name}",
        name=option.flag,
        type=option.type,
        choices=option.choices,
        metavar=option.metavar,
        help=f"{option.help} (default: %(default)s)",
        doc=option.doc,
    )
    return option.field, Any, field(default=option.default, metadata={"flag": flag})


# The run's settings class: the core settings above plus every registered backend's own,
# declared in the backend's module, so adding a backend touches no file but its own.
if TYPE_CHECKING:  # a type checker sees the core settings; a backend's are read by name
    Options = _Settings
else:
    Options = make_dataclass(
        "Options",
        [_backend_field(b, o) for b in backends().values() for o in b.options],
        bases=(_Settings,),
        namespace={"__doc__": _Settings.__doc__, "__module__": __name__},
    )


def _flags() -> dict[str, Flag]:
    """Every setting that has a flag, by field name, in the help's order: group by group, each
    group's in the order they are declared."""
    declared = [(f.name, f.metadata["flag"]) for f in fields(Options) if "flag" in f.metadata]
    order = {title: n for n, title in enumerate(_groups())}
    return dict(sorted(declared, key=lambda item: order[item[1].group]))


def flag_for(name: str) -> str:
    """The command-line flag of the setting ``name`` (``sd_steps`` → ``--steps``)."""
    spec = _flags().get(name)
    return spec.flags(name)[-1] if spec is not None else "--" + name.replace("_", "-")


def flag_names() -> dict[str, str]:
    """Every setting's flag (``sd_steps`` → ``--steps``): how the command line names them in
    messages (:func:`operations.errors.use_names`)."""
    return {name: flag_for(name) for name in _flags()}


def as_options_error(exc: SettingError) -> OptionsError:
    """A stage's error about one of its settings, naming the flag that sets it."""
    if isinstance(exc, OptionsError):
        return exc
    error = OptionsError(flag_for(exc.setting), exc.value, exc.reason)
    error.setting = exc.setting
    return error


@contextlib.contextmanager
def naming_flags() -> Iterator[None]:
    """Within the block, a stage's :class:`SettingError` comes out as an :class:`OptionsError`."""
    try:
        yield
    except OptionsError:
        raise
    except SettingError as exc:
        raise as_options_error(exc) from None


def add_arguments(parser: argparse.ArgumentParser) -> dict[str, argparse._ArgumentGroup]:
    """Every declared setting's flag on ``parser``, in its group; returns the groups by title."""
    defaults = Options()
    groups = {title: parser.add_argument_group(title) for title in _groups()}
    for name, spec in _flags().items():
        default = getattr(defaults, name)
        settings: dict[str, Any] = {"dest": name, "help": spec.help, "default": default}
        if default is False and spec.type is None:
            settings["action"] = "store_true"
        else:
            extra = {
                "type": spec.type,
                "choices": spec.choices,
                "metavar": spec.metavar,
                "nargs": spec.nargs,
                "const": spec.const,
            }
            settings.update({k: v for k, v in extra.items() if v is not None})
        if spec.required:
            settings["required"] = True
        groups[spec.group].add_argument(*spec.flags(name), **settings)
    return groups


def _usage(name: str, spec: Flag) -> str:
    """The table's first cell: ``-i``, ``--input DIR|PHOTO``."""
    flags = spec.flags(name)
    shown = spec.metavar or ("|".join(spec.choices) if spec.choices else None)
    if shown is not None:
        shown = f"[{shown}]" if spec.nargs == "?" else shown
        flags[-1] = f"{flags[-1]} {shown}"
    return ", ".join(f"`{flag}`" for flag in flags).replace("|", "\\|")


def options_table() -> str:
    """The table of options in docs/options.md, from the declarations (Markdown)."""
    defaults = Options()
    lines = ["| option | meaning |", "| --- | --- |"]
    for name, spec in _flags().items():
        default = getattr(defaults, name)
        if spec.doc is not None:
            text = spec.doc.format(default=default)
        else:
            text = spec.help
            if "%(default)g" in text:
                text = text.replace("%(default)g", format(default, "g"))
            text = text.replace("%(default)s", str(default)).replace("%%", "%")
        lines.append(f"| {_usage(name, spec)} | {text.replace('|', chr(92) + '|')} |")
    lines.append("| `--version` | print the version |")
    return "\n".join(lines) + "\n"
