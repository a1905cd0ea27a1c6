"""Compositing: the alpha blend of subject over background.

Pure functions on the pipeline's arrays: images are RGB ``uint8`` ``H×W×3``, alphas ``float32``
``H×W`` in ``[0, 1]``.
"""

from __future__ import annotations

import sys

import cv2
import numpy as np

from operations.stages.matting import Matte


def blend(foreground: np.ndarray, background: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """``foreground · α + background · (1 − α)``, rounded to ``uint8``.

    Args:
        foreground: ``H×W×3`` ``uint8``.
        background: ``H×W×3`` ``uint8``.
        alpha: ``H×W`` ``float32`` in ``[0, 1]``.
    """
    if foreground.shape != background.shape or foreground.shape[:2] != alpha.shape:
        raise ValueError(
            f"shape mismatch: foreground {foreground.shape}, background {background.shape}, "
            f"alpha {alpha.shape}"
        )
    weight = np.ascontiguousarray(alpha, dtype=np.float32)
    # OpenCV's blendLinear does the weighted sum in one pass in C++ (and releases the GIL).
    return cv2.blendLinear(foreground, background, weight, 1.0 - weight)


def composite(matte: Matte, background: np.ndarray) -> np.ndarray:
    """Composite a matte's subject over ``background`` (``H×W×3`` ``uint8``).

    A refined matte's subject is copied through its solid mask and only its edge pixels are
    blended, with their decontaminated colours; otherwise a plain :func:`blend` of its colours.
    """
    if not matte.refined:
        return blend(matte.foreground, background, matte.alpha)
    if background.shape != matte.rgb.shape:
        raise ValueError(f"shape mismatch: photo {matte.rgb.shape}, background {background.shape}")
    solid, edge, edge_alpha, edge_colours = matte.parts()
    out = background.copy()
    cv2.copyTo(matte.rgb, solid, out)
    blend_edge(out, background, edge, edge_alpha, edge_colours)
    return out


def blend_edge(
    out: np.ndarray,
    background: np.ndarray,
    index: np.ndarray,
    alpha: np.ndarray,
    colours: np.ndarray,
) -> None:
    """``out[p] = colour · α + background[p] · (1 − α)`` at the edge's pixels ``p`` (flat
    indices), rounded: the subject's share in ``float32``, the rest in ``float64``.

    By the compiled loop (:func:`operations.stages.matting_kernels.blend_edge`, 6× faster) when
    the run has loaded the edge kernels anyway (a coarse mask's edge, a video's smoothing: a
    1080p video ran 7 % slower without it); otherwise by array arithmetic on the edge's pixels
    alone, to the same bytes, so that a salient photo's run never loads numba (0.3–0.5 s and
    about 100 MB of every run).
    """
    # Looked up on the module only once it is whole: another thread may be importing it.
    compiled = getattr(sys.modules.get("operations.stages.matting_kernels"), "blend_edge", None)
    if compiled is not None:
        compiled(out, np.ascontiguousarray(background), index, alpha, colours)
        return
    if not out.flags.c_contiguous:  # its flat view would be a copy, and the blend lost
        raise ValueError("blend_edge writes into a C-contiguous image")
    a = alpha[:, None]
    value = (colours * a).astype(np.float64)
    value += background.reshape(-1, 3)[index] * (1.0 - a.astype(np.float64))
    value += 0.5
    np.clip(value, 0.0, 255.0, out=value)
    out.reshape(-1, 3)[index] = value.astype(np.uint8)
