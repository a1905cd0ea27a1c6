"""Edge refinement's compiled loops: the band kernel against a dense NumPy/OpenCV reference, and
compilation where numba cannot cache."""

from __future__ import annotations

import cv2
import numpy as np


def test_edge_kernel_matches_a_dense_reference() -> None:
    """The compiled band loop against the same arithmetic done densely with OpenCV and NumPy."""
    from operations.matting import _edge

    rng = np.random.default_rng(7)
    height, width, h, w = 61, 83, 13, 17
    rgb = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
    maps = rng.uniform(-0.5, 1.5, (h, w, 11)).astype(np.float32)
    maps[..., 4] = rng.random((h, w)) < 0.2  # interior: 0 or 1
    maps[..., 5:] = rng.random((h, w, 6))  # colour means in [0, 1]
    band = rng.random((h, w)) < 0.4
    index, alpha, colours = _edge(rgb, maps, band)

    dense = cv2.resize(maps, (width, height), interpolation=cv2.INTER_LINEAR)
    band_full = cv2.resize(band.astype(np.uint8), (width, height), interpolation=cv2.INTER_NEAREST)
    np.testing.assert_array_equal(index, np.flatnonzero(band_full))
    at = dense.reshape(-1, 11)[index]
    pixels = rgb.reshape(-1, 3)[index] / 255.0
    expected = np.clip(np.maximum((at[:, :3] * pixels).sum(1) + at[:, 3], at[:, 4]), 0, 1)
    np.testing.assert_allclose(alpha, expected, atol=1e-4)
    a = alpha[:, None].astype(np.float64)
    mean_f, mean_b = at[:, 5:8], at[:, 8:11]
    fused = np.clip((mean_f + a * (pixels - a * mean_f - (1 - a) * mean_b)) * 255, 0, 255)
    mixed = (a > 1 / 255) & (a < 254 / 255)
    expected_colours = np.where(mixed, fused, pixels * 255)
    # A pixel whose alpha lies within rounding of the thresholds may go either way.
    ok = (np.abs(a - 1 / 255) > 1e-4) & (np.abs(a - 254 / 255) > 1e-4)
    ok = ok[:, 0]
    assert mixed.any() and (~mixed).any()
    np.testing.assert_allclose(colours[ok], expected_colours[ok], atol=0.05)


def test_kernels_compile_without_a_cache_folder() -> None:
    # Code numba cannot cache (here: no source file, as with a read-only install and no home
    # folder) is still compiled, just not saved.
    from operations.matting_kernels import _compiled

    namespace: dict = {}
    exec(compile("def double(x):\n    return 2 * x\n", "<no file>", "exec"), namespace)
    assert _compiled(nogil=True)(namespace["double"])(21) == 42
