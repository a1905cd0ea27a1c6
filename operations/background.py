"""Backgrounds: what goes behind each photo's subject, decided in one place.

:class:`BackgroundSource` is built once per run and answers, for every photo, "the background for
this image at this size". Its kinds:

- a video (``--bg clip.mp4``): each frame of a video gets the background frame shown at its
  time (looped, or not read to its end), fitted like a file; a photo gets its first frame;
- a file (``--bg``): fitted to the photo (cover, contain or stretch), in the photo's colour
  profile, blurred with ``--blur``;
- a folder of them (``--bg DIR``): each photo gets the next one in name order, round and round,
  or with ``--bg-match name`` the one whose name is the photo's (``cat.jpg`` → ``DIR/cat.*``);
- generated once per run (``--prompt``): made (or taken from the cache) by :meth:`prepare` at the
  first photo's aspect ratio, then used like a file;
- generated per photo (``--prompt --bg-per-image``): the run's seed plus the photo's index;
- painted around each photo's subject (``--prompt --around``): an inpainting model fills
  everything but the subject, at the photo's own framing, seed plus the photo's index;
- a plain colour (``--bg white``, ``--bg '#f4f4f4'``): a flat image, treated like a file;
- nothing (``--bg transparent``): the result is the subject's RGBA cut-out (the pipeline asks
  :attr:`BackgroundSource.transparent`);
- the photo's own background, blurred behind the subject (``--blur`` alone: portrait mode);
- the photo's own background, restyled (``--nst``) in the style of the file or generated image.

A background image is decoded once per run. Photos come in a handful of sizes, so the image
fitted to each size (and converted to each photo's colour profile) is cached.
"""

from __future__ import annotations

import io
import logging
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image, ImageCms

from operations.blur import DEFAULT_BLUR_STRENGTH, blur_behind_subject, blur_sigma, gaussian_blur
from operations.decode import DEFAULT_MAX_PIXELS, decode
from operations.errors import SettingError, require, setting
from operations.files import ImageError, find_inputs, is_video, shown
from operations.resize import resize as _resize

if TYPE_CHECKING:
    from operations.matting import Matte
    from operations.neural_style_transfer import StyleTransfer
    from operations.text_to_image import PromptBackgrounds

log = logging.getLogger("backgroundswap")

FIT_MODES = ("cover", "contain", "stretch")
DEFAULT_FIT = "cover"
BG_MATCH = ("cycle", "name")  # --bg DIR: each photo gets the next one, or the one of its name


@dataclass(frozen=True)
class BackgroundSettings:
    """What the background source reads."""

    bg: Path | None = None  # an image, a folder of them, or a video
    fit: str = DEFAULT_FIT
    match: str = "cycle"  # with a folder: one of BG_MATCH
    blur: bool = False
    blur_strength: float = DEFAULT_BLUR_STRENGTH  # percent of the photo's shorter side
    nst: bool = False  # restyle the photo's own background in the style of the image
    max_pixels: int = DEFAULT_MAX_PIXELS
    colour: tuple[int, int, int] | None = None  # a plain colour instead of an image
    transparent: bool = False  # nothing behind the subject: the result is its RGBA cut-out

    def __post_init__(self) -> None:
        require(self.fit in FIT_MODES, "fit", self.fit, f"choose from {', '.join(FIT_MODES)}")
        require(self.match in BG_MATCH, "match", self.match, f"choose from {', '.join(BG_MATCH)}")
        strength = self.blur_strength
        require(0 < strength <= 50, "blur_strength", strength, "must be > 0 and ≤ 50 (percent)")
        require(self.max_pixels >= 1, "max_pixels", self.max_pixels, "must be positive")


TRANSPARENT = "transparent"  # --bg transparent


