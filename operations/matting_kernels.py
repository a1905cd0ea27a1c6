"""Compiled per-pixel loops of edge refinement (numba), for the pixels of the edge band only.

The band around a subject's outline is a few percent of a photo's pixels, but as NumPy array
expressions its work (gather the pixels, sample a dozen reduced maps at each, solve alpha and
colour, scatter back) costs many passes over scattered memory; one loop does it in one pass, ten
times faster. Kept apart from :mod:`operations.matting` so that numba is imported only when
refinement runs (``--help`` and ``--matting off`` never import it). Compiled on first use and
cached on disk (``cache=True``); ``nogil`` lets the batch's threads refine images in parallel.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numba
import numpy as np


def _compiled(**options: object) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """``numba.njit`` with an on-disk cache where one can be written.

    Numba refuses to cache when neither the package's ``__pycache__`` nor a user cache folder is
    writable (a read-only install run by a user without a home folder); then compile per run.
    """

    def decorate(function: Callable[..., Any]) -> Callable[..., Any]:
        try:
            return numba.njit(cache=True, **options)(function)
        except RuntimeError:  # "cannot cache function …: no locator available for file …"
            return numba.njit(**options)(function)

    return decorate


# Map channels (see :func:`edge_pixels`).
A_RED, A_GREEN, A_BLUE, B, INTERIOR, MEAN_F, MEAN_B = 0, 1, 2, 3, 4, 5, 8
DECONTAMINATED_MAPS = 11  # a (3), b, interior, subject mean (3), background mean (3)


@_compiled(nogil=True)
def band_size(unsure: np.ndarray, row_start: np.ndarray, col_start: np.ndarray) -> int:
    """The number of full-resolution pixels covered by the ``unsure`` reduced pixels."""
    total = 0
    for i in range(unsure.shape[0]):
        rows = row_start[i + 1] - row_start[i]
        for j in range(unsure.shape[1]):
            if unsure[i, j]:
                total += rows * (col_start[j + 1] - col_start[j])
    return total


@_compiled(inline="always")
def _taps(full: int, scale: float, size: int) -> tuple[int, int, float]:
    """Bilinear taps along one axis for full-resolution pixel ``full``: the two reduced pixels
    and the second's weight, pixel centres aligned and edges replicated (as cv2.resize)."""
    position = min(max((full + 0.5) * scale - 0.5, 0.0), size - 1.0)
    low = int(position)
    return low, min(low + 1, size - 1), position - low


@_compiled(nogil=True)
def edge_pixels(
    rgb: np.ndarray,
    maps: np.ndarray,
    unsure: np.ndarray,
    row_start: np.ndarray,
    col_start: np.ndarray,
    index: np.ndarray,
    alpha: np.ndarray,
    colours: np.ndarray,
) -> None:
    """Alpha and subject colour of every full-resolution pixel of the band, in raster order.

    Args:
        rgb: ``H×W×3`` ``uint8`` photo.
        maps: ``h×w×C`` ``float32`` reduced maps, sampled bilinearly at each pixel's centre:
            the guided filter's averaged ``a`` (3 channels) and ``b``, the solid interior
            (alpha is at least this), and, if ``C`` is :data:`DECONTAMINATED_MAPS`, the local
            mean colours of subject and background (3 + 3, in [0, 1]) for blur-fusion.
        unsure: ``h×w`` ``bool``: the reduced pixels of the band.
        row_start: ``h + 1`` ints: reduced row ``i`` covers full rows ``row_start[i]`` up to
            ``row_start[i + 1]`` (nearest-neighbour enlargement); ``col_start`` likewise.
        index: out, ``N`` ``int64``: the flat indices of the band's pixels.
        alpha: out, ``N`` ``float32``: their alpha.
        colours: out, ``N×3`` ``float32`` in [0, 255]: their subject colours (the photo's own
            where the maps carry no colour means or the pixel is opaque or transparent).
    """
    height, width = rgb.shape[0], rgb.shape[1]
    h, w, channels = maps.shape
    decontaminate = channels >= DECONTAMINATED_MAPS
    scale_y, scale_x = h / height, w / width
    values = np.empty(channels, np.float64)
    pixel = np.empty(3, np.float64)
    k = 0
    for i in range(h):
        for r in range(row_start[i], row_start[i + 1]):
            y0, y1, fy = _taps(r, scale_y, h)
            for j in range(w):
                if not unsure[i, j]:
                    continue
                for c in range(col_start[j], col_start[j + 1]):
                    x0, x1, fx = _taps(c, scale_x, w)
                    for m in range(channels):
                        top = maps[y0, x0, m] + (maps[y0, x1, m] - maps[y0, x0, m]) * fx
                        bottom = maps[y1, x0, m] + (maps[y1, x1, m] - maps[y1, x0, m]) * fx
                        values[m] = top + (bottom - top) * fy
                    for ch in range(3):
                        pixel[ch] = rgb[r, c, ch] / 255.0
                    a = values[A_RED] * pixel[0] + values[A_GREEN] * pixel[1]
                    a += values[A_BLUE] * pixel[2] + values[B]
                    a = min(max(a, values[INTERIOR], 0.0), 1.0)
                    index[k] = r * width + c
                    alpha[k] = a
                    mixed = decontaminate and 1.0 / 255.0 < a < 254.0 / 255.0
                    for ch in range(3):
                        if mixed:
                            # Blur-fusion: F = F̄ + α (I − α F̄ − (1 − α) B̄).
                            f = values[MEAN_F + ch]
                            f += a * (pixel[ch] - a * f - (1.0 - a) * values[MEAN_B + ch])
                            colours[k, ch] = min(max(f * 255.0, 0.0), 255.0)
                        else:
                            colours[k, ch] = rgb[r, c, ch]
                    k += 1


@_compiled(nogil=True)
def blend_edge(
    out: np.ndarray,
    background: np.ndarray,
    index: np.ndarray,
    alpha: np.ndarray,
    colours: np.ndarray,
) -> None:
    """``out[p] = colour · α + background[p] · (1 − α)`` at the band's pixels ``p``, rounded."""
    flat_out = out.reshape(-1, 3)
    flat_background = background.reshape(-1, 3)
    for k in range(index.size):
        p = index[k]
        a = alpha[k]
        for ch in range(3):
            value = colours[k, ch] * a + flat_background[p, ch] * (1.0 - a) + 0.5
            flat_out[p, ch] = min(max(value, 0.0), 255.0)
