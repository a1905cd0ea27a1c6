"""One contract every registered backend meets, checked on each through the same loading code
real weights take (random weights in the real file formats; MediaPipe's own model files).

A new backend is a new module and a registry line; this file then tests it too, once it says
here how its test weights are made (``_prepare``) — a backend missing there fails, not skips.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from operations.models import models_home
from operations.options import Options, OptionsError
from operations.segmenters import backends, create_segmenter
from operations.segmenters.base import Segmenter, SegmenterError
from tests.helpers import BACKGROUND, cli

NAMES = sorted(backends())


def _salient_graph() -> None:
    from tests.models import write_graph

    pytest.importorskip("onnx", reason="onnx (one of the tests' tools) is not installed")
    default = Options().salient_model
    side = 1024 if default.startswith(("isnet", "birefnet")) else 320
    write_graph(models_home() / f"{default}.onnx", (side, side))


def _prepare(name: str, request: pytest.FixtureRequest) -> dict[str, object]:
    """Test weights where the backend looks for them; returns settings that differ from the
    declared defaults (only where the default is a model too large for a test)."""
    backend = backends()[name]
    missing = [m for m in backend.requires if importlib.util.find_spec(m) is None]
    if missing:
        pytest.skip(f"the {backend.extra} extra is not installed ({', '.join(missing)})")
    if name == "mediapipe":
        return {}
    if name == "deeplab":
        request.getfixturevalue("torch_home")
        return {"deeplab_model": "mobilenet_v3_large"}  # the default ResNet-101: 230 MB
    if name == "yolo":
        request.getfixturevalue("yolo_weights")
        return {}
    if name in ("salient", "auto"):
        if importlib.util.find_spec("onnxruntime") is None:
            pytest.skip("the salient extra is not installed")
        _salient_graph()
        return {}
    raise AssertionError(f"say in _prepare how the {name} backend's test weights are made")


@pytest.fixture(params=NAMES)
def built(request: pytest.FixtureRequest):
    name = request.param
    settings = _prepare(name, request)
    options = Options(mode=name, offline=True, **settings).validated(batch=False)
    segmenter = create_segmenter(name, options.recipe().segmenter)
    yield name, segmenter
    segmenter.close()


def _photos() -> list[np.ndarray]:
    rng = np.random.default_rng(7)
    first = rng.integers(0, 256, (48, 72, 3), dtype=np.uint8)
    first[12:40, 24:50] = (200, 150, 120)  # a block of one colour: something to find
    second = rng.integers(0, 256, (61, 33, 3), dtype=np.uint8)
    return [first, second]


def test_predict_gives_an_alpha_at_the_photos_size(built) -> None:
    name, segmenter = built
    assert isinstance(segmenter, Segmenter) and segmenter.name == name
    for rgb in _photos():
        alpha = segmenter.predict(rgb)
        assert alpha.shape == rgb.shape[:2], name
        assert alpha.dtype == np.float32, name
        assert np.isfinite(alpha).all() and alpha.min() >= 0.0 and alpha.max() <= 1.0, name


def test_predict_batch_is_predict_per_photo(built) -> None:
    name, segmenter = built
    photos = _photos()
    batch = segmenter.predict_batch(photos)
    assert len(batch) == len(photos)
    for one, rgb in zip(batch, photos, strict=True):
        np.testing.assert_allclose(one, segmenter.predict(rgb), atol=2e-3, err_msg=name)


def test_close_twice_is_harmless(built) -> None:
    _, segmenter = built
    segmenter.close()
    segmenter.close()


@pytest.mark.parametrize("name", NAMES)
def test_a_device_it_cannot_use_is_refused_before_anything_loads(name: str) -> None:
    backend = backends()[name]
    for device in ("cpu", "cuda", "mps"):
        options = Options(mode=name, device=device)
        if device in backend.devices:
            continue
        with pytest.raises(OptionsError, match="--device"):
            options.validated(batch=False)


@pytest.mark.parametrize("name", NAMES)
def test_cuda_without_a_gpu_is_a_clear_error(name: str, request: pytest.FixtureRequest) -> None:
    if "cuda" not in backends()[name].devices:
        pytest.skip(f"{name} runs on the CPU only (refused above)")
    torch = pytest.importorskip("torch")
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    settings = _prepare(name, request)
    options = Options(mode=name, offline=True, device="cuda", **settings).validated(batch=False)
    with pytest.raises(SegmenterError, match=r"CUDA|cuda|GPU"):
        create_segmenter(name, options.recipe().segmenter).close()


@pytest.mark.parametrize("name", NAMES)
def test_the_command_line_runs_each_backend_end_to_end(
    name: str, request: pytest.FixtureRequest, photo_dir: Path, tmp_path: Path, capsys
) -> None:
    settings = _prepare(name, request)
    flags = [f"--{k.replace('_', '-')}={v}" for k, v in settings.items()]
    number = {"mediapipe": "0", "deeplab": "1", "yolo": "2"}.get(name, name)
    out = tmp_path / "out"
    code, err = cli(capsys, "-i", photo_dir, "-o", out, "-b", BACKGROUND, "--mode", number, *flags)
    assert code == 0, err
    assert sorted(p.name for p in out.iterdir()) == ["astronaut.png", "grace_hopper.png"]
