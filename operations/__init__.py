"""BackgroundSwap: replace the background of photos, one image or a whole folder at a time.

    >>> from operations import BackgroundSwapper
    >>> with BackgroundSwapper("background/hubble_deep_field.jpg") as swap:
    ...     result = swap(photo)  # numpy RGB uint8 or PIL image in, the same type out

Heavy modules load on first use, so importing this package is cheap.
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
