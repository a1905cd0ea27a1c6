"""Backgrounds: what goes behind each photo's subject, decided in one place.

:class:`BackgroundSource` is built once per run and answers, for every photo, "the background for
this image at this size", with the blur the settings ask for. It holds the run's
:class:`BackgroundKind`: the first in :data:`KINDS` that wants the settings. The kinds:

- :class:`Video` (``--bg clip.mp4``): each frame of a video gets the background frame shown at
  its time (looped, or not read to its end), fitted like a file; a photo gets its first frame;
- :class:`File` (``--bg``): fitted to the photo (cover, contain or stretch), in the photo's colour
  profile, blurred with ``--blur``;
- :class:`Folder` (``--bg DIR``): each photo gets the next one in name order, round and round,
  or with ``--bg-match name`` the one whose name is the photo's (``cat.jpg`` → ``DIR/cat.*``);
- :class:`Generated` once per run (``--prompt``): made (or taken from the cache) by
  :meth:`BackgroundSource.prepare` at the first photo's aspect ratio, then used like a file;
- :class:`GeneratedPerPhoto` (``--prompt --bg-per-image``): the run's seed plus the photo's index;
- :class:`GeneratedAround` each photo's subject (``--prompt --around``): an inpainting model
  fills everything but the subject, at the photo's own framing, seed plus the photo's index;
- :class:`Colour` (``--bg white``, ``--bg '#f4f4f4'``): a flat image, treated like a file;
- :class:`Transparent` (``--bg transparent``): nothing; the result is the subject's RGBA cut-out
  (the pipeline asks :attr:`BackgroundSource.transparent`);
- :class:`Own`: the photo's own background, blurred behind the subject (``--blur`` alone:
  portrait mode);
- :class:`Restyled` (``--nst``): the photo's own background, restyled in the style of another
  kind's image (a file, a folder's, a video's first frame, a generated one).

Each kind declares what it is (``own``, ``transparent``, ``fitted``, ``styles``,
:meth:`~BackgroundKind.photos_only`), so the checks that span settings (:mod:`operations.options`)
and the video job ask the kind instead of working it out again. A new kind is a subclass and a
line in :data:`KINDS`.

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
from typing import TYPE_CHECKING, ClassVar

import numpy as np
from PIL import Image, ImageCms

from operations.errors import SettingError, require, setting
from operations.media.decode import DEFAULT_MAX_PIXELS, decode
from operations.media.files import ImageError, find_inputs, is_video, printable
from operations.media.resize import resize as _resize
from operations.stages.blur import (
    DEFAULT_BLUR_STRENGTH,
    blur_behind_subject,
    blur_sigma,
    gaussian_blur,
)

if TYPE_CHECKING:
    from operations.stages.matting import Matte
    from operations.stages.neural_style_transfer import StyleTransfer
    from operations.stages.text_to_image import PromptBackgrounds

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
    from operations.media.video import BackgroundVideo

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


@dataclass(frozen=True)
class Given:
    """What a run hands its background besides the settings: its collaborators."""

    image: Background | None = None  # an in-memory background (the one-image API)
    run_background: RunBackground | None = None  # made already (a Ray worker's case)
    prompted: PromptBackgrounds | None = None  # the generator, with a prompt
    style: Callable[[np.ndarray], StyleTransfer] | None = None  # the style network's maker


@dataclass(frozen=True)
class Photo:
    """One photo, as its background is made for it."""

    rgb: np.ndarray  # H×W×3 uint8
    matte: Matte  # its subject (the own-background kinds need the alpha)
    icc_profile: bytes | None = None  # a background image is converted into it
    index: int = 0  # its position in the run (per-photo seeds count from it)
    name: str | None = None  # its file name without extension (--bg-match name)
    frame: np.ndarray | None = None  # a video background's frame for this image
    sigma: float = 0.0  # the blur's, in pixels (0: none)

    def blurred(self, rgb: np.ndarray) -> np.ndarray:
        return gaussian_blur(rgb, self.sigma) if self.sigma else rgb


class BackgroundKind:
    """One kind of background: what it is, for the checks that span settings, and how each
    photo's is made. A new kind is a subclass and a line in :data:`KINDS`.

    The class attributes declare what the kind is, so the settings' checks and the video job
    ask it instead of working it out again; what a photo's summary row records of its
    background (a folder's file, a generated one's seed) is what :meth:`behind` returns.
    """

    name: ClassVar[str]
    transparent: ClassVar[bool] = False  # nothing behind the subject: its RGBA cut-out
    own: ClassVar[bool] = False  # made of the photo's own background: nothing to fill a canvas
    fitted: ClassVar[bool] = False  # an image fitted to each photo (``fit`` applies)
    styles: ClassVar[bool] = False  # an image that can be a style (``nst``)

    def __init__(self, settings: BackgroundSettings, given: Given) -> None:
        self.settings = settings
        self.image: Background | None = None  # the run's one image, when it has one
        self.video: Path | None = None  # a background video, read frame by frame
        self.run_background = given.run_background
        self._lock = threading.Lock()

    @staticmethod
    def wants(settings: BackgroundSettings, generating: str | None) -> bool:
        """Whether the settings ask for this kind (``generating``: see :func:`generation`)."""
        raise NotImplementedError

    @classmethod
    def photos_only(cls) -> str | None:
        """Why a video cannot have this background; ``None`` when it can."""
        return None

    def prepare(self, first_size: Callable[[], tuple[int, int] | None]) -> RunBackground | None:
        """Once per run, before any photo (see :meth:`BackgroundSource.prepare`)."""
        return self.run_background

    def made(self) -> RunBackground | None:
        """The run's generated background, once made."""
        return self.run_background

    def load(self) -> None:
        """Build what the photos will need now, so a missing model stops the run before the
        first file. Idempotent."""

    def first_picture(self) -> Background | None:
        """The image the run starts with (a style's first), if it has one yet."""
        return self.image

    def picture(self, photo: Photo) -> tuple[Background, dict[str, object]]:
        """This photo's background image before fitting, and what its summary row records."""
        assert self.image is not None, f"a {self.name} background has no image"
        return self.image, {}

    def behind(self, photo: Photo) -> tuple[np.ndarray, dict[str, object]]:
        """What goes behind this photo's subject, at its size."""
        picture, extra = self.picture(photo)
        height, width = photo.rgb.shape[:2]
        fitted = picture.fitted(width, height, self.settings.fit, photo.icc_profile)
        return photo.blurred(fitted), extra


