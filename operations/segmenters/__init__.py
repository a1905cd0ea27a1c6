"""Segmentation backends: one module each, and the registry that lists them.

A backend is one module in this folder that defines a
:class:`~operations.segmenters.base.Segmenter` subclass and declares itself as a module-level
``BACKEND`` (:class:`~operations.segmenters.base.Backend`: name, ``--mode`` number, options,
devices, downloadable weights, model table rows), plus one line in :data:`BACKEND_MODULES`
below. The CLI, :class:`~operations.options.Options`, the ``download`` command and docs/models.md's
model table all read the declarations; a segmenter is built from its name and its own
:class:`~operations.segmenters.base.SegmenterSettings` (:func:`create_segmenter`). Backend
modules import their heavy libraries (torch, ultralytics, mediapipe, onnxruntime) only inside
the segmenter, so reading the declarations (``--help``, option validation) stays cheap.

May import: :mod:`operations.models`, :mod:`operations.media`, :mod:`operations.errors` and each
other; never the stages (a peer), the pipeline or anything above it.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from operations.segmenters.base import Backend, Segmenter, SegmenterSettings

# The registry: one line per backend, in --mode order.
BACKEND_MODULES: list[str] = [
    "operations.segmenters.mediapipe",
    "operations.segmenters.deeplab",
    "operations.segmenters.yolo",
    "operations.segmenters.salient",
    "operations.segmenters.auto",
]
DEFAULT_SEGMENTER = "mediapipe"

_loaded: dict[str, Backend] | None = None


def backends() -> dict[str, Backend]:
    """Every registered backend's declaration, by name (imported once).

    Raises:
        ValueError: two backends claim the same name or ``--mode`` number.
    """
    global _loaded
    if _loaded is None:
        found: dict[str, Backend] = {}
        taken: set[str] = set()
        for module in BACKEND_MODULES:
            backend: Backend = importlib.import_module(module).BACKEND
            for key in (backend.name, backend.alias):
                if key and key in taken:
                    raise ValueError(f"segmenter name {key!r} is already registered")
                if key:
                    taken.add(key)
            found[backend.name] = backend
        _loaded = found
    return _loaded


def register_backend(module: str) -> None:
    """Add a backend module to the registry (its ``BACKEND`` is read on next use).

    Raises:
        ValueError: its name or ``--mode`` number is already taken.
    """
    global _loaded
    BACKEND_MODULES.append(module)
    _loaded = None
    try:
        backends()
    except ValueError:
        BACKEND_MODULES.remove(module)
        _loaded = None
        raise


def segmenter_choices() -> list[str]:
    """Every name and number ``--mode`` accepts."""
    return [n for b in backends().values() for n in (b.alias, b.name) if n]


def segmenter_help() -> str:
    """One line per backend for ``--help``: ``0 | mediapipe: summary``."""
    return "; ".join(
        f"{b.alias} | {b.name}: {b.summary}" if b.alias else f"{b.name}: {b.summary}"
        for b in backends().values()
    )


def resolve_segmenter_name(mode: str) -> str:
    """Map a ``--mode`` value (name or number) to the backend's name.

    Raises:
        ValueError: an unknown mode.
    """
    key = str(mode).strip().lower()
    for backend in backends().values():
        if key in (backend.name, backend.alias):
            return backend.name
    raise ValueError(f"unknown mode {mode!r}; choose from {', '.join(segmenter_choices())}")


def create_segmenter(mode: str, settings: SegmenterSettings | None = None) -> Segmenter:
    """Build the backend that ``mode`` (a name or ``--mode`` number) names, from its settings
    (default: the backend's own defaults)."""
    from operations.segmenters.base import SegmenterSettings

    backend = backends()[resolve_segmenter_name(mode)]
    if settings is None:
        settings = SegmenterSettings(own=tuple((o.field, o.default) for o in backend.options))
    segmenter = backend.segmenter.from_settings(settings)
    segmenter.enable_batching(settings.batch_size)
    return segmenter


def model_table() -> str:
    """The table of segmentation models in docs/models.md, from the backends' declarations."""
    lines = [
        "| `--mode` | model | weights | licence | where they are looked for |",
        "| --- | --- | --- | --- | --- |",
    ]
    previous = None
    for backend in backends().values():
        mode = f"`{backend.alias}` / `{backend.name}`" if backend.alias else f"`{backend.name}`"
        for card in backend.models:
            cache = "the same" if card.cache == previous else card.cache
            lines.append(f"| {mode} | {card.model} | {card.weights} | {card.licence} | {cache} |")
            previous = card.cache
    return "\n".join(lines) + "\n"
