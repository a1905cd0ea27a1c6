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

Why not a symmetric temporal filter (past and future frames), or optical-flow warping: the
first holds frames back, the second costs more than the model on a CPU; the average above,
with one frame of memory, already removes most of the flicker of still parts.
"""

from __future__ import annotations

import cv2
import numpy as np

DEFAULT_STRENGTH = 0.7  # 0: off; the weight of the past where the picture is still
MOTION = 0.04  # luma change (0-1) at which a place counts as moving (the gate is e⁻¹ there)
GATE_SIDE = 256  # the long side at which motion is measured
CUT = 0.25  # mean luma change above which a frame is a new shot


class TemporalSmoother:
    """Smooths one video's alphas in order; one per video (it remembers the last frame)."""

    def __init__(self, strength: float = DEFAULT_STRENGTH) -> None:
        if not 0 <= strength < 1:
            raise ValueError(f"temporal smoothing strength must be in [0, 1), got {strength}")
        self.strength = strength
        self._alpha: np.ndarray | None = None
        self._luma: np.ndarray | None = None

    def __call__(self, coarse: np.ndarray, rgb: np.ndarray) -> np.ndarray:
        """The smoothed alpha for this frame (``coarse``: its ``H×W`` float32 alpha; ``rgb``:
        the frame)."""
        if self.strength == 0:
            return coarse
        luma = _small_luma(rgb)
        previous, last = self._alpha, self._luma
        self._luma = luma
        if previous is None or last is None or previous.shape != coarse.shape:
            self._alpha = coarse
            return coarse
        change = cv2.GaussianBlur(cv2.absdiff(luma, last), (0, 0), 1.0)
        if float(change.mean()) > CUT:
            self._alpha = coarse
            return coarse
        weight = np.exp(-np.square(change / MOTION)) * np.float32(self.strength)
        height, width = coarse.shape
        weight = cv2.resize(weight, (width, height), interpolation=cv2.INTER_LINEAR)
        smoothed = cv2.subtract(previous, coarse)
        cv2.multiply(smoothed, weight, dst=smoothed)
        cv2.add(smoothed, coarse, dst=smoothed)
        self._alpha = smoothed
        return smoothed


def _small_luma(rgb: np.ndarray) -> np.ndarray:
    height, width = rgb.shape[:2]
    scale = min(1.0, GATE_SIDE / max(height, width))
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    small = cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)
    return cv2.cvtColor(small, cv2.COLOR_RGB2GRAY).astype(np.float32) / 255.0
