"""The doubt score: each signal on masks with a known answer, and the real model's ranking."""

from __future__ import annotations

import numpy as np
import pytest

from operations.doubt import FLAG_AT, measure


def _disc(height: int, width: int, cy: float, cx: float, radius: float) -> np.ndarray:
    y, x = np.mgrid[0:height, 0:width]
    distance = np.hypot(y - cy, x - cx)
    return np.clip(radius - distance + 0.5, 0, 1).astype(np.float32)  # a one-pixel soft rim


def test_a_clean_centred_subject_is_not_doubted() -> None:
    doubt = measure(_disc(300, 400, 150, 200, 90))
    assert doubt.score == 0.0 and doubt.flags == ()
    assert doubt.signals["parts"] == 1
    assert 0.15 < doubt.signals["area"] < 0.25  # π·90² / (300·400) = 0.21


def test_an_empty_mask_is_no_subject() -> None:
    doubt = measure(np.zeros((120, 160), np.float32))
    assert doubt.score == 1.0 and doubt.flags == ("no-subject",)


def test_a_subject_cut_by_a_side_is_flagged_but_the_bottom_is_not() -> None:
    cut = measure(_disc(300, 400, 150, 0, 140))  # half a disc on the left side
    assert "cut-by-frame" in cut.flags and cut.score > 0.9
    standing = np.zeros((300, 400), np.float32)
    standing[120:, 150:250] = 1.0  # a torso running out of the bottom, as in a portrait
    assert measure(standing).flags == ()
    top = np.zeros((300, 400), np.float32)
    top[:150, 120:280] = 1.0  # a head cut off at the top: 40 % of the side, counted double
    assert "cut-by-frame" in measure(top).flags


def test_a_grey_uncertain_mask_is_flagged() -> None:
    rng = np.random.default_rng(0)
    grey = (0.3 + 0.4 * rng.random((200, 200))).astype(np.float32)
    grey[:, :20] = 0  # and a clean side, so it is no "no subject" case
    doubt = measure(grey)
    assert doubt.flags[0] == "uncertain-mask"
    assert doubt.signals["uncertain"] > 0.9


def test_tiny_full_and_scattered_subjects() -> None:
    assert measure(_disc(400, 400, 200, 200, 10)).flags == ("tiny-subject",)
    full = np.ones((200, 300), np.float32)
    full[:5, :5] = 0
    assert "fills-frame" in measure(full).flags
    blobs = sum(
        _disc(400, 400, cy, cx, 30)
        for cy, cx in ((90, 90), (90, 300), (300, 90), (300, 300), (200, 200))
    )
    doubt = measure(np.minimum(blobs, 1.0))
    assert doubt.signals["parts"] == 5 and doubt.flags == ("several-parts",)


@pytest.mark.parametrize("scale", [1, 4])
def test_the_score_does_not_depend_on_the_resolution(scale: int) -> None:
    base = measure(_disc(150, 200, 75, 0, 70))
    big = measure(_disc(150 * scale, 200 * scale, 75 * scale, 0, 70 * scale))
    assert big.flags == base.flags
    assert big.score == pytest.approx(base.score, abs=0.05)


def test_two_problems_at_once_are_both_flagged() -> None:
    rng = np.random.default_rng(1)
    mask = _disc(300, 300, 150, 0, 140)
    mask[mask > 0] = (0.2 + 0.6 * rng.random(int((mask > 0).sum()))).astype(np.float32)
    mask[mask == 0] = 0
    doubt = measure(np.maximum(mask, _disc(300, 300, 150, 0, 100)))
    assert set(doubt.flags) >= {"cut-by-frame", "uncertain-mask"}
    assert doubt.score >= FLAG_AT