class Transparent(BackgroundKind):
    """Nothing (``bg`` transparent): the result is the subject's RGBA cut-out."""

    name = "transparent"
    transparent = True

    @staticmethod
    def wants(settings: BackgroundSettings, generating: str | None) -> bool:
        return settings.transparent

    @classmethod
    def photos_only(cls) -> str | None:
        return (
            f"{setting('bg')} transparent is for photos: a video's cut-out is "
            f"{setting('save_cutout')}, with its alpha (in {setting('video_format')}: mov, webm, "
            "webp or png frames)"
        )

    def behind(self, photo: Photo) -> tuple[np.ndarray, dict[str, object]]:
        raise ValueError("a transparent background has no pixels: the pipeline cuts out")


class Colour(BackgroundKind):
    """A plain colour: a flat image, fitted like any."""

    name = "colour"

    def __init__(self, settings: BackgroundSettings, given: Given) -> None:
        super().__init__(settings, given)
        assert settings.colour is not None
        self.image = Background(np.full((1, 1, 3), settings.colour, np.uint8))

    @staticmethod
    def wants(settings: BackgroundSettings, generating: str | None) -> bool:
        return settings.colour is not None


class Video(BackgroundKind):
    """A video: each frame of a video gets the background frame shown at its time, fitted like
    a file (the video job reads them); a photo gets its first frame."""

    name = "video"
    fitted = styles = True

    def __init__(self, settings: BackgroundSettings, given: Given) -> None:
        super().__init__(settings, given)
        assert settings.bg is not None
        self.video = Path(settings.bg)
        self.image = Background(_first_frame(self.video, settings.max_pixels))

    @staticmethod
    def wants(settings: BackgroundSettings, generating: str | None) -> bool:
        return settings.bg is not None and is_video(Path(settings.bg))

    def behind(self, photo: Photo) -> tuple[np.ndarray, dict[str, object]]:
        if photo.frame is None:
            return super().behind(photo)
        height, width = photo.rgb.shape[:2]
        return photo.blurred(fit_background(photo.frame, width, height, self.settings.fit)), {}