def parse_colour(text: str) -> tuple[int, int, int] | None:
    """A colour as CSS and Pillow write them (``white``, ``#f4f4f4``, ``rgb(244, 244, 244)``,
    ``hsl(…)``) as RGB; ``None`` when the text is no colour.

    Raises:
        ValueError: it is written as a colour but cannot be one here: a component outside
            0–255 (Pillow reads ``rgb(300,0,0)`` as 300), or transparency (``#ff000080``: a
            background is opaque; ``transparent`` is the word for none).
    """
    from PIL import ImageColor

    try:
        rgba = ImageColor.getrgb(text.strip())
    except ValueError:
        return None
    if any(not 0 <= int(value) <= 255 for value in rgba):
        raise ValueError("each of red, green and blue must be between 0 and 255")
    if len(rgba) == 4 and rgba[3] != 255:
        raise ValueError(
            f"has transparency (alpha {rgba[3]} of 255): a background colour is opaque; for "
            "no background at all give 'transparent'"
        )
    return (int(rgba[0]), int(rgba[1]), int(rgba[2]))


def fit_background(image: np.ndarray, width: int, height: int, mode: str = "cover") -> np.ndarray:
    """Fit ``image`` (``h×w×3``) to ``height×width×3``.

    Modes:
        cover: scale to fill, centre-crop the overflow; never distorts (default).
        contain: scale to fit inside, centre, pad with black; never distorts or crops.
        stretch: resize to the exact size, distorting the aspect ratio (the original tool).
    """
    src_h, src_w = image.shape[:2]
    if mode == "stretch":
        return _resize(image, width, height)
    if mode == "cover":
        scale = max(width / src_w, height / src_h)
        crop_w = min(src_w, max(1, round(width / scale)))
        crop_h = min(src_h, max(1, round(height / scale)))
        x0, y0 = (src_w - crop_w) // 2, (src_h - crop_h) // 2
        return _resize(image[y0 : y0 + crop_h, x0 : x0 + crop_w], width, height)
    if mode == "contain":
        scale = min(width / src_w, height / src_h)
        new_w = min(width, max(1, round(src_w * scale)))
        new_h = min(height, max(1, round(src_h * scale)))
        canvas = np.zeros((height, width, 3), np.uint8)
        x0, y0 = (width - new_w) // 2, (height - new_h) // 2
        canvas[y0 : y0 + new_h, x0 : x0 + new_w] = _resize(image, new_w, new_h)
        return canvas
    raise ValueError(f"unknown fit mode {mode!r}; choose from {', '.join(FIT_MODES)}")


def convert_profile(rgb: np.ndarray, source: bytes | None, target: bytes | None) -> np.ndarray:
    """Convert RGB pixels from one ICC profile to another (``None`` means sRGB)."""
    if source == target:
        return rgb

    def load(icc: bytes | None) -> ImageCms.ImageCmsProfile:
        if icc is None:
            return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB"))
        return ImageCms.ImageCmsProfile(io.BytesIO(icc))

    converted = ImageCms.profileToProfile(
        Image.fromarray(rgb), load(source), load(target), outputMode="RGB"
    )
    return np.asarray(converted)


class Background:
    """A background image, with its fitted versions cached per (size, fit, colour profile)."""

    def __init__(self, rgb: np.ndarray, icc_profile: bytes | None = None, cache_size: int = 8):
        self.rgb = rgb
        self.icc_profile = icc_profile
        self._cache: OrderedDict[tuple[int, int, str, bytes | None], np.ndarray] = OrderedDict()
        self._cache_size = cache_size
        self._lock = threading.Lock()

    @classmethod
    def from_file(cls, path: Path, *, max_pixels: int = DEFAULT_MAX_PIXELS) -> Background:
        decoded = decode(path, max_pixels=max_pixels)
        return cls(decoded.rgb, decoded.icc_profile)

    def fitted(
        self, width: int, height: int, fit: str = "cover", icc_profile: bytes | None = None
    ) -> np.ndarray:
        """The background at ``height×width``, in the colours of ``icc_profile``. Read-only."""
        key = (width, height, fit, icc_profile)
        with self._lock:
            if key in self._cache:
                self._cache.move_to_end(key)
                return self._cache[key]
            rgb = fit_background(self.rgb, width, height, fit)
            rgb = convert_profile(rgb, self.icc_profile, icc_profile)
            rgb.flags.writeable = False  # shared between images: nobody may paint on it
            self._cache[key] = rgb
            if len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)
            return rgb


