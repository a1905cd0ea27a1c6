"""Segmentation backends: one module each, and the name registry.

A backend is one module in this folder (a :class:`~operations.segmenters.base.Segmenter`
subclass) plus one :func:`register_segmenter` line below. The registry stores import paths, not
classes, so listing the backends (``--help``, option validation) never imports a backend's heavy
dependencies (torch, ultralytics, mediapipe).
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from operations.options import Options
    from operations.segmenters.base import Segmenter


@dataclass(frozen=True)
class SegmenterSpec:
    name: str
    target: str | None  # "module:Class", or None for a backend that is planned but not built yet
    alias: str | None  # the original tool's --mode number
    summary: str


_REGISTRY: dict[str, SegmenterSpec] = {}
DEFAULT_SEGMENTER = "mediapipe"


def register_segmenter(
    name: str, target: str | None, *, alias: str | None = None, summary: str = ""
) -> None:
    """Register a backend under ``name`` (and optionally a numeric ``--mode`` alias).

    Raises:
        ValueError: if the name or the alias is already taken.
    """
    taken = {n for spec in _REGISTRY.values() for n in (spec.name, spec.alias) if n}
    for key in (name, alias):
        if key and key in taken:
            raise ValueError(f"segmenter name {key!r} is already registered")
    _REGISTRY[name] = SegmenterSpec(name, target, alias, summary)


register_segmenter(
    "mediapipe",
    "operations.segmenters.mediapipe:MediaPipeSegmenter",
    alias="0",
    summary="MediaPipe selfie segmentation (people; fast, CPU)",
)
register_segmenter(
    "deeplab",
    "operations.segmenters.deeplab:DeepLabSegmenter",
    alias="1",
    summary="torchvision DeepLabv3 (20 VOC classes: people, animals, vehicles…)",
)
register_segmenter(
    "yolo",
    "operations.segmenters.yolo:YoloSegmenter",
    alias="2",
    summary="Ultralytics YOLOv8-seg (80 COCO classes, every instance)",
)


def segmenter_choices() -> list[str]:
    """Every name and alias ``--mode`` accepts."""
    return [n for spec in _REGISTRY.values() for n in (spec.alias, spec.name) if n]


def segmenter_help() -> str:
    """One line per backend for ``--help``: ``0 | mediapipe: summary``."""
    return "; ".join(
        f"{spec.alias} | {spec.name}: {spec.summary}"
        if spec.alias
        else f"{spec.name}: {spec.summary}"
        for spec in _REGISTRY.values()
    )


def resolve_segmenter_name(mode: str) -> str:
    """Map a ``--mode`` value (name or numeric alias) to the backend's name.

    Raises:
        ValueError: unknown mode, or a backend that is not available in this version.
    """
    key = str(mode).strip().lower()
    for spec in _REGISTRY.values():
        if key in (spec.name, spec.alias):
            if spec.target is None:
                raise ValueError(
                    f"segmentation backend {spec.name!r} (--mode {spec.alias}) is not available "
                    "in this version yet; use --mode 0 (mediapipe)"
                )
            return spec.name
    raise ValueError(f"unknown mode {mode!r}; choose from {', '.join(segmenter_choices())}")


def create_segmenter(options: Options) -> Segmenter:
    """Import the backend that ``options.mode`` names and build it from the run's options."""
    spec = _REGISTRY[resolve_segmenter_name(options.mode)]
    assert spec.target is not None  # resolve_segmenter_name refuses planned backends
    module_name, _, class_name = spec.target.partition(":")
    cls: type[Segmenter] = getattr(importlib.import_module(module_name), class_name)
    segmenter = cls.from_options(options)
    segmenter.enable_batching(options.batch_size)
    return segmenter
