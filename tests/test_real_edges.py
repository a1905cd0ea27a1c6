"""Edges on a REAL model's mask: the genuine U²-Netp weights (MIT; the ``real_u2netp`` fixture
of ``conftest.py``).

Known truth: a real photo's cut-out (the model's alpha on it, and the subject's own colours
carried outward into its soft pixels) composited over a flat beige background; the model then
segments that composite, and the default edge stage is judged against the truth."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from operations.media.decode import decode
from operations.segmenters import create_segmenter
from operations.segmenters.base import SegmenterSettings
from operations.stages.matting import FINE_HIGH, FINE_LOW, refine
from tests.helpers import SAMPLES, needs


def _known_truth(segmenter) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(composite photo, true alpha, true subject colours) from the astronaut's real cut-out."""
    rgb = decode(SAMPLES / "astronaut.jpg").rgb
    truth = segmenter(rgb)
    truth[truth <= FINE_LOW], truth[truth >= FINE_HIGH] = 0.0, 1.0
    colours = cv2.inpaint(rgb, (truth < FINE_HIGH).astype(np.uint8), 5, cv2.INPAINT_TELEA)
    colours = colours.astype(np.float32)
    beige = np.float32([222, 204, 170])
    picture = truth[..., None] * colours + (1 - truth[..., None]) * beige
    return np.clip(picture + 0.5, 0, 255).astype(np.uint8), truth, colours


@needs("onnxruntime")
def test_the_default_edge_on_a_real_mask_beats_the_models_own(real_u2netp: Path) -> None:
    settings = SegmenterSettings(offline=True, own=(("salient_model", "u2netp"),))
    with create_segmenter("salient", settings) as segmenter:
        assert segmenter.path == real_u2netp and segmenter.fine_mask
        picture, truth, true_colours = _known_truth(segmenter)
        model = segmenter(picture)
    soft = (model > FINE_LOW) & (model < FINE_HIGH)
    assert soft.sum() > 2000  # a real edge band to judge: hair, the suit's outline
    new = np.float32([40, 90, 200])
    right = truth[..., None] * true_colours + (1 - truth[..., None]) * new
    region = (
        cv2.dilate(
            ((truth > FINE_LOW) & (truth < FINE_HIGH)).astype(np.uint8), np.ones((21, 21), np.uint8)
        )
        > 0
    )

    def judged(method: str) -> tuple[float, float, float]:
        matte = refine(picture, model, method, mask_side=segmenter.mask_side, fine=True)
        alpha, colours = matte.alpha, matte.foreground.astype(np.float32)
        made = alpha[..., None] * colours + (1 - alpha[..., None]) * new
        error = float(np.abs(made - right)[region].mean())
        colour = float(np.abs(colours - true_colours)[soft & (model > 0.2)].mean())
        grown = float(((model <= FINE_LOW) & (alpha > 0.05)).sum() / soft.sum())
        return error, colour, grown

    off, fast = judged("off"), judged("fast")
    assert fast[2] <= 0.005 and off[2] == 0.0  # the subject is never grown
    # The old background (beige) is taken out of the soft pixels' colours…
    assert fast[1] < 0.85 * off[1], (fast, off)
    # …so the composite over a new background is nearer the truth than the model's own mask.
    assert fast[0] < off[0], (fast, off)
    matte = refine(picture, model, "fast", mask_side=segmenter.mask_side, fine=True)
    kept = soft & (matte.alpha > 0)
    np.testing.assert_allclose(matte.alpha[kept], model[kept], atol=1e-6)  # the model's alpha
