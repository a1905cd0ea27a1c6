"""The per-image pipeline: one photo in, one composite out.

:class:`Pipeline` holds what is built once per run (the segmenter, the background source and the
networks it needs) and offers one pure step, :meth:`Pipeline.swap`, that reads as the flow:
segment → refine edges → background → (harmonise, shadow) → composite (→ light wrap). Files,
batches and engines are elsewhere (:mod:`operations.jobs`, :mod:`operations.batch`,
:mod:`operations.engines`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from operations.background import BackgroundSource
from operations.composite import composite
from operations.doubt import Doubt, measure
from operations.harmonize import harmonize
from operations.light_wrap import light_wrap, wrap_width
from operations.matting import Matte, refine
from operations.matting import warm_up as warm_up_matting
from operations.options import Options
from operations.segmenters import create_segmenter
from operations.segmenters.base import Segmenter
from operations.shadow import cast_shadow

# An alpha whose strongest pixel is below this found no subject: say so instead of failing.
NO_SUBJECT_ALPHA = 0.05


@dataclass
class SwapResult:
    """One image's result: the composite, and the subject's matte as photographed (the cut-out
    and mask files come from it; harmonisation changes the composite only)."""

    image: np.ndarray  # H×W×3 uint8
    matte: Matte
    warnings: list[str] = field(default_factory=list)
    extra: dict[str, object] = field(default_factory=dict)  # what the background source recorded
    doubt: Doubt | None = None  # how likely the mask is wrong (see operations.doubt)

    @property
    def alpha(self) -> np.ndarray:
        return self.matte.alpha

    def cutout(self) -> np.ndarray:
        """The subject as ``H×W×4`` RGBA ``uint8`` (straight alpha, decontaminated colours)."""
        alpha8 = np.clip(self.alpha * 255.0 + 0.5, 0, 255).astype(np.uint8)
        return np.dstack([self.matte.foreground, alpha8])


class Pipeline:
    """Everything that is the same for every image, built once; then one image at a time.

    Args:
        options: the run's validated options.
        segmenter: a segmenter to use instead of the one ``options.mode`` names.
        background: a background source to use instead of one built from ``options``.

    Raises:
        OptionsError: ``--bg`` is not a readable image.
        SegmenterError, StyleTransferError: a model cannot be loaded.
    """

    def __init__(
        self,
        options: Options,
        *,
        segmenter: Segmenter | None = None,
        background: BackgroundSource | None = None,
    ) -> None:
        self.options = options
        self.background = background if background is not None else BackgroundSource(options)
        self.segmenter = segmenter if segmenter is not None else create_segmenter(options)
        if options.matting != "off":
            warm_up_matting(options.matting)
        self.background.load()

    def close(self) -> None:
        self.segmenter.close()

    def __enter__(self) -> Pipeline:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def swap(
        self,
        rgb: np.ndarray,
        *,
        alpha_in: np.ndarray | None = None,
        icc_profile: bytes | None = None,
        index: int = 0,
        name: str | None = None,
    ) -> SwapResult:
        """Replace the background of one image: :meth:`segment`, :meth:`matte`, :meth:`compose`
        (a video smooths each frame's matte over time between the last two).

        Args:
            rgb: ``H×W×3`` ``uint8`` RGB photo.
            alpha_in: the photo's own transparency, if it has any; transparent pixels are never
                subject.
            icc_profile: the photo's colour profile; the background is converted into it.
            index: the photo's position in the run (per-photo generated backgrounds' seeds).
            name: the photo's name without extension (``--bg DIR --bg-match name``).
        """
        coarse = self.segment(rgb)
        matte = self.matte(rgb, coarse, alpha_in=alpha_in)
        result = self.compose(rgb, matte, icc_profile=icc_profile, index=index, name=name)
        result.doubt = measure(coarse if alpha_in is None else coarse * alpha_in)
        return result

    def segment(self, rgb: np.ndarray) -> np.ndarray:
        """The model's coarse alpha for an ``H×W×3`` ``uint8`` RGB image (``H×W`` float32)."""
        if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
            raise ValueError(f"expected an H×W×3 uint8 RGB image, got {rgb.dtype} {rgb.shape}")
        return self.segmenter(rgb)

    def matte(
        self, rgb: np.ndarray, coarse: np.ndarray, *, alpha_in: np.ndarray | None = None
    ) -> Matte:
        """The subject's matte: ``coarse`` refined to the image's edges, under its own
        transparency (``alpha_in``) if it has any."""
        matte = refine(rgb, coarse, self.options.matting, mask_side=self.segmenter.mask_side)
        return matte.times(alpha_in) if alpha_in is not None else matte

    def compose(
        self,
        rgb: np.ndarray,
        matte: Matte,
        *,
        icc_profile: bytes | None = None,
        index: int = 0,
        name: str | None = None,
        background: np.ndarray | None = None,
    ) -> SwapResult:
        """The subject (``matte``) over its background. ``background``: this image's own
        background picture (a video background's frame), fitted like ``--bg``."""
        warnings = []
        if matte.peak() < NO_SUBJECT_ALPHA:
            warnings.append("no subject found: the output shows the background alone")
        behind, extra = self.background.for_image(
            rgb, matte, icc_profile, index, name, frame=background
        )
        return SwapResult(self._composite(matte, behind), matte, warnings, extra)

    def _composite(self, matte: Matte, behind: np.ndarray) -> np.ndarray:
        """Subject over background, with the scene's light on it if asked: harmonised colours,
        a shadow on the background, the background's light wrapped into its edge."""
        o = self.options
        subject = harmonize(matte, behind, o.harmonize) if o.harmonize else matte
        if o.shadow:
            behind = cast_shadow(behind, matte.alpha, o.shadow_settings())
        image = composite(subject, behind)
        if o.light_wrap is not None:
            height, width = behind.shape[:2]
            image = light_wrap(image, behind, matte.alpha, wrap_width(height, width, o.light_wrap))
        return image
