"""One place that builds a run's parts, in one order, for every caller: the batch, the Python
API, the local engine and the Ray worker.

A :class:`Recipe` is the run's stage settings, made by :meth:`operations.options.Options.recipe`
(the top is the only place that knows the whole run); it is small, frozen and picklable, so it
also travels to a cluster's workers. From it come the background source (with its collaborators:
the prompt's generator, the style network), the segmenter, and the pipeline they are handed to
(diffusers' way: ``Pipeline(segmenter, background, matting=…, look=…)``).
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from operations.models import DEFAULT_DEVICE
from operations.pipeline import Pipeline
from operations.segmenters import (
    DEFAULT_SEGMENTER,
    backends,
    create_segmenter,
    resolve_segmenter_name,
)
from operations.segmenters.base import Segmenter, SegmenterSettings
from operations.stages.background import (
    Background,
    BackgroundSettings,
    BackgroundSource,
    RunBackground,
)
from operations.stages.framing import FrameSettings
from operations.stages.look import LookSettings
from operations.stages.mask import MaskSettings
from operations.stages.matting import MattingSettings
from operations.stages.neural_style_transfer import StyleSettings
from operations.stages.text_to_image import PromptSettings

if TYPE_CHECKING:
    import numpy as np

    from operations.stages.neural_style_transfer import StyleTransfer
    from operations.stages.text_to_image import PromptBackgrounds


@dataclass(frozen=True)
class Recipe:
    """What a run's pipelines are made of: each stage's own settings."""

    mode: str = DEFAULT_SEGMENTER  # the segmentation backend's name
    segmenter: SegmenterSettings = field(default_factory=SegmenterSettings)
    background: BackgroundSettings = field(default_factory=BackgroundSettings)
    prompt: PromptSettings | None = None  # backgrounds generated from a prompt
    style: StyleSettings | None = None  # restyle the photo's own background (--nst)
    style_weights: Path | None = None  # a local VGG19 weights file
    device: str = DEFAULT_DEVICE  # where the style network runs
    offline: bool = False
    matting: MattingSettings = field(default_factory=MattingSettings)
    mask: MaskSettings = field(default_factory=MaskSettings)  # the knobs on every photo's mask
    look: LookSettings = field(default_factory=LookSettings)
    framing: FrameSettings | None = None  # the subject on a canvas of its own (--frame)
    folder: Path | None = None  # where generated backgrounds are kept (None: the working folder)
    progress: bool = True  # show the generation's progress


def build_segmenter(recipe: Recipe) -> Segmenter:
    """The run's model.

    Raises:
        SegmenterError: it cannot be loaded.
    """
    return create_segmenter(recipe.mode, recipe.segmenter)


def build_other_segmenter(recipe: Recipe, mode: str) -> Segmenter:
    """Another backend than the run's, for one photo whose correction asks for it: the run's
    device, offline setting and the options they share; the rest at the backend's defaults (the
    run's weights file is its own model's).

    Raises:
        SegmenterError: it cannot be loaded; ValueError: no backend of that name.
    """
    backend = backends()[resolve_segmenter_name(mode)]
    given = dict(recipe.segmenter.own)
    used = [backend, *(backends()[name] for name in backend.uses)]
    own = tuple((o.field, given.get(o.field, o.default)) for b in used for o in b.options)
    device = recipe.segmenter.device
    settings = dataclasses.replace(
        recipe.segmenter,
        device=device if device in (*backend.devices, "auto") else "cpu",
        weights=None,
        classes=recipe.segmenter.classes if backend.classes else None,
        own=own,
    )
    return create_segmenter(backend.name, settings)


def _prompted(recipe: Recipe) -> PromptBackgrounds | None:
    if recipe.prompt is None:
        return None
    from operations.stages.text_to_image import PromptBackgrounds

    folder = recipe.folder if recipe.folder is not None else Path.cwd()
    return PromptBackgrounds(recipe.prompt, folder, progress=recipe.progress)


def _style(recipe: Recipe) -> Callable[[np.ndarray], StyleTransfer] | None:
    if recipe.style is None:
        return None
    from operations.stages.neural_style_transfer import StyleTransfer

    return functools.partial(
        StyleTransfer,
        settings=recipe.style,
        weights=recipe.style_weights,
        offline=recipe.offline,
        device=recipe.device,
    )


def build_background(
    recipe: Recipe,
    *,
    image: Background | None = None,
    run_background: RunBackground | None = None,
) -> BackgroundSource:
    """The run's background source, with its collaborators (the prompt's generator, the style
    network's maker).

    Args:
        image: an in-memory background instead of the recipe's file (the one-image API).
        run_background: the run's generated background, already made (a Ray worker's case).

    Raises:
        SettingError: the background file is not a readable image.
    """
    return BackgroundSource(
        recipe.background,
        image=image,
        run_background=run_background,
        prompted=_prompted(recipe) if image is None and run_background is None else None,
        style=_style(recipe),
    )


def build_pipeline(
    recipe: Recipe,
    *,
    segmenter: Segmenter | None = None,
    background: BackgroundSource | None = None,
) -> Pipeline:
    """The run's pipeline: its background source, then its model, then the pipeline they are
    handed to (which prepares the edge stage and the style network).

    Args:
        segmenter: a model to use instead of the recipe's (the tests' stand-ins).
        background: a background source already built (the batch's, a worker's).

    Raises:
        SettingError: the background file is not a readable image.
        SegmenterError, StyleTransferError: a model cannot be loaded.
    """
    background = background if background is not None else build_background(recipe)
    segmenter = segmenter if segmenter is not None else build_segmenter(recipe)
    return Pipeline(
        segmenter,
        background,
        matting=recipe.matting,
        look=recipe.look,
        framing=recipe.framing,
        mask=recipe.mask,
        others=functools.partial(build_other_segmenter, recipe),
    )
