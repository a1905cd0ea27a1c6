"""The per-image pipeline: one photo in, one composite out.

:class:`Pipeline` is handed what is built once per run (the segmenter, the background source and
the networks it holds; :mod:`operations.build` makes them) and offers one pure step,
:meth:`Pipeline.swap`, that reads as the flow: segment → refine edges → background → (harmonise,
shadow) → composite (→ light wrap). Files, batches and engines are elsewhere
(:mod:`operations.jobs.job`, :mod:`operations.batch`, :mod:`operations.jobs.engines`).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from operations.doubt import Doubt, measure
from operations.segmenters.base import Segmenter
from operations.stages.background import BackgroundSource
from operations.stages.framing import FrameSettings, frame
from operations.stages.look import LookSettings, finish, finish_transparent
from operations.stages.mask import MaskSettings, Stroke, feather, rasterize, reach_of, shape
from operations.stages.matting import Matte, MattingSettings, refine, solve_with_strokes
from operations.stages.matting import warm_up as warm_up_matting
from operations.stages.own_shadow import OwnShadow, find_shadow

# Said in the row of a result whose mask holds no subject (doubt's ``no-subject`` flag): the
# warning and the flag are one fact, measured once.
NO_SUBJECT = "no subject found: the output shows the background alone"
# A given mask whose pixels are this nearly all 0 or 1 was drawn (or thresholded): its edge is
# snapped to the photo's as a model's coarse mask is; a softer one is kept as a fine mask.
DRAWN_SHARE = 0.98


@dataclass(frozen=True)
class GivenMask:
    """A photo's mask that no model made: the user's file (``--masks``), or the photo's own
    alpha (``--keep-alpha``).

    ``alpha`` is ``H×W`` ``float32`` in [0, 1] at the photo's size; ``side`` the long side it
    was made at (how fine its edge can be); ``source`` what the summary row calls it.
    """

    alpha: np.ndarray
    side: int
    source: str

    @property
    def fine(self) -> bool:
        """Soft where a matte is soft (an editor's or a matting tool's), not drawn yes/no."""
        drawn = np.count_nonzero((self.alpha <= 0.02) | (self.alpha >= 0.98))
        return bool(drawn < DRAWN_SHARE * self.alpha.size)


@dataclass(frozen=True)
class Fix:
    """One photo's own choices over the run's (a correction made on the review page): another
    model (``mode``, a backend's name), its own knobs, edge mode, and strokes (in the photo's
    pixels) that the edge stage solves the matte with."""

    mode: str | None = None
    mask: MaskSettings | None = None
    matting: str | None = None
    strokes: tuple[Stroke, ...] = ()

    def scaled(self, factor: float) -> Fix:
        """The same fix for the photo shrunk by ``factor`` (a preview)."""
        return Fix(
            self.mode,
            self.mask.scaled(factor) if self.mask is not None else None,
            self.matting,
            tuple(stroke.scaled(factor) for stroke in self.strokes),
        )


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
        mask: the knobs on every photo's mask (threshold, grow, feather, keep the photo's alpha).
        others: builds another backend by name, for a photo whose fix asks for one (built on
            first use, kept, closed with the pipeline).

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
        mask: MaskSettings | None = None,
        others: Callable[[str], Segmenter] | None = None,
    ) -> None:
        self.segmenter, self.background = segmenter, background
        self.framing = framing
        self.matting = matting if matting is not None else MattingSettings()
        self.look = look if look is not None else LookSettings()
        self.mask = mask if mask is not None else MaskSettings()
        self._others = others
        self._built: dict[str, Segmenter] = {}
        self._building = threading.Lock()
        if self.matting.method != "off":
            warm_up_matting(self.matting.method)
        self.background.load()

    def close(self) -> None:
        self.segmenter.close()
        for other in self._built.values():
            other.close()
        self._built.clear()

    def segmenter_for(self, mode: str | None) -> Segmenter:
        """The run's model, or (``mode``: a backend's name) another one, built once.

        Raises:
            SegmenterError: it cannot be built; ValueError: this pipeline builds no other.
        """
        if mode is None or mode == self.segmenter.name:
            return self.segmenter
        if self._others is None:
            raise ValueError(f"this pipeline has no model but {self.segmenter.name}")
        with self._building:
            if mode not in self._built:
                self._built[mode] = self._others(mode)
            return self._built[mode]

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
        given: GivenMask | None = None,
        fix: Fix | None = None,
        model_mask: np.ndarray | None = None,
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
            given: a mask no model made (the user's file), used instead of the model.
            fix: the photo's own choices (a correction): model, knobs, edge mode, strokes.
            model_mask: the model's mask of this image, made before (a preview's, kept while
                its knobs and strokes change): the model is not asked again.
        """
        fix = fix if fix is not None else Fix()
        knobs = fix.mask if fix.mask is not None else self.mask
        if given is None and knobs.keep_alpha and alpha_in is not None and alpha_in.min() < 1:
            given = GivenMask(alpha_in, max(alpha_in.shape), "own alpha")
        pick = None
        if given is not None:
            coarse = shape(given.alpha, knobs)
            matte = self._matte_given(rgb, coarse, given, fix)
            if alpha_in is not None and given.alpha is not alpha_in:
                matte = matte.times(alpha_in)  # transparent pixels are never subject
        else:
            pick = self.segmenter_for(fix.mode).pick(rgb)
            model = self.segment(rgb, pick.segmenter) if model_mask is None else model_mask
            coarse = shape(model, knobs)
            matte = self.matte(
                rgb,
                coarse,
                alpha_in=alpha_in,
                segmenter=pick.segmenter,
                method=fix.matting,
                strokes=fix.strokes,
            )
        if knobs.feather > 0:
            matte = Matte(matte.foreground, soft=feather(matte.alpha, knobs.feather))
        found = self.own_shadow(rgb, matte)
        shade = found.density if found is not None else None
        framed = None
        if self.framing is not None:  # the subject on its canvas (the photo is left behind)
            framed = frame(matte, self.framing, shade)
            matte, rgb, shade = framed.matte, framed.matte.rgb, framed.shade
        result = self.compose(
            rgb, matte, icc_profile=icc_profile, index=index, name=name, shade=shade
        )
        if found is not None and found.warning is not None:
            result.warnings.append(found.warning)
        result.doubt = measure(coarse if alpha_in is None else coarse * alpha_in)
        if "no-subject" in result.doubt.flags:
            result.warnings.insert(0, NO_SUBJECT)
        if framed is not None:
            result.warnings += framed.warnings
            if framed.scale is not None:
                result.extra["frame"] = {"scale": round(framed.scale, 3)}
        if pick is not None and (choice := pick.recorded()) is not None:
            result.extra["segmenter"] = choice
        if given is not None:
            result.extra["mask"] = given.source
        return result

    def own_shadow(self, rgb: np.ndarray, matte: Matte) -> OwnShadow | None:
        """The subject's own shadow in ``rgb`` (``None``: not asked for, ``--keep-shadow``)."""
        if not self.look.keep_shadow:
            return None
        return find_shadow(rgb, matte.alpha)

    def compose_frame(
        self,
        rgb: np.ndarray,
        matte: Matte,
        *,
        index: int = 0,
        name: str | None = None,
        background: np.ndarray | None = None,
    ) -> SwapResult:
        """A video frame's :meth:`compose`, with its own shadow found first if asked for."""
        found = self.own_shadow(rgb, matte)
        result = self.compose(
            rgb,
            matte,
            index=index,
            name=name,
            background=background,
            shade=found.density if found is not None else None,
        )
        if found is not None and found.warning is not None:
            result.warnings.append(found.warning)
        return result

    def shaped_matte(self, rgb: np.ndarray, coarse: np.ndarray, segmenter: Segmenter) -> Matte:
        """A video frame's matte: the run's knobs on the model's mask, the edge stage, then
        the feather (a photo's go through :meth:`swap`, which also takes fixes)."""
        matte = self.matte(rgb, shape(coarse, self.mask), segmenter=segmenter)
        if self.mask.feather > 0:
            matte = Matte(matte.foreground, soft=feather(matte.alpha, self.mask.feather))
        return matte

    def _matte_given(self, rgb: np.ndarray, mask: np.ndarray, given: GivenMask, fix: Fix) -> Matte:
        """The matte of a mask no model made: refined as a model's of its fineness would be."""
        method = fix.matting or self.matting.method
        side = min(given.side, 1024)  # a drawn mask is no finer than the photo's 1024-px view
        if fix.strokes:
            keep, remove = rasterize(fix.strokes, *rgb.shape[:2])
            reach = reach_of(fix.strokes)
            return solve_with_strokes(
                rgb, mask, keep, remove, mask_side=side, fine=given.fine, reach=reach
            )
        return refine(rgb, mask, method, mask_side=side, fine=given.fine)

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
        method: str | None = None,
        strokes: tuple[Stroke, ...] = (),
    ) -> Matte:
        """The subject's matte: ``coarse`` refined to the image's edges (as the character of
        ``segmenter``'s masks asks; default: the run's; ``method``: the run's edge mode unless
        given), with the user's ``strokes`` as known pixels if any, under the image's own
        transparency (``alpha_in``) if it has any."""
        segmenter = segmenter or self.segmenter
        if strokes:
            keep, remove = rasterize(strokes, *rgb.shape[:2])
            matte = solve_with_strokes(
                rgb,
                coarse,
                keep,
                remove,
                mask_side=segmenter.mask_side,
                fine=segmenter.fine_mask,
                reach=reach_of(strokes),
            )
        else:
            matte = refine(
                rgb,
                coarse,
                method or self.matting.method,
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
        shade: np.ndarray | None = None,
    ) -> SwapResult:
        """The subject (``matte``) over its background. ``background``: this image's own
        background picture (a video background's frame), fitted like ``--bg``; ``shade``: the
        subject's own shadow's density, carried onto it."""
        if self.background.transparent:  # the subject on nothing: RGBA
            return SwapResult(finish_transparent(matte, self.look, shade), matte, [], {})
        behind, extra = self.background.for_image(
            rgb, matte, icc_profile, index, name, frame=background
        )
        return SwapResult(finish(matte, behind, self.look, shade), matte, [], extra)
