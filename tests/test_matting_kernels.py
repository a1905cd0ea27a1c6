"""Edge refinement's compiled loops: the band kernel against a dense NumPy/OpenCV reference, and
compilation where numba cannot cache."""

from __future__ import annotations

import cv2
import numpy as np


def test_edge_kernel_matches_a_dense_reference() -> None:
    """The compiled band loop against the same arithmetic done densely with OpenCV and NumPy:
    each band pixel decided on its own (solid, soft or background), nothing outside it touched."""
    from operations.stages.matting import UNSURE_HIGH, UNSURE_LOW, _edge

    rng = np.random.default_rng(7)
    height, width, h, w = 61, 83, 13, 17
    rgb = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
    maps = rng.uniform(-0.5, 1.5, (h, w, 11)).astype(np.float32)
    maps[..., 4] = rng.random((h, w)) < 0.2  # interior: 0 or 1
    maps[..., 5:] = rng.random((h, w, 6))  # colour means in [0, 1]
    band = rng.random((h, w)) < 0.4
    before = (rng.random((height, width)) < 0.5).astype(np.uint8)  # what the sure blocks said
    solid = before.copy()
    index, alpha, colours = _edge(rgb, maps, band, solid)

    dense = cv2.resize(maps, (width, height), interpolation=cv2.INTER_LINEAR)
    in_band = cv2.resize(band.astype(np.uint8), (width, height), interpolation=cv2.INTER_NEAREST)
    pixels = rgb.reshape(-1, 3) / 255.0
    at = dense.reshape(-1, 11)
    value = np.maximum((at[:, :3] * pixels).sum(1) + at[:, 3], at[:, 4])
    # Pixels within rounding of the thresholds may go either way: not judged.
    clear = (np.abs(value - UNSURE_LOW) > 1e-4) & (np.abs(value - UNSURE_HIGH) > 1e-4)
    flat_band = in_band.reshape(-1) == 1
    soft = flat_band & (value > UNSURE_LOW) & (value < UNSURE_HIGH)
    assert set(index[clear[index]]) == set(np.flatnonzero(soft & clear))
    assert np.all(np.diff(index) > 0)  # raster order
    expected_solid = np.where(flat_band, value >= UNSURE_HIGH, before.reshape(-1) == 1)
    np.testing.assert_array_equal(solid.reshape(-1)[clear], expected_solid[clear])
    np.testing.assert_allclose(alpha, value[index], atol=1e-4)
    assert soft.any() and (flat_band & (value >= UNSURE_HIGH)).any()
    assert (flat_band & (value <= UNSURE_LOW)).any()
    a = alpha[:, None].astype(np.float64)
    mean_f, mean_b = at[index, 5:8], at[index, 8:11]
    here = pixels[index]
    fused = np.clip((mean_f + a * (here - a * mean_f - (1 - a) * mean_b)) * 255, 0, 255)
    np.testing.assert_allclose(colours, fused, atol=0.05)


def test_kernels_compile_without_a_cache_folder() -> None:
    # Code numba cannot cache (here: no source file, as with a read-only install and no home
    # folder) is still compiled, just not saved.
    from operations.stages.matting_kernels import _compiled

    namespace: dict = {}
    exec(compile("def double(x):\n    return 2 * x\n", "<no file>", "exec"), namespace)
    assert _compiled(nogil=True)(namespace["double"])(21) == 42
