"""Test helpers: the sample paths, small synthetic images, a segmenter with a known answer."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

import cv2
import numpy as np
from PIL import Image

from operations.options import Options
from operations.segmenters.base import Backend, Segmenter

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "input"
BACKGROUND = ROOT / "background" / "hubble_deep_field.jpg"


class DiscSegmenter(Segmenter):
    """A stand-in model whose answer is known exactly: a soft disc in the image's centre.

    For tests of everything around the model (compositing, files, batching); the real backend
    has its own tests on real photos.
    """

    name: ClassVar[str] = "disc"
    thread_safe: ClassVar[bool] = True

    def __init__(self) -> None:
        super().__init__()
        self.calls = 0

    @classmethod
    def from_options(cls, options: Options) -> DiscSegmenter:
        return cls()

    def predict(self, rgb: np.ndarray) -> np.ndarray:
        self.calls += 1
        height, width = rgb.shape[:2]
        y, x = np.mgrid[0:height, 0:width]
        radius = np.hypot((y - height / 2) / (height / 4), (x - width / 2) / (width / 4))
        return np.clip(1.5 - radius, 0, 1).astype(np.float32)


# Lets a test register the stand-in as a backend (``register_backend("tests.helpers")``).
BACKEND = Backend(name="disc", alias="7", summary="a soft disc (tests)", segmenter=DiscSegmenter)


def random_rgb(height: int, width: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)


def save_rgb(path: Path, height: int = 48, width: int = 64, seed: int = 0, **params) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(random_rgb(height, width, seed)).save(path, **params)
    return path


def cli(capsys, *args: object) -> tuple[int, str]:
    """Run the CLI in-process; return (exit code, stderr)."""
    import run

    try:
        code = run.main([str(a) for a in args])
    except SystemExit as exc:  # argparse's own usage errors
        code = exc.code
    return code, capsys.readouterr().err


def bad_cases(folder: Path) -> list[str]:
    """Deliberately bad inputs for the person model: an empty scene, a cropped subject, a
    photo of something that is not a person. Returns their names."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "empty_scene.jpg").write_bytes(BACKGROUND.read_bytes())
    with Image.open(SAMPLES / "astronaut.jpg") as photo:
        photo.crop((0, 80, 230, 512)).save(folder / "cropped.jpg")
    ball = np.full((300, 400, 3), 200, np.uint8)
    cv2.circle(ball, (200, 150), 90, (200, 40, 30), -1)
    ball[250:] = (120, 110, 100)
    Image.fromarray(ball).save(folder / "red_ball.png")
    return ["cropped.jpg", "empty_scene.jpg", "red_ball.png"]
