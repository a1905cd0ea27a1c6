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
