"""The real MediaPipe model (shipped inside the mediapipe wheel) on the two real sample photos."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from operations.media.decode import decode
from operations.segmenters.base import SegmenterError
from operations.segmenters.mediapipe import MediaPipeSegmenter
from tests.helpers import SAMPLES

# (photo, face box as (rows, cols)): the face is subject, the top corners are background.
CASES = [
    ("astronaut.jpg", (slice(95, 145), slice(195, 245))),
    ("grace_hopper.jpg", (slice(160, 280), slice(210, 310))),
]


@pytest.fixture(scope="module", params=["general", "landscape"])
def segmenter(request: pytest.FixtureRequest):
    with MediaPipeSegmenter(request.param) as seg:
        yield seg


@pytest.mark.parametrize(("photo", "face"), CASES)
def test_face_is_subject_and_corners_are_background(segmenter, photo, face) -> None:
    rgb = decode(SAMPLES / photo).rgb
    alpha = segmenter.predict(rgb)
    assert alpha.dtype == np.float32 and alpha.shape == rgb.shape[:2]
    assert alpha.min() >= 0.0 and alpha.max() <= 1.0
    assert alpha[face].mean() > 0.95
    assert alpha[:40, :40].mean() < 0.05 and alpha[:40, -40:].mean() < 0.05
    # Soft, not a hard threshold: the edge has intermediate values.
    assert ((alpha > 0.05) & (alpha < 0.95)).sum() > 0.002 * alpha.size


def test_predict_is_deterministic_and_safe_from_threads(segmenter) -> None:
    rgb = decode(SAMPLES / "astronaut.jpg").rgb
    expected = segmenter(rgb)
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(segmenter, [rgb] * 8))
    for result in results:
        np.testing.assert_array_equal(result, expected)


def test_any_size_and_a_blank_image(segmenter) -> None:
    rgb = decode(SAMPLES / "grace_hopper.jpg").rgb[::3, ::2]  # odd size, another aspect
    assert segmenter.predict(np.ascontiguousarray(rgb)).shape == rgb.shape[:2]
    blank = np.full((120, 90, 3), 128, np.uint8)
    assert segmenter.predict(blank).max() < 0.05  # nobody there


def test_unknown_model_is_a_clear_error() -> None:
    with pytest.raises(SegmenterError, match="general"):
        MediaPipeSegmenter("portrait")


@pytest.mark.parametrize("photo", ["astronaut", "grace_hopper"])
def test_the_same_masks_as_mediapipe_0_10_21(segmenter, photo: str) -> None:
    """The Tasks API on the carried model gives the masks the legacy solutions API of
    ``mediapipe==0.10.21`` gave (saved, 16-bit, in ``tests/data/mediapipe-0.10.21/``), at the
    model's own resolution. Tolerance 1e-3: the same weights run by the same TFLite kernels; what
    differs is only float rounding between builds (measured: at most 1.3e-5 between 0.10.21 and
    1.2.2), well under the 16-bit file's own step (1.5e-5) times a hundred."""
    from PIL import Image

    from operations.media.resize import shrink

    model = "general" if segmenter.input_size == (256, 256) else "landscape"
    reference = SAMPLES.parent / "tests" / "data" / "mediapipe-0.10.21" / f"{photo}.{model}.png"
    expected = np.asarray(Image.open(reference), dtype=np.float32) / 65535.0
    small = shrink(decode(SAMPLES / f"{photo}.jpg").rgb, *segmenter.input_size)
    mask = np.clip(segmenter._segment(small), 0.0, 1.0)
    assert mask.shape == expected.shape
    assert np.abs(mask - expected).max() < 1e-3


def test_the_model_file_is_resolved_like_every_models(tmp_path, monkeypatch) -> None:
    """The package carries the model (offline out of the box); a copy in the tool's cache or a
    file given with --weights comes first; a missing one names what to do."""
    from operations.segmenters.mediapipe import CARRIED, weights_spec

    spec = weights_spec("general")
    assert (CARRIED / spec.filename).is_file() and spec.sha256_prefix is not None
    monkeypatch.setenv("BACKGROUNDSWAP_HOME", str(tmp_path))
    with MediaPipeSegmenter("general", offline=True) as seg:
        assert seg.path == CARRIED / spec.filename
    with pytest.raises(SegmenterError, match=r"^weights .*no such file"):
        MediaPipeSegmenter("general", weights=tmp_path / "missing.tflite")
    (tmp_path / "broken.tflite").write_bytes(b"not a model")
    with pytest.raises(SegmenterError, match="could not start MediaPipe"):
        MediaPipeSegmenter("general", weights=tmp_path / "broken.tflite")


def test_a_segmenter_never_closed_exits_quietly() -> None:
    """A library caller that never closes it: no traceback at interpreter exit (MediaPipe's own
    finaliser would run after the threads it needs are gone)."""
    import subprocess
    import sys

    code = (
        "from operations.segmenters.mediapipe import MediaPipeSegmenter\n"
        "segmenter = MediaPipeSegmenter()\n"
        "print('made')\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=SAMPLES.parent,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0 and done.stdout.strip() == "made", done.stderr
    assert "Traceback" not in done.stderr and "Exception ignored" not in done.stderr, done.stderr
