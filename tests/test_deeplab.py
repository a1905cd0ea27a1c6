"""DeepLabv3: loaded through torch.hub's cache path from random weights in the real file format;
its class maths on controlled logits; batches; the CLI end to end."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest

from operations.media.decode import decode
from operations.segmenters.base import SegmenterError
from tests.helpers import BACKGROUND, SAMPLES, cli

torch = pytest.importorskip("torch", reason="the torch extra is not installed")


class KnownLogits(torch.nn.Module):
    """Stands in for the network: 'person' wins on the left half, 'dog' on the right half of the
    top rows, background below."""

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        _, _, height, width = x.shape
        logits = torch.zeros(1, 21, height, width)
        logits[0, 0, height // 2 :, :] = 10.0  # __background__
        logits[0, 15, : height // 2, : width // 2] = 10.0  # person
        logits[0, 12, : height // 2, width // 2 :] = 10.0  # dog
        return {"out": logits}


def _deeplab(**settings):
    from operations.segmenters.deeplab import DeepLabSegmenter

    settings.setdefault("device", "cpu")
    return DeepLabSegmenter("mobilenet_v3_large", model=KnownLogits(), **settings)


def test_deeplab_class_selection_sums_the_chosen_probabilities() -> None:
    rgb = np.zeros((100, 160, 3), np.uint8)
    people = _deeplab(classes=["person"]).predict(rgb)
    assert people.shape == (100, 160) and people.dtype == np.float32
    assert people[10, 10] > 0.99 and people[10, 150] < 0.01 and people[90, 10] < 0.01
    both = _deeplab(classes=["person", "dog"]).predict(rgb)
    assert both[10, 10] > 0.99 and both[10, 150] > 0.99 and both[90, 80] < 0.01
    everything = _deeplab().predict(rgb)  # default: every non-background class
    # The 18 other classes add their small probabilities (logit 0 against 10) too.
    np.testing.assert_allclose(everything, both, atol=1e-3)
    assert (everything >= both).all()


def test_deeplab_unknown_class_lists_the_valid_names() -> None:
    with pytest.raises(SegmenterError, match=r"'unicorn'.*person.*tvmonitor"):
        _deeplab(classes=["unicorn"])


def test_deeplab_loads_random_weights_from_the_torch_hub_cache(torch_home: Path) -> None:
    from operations.segmenters.deeplab import DeepLabSegmenter

    segmenter = DeepLabSegmenter("mobilenet_v3_large", offline=True, device="cpu")
    rgb = decode(SAMPLES / "astronaut.jpg").rgb
    alpha = segmenter.predict(rgb)
    assert alpha.shape == rgb.shape[:2] and alpha.min() >= 0 and alpha.max() <= 1
    # The network saw the 520 px short side, normalised as torchvision's transform does it.
    tensor = segmenter._tensor(rgb)
    assert tuple(tensor.shape) == (1, 3, 520, 520)
    assert abs(float(tensor.mean())) < 3


def test_deeplab_missing_weights_offline_is_a_clear_fast_error(tmp_path, monkeypatch) -> None:
    from operations.segmenters.deeplab import DeepLabSegmenter

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "empty"))
    start = time.monotonic()
    with pytest.raises(SegmenterError) as info:
        DeepLabSegmenter("resnet101", offline=True)
    message = str(info.value)
    assert "deeplabv3_resnet101_coco-586e9e4e.pth" in message
    assert str(tmp_path / "empty") in message
    assert "point weights at" in message and "TORCH_HOME" in message and "download" in message
    assert time.monotonic() - start < 30


def test_deeplab_refuses_a_missing_gpu() -> None:
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    with pytest.raises(SegmenterError, match="no CUDA GPU"):
        _deeplab(device="cuda")


def test_cli_mode_1_end_to_end(torch_home: Path, photo_dir: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "out"
    code, err = cli(
        capsys,
        "-i",
        photo_dir,
        "-o",
        out,
        "-b",
        BACKGROUND,
        "--mode",
        "1",
        "--deeplab-model",
        "mobilenet_v3_large",
        "--classes",
        "person,dog",
        "--offline",
    )
    assert code == 0, err
    assert sorted(p.name for p in out.iterdir()) == ["astronaut.png", "grace_hopper.png"]
    args = ["-b", BACKGROUND, "--mode", "deeplab", "--deeplab-model", "mobilenet_v3_large"]
    code, err = cli(capsys, "-i", photo_dir, "-o", tmp_path / "o2", *args, "--classes", "unicorn")
    assert code == 2 and "unknown class 'unicorn'" in err and "person" in err


def test_deeplab_batch_equals_one_by_one(torch_home: Path) -> None:
    from operations.segmenters.deeplab import DeepLabSegmenter

    segmenter = DeepLabSegmenter("mobilenet_v3_large", offline=True, device="cpu")
    rgb = decode(SAMPLES / "astronaut.jpg").rgb
    images = [rgb, np.ascontiguousarray(rgb[:, ::-1]), np.ascontiguousarray(rgb[:400])]
    batched = segmenter.predict_batch(images)
    for image, result in zip(images, batched, strict=True):
        np.testing.assert_allclose(result, segmenter.predict(image), atol=1e-4)
