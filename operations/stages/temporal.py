"""Temporal smoothing of a video's mattes: a still subject's edge must not shimmer.

Every frame is segmented and refined afresh, so where the picture hardly changes the alpha still
wavers from frame to frame (the flicker). Measured on a clip with a known answer
(``benchmarks/bench_video.py``): the model's own mask barely moves (0.005 mean change in the
edge band on a still clip); the refined edge, which follows each frame's noisy pixels, moves
five times as much — so the smoothing is applied to the refined alpha, the one composited.

The filter is a **motion-gated exponential average**:

    alpha_t = a_t + w · (alpha_{t-1} − a_t),   w = strength · exp(−(Δ/Δ₀)²)

where ``a_t`` is this frame's refined alpha and Δ is how much the picture itself changed at that
place since the last frame (luma, measured at 256 px and slightly blurred, so sensor noise
averages out). Where the picture is still, a change of alpha can only be noise, and it is
averaged away; where the picture moved, w falls to 0 and the alpha follows the new frame at
once, so a moving subject leaves no ghost. Gating on the picture and not on the alpha is the
point: a gate on the alpha's own change would let exactly the flicker through. A cut (most of
the frame changed) restarts the average.

A refined matte (solid where the subject is whole, per-pixel values at its edge only) is
smoothed in that form (:meth:`TemporalSmoother.matte`): outside this frame's edge, the last
result's soft pixels and the pixels whose solid value changed, the average of two equal values
is that value, so only those pixels are computed; the result is again a refined matte, which
compositing copies through its mask. The same numbers as the full-frame formula, at a fraction
of its cost on a 1080p frame (about 1 pixel in 20 is worked).

Why not a symmetric temporal filter (past and future frames), or optical-flow warping: the
first holds frames back, the second costs more than the model on a CPU; the average above,
with one frame of memory, already removes most of the flicker of still parts.
"""

from __future__ import annotations

import cv2
import numpy as np

from operations.media.resize import shrink
from operations.stages.matting import Matte

DEFAULT_STRENGTH = 0.7  # 0: off; the weight of the past where the picture is still
MOTION = 0.04  # luma change (0-1) at which a place counts as moving (the gate is e⁻¹ there)
GATE_SIDE = 256  # the long side at which motion is measured
CUT = 0.25  # mean luma change above which a frame is a new shot
# A refined matte's average this near 0 or 1 is that (it moves any 8-bit composite by less than
# half a level): a still picture leaves no tail of ever smaller values at its past edges.
SNAP = 1 / 512


class TemporalSmoother:
    """Smooths one video's alphas in order; one per video (it remembers the last frame)."""

    def __init__(self, strength: float = DEFAULT_STRENGTH) -> None:
        if not 0 <= strength < 1:
            raise ValueError(f"temporal smoothing strength must be in [0, 1), got {strength}")
        self.strength = strength
        self._luma: np.ndarray | None = None
        # The last result: a full alpha, or in a refined matte's form (solid, soft pixels'
        # flat indices and values), whichever the last frame's matte was.
        self._alpha: np.ndarray | None = None
        self._sparse: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None

    def _gate(self, rgb: np.ndarray, shape: tuple[int, int]) -> np.ndarray | None:
        """The weight of the past at ``GATE_SIDE`` px, or ``None`` where the average restarts
        (the first frame, a new size, a cut)."""
        luma = _small_luma(rgb)
        last, self._luma = self._luma, luma
        previous = self._alpha if self._sparse is None else self._sparse[0]
        if last is None or previous is None or previous.shape != shape:
            return None
        change = cv2.GaussianBlur(cv2.absdiff(luma, last), (0, 0), 1.0)
        if float(change.mean()) > CUT:
            return None
        return np.exp(-np.square(change / MOTION)) * np.float32(self.strength)

    def __call__(self, coarse: np.ndarray, rgb: np.ndarray) -> np.ndarray:
        """The smoothed alpha for this frame (``coarse``: its ``H×W`` float32 alpha; ``rgb``:
        the frame)."""
        if self.strength == 0:
            return coarse
        weight = self._gate(rgb, coarse.shape)
        previous = self._dense()
        self._alpha, self._sparse = coarse, None
        if weight is None or previous is None:
            return coarse
        height, width = coarse.shape
        weight = cv2.resize(weight, (width, height), interpolation=cv2.INTER_LINEAR)
        smoothed = cv2.subtract(previous, coarse)
        cv2.multiply(smoothed, weight, dst=smoothed)
        cv2.add(smoothed, coarse, dst=smoothed)
        self._alpha = smoothed
        return smoothed

    def matte(self, matte: Matte, rgb: np.ndarray) -> Matte:
        """This frame's matte, smoothed: a refined one stays refined (only the pixels that can
        change are worked); a soft one is smoothed in full."""
        if self.strength == 0:
            return matte
        if not matte.refined:
            return Matte(matte.rgb, soft=self(matte.alpha, rgb))
        solid, edge, values, edge_colours = matte.parts()
        weight = self._gate(rgb, solid.shape)
        previous = self._sparse if self._sparse is not None else self._to_sparse()
        self._alpha, self._sparse = None, (solid, edge, values)
        if weight is None or previous is None:
            return matte
        from operations.stages.matting_kernels import smooth_edges

        last_solid, last_edge, last_values = previous
        # Where both frames are whole subject or both background, and neither has a soft pixel,
        # the average is that value: only the other pixels are worked, in one compiled pass.
        result, index, alpha, colours = smooth_edges(
            matte.rgb,
            np.ascontiguousarray(solid),
            edge,
            values,
            edge_colours,
            np.ascontiguousarray(last_solid),
            last_edge,
            last_values,
            weight,
            SNAP,
        )
        self._sparse = (result, index, alpha)
        return Matte(
            matte.rgb,
            solid=result,
            edge=index,
            edge_alpha=alpha,
            edge_colours=colours,
            opaque=bool(cv2.countNonZero(result)),
        )

    def _dense(self) -> np.ndarray | None:
        """The last result as a full alpha."""
        if self._sparse is None:
            return self._alpha
        solid, edge, values = self._sparse
        alpha = solid.astype(np.float32)
        alpha.reshape(-1)[edge] = values
        return alpha

    def _to_sparse(self) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
        """The last result (a full alpha) in a refined matte's form."""
        if self._alpha is None:
            return None
        flat = self._alpha.reshape(-1)
        edge = np.flatnonzero((flat > 0.0) & (flat < 1.0))
        return (self._alpha >= 1.0).astype(np.uint8), edge, flat[edge]


def _small_luma(rgb: np.ndarray) -> np.ndarray:
    height, width = rgb.shape[:2]
    scale = min(1.0, GATE_SIDE / max(height, width))
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    small = shrink(rgb, *size) if scale < 1 else rgb
    return cv2.cvtColor(small, cv2.COLOR_RGB2GRAY).astype(np.float32) / 255.0
