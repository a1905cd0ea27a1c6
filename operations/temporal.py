"""Temporal smoothing of a video's masks: a still subject's edge must not shimmer.

A segmentation model sees every frame afresh, so where the image hardly changes its mask still
wavers by a few per cent from frame to frame (the flicker). The cure chosen here is a
**motion-gated exponential average** of the model's mask:

    alpha_t = coarse_t + w · (alpha_{t-1} − coarse_t),   w = strength · exp(−(Δ/Δ₀)²)

where Δ is how much the picture itself changed at that place since the last frame (luma,
measured at 256 px and slightly blurred, so sensor noise averages out). Where the picture is
still, a change of mask can only be the model's noise, and it is averaged away; where the
picture moved, w falls to 0 and the mask follows the new frame at once, so a moving subject
leaves no ghost. Gating on the picture and not on the mask is the point: a gate on the mask's
own change would let exactly the flicker through. A cut (most of the frame changed) restarts
the average. It runs on the model's mask before edge refinement, so the refined edge still
follows the frame's own pixels.

Why not a symmetric temporal filter (past and future frames): it needs frames held back, and
the average above, at one frame of memory, already halves the flicker (benchmarks/bench_video).
"""

from __future__ import annotations

import cv2
import numpy as np

DEFAULT_STRENGTH = 0.6  # 0: off; the weight of the past where the picture is still
MOTION = 0.04  # luma change (0-1) at which a place counts as moving (the gate is e⁻¹ there)
GATE_SIDE = 256  # the long side at which motion is measured
CUT = 0.25  # mean luma change above which a frame is a new shot


class TemporalSmoother:
    """Smooths one video's masks in order; one per video (it remembers the last frame)."""

    def __init__(self, strength: float = DEFAULT_STRENGTH) -> None:
        if not 0 <= strength < 1:
            raise ValueError(f"temporal smoothing strength must be in [0, 1), got {strength}")
        self.strength = strength
        self._alpha: np.ndarray | None = None
        self._luma: np.ndarray | None = None

    def __call__(self, coarse: np.ndarray, rgb: np.ndarray) -> np.ndarray:
        """The smoothed mask for this frame (``coarse``: the model's ``H×W`` float32 mask)."""
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
