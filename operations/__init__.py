"""BackgroundSwap: replace the background of photos, one image or a whole folder at a time.

    >>> from operations import BackgroundSwapper
    >>> with BackgroundSwapper("background/hubble_deep_field.jpg") as swap:
    ...     result = swap(photo)  # numpy RGB uint8 or PIL image in, the same type out

Heavy modules load on first use, so importing this package is cheap.

The layout, top down (each layer imports only the ones below it; docs/architecture.md):

- ``api`` (the Python API), ``batch`` (a folder's run): the front doors, with ``run.py``;
- ``options``: the run's one validated record of settings, which makes each stage's own;
- ``jobs/`` (a source as a job, the engines, the drop folder, the report) and ``service/``
  (the HTTP front door), peers;
- ``build``: the run's parts from a :class:`~operations.build.Recipe`;
- ``pipeline``: one photo through the stages;
- ``segmenters/`` (the models) and ``stages/`` (matting, backgrounds, the look …), peers;
- ``models``: where weights come from;
- ``media/``: files, decoding, encoding, video;
- ``errors``, ``doubt``, ``warning_capture``: shared by all.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:
    from operations.api import BackgroundSwapper, swap_background
    from operations.batch import BatchResult, run_batch
    from operations.errors import BackgroundSwapError, SettingError
    from operations.options import Options, OptionsError
    from operations.pipeline import Pipeline

_EXPORTS = {
    "BackgroundSwapper": "operations.api",
    "swap_background": "operations.api",
    "Options": "operations.options",
    "OptionsError": "operations.options",
    "BatchResult": "operations.batch",
    "BackgroundSwapError": "operations.errors",
    "SettingError": "operations.errors",
    "Pipeline": "operations.pipeline",
    "run_batch": "operations.batch",
}
__all__ = [
    "BackgroundSwapError",
    "BackgroundSwapper",
    "BatchResult",
    "Options",
    "OptionsError",
    "Pipeline",
    "SettingError",
    "__version__",
    "run_batch",
    "swap_background",
]


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        import importlib

        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'operations' has no attribute {name!r}")