def _first_frame(path: Path, max_pixels: int) -> np.ndarray:
    """A background video's first frame that decodes.

    Raises:
        SettingError: not a readable video.
    """
    from operations.video import BackgroundVideo

    try:
        video = BackgroundVideo(path, max_pixels=max_pixels)
        try:
            return video.first()
        finally:
            video.close()
    except ImageError as exc:
        raise SettingError("bg", path, str(exc)) from None


@dataclass(frozen=True)
class RunBackground:
    """The run's one generated background: made once, by whoever plans the run, and shared with
    every worker (a file, so it crosses process and machine boundaries)."""

    path: Path
    seed: int

    def to_dict(self) -> dict[str, object]:
        return {"background": str(self.path), "seed": self.seed}


class BackgroundSource:
    """Decides, for every photo of a run, what goes behind its subject (see the module's list).

    Args:
        settings: what it reads.
        image: an in-memory background to use instead of ``settings.bg`` (the one-image API).
        run_background: the run's generated background, already made (a Ray worker's case).
        prompted: the generator of backgrounds from a prompt (with no image given).
        style: builds the style network from the style image (``settings.nst``).

    Raises:
        SettingError: ``bg`` is not a readable image.
    """

    def __init__(
        self,
        settings: BackgroundSettings,
        *,
        image: Background | None = None,
        run_background: RunBackground | None = None,
        prompted: PromptBackgrounds | None = None,
        style: Callable[[np.ndarray], StyleTransfer] | None = None,
    ) -> None:
        self.settings = settings
        self.run_background = run_background
        if image is None and run_background is not None:
            image = Background.from_file(run_background.path)
        self.folder: list[Path] = []  # --bg DIR: its files, decoded when first needed
        self.video: Path | None = None  # --bg clip.mp4 (its first frame is `image`)
        bg = settings.bg
        if image is None and bg is not None and Path(bg).is_dir():
            self.folder = [Path(bg) / rel for rel in find_inputs(Path(bg))]
        elif image is None and bg is not None and is_video(Path(bg)):
            self.video = Path(bg)
            image = Background(_first_frame(self.video, settings.max_pixels))
        elif image is None and bg is not None:
            try:
                image = Background.from_file(Path(bg), max_pixels=settings.max_pixels)
            except ImageError as exc:
                raise SettingError("bg", bg, str(exc)) from None
        if image is None and settings.colour is not None:  # a flat image: fitted like any
            image = Background(np.full((1, 1, 3), settings.colour, np.uint8))
        self.transparent = settings.transparent
        self._decoded: OrderedDict[Path, Background] = OrderedDict()
        self.image = image
        self.prompted = prompted if image is None else None
        self._make_style = style
        self.style: StyleTransfer | None = None
        self._lock = threading.Lock()

    def prepare(self, first_size: Callable[[], tuple[int, int] | None]) -> RunBackground | None:
        """Once per run, before any photo: make the run's generated background.

        Generated (or found in the cache) at the aspect ratio of ``first_size()`` (the first
        readable photo's height and width; ``None`` when there is none, and then every photo
        will fail on its own). With ``--bg-per-image`` the diffusion pipeline is loaded now, so a
        missing model stops the run before the first file.

        Returns:
            The run's generated background, or ``None`` when the run has none.
        """
        with self._lock:
            if self.prompted is None or self.image is not None:
                return self.run_background
            if self.prompted.settings.per_image or self.prompted.settings.around:
                self.prompted.ensure_ready()
                return None
            size = first_size()
            if size is None:
                return None
            seed = self.prompted.settings.seed
            rgb, path = self.prompted.get(*size, seed)
            self.image = Background(rgb)
            self.run_background = RunBackground(path, seed)
        log.info("background: %s", path)
        return self.run_background

    def load(self) -> None:
        """Build what the photos will need now (the style network and its Gram targets), so a
        missing model stops the run before the first file. Idempotent."""
        if self.settings.nst and self.image is not None:
            self._style_network(self.image.rgb)
        elif self.settings.nst and self.folder:
            self._style_network(self._from_folder(self.folder[0]).rgb)

    def _pick(self, index: int, name: str | None) -> Path:
        """The folder's background for a photo: by position, or by name."""
        if self.settings.match == "cycle" or name is None:
            return self.folder[index % len(self.folder)]
        wanted = name.casefold()
        for path in self.folder:
            if path.stem.casefold() == wanted:
                return path
        raise ImageError(
            f"no background named {shown(name)}.* in {shown(self.settings.bg or '')} "
            f"({setting('bg_match')} name)"
        )

    def _from_folder(self, path: Path) -> Background:
        """A folder's background, decoded once and kept while it is among the last few used."""
        with self._lock:
            if path in self._decoded:
                self._decoded.move_to_end(path)
                return self._decoded[path]
        try:
            background = Background.from_file(path, max_pixels=self.settings.max_pixels)
        except ImageError as exc:
            raise ImageError(f"background {shown(path.name)}: {exc}") from None
        with self._lock:
            self._decoded[path] = background
            if len(self._decoded) > 4:
                self._decoded.popitem(last=False)
        return background

    def _style_network(self, style_rgb: np.ndarray) -> StyleTransfer:
        """The style-transfer network, built once; its first style's Gram targets with it."""
        with self._lock:
            if self.style is None:
                if self._make_style is None:
                    raise ValueError("nst is on but no style network was handed in")
                self.style = self._make_style(style_rgb)
            return self.style

    def for_image(
        self,
        rgb: np.ndarray,
        matte: Matte,
        icc_profile: bytes | None = None,
        index: int = 0,
        name: str | None = None,
        frame: np.ndarray | None = None,
    ) -> tuple[np.ndarray, dict[str, object]]:
        """The background for one photo, at its size.

        Args:
            rgb: the ``H×W×3`` ``uint8`` photo.
            matte: its subject (the own-background kinds need the alpha).
            icc_profile: the photo's colour profile; a background image is converted into it.
            index: the photo's position in the run (per-photo seeds count from it).
            name: the photo's file name without extension (``--bg-match name``).
            frame: a video background's frame for this image (fitted like a file; ``--nst``
                keeps the first frame as its style).

        Raises:
            ImageError: no background of the photo's name in the folder, or an unreadable one.

        Returns:
            ``H×W×3`` ``uint8`` RGB, and what the summary records for this photo (a per-photo
            generated background's file and seed).
        """
        o = self.settings
        height, width = rgb.shape[:2]
        sigma = blur_sigma(height, width, o.blur_strength) if o.blur else 0.0
        image = self.image
        extra: dict[str, object] = {}
        if self.folder:
            path = self._pick(index, name)
            image, extra = self._from_folder(path), {"background": str(path)}
        elif image is None and self.prompted is not None and self.prompted.settings.around:
            from operations.text_to_image import keep_mask

            seed = self.prompted.settings.seed + index
            painted, path = self.prompted.around(rgb, keep_mask(matte.alpha), seed)
            extra = {"background": str(path), "seed": seed}
            return (gaussian_blur(painted, sigma) if sigma else painted), extra
        elif image is None and self.prompted is not None:
            if not self.prompted.settings.per_image:  # not prepared by a batch: the first
                self.prepare(lambda: (height, width))  # photo sets the aspect ratio
                image = self.image
            else:
                seed = self.prompted.settings.seed + index
                generated, path = self.prompted.get(height, width, seed)
                image, extra = Background(generated), {"background": str(path), "seed": seed}
        if frame is not None and not o.nst:
            fitted = fit_background(frame, width, height, o.fit)
            return (gaussian_blur(fitted, sigma) if sigma else fitted), extra
        if o.nst and image is not None:  # the photo's own background, repainted in the style
            network = self._style_network(image.rgb)
            style = None if image is self.image else image.rgb
            styled = network.stylize(rgb, matte.alpha, style_rgb=style)
            return (gaussian_blur(styled, sigma) if sigma else styled), extra
        if image is None:  # portrait mode: the photo's own background, blurred
            return blur_behind_subject(rgb, matte.alpha, sigma), extra
        fitted = image.fitted(width, height, o.fit, icc_profile)
        return (gaussian_blur(fitted, sigma) if sigma else fitted), extra
