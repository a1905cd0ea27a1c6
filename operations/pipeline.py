"""The per-image pipeline: one photo in, one composite out.

:class:`Pipeline` is handed what is built once per run (the segmenter, the background source and
the networks it holds; :mod:`operations.build` makes them) and offers one pure step,
:meth:`Pipeline.swap`, that reads as the flow: segment → refine edges → background → (harmonise,
shadow) → composite (→ light wrap). Files, batches and engines are elsewhere
(:mod:`operations.jobs.job`, :mod:`operations.batch`, :mod:`operations.jobs.engines`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from operations.doubt import Doubt, measure
from operations.segmenters.base import Segmenter
from operations.stages.background import BackgroundSource
from operations.stages.framing import FrameSettings, frame
from operations.stages.look import LookSettings, finish, finish_transparent
from operations.stages.matting import Matte, MattingSettings, refine
from operations.stages.matting import warm_up as warm_up_matting

# Said in the row of a result whose mask holds no subject (doubt's ``no-subject`` flag): the
# warning and the flag are one fact, measured once.
NO_SUBJECT = "no subject found: the output shows the background alone"


@dataclass
class SwapResult:
    """One image's result: the composite, and the subject's matte as photographed (the cut-out
    and mask files come from it; harmonisation changes the composite only)."""

    image: np.ndarray  # H×W×3 uint8 (H×W×4 RGBA with a transparent background)
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
    """Everything that is the same for every image, handed in once; then one image at a time.

    Args:
        segmenter: the model (the pipeline closes it).
        background: the run's background source.
        matting: the edge stage's settings.
        look: the scene's light (harmonise, shadow, light wrap).
        framing: place the subject on a canvas of its own (``None``: the photo's frame).

    Raises:
        StyleTransferError: the style network (``--nst``) cannot be loaded.
    """

    def __init__(
        self,
        segmenter: Segmenter,
        background: BackgroundSource,
        *,
        matting: MattingSettings | None = None,
        look: LookSettings | None = None,
        framing: FrameSettings | None = None,
    ) -> None:
        self.segmenter, self.background = segmenter, background
        self.framing = framing
        self.matting = matting if matting is not None else MattingSettings()
        self.look = look if look is not None else LookSettings()
        if self.matting.method != "off":
            warm_up_matting(self.matting.method)
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
        pick = self.segmenter.pick(rgb)
        coarse = self.segment(rgb, pick.segmenter)
        matte = self.matte(rgb, coarse, alpha_in=alpha_in, segmenter=pick.segmenter)
        framed = None
        if self.framing is not None:  # the subject on its canvas (the photo is left behind)
            framed = frame(matte, self.framing)
            matte, rgb = framed.matte, framed.matte.rgb
        result = self.compose(rgb, matte, icc_profile=icc_profile, index=index, name=name)
        result.doubt = measure(coarse if alpha_in is None else coarse * alpha_in)
        if "no-subject" in result.doubt.flags:
            result.warnings.insert(0, NO_SUBJECT)
        if framed is not None:
            result.warnings += framed.warnings
            if framed.scale is not None:
                result.extra["frame"] = {"scale": round(framed.scale, 3)}
        if (choice := pick.recorded()) is not None:
            result.extra["segmenter"] = choice
        return result

    def segment(self, rgb: np.ndarray, segmenter: Segmenter | None = None) -> np.ndarray:
        """The model's coarse alpha for an ``H×W×3`` ``uint8`` RGB image (``H×W`` float32).

        Args:
            segmenter: the model that :meth:`Segmenter.pick` chose for it (default: the run's).
        """
        if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
            raise ValueError(f"expected an H×W×3 uint8 RGB image, got {rgb.dtype} {rgb.shape}")
        return (segmenter or self.segmenter)(rgb)

    def matte(
        self,
        rgb: np.ndarray,
        coarse: np.ndarray,
        *,
        alpha_in: np.ndarray | None = None,
        segmenter: Segmenter | None = None,
    ) -> Matte:
        """The subject's matte: ``coarse`` refined to the image's edges (as the character of
        ``segmenter``'s masks asks; default: the run's), under the image's own transparency
        (``alpha_in``) if it has any."""
        segmenter = segmenter or self.segmenter
        matte = refine(
            rgb,
            coarse,
            self.matting.method,
            mask_side=segmenter.mask_side,
            fine=segmenter.fine_mask,
        )
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
        if self.background.transparent:  # the subject on nothing: RGBA
            return SwapResult(finish_transparent(matte, self.look), matte, [], {})
        behind, extra = self.background.for_image(
            rgb, matte, icc_profile, index, name, frame=background
        )
        return SwapResult(finish(matte, behind, self.look), matte, [], extra)
