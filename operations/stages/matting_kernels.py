"""Compiled per-pixel loops of edge refinement (numba), for the pixels of the edge band only.

The band around a subject's outline is a few percent of a photo's pixels, but as NumPy array
expressions its work (gather the pixels, sample a dozen reduced maps at each, solve alpha and
colour, scatter back) costs many passes over scattered memory; one loop does it in one pass, ten
times faster. Kept apart from :mod:`operations.stages.matting` so that numba is imported only when
refinement runs (``--help`` and ``--matting off`` never import it). Compiled on first use and
cached on disk (``cache=True``); ``nogil`` lets the batch's threads refine images in parallel.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numba
import numpy as np


def _compiled(**options: Any) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
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
    low: float,
    high: float,
    solid: np.ndarray,
    index: np.ndarray,
    alpha: np.ndarray,
    colours: np.ndarray,
) -> int:
    """Alpha and subject colour of every full-resolution pixel of the band, decided pixel by
    pixel: each one's alpha comes from the maps sampled bilinearly at its centre (He & Sun's
    fast guided filter) and its own colour, and is snapped to 0 at or below ``low`` and to 1
    at or above ``high`` (the thresholds that made the reduced pixels outside the band sure,
    so the band meets them without a step). Its solid value is written; the soft ones (0 < α
    < 1) are listed, in raster order.

    Args:
        rgb: ``H×W×3`` ``uint8`` photo.
        maps: ``h×w×C`` ``float32`` reduced maps, sampled bilinearly at each pixel's centre:
            the guided filter's averaged ``a`` (3 channels) and ``b``, the solid interior
            (alpha is at least this), and, if ``C`` is :data:`DECONTAMINATED_MAPS`, the local
            mean colours of subject and background (3 + 3, in [0, 1]) for blur-fusion.
        unsure: ``h×w`` ``bool``: the reduced pixels of the band.
        row_start: ``h + 1`` ints: reduced row ``i`` covers full rows ``row_start[i]`` up to
            ``row_start[i + 1]`` (nearest-neighbour enlargement); ``col_start`` likewise.
        low, high: the snapping thresholds.
        solid: in and out, ``H×W`` ``uint8``: 1 where α = 1; the band's pixels are written.
        index: out, ``N`` ``int64`` (N at least the band's size): the soft pixels' flat indices.
        alpha: out, ``N`` ``float32``: their alpha.
        colours: out, ``N×3`` ``float32`` in [0, 255]: their subject colours (the photo's own
            where the maps carry no colour means).

    Returns:
        How many soft pixels were listed.
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
                    a = max(a, values[INTERIOR])
                    if a >= high:
                        solid[r, c] = 1
                        continue
                    solid[r, c] = 0
                    if a <= low:
                        continue
                    index[k] = r * width + c
                    alpha[k] = a
                    for ch in range(3):
                        if decontaminate:
                            # Blur-fusion: F = F̄ + α (I − α F̄ − (1 − α) B̄).
                            f = values[MEAN_F + ch]
                            f += a * (pixel[ch] - a * f - (1.0 - a) * values[MEAN_B + ch])
                            colours[k, ch] = min(max(f * 255.0, 0.0), 255.0)
                        else:
                            colours[k, ch] = rgb[r, c, ch]
                    k += 1
    return k


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


@_compiled(nogil=True)
def _changed(now: np.ndarray, last: np.ndarray) -> np.ndarray:
    """The flat indices where two ``uint8`` images differ, in raster order (compared eight
    bytes at a time: a video's consecutive solid masks differ at a few pixels)."""
    flat, last_flat = now.reshape(-1), last.reshape(-1)
    words = flat.size // 8
    now_words, last_words = (
        flat[: words * 8].view(np.uint64),
        last_flat[: words * 8].view(np.uint64),
    )
    found = np.empty(flat.size, np.int64)
    k = 0
    for i in range(words):
        if now_words[i] != last_words[i]:
            for p in range(8 * i, 8 * i + 8):
                if flat[p] != last_flat[p]:
                    found[k] = p
                    k += 1
    for p in range(words * 8, flat.size):
        if flat[p] != last_flat[p]:
            found[k] = p
            k += 1
    return found[:k]


@_compiled(nogil=True)
def smooth_edges(
    rgb: np.ndarray,
    solid: np.ndarray,
    edge: np.ndarray,
    edge_alpha: np.ndarray,
    edge_colours: np.ndarray,
    last_solid: np.ndarray,
    last_edge: np.ndarray,
    last_alpha: np.ndarray,
    weight: np.ndarray,
    snap: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """A video's temporal average of two refined mattes, ``α = a + w · (α_last − a)``, at the
    only pixels where it can differ from this frame's own alpha ``a``: this frame's edge, the
    last result's soft pixels, and the pixels whose solid value changed.

    Args:
        rgb: ``H×W×3`` ``uint8``: this frame.
        solid, edge, edge_alpha, edge_colours: this frame's matte (``H×W`` ``uint8``; flat
            indices in raster order; their alpha and subject colours).
        last_solid, last_edge, last_alpha: the last result, in the same form.
        weight: ``h×w`` ``float32``: the weight of the past, sampled bilinearly at each pixel.
        snap: an average this near 0 or 1 is taken as exactly that.

    Returns:
        The result: its solid mask (``H×W`` ``uint8``, 1 where the average is 1), and its soft
        pixels' flat indices (raster order), alphas and colours (this frame's subject colours
        on its edge, the photo's own elsewhere).
    """
    height, width = solid.shape
    h, w = weight.shape
    scale_y, scale_x = h / height, w / width
    flat, last_flat = solid.reshape(-1), last_solid.reshape(-1)
    result = solid.copy()
    out = result.reshape(-1)
    changed = _changed(solid, last_solid)
    room = edge.size + last_edge.size + changed.size
    index = np.empty(room, np.int64)
    alpha = np.empty(room, np.float32)
    colours = np.empty((room, 3), np.float32)
    e, l_, c_, k = 0, 0, 0, 0
    end = flat.size
    row, row_end, y0, y1, fy = 0, 0, 0, 0, 0.0
    while True:  # the three sorted lists merged: each worked pixel once, in raster order
        p = end
        if e < edge.size:
            p = edge[e]
        if l_ < last_edge.size and last_edge[l_] < p:
            p = last_edge[l_]
        if c_ < changed.size and changed[c_] < p:
            p = changed[c_]
        if p == end:
            break
        if c_ < changed.size and changed[c_] == p:
            c_ += 1
        a = np.float32(flat[p])
        mine = e < edge.size and edge[e] == p
        if mine:
            a = edge_alpha[e]
        past = np.float32(last_flat[p])
        if l_ < last_edge.size and last_edge[l_] == p:
            past = last_alpha[l_]
            l_ += 1
        if p >= row_end:  # raster order: the row only moves forward (no division per pixel)
            row = p // width
            row_end = (row + 1) * width
            y0, y1, fy = _taps(row, scale_y, h)
        column = p - (row_end - width)
        x0, x1, fx = _taps(column, scale_x, w)
        top = weight[y0, x0] + (weight[y0, x1] - weight[y0, x0]) * fx
        bottom = weight[y1, x0] + (weight[y1, x1] - weight[y1, x0]) * fx
        value = a + np.float32(top + (bottom - top) * fy) * (past - a)
        # Within half a grey level of 0 or 1 of any composite: exactly that (a still picture's
        # average would otherwise leave a tail of ever smaller values at every past edge).
        if value < snap:
            value = np.float32(0.0)
        elif value > 1.0 - snap:
            value = np.float32(1.0)
        out[p] = 1 if value >= 1.0 else 0
        if 0.0 < value < 1.0:
            index[k] = p
            alpha[k] = value
            for ch in range(3):
                colours[k, ch] = edge_colours[e, ch] if mine else rgb[row, column, ch]
            k += 1
        if mine:
            e += 1
    return result, index[:k], alpha[:k], colours[:k]