class Folder(BackgroundKind):
    """A folder of images: each photo gets the next in name order, round and round, or with
    ``bg_match`` name the one of its name (``cat.jpg`` → ``DIR/cat.*``)."""

    name = "folder"
    fitted = styles = True

    def __init__(self, settings: BackgroundSettings, given: Given) -> None:
        super().__init__(settings, given)
        folder = Path(settings.bg or "")
        self.files = [folder / rel for rel in find_inputs(folder)]  # decoded when first needed
        self._decoded: OrderedDict[Path, Background] = OrderedDict()

    @staticmethod
    def wants(settings: BackgroundSettings, generating: str | None) -> bool:
        return settings.bg is not None and Path(settings.bg).is_dir()

    def first_picture(self) -> Background | None:
        return self._decoded_file(self.files[0])

    def picture(self, photo: Photo) -> tuple[Background, dict[str, object]]:
        path = self._pick(photo.index, photo.name)
        return self._decoded_file(path), {"background": str(path)}

    def _pick(self, index: int, name: str | None) -> Path:
        """The folder's background for a photo: by position, or by name."""
        if self.settings.match == "cycle" or name is None:
            return self.files[index % len(self.files)]
        wanted = name.casefold()
        for path in self.files:
            if path.stem.casefold() == wanted:
                return path
        raise ImageError(
            f"no background named {printable(name)}.* in {printable(self.settings.bg or '')} "
            f"({setting('bg_match')} name)"
        )

    def _decoded_file(self, path: Path) -> Background:
        """A folder's background, decoded once and kept while it is among the last few used."""
        with self._lock:
            if path in self._decoded:
                self._decoded.move_to_end(path)
                return self._decoded[path]
        try:
            background = Background.from_file(path, max_pixels=self.settings.max_pixels)
        except ImageError as exc:
            raise ImageError(f"background {printable(path.name)}: {exc}") from None
        with self._lock:
            self._decoded[path] = background
            if len(self._decoded) > 4:
                self._decoded.popitem(last=False)
        return background


class File(BackgroundKind):
    """An image file (or the one-image API's in-memory image), fitted to each photo (cover,
    contain or stretch) in the photo's colour profile."""

    name = "file"
    fitted = styles = True

    def __init__(self, settings: BackgroundSettings, given: Given) -> None:
        super().__init__(settings, given)
        if given.image is not None:
            self.image = given.image
            return
        assert settings.bg is not None
        try:
            self.image = Background.from_file(Path(settings.bg), max_pixels=settings.max_pixels)
        except ImageError as exc:
            raise SettingError("bg", settings.bg, str(exc)) from None

    @staticmethod
    def wants(settings: BackgroundSettings, generating: str | None) -> bool:
        return settings.bg is not None


class _Generating(BackgroundKind):
    """The generated kinds' share: the generator they are handed."""

    def __init__(self, settings: BackgroundSettings, given: Given) -> None:
        super().__init__(settings, given)
        self.prompted = given.prompted

    def prepare(self, first_size: Callable[[], tuple[int, int] | None]) -> RunBackground | None:
        """The diffusion pipeline is loaded now, so a missing model stops the run before the
        first file."""
        assert self.prompted is not None, "no generator was handed in"
        self.prompted.ensure_ready()
        return None


