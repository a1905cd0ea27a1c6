"""DeepLabv3 and YOLOv8-seg, loaded through the real cache paths from random weights in the real
file formats; their maths on controlled outputs; the bounded download on a loopback server."""

from __future__ import annotations

import hashlib
import http.server
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import run
from operations.foreground import SegmenterError
from operations.images import ImageError, decode
from operations.models import WeightsError, WeightsSpec, download, resolve
from tests.helpers import BACKGROUND, SAMPLES, DiscSegmenter, cli

# --- DeepLabv3 -------------------------------------------------------------------------------


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
    assert "--weights" in message and "TORCH_HOME" in message and "download" in message
    assert time.monotonic() - start < 30


def test_deeplab_refuses_a_missing_gpu() -> None:
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    with pytest.raises(SegmenterError, match="no CUDA GPU"):
        _deeplab(device="cuda")


def test_cli_mode_1_end_to_end(torch_home: Path, photo_dir: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "out"
    code, err = cli(capsys, "-i", photo_dir, "-o", out, "-b", BACKGROUND, "--mode", "1",
                    "--deeplab-model", "mobilenet_v3_large", "--classes", "person,dog",
                    "--offline")  # fmt: skip
    assert code == 0, err
    assert sorted(p.name for p in out.iterdir()) == ["astronaut.png", "grace_hopper.png"]
    args = ["-b", BACKGROUND, "--mode", "deeplab", "--deeplab-model", "mobilenet_v3_large"]
    code, err = cli(capsys, "-i", photo_dir, "-o", tmp_path / "o2", *args, "--classes", "unicorn")
    assert code == 2 and "unknown class 'unicorn'" in err and "person" in err


# --- YOLOv8-seg ------------------------------------------------------------------------------


def test_soft_union_of_instances() -> None:
    from operations.segmenters.yolo import soft_union

    masks = np.zeros((2, 4, 4), np.float32)
    masks[0, :2] = 0.9
    masks[1, 1:3] = 0.6
    union = soft_union(masks)
    assert union[0, 0] == pytest.approx(0.9) and union[2, 0] == pytest.approx(0.6)
    assert union[1, 0] == pytest.approx(0.9) and union[3, 0] == 0.0
    assert soft_union(np.zeros((0, 3, 5), np.float32)).shape == (3, 5)


def test_yolo_masks_are_soft_unletterboxed_and_at_the_photo_size(yolo_weights: Path) -> None:
    from operations.segmenters.yolo import _soft_predictor_class

    predictor = _soft_predictor_class().__new__(_soft_predictor_class())
    predictor.model = type("M", (), {"names": {0: "person", 1: "dog"}})()
    # A 640×480 photo letterboxed to 640×480 (no padding needed) with 4×4 px prototypes: two
    # instances, each one prototype channel, each in its own box.
    proto = torch.zeros(2, 120, 160)
    proto[0] = 4.0  # instance 0: logit 4 → 0.982 inside its box
    proto[1] = 0.0  # instance 1: logit 0 → 0.5 inside its box (soft, not thresholded away)
    pred = torch.tensor([
        [0, 0, 320, 240, 0.9, 0, 1.0, 0.0],  # x1 y1 x2 y2 conf cls, then 2 coefficients
        [320, 240, 640, 480, 0.8, 1, 0.0, 1.0],
    ])  # fmt: skip
    image = torch.zeros(1, 3, 480, 640)
    photo = np.zeros((960, 1280, 3), np.uint8)  # the original is twice the network's input
    result = predictor.construct_result(pred.clone(), image, photo, "x.jpg", proto)
    masks = result.masks.data.numpy()
    assert masks.shape == (2, 960, 1280)
    assert masks[0, 100, 100] == pytest.approx(0.982, abs=0.01)
    assert masks[1, 900, 1200] == pytest.approx(0.5, abs=0.01)  # soft values survive
    assert masks[0, 900, 1200] == 0.0 and masks[1, 100, 100] == 0.0  # cropped to their boxes
    np.testing.assert_allclose(result.boxes.xyxy[0].numpy(), [0, 0, 640, 480], atol=1)


def test_yolo_loads_a_real_format_checkpoint_and_leaves_pillow_alone(yolo_weights, tmp_path):
    from operations.segmenters.yolo import YoloSegmenter

    segmenter = YoloSegmenter("n", offline=True, device="cpu", confidence=0.01)
    assert segmenter.names[0] == "person" and len(segmenter.names) == 80
    rgb = decode(SAMPLES / "grace_hopper.jpg").rgb
    masks = segmenter.instance_masks(rgb)
    assert masks.ndim == 3 and masks.shape[1:] == rgb.shape[:2] and masks.shape[0] > 0
    alpha = segmenter.predict(rgb)
    assert alpha.shape == rgb.shape[:2] and alpha.min() >= 0 and alpha.max() <= 1
    # Importing Ultralytics must not leave its pip-installing PIL.Image.open wrapper behind.
    assert Image.open.__module__ == "PIL.Image"
    text = tmp_path / "notes.jpg"
    text.write_text("not an image")
    with pytest.raises(ImageError, match="not an image"):
        decode(text)
    with pytest.raises(SegmenterError, match=r"unknown class 'unicorn'.*person"):
        YoloSegmenter("n", offline=True, device="cpu", classes=["unicorn"])
    with pytest.raises(SegmenterError, match="choose n, s, m, l, x"):
        YoloSegmenter(str(tmp_path / "nope.pt"), device="cpu")


def test_cli_mode_2_end_to_end(yolo_weights: Path, photo_dir: Path, tmp_path: Path, capsys):
    out = tmp_path / "out"
    code, err = cli(capsys, "-i", photo_dir, "-o", out, "--blur", "--mode", "2",
                    "--yolo-conf", "0.01", "--classes", "person,dog", "--summary",
                    tmp_path / "s.json")  # fmt: skip
    assert code == 0, err
    assert sorted(p.name for p in out.iterdir()) == ["astronaut.png", "grace_hopper.png"]
    code, err = cli(capsys, "-i", photo_dir, "-o", tmp_path / "o2", "--blur", "--mode", "yolo",
                    "--yolo-model", str(yolo_weights), "--overwrite")  # fmt: skip
    assert code == 0, err


# --- downloads -------------------------------------------------------------------------------


@pytest.fixture
def server() -> Iterator[str]:
    """A loopback HTTP server: /weights.pt serves bytes, anything else is a 404."""
    payload = b"weights " * 4096

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path != "/weights.pt":
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args: object) -> None:
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def test_download_verifies_the_published_checksum(server: str, tmp_path: Path) -> None:
    good = hashlib.sha256(b"weights " * 4096).hexdigest()[:8]
    path = download(f"{server}/weights.pt", tmp_path / "a" / f"w-{good}.pt", sha256_prefix=good)
    assert path.read_bytes() == b"weights " * 4096
    with pytest.raises(WeightsError, match="checksum mismatch"):
        download(f"{server}/weights.pt", tmp_path / "b" / "w.pt", sha256_prefix="00000000")
    assert not any((tmp_path / "b").iterdir())  # nothing left behind, not even a temporary file
    with pytest.raises(WeightsError, match="HTTP 404"):
        download(f"{server}/missing.pt", tmp_path / "c.pt")


