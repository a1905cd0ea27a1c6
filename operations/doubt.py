"""Doubt: how likely a result is wrong, measured from the segmenter's mask, so that a person
reviewing thousands of results looks at the doubtful ones first.

The signals are cheap (one pass over the mask reduced to ``SIDE`` px, about a millisecond) and
each says something a reviewer would check by eye:

``no-subject``
    nothing in the mask reaches ``NO_SUBJECT``: the output is the background alone.
``uncertain-mask``
    a large share of the mask is neither subject nor background. A model that recognises its
    subject answers near 0 or 1 everywhere but a thin rim; on a scene it was not trained for (an
    empty room, a product under the person model) it answers in greys.
``cut-by-frame``
    the subject runs along the top, left or right side of the frame: cropped, or a second
    subject half in the picture. The bottom side is not counted (portraits and standing
    subjects are cut there by design); the top counts double (a head cut off).
``tiny-subject`` / ``fills-frame``
    the subject covers almost none, or almost all, of the frame.
``several-parts``
    the subject is in three or more separate pieces of comparable size (speckles on a
    background, a body split in two).

Each signal gives a severity in [0, 1] that rises linearly between two thresholds, set from the
range the well-segmented sample photos fall in (see ``benchmarks/bench_doubt.py``); the score is
``1 - Π(1 - severity)``: 0 when nothing is off, near 1 when any one signal is sure. A flag is
named when its severity reaches ``FLAG_AT``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np

SIDE = 256  # the mask is judged at this long side: the segmenters' own resolution
NO_SUBJECT = 0.05  # no pixel above this: nothing found (the pipeline's own test)
FLAG_AT = 0.35  # a signal this severe is named in the flags
# (signal, value at which its severity starts to rise, value at which it is 1)
RAMPS = {
    "uncertain-mask": (0.2, 0.6),  # share of the mask's non-zero part that is 0.1 < α < 0.9
    "cut-by-frame": (0.3, 0.8),  # share of the worst side covered (top ×2; bottom ignored)
    "tiny-subject": (0.02, 0.005),  # share of the frame that is subject (falling)
    "fills-frame": (0.85, 0.97),
    "several-parts": (2, 5),  # pieces at least PART_SHARE of the largest
}
PART_SHARE = 0.05


@dataclass(frozen=True)
class Doubt:
    """A result's doubt score in [0, 1], the flags behind it, and the measured signals."""

    score: float
    flags: tuple[str, ...] = ()
    signals: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"doubt": self.score, "flags": list(self.flags), "signals": self.signals}


def _severity(name: str, value: float) -> float:
    start, full = RAMPS[name]
    return float(np.clip((value - start) / (full - start), 0.0, 1.0))


def measure(alpha: np.ndarray) -> Doubt:
    """Judge a segmenter's soft mask (``H×W`` ``float32`` in [0, 1], any size).

    Returns:
        The score, the flags (in order of severity) and the signals' values, rounded.
    """
    height, width = alpha.shape
    scale = min(1.0, SIDE / max(height, width))
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    # The mask is smooth (an enlarged low-resolution mask): bilinear reduction is enough.
    small = cv2.resize(alpha, size, interpolation=cv2.INTER_LINEAR) if scale < 1 else alpha
    peak = float(small.max(initial=0.0))
    subject = small > 0.5
    area = float(subject.mean())
    touched = small > 0.1
    unsure = float(((small < 0.9) & touched).sum() / max(1, touched.sum()))
    sides = {
        "top": subject[0].mean(),
        "bottom": subject[-1].mean(),
        "left": subject[:, 0].mean(),
        "right": subject[:, -1].mean(),
    }
    contact = max(2 * sides["top"], sides["left"], sides["right"])
    count, _, stats, _ = cv2.connectedComponentsWithStats(subject.astype(np.uint8), connectivity=8)
    areas = stats[1:, cv2.CC_STAT_AREA]
    parts = int((areas >= PART_SHARE * areas.max()).sum()) if count > 1 else 0
    signals = {
        "peak": peak,
        "area": area,
        "uncertain": unsure,
        "parts": parts,
        **{f"contact_{k}": float(v) for k, v in sides.items()},
    }
    if peak < NO_SUBJECT:
        severities = {"no-subject": 1.0}
    else:
        severities = {
            "uncertain-mask": _severity("uncertain-mask", unsure),
            "cut-by-frame": _severity("cut-by-frame", contact),
            "tiny-subject": _severity("tiny-subject", area),
            "fills-frame": _severity("fills-frame", area),
            "several-parts": _severity("several-parts", parts),
        }
    score = 1.0 - float(np.prod([1.0 - s for s in severities.values()]))
    ranked = sorted(severities.items(), key=lambda item: -item[1])
    flags = tuple(name for name, severity in ranked if severity >= FLAG_AT)
    rounded = {k: round(float(v), 4) for k, v in signals.items()}
    return Doubt(round(score, 4), flags, rounded)