class GeneratedAround(_Generating):
    """Painted around each photo's subject (``around``): an inpainting model fills everything
    but the subject, at the photo's own framing, the run's seed plus the photo's index."""

    name = "generated-around"

    @staticmethod
    def wants(settings: BackgroundSettings, generating: str | None) -> bool:
        return generating == "around"

    @classmethod
    def photos_only(cls) -> str | None:
        return (
            f"{setting('around')} paints photos only: a video would be painted anew frame by "
            f"frame (it would flicker); give it {setting('bg')} or {setting('prompt')} without "
            f"{setting('around')}"
        )

    def behind(self, photo: Photo) -> tuple[np.ndarray, dict[str, object]]:
        from operations.stages.text_to_image import keep_mask

        assert self.prompted is not None, "no generator was handed in"
        seed = self.prompted.settings.seed + photo.index
        painted, path = self.prompted.around(photo.rgb, keep_mask(photo.matte.alpha), seed)
        return photo.blurred(painted), {"background": str(path), "seed": seed}


class GeneratedPerPhoto(_Generating):
    """Generated per photo (``bg_per_image``): the run's seed plus the photo's index."""

    name = "generated-per-photo"
    fitted = styles = True

    @staticmethod
    def wants(settings: BackgroundSettings, generating: str | None) -> bool:
        return generating == "per_image"

    def picture(self, photo: Photo) -> tuple[Background, dict[str, object]]:
        assert self.prompted is not None, "no generator was handed in"
        height, width = photo.rgb.shape[:2]
        seed = self.prompted.settings.seed + photo.index
        generated, path = self.prompted.get(height, width, seed)
        return Background(generated), {"background": str(path), "seed": seed}


class Generated(_Generating):
    """Generated once per run (``prompt``): made (or taken from the cache) by :meth:`prepare`
    at the first photo's aspect ratio, then used like a file. A worker handed the run's
    background already made (``Given.run_background``) has no generator."""

    name = "generated"
    fitted = styles = True

    def __init__(self, settings: BackgroundSettings, given: Given) -> None:
        super().__init__(settings, given)
        if given.run_background is not None:
            self.image = Background.from_file(given.run_background.path)
            self.prompted = None

    @staticmethod
    def wants(settings: BackgroundSettings, generating: str | None) -> bool:
        return generating == "once"

    def prepare(self, first_size: Callable[[], tuple[int, int] | None]) -> RunBackground | None:
        with self._lock:
            if self.prompted is None or self.image is not None:
                return self.run_background
            size = first_size()
            if size is None:
                return None
            seed = self.prompted.settings.seed
            rgb, path = self.prompted.get(*size, seed)
            self.image = Background(rgb)
            self.run_background = RunBackground(path, seed)
        log.info("background: %s", path)
        return self.run_background

    def picture(self, photo: Photo) -> tuple[Background, dict[str, object]]:
        if self.image is None:  # not prepared by a batch: the first photo sets the aspect ratio
            height, width = photo.rgb.shape[:2]
            self.prepare(lambda: (height, width))
        return super().picture(photo)


class Own(BackgroundKind):
    """The photo's own background, blurred behind the subject (``blur`` alone: portrait mode),
    or left as it is (the one-image API with nothing given)."""

    name = "own"
    own = True

    @staticmethod
    def wants(settings: BackgroundSettings, generating: str | None) -> bool:
        return True

    def behind(self, photo: Photo) -> tuple[np.ndarray, dict[str, object]]:
        return blur_behind_subject(photo.rgb, photo.matte.alpha, photo.sigma), {}


# The first kind that wants the settings is the run's; the ones that read `bg` as a path come
# after the words (transparent, a colour), the most particular path first.
KINDS: tuple[type[BackgroundKind], ...] = (
    Transparent,
    Colour,
    Video,
    Folder,
    File,
    GeneratedAround,
    GeneratedPerPhoto,
    Generated,
    Own,
)


def generation(prompted: bool, per_image: bool = False, around: bool = False) -> str | None:
    """How a prompt's backgrounds are made: ``once`` per run, ``per_image``, ``around`` each
    subject; ``None`` without a prompt."""
    if not prompted:
        return None
    return "around" if around else "per_image" if per_image else "once"