def test_download_from_a_server_that_never_answers_fails_in_bounded_time(tmp_path: Path) -> None:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)  # accepts connections (the kernel does), never answers
    url = f"http://127.0.0.1:{listener.getsockname()[1]}/weights.pt"
    start = time.monotonic()
    try:
        with pytest.raises(WeightsError, match=r"no answer .* within 1 s"):
            download(url, tmp_path / "w.pt", timeout=1.0)
    finally:
        listener.close()
    assert time.monotonic() - start < 10
    assert not (tmp_path / "w.pt").exists()


def test_resolve_order_explicit_cache_download(server: str, tmp_path: Path) -> None:
    spec = WeightsSpec("thing", f"{server}/weights.pt", tmp_path / "cache", "--weights", "X_HOME")
    explicit = tmp_path / "mine.pt"
    explicit.write_bytes(b"mine")
    assert resolve(spec, explicit) == explicit
    with pytest.raises(WeightsError, match=r"not cached .* downloads are off"):
        resolve(spec, offline=True)
    assert resolve(spec) == spec.cached and spec.cached.is_file()  # downloaded into the cache
    assert resolve(spec, offline=True) == spec.cached  # and found there afterwards
    with pytest.raises(WeightsError, match="no such file"):
        resolve(spec, tmp_path / "missing.pt")


# --- batching --------------------------------------------------------------------------------


class CountingSegmenter(DiscSegmenter):
    """Records the size of every model call."""

    thread_safe = False

    def __init__(self) -> None:
        super().__init__()
        self.batches: list[int] = []

    def predict_batch(self, images: list[np.ndarray]) -> list[np.ndarray]:
        self.batches.append(len(images))
        time.sleep(0.02)  # a model call takes a while: others queue up meanwhile
        return [self.predict(image) for image in images]


def test_concurrent_calls_are_batched_and_each_caller_gets_its_own_answer() -> None:
    from concurrent.futures import ThreadPoolExecutor

    segmenter = CountingSegmenter()
    segmenter.enable_batching(4)
    images = [np.zeros((10 + i, 20, 3), np.uint8) for i in range(24)]
    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(segmenter, images))
    for image, result in zip(images, results, strict=True):
        assert result.shape == image.shape[:2]  # answers are not mixed up between callers
        np.testing.assert_array_equal(result, segmenter.predict(image))
    assert sum(segmenter.batches) == 24
    assert max(segmenter.batches) <= 4 and max(segmenter.batches) > 1


def test_a_failing_batch_fails_each_of_its_callers() -> None:
    from concurrent.futures import ThreadPoolExecutor

    class Broken(CountingSegmenter):
        def predict_batch(self, images):
            raise RuntimeError("out of memory")

    segmenter = Broken()
    segmenter.enable_batching(3)
    with ThreadPoolExecutor(3) as pool:
        futures = [pool.submit(segmenter, np.zeros((4, 4, 3), np.uint8)) for _ in range(3)]
    for future in futures:
        with pytest.raises(RuntimeError, match="out of memory"):
            future.result()


def test_deeplab_batch_equals_one_by_one(torch_home: Path) -> None:
    from operations.segmenters.deeplab import DeepLabSegmenter

    segmenter = DeepLabSegmenter("mobilenet_v3_large", offline=True, device="cpu")
    rgb = decode(SAMPLES / "astronaut.jpg").rgb
    images = [rgb, np.ascontiguousarray(rgb[:, ::-1]), np.ascontiguousarray(rgb[:400])]
    batched = segmenter.predict_batch(images)
    for image, result in zip(images, batched, strict=True):
        np.testing.assert_allclose(result, segmenter.predict(image), atol=1e-4)


def test_batch_size_raises_the_worker_count() -> None:
    from operations.options import Options

    options = Options(blur=True, batch_size=8, workers=2).validated(batch=False)
    assert options.workers == 8


def test_download_command(vgg_weights: Path, capsys) -> None:
    assert run.main(["download", "vgg19"]) == 0
    assert "already cached" in capsys.readouterr().err
    assert run.main(["download", "resnet"]) == 2
    assert "unknown model 'resnet'" in capsys.readouterr().err
