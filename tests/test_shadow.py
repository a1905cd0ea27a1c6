"""Shadow: cast on the background beside and below the subject, never on the subject."""

from __future__ import annotations

import numpy as np

from operations.stages.composite import blend
from operations.stages.shadow import ShadowSettings, cast_shadow


def test_the_shadow_falls_right_and_down_and_never_on_the_subject() -> None:
    alpha = np.zeros((200, 200), np.float32)
    alpha[50:120, 60:120] = 1.0
    background = np.full((200, 200, 3), 220, np.uint8)
    shaded = cast_shadow(background, alpha, ShadowSettings(offset=(5, 5), softness=1, opacity=0.6))
    assert shaded[125, 125, 0] < 150  # beyond the subject's lower right corner: in shadow
    assert shaded[45, 55, 0] == 220  # above and left of it: lit
    assert shaded.max() <= 220  # a shadow only darkens
    subject = np.full((200, 200, 3), 40, np.uint8)
    out = blend(subject, shaded, alpha)
    assert (out[alpha == 1] == 40).all()  # alpha-1 pixels show the subject alone
    lighter = cast_shadow(background, alpha, ShadowSettings(offset=(5, 5), softness=1, opacity=0.3))
    assert lighter[125, 125, 0] > shaded[125, 125, 0]


def test_softness_spreads_the_shadow() -> None:
    alpha = np.zeros((200, 200), np.float32)
    alpha[50:120, 60:120] = 1.0
    background = np.full((200, 200, 3), 220, np.uint8)
    hard = cast_shadow(background, alpha, ShadowSettings(offset=(0, 0), softness=0.5, opacity=0.5))
    soft = cast_shadow(background, alpha, ShadowSettings(offset=(0, 0), softness=5, opacity=0.5))
    assert soft[50:120, 125, 0].mean() < hard[50:120, 125, 0].mean()  # reaches further out