def kind_of(settings: BackgroundSettings, generating: str | None) -> type[BackgroundKind]:
    """The kind of background the settings ask for (restyling, ``nst``, wraps it: see
    :class:`Restyled`)."""
    return next(kind for kind in KINDS if kind.wants(settings, generating))


class Restyled(BackgroundKind):
    """The photo's own background, restyled (``nst``) in the style of another kind's image (a
    file, a folder's, a video's first frame, a generated one)."""

    name = "restyled"
    own = True

    def __init__(self, settings: BackgroundSettings, given: Given, styled: BackgroundKind):
        super().__init__(settings, given)
        self.styled = styled
        self._make_style = given.style
        self.style: StyleTransfer | None = None

    def made(self) -> RunBackground | None:
        return self.styled.made()

    def prepare(self, first_size: Callable[[], tuple[int, int] | None]) -> RunBackground | None:
        return self.styled.prepare(first_size)

    def load(self) -> None:
        """Build the style network now (and its first style's Gram targets), so a missing
        model stops the run before the first file. Idempotent."""
        first = self.styled.first_picture()
        if first is not None:
            self._network(first.rgb)

    def _network(self, style_rgb: np.ndarray) -> StyleTransfer:
        """The style-transfer network, built once; its first style's Gram targets with it."""
        with self._lock:
            if self.style is None:
                if self._make_style is None:
                    raise ValueError("nst is on but no style network was handed in")
                self.style = self._make_style(style_rgb)
            return self.style

    def behind(self, photo: Photo) -> tuple[np.ndarray, dict[str, object]]:
        picture, extra = self.styled.picture(photo)
        network = self._network(picture.rgb)
        style = None if picture is self.styled.image else picture.rgb  # the first's: cached
        styled = network.stylize(photo.rgb, photo.matte.alpha, style_rgb=style)
        return photo.blurred(styled), extra


def create_kind(settings: BackgroundSettings, given: Given) -> BackgroundKind:
    """The run's background, of the kind its settings (and what it is given) ask for.

    Raises:
        SettingError: ``bg`` is not a readable image or video.
    """
    prompt = given.prompted.settings if given.prompted is not None else None
    generating = None if prompt is None else generation(True, prompt.per_image, prompt.around)
    if settings.transparent:
        kind: BackgroundKind = Transparent(settings, given)
    elif given.image is not None:
        kind = File(settings, given)
    elif given.run_background is not None:
        kind = Generated(settings, given)
    else:
        kind = kind_of(settings, generating)(settings, given)
    return Restyled(settings, given, kind) if settings.nst else kind


class BackgroundSource:
    """Decides, for every photo of a run, what goes behind its subject: the run's
    :class:`BackgroundKind` (see the module's list), with the blur the settings ask for.

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
        self.kind = create_kind(settings, Given(image, run_background, prompted, style))

    @property
    def transparent(self) -> bool:
        """Nothing behind the subject: the result is its RGBA cut-out."""
        return self.kind.transparent

    @property
    def video(self) -> Path | None:
        """A background video whose frames go behind a video's frames."""
        return self.kind.video

    @property
    def run_background(self) -> RunBackground | None:
        """The run's generated background, once made."""
        return self.kind.made()

    def prepare(self, first_size: Callable[[], tuple[int, int] | None]) -> RunBackground | None:
        """Once per run, before any photo: make the run's generated background.

        Generated (or found in the cache) at the aspect ratio of ``first_size()`` (the first
        readable photo's height and width; ``None`` when there is none, and then every photo
        will fail on its own). With ``--bg-per-image`` the diffusion pipeline is loaded now, so a
        missing model stops the run before the first file.

        Returns:
            The run's generated background, or ``None`` when the run has none.
        """
        return self.kind.prepare(first_size)

    def load(self) -> None:
        """Build what the photos will need now (the style network and its Gram targets), so a
        missing model stops the run before the first file. Idempotent."""
        self.kind.load()

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
        height, width = rgb.shape[:2]
        o = self.settings
        sigma = blur_sigma(height, width, o.blur_strength) if o.blur else 0.0
        return self.kind.behind(Photo(rgb, matte, icc_profile, index, name, frame, sigma))
