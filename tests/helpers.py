"""Test helpers: the sample paths, small synthetic images, a segmenter with a known answer."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import ClassVar

import cv2
import numpy as np
import pytest
from PIL import Image

from operations.segmenters.base import Backend, Segmenter, SegmenterSettings

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
    def from_settings(cls, settings: SegmenterSettings) -> DiscSegmenter:
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


def make_clip(
    path: Path,
    *,
    frames: int = 24,
    size: tuple[int, int] = (160, 112),
    rate: int = 12,
    audio: bool = True,
    rotation: int = 0,
    pts: list[int] | None = None,
    codec: str = "libx264",
    photo: Path = SAMPLES / "astronaut.jpg",
    faststart: bool = False,
) -> list[np.ndarray]:
    """Write a short clip of a sample photo under a slow pan and zoom (a moving subject), with a
    440 Hz tone as its sound; returns the frames as written (``size`` is width, height).

    ``pts``: the frames' own timestamps in 1/``rate`` s units (variable frame rate);
    ``rotation``: a display matrix turning it by that many degrees counter-clockwise;
    ``faststart``: the index before the frames, so a file cut short still opens.
    """
    import av

    image = np.asarray(Image.open(photo).convert("RGB"))
    height, width = image.shape[:2]
    out = av.open(str(path), "w", options={"movflags": "+faststart"} if faststart else {})
    video = out.add_stream(codec, rate=rate)
    video.width, video.height = size
    video.pix_fmt = "yuvj420p" if codec == "mjpeg" else "yuv420p"
    if rotation:
        video.set_display_rotation(rotation)
    sound = out.add_stream("aac", rate=16000) if audio else None
    written = []
    for index in range(frames):
        scale = 1.0 + 0.01 * index
        matrix = np.float32([[scale, 0, -1.5 * index], [0, scale, -0.5 * index]])
        frame = cv2.warpAffine(image, matrix, (width, height), borderMode=cv2.BORDER_REFLECT)
        frame = cv2.resize(frame, size, interpolation=cv2.INTER_AREA)
        written.append(frame)
        packet = av.VideoFrame.from_ndarray(frame, format="rgb24")
        packet.pts = index if pts is None else pts[index]
        out.mux(video.encode(packet))
    out.mux(video.encode(None))
    if sound is not None:
        length = (pts[-1] + 1 if pts else frames) / rate
        t = np.arange(int(16000 * length)) / 16000
        tone = (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)[None]
        samples = av.AudioFrame.from_ndarray(tone, format="fltp", layout="mono")
        samples.sample_rate, samples.pts = 16000, 0
        out.mux(sound.encode(samples))
        out.mux(sound.encode(None))
    out.close()
    return written


def read_clip(path: Path, fmt: str = "rgb24") -> tuple[list[np.ndarray], list[float], list, dict]:
    """A video's frames, their times in seconds, its audio packets' bytes, and facts."""
    import av

    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        frames, times, rotations = [], [], set()
        for frame in container.decode(stream):
            frames.append(frame.to_ndarray(format=fmt))
            times.append(float(frame.pts * stream.time_base))
            rotations.add(frame.rotation)
        facts = {
            "rate": stream.average_rate,
            "rotations": rotations,
            "codec": stream.codec_context.name,
            "duration": float(stream.duration * stream.time_base) if stream.duration else None,
            "streams": [s.type for s in container.streams],
        }
    with av.open(str(path)) as container:
        audio = (
            [bytes(p) for p in container.demux(audio=0) if p.size]
            if container.streams.audio
            else []
        )
    return frames, times, audio, facts


def installed(*modules: str) -> bool:
    """Whether every one of ``modules`` can be imported (an extra's packages)."""
    return all(importlib.util.find_spec(module) is not None for module in modules)


def needs(*modules: str) -> pytest.MarkDecorator:
    """Skip a test where an extra it needs is not installed (the core-only CI run)."""
    return pytest.mark.skipif(
        not installed(*modules), reason=f"needs {', '.join(modules)}: an extra not installed here"
    )


# The extras' packages, as the tests need them.
TORCH = ("torch", "torchvision")
SD = ("torch", "diffusers", "transformers")
RAY = ("ray",)


def shadowed_scene(
    height: int,
    width: int,
    *,
    seed: int = 0,
    shadow: float = 0.5,
    floor: str = "sweep",
    wall: bool = False,
    noise: float = 2.0,
    colour: tuple[int, int, int] | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A product photographed on a backdrop, with its cast shadow known: (photo ``H×W×3``
    ``uint8``, the subject's alpha, the shadow's density ``H×W`` in [0, 1]).

    The product (a mug with a handle, shaded like a cylinder; drawn 4× and shrunk, so its edge
    is anti-aliased) stands on a studio sweep (light falling off toward the bottom, a vignette,
    sensor noise; ``floor="busy"``: a textured floor instead), painted ``colour`` (RGB; default
    a random one). Its shadow is its own outline laid
    down on the floor behind and to the right (softer further from it) and a dark contact band
    at its base, of density ``shadow`` (0: none); ``wall``: the outline stands up behind it
    instead, as on a wall.
    """
    rng = np.random.default_rng(seed)
    big = np.zeros((height * 4, width * 4), np.uint8)
    cx, half = width * 2, int(width * 4 * 0.18)
    top, base = int(height * 4 * 0.35), int(height * 4 * 0.72)
    cv2.rectangle(big, (cx - half, top), (cx + half, base), 255, -1)
    cv2.ellipse(big, (cx, base), (half, half // 5), 0, 0, 360, 255, -1)
    cv2.ellipse(big, (cx, top), (half, half // 5), 0, 0, 360, 255, -1)
    handle = (half // 2, (base - top) // 4)
    cv2.ellipse(big, (cx + half, (top + base) // 2), handle, 0, -90, 90, 255, max(2, width // 15))
    alpha = cv2.resize(big.astype(np.float32) / 255, (width, height), interpolation=cv2.INTER_AREA)
    xs = np.linspace(-1, 1, width, dtype=np.float32)[None, :]
    ys = np.linspace(0, 1, height, dtype=np.float32)[:, None]
    roundness = 0.6 + 0.4 * np.cos(np.clip(xs * 2.2, -1.5, 1.5))
    paint = rng.uniform(40, 200, 3) if colour is None else colour
    colour_map = np.array(paint, np.float32) * roundness[..., None]
    light = 236 - 30 * ys**1.3 - 10 * xs**2
    if floor == "busy":  # boards and grain: nothing smooth to measure a shadow against
        grain = cv2.GaussianBlur(rng.normal(0, 1, (height, width)).astype(np.float32), (0, 0), 2)
        light = light * (0.8 + 0.2 * np.sin(xs * 40)) + 25 * grain
    backdrop = np.repeat(light[..., None], 3, axis=2) * np.float32([1.0, 0.99, 0.96])
    density = np.zeros((height, width), np.float32)
    if shadow > 0:
        foot = int(np.nonzero(alpha.max(1) > 0.5)[0][-1])
        side = max(height, width)
        lay = (1.2, -0.12) if not wall else (0.25, 0.6)  # right, up per unit of height
        src = np.float32([[0, foot], [width, foot], [0, 0]])
        dst = np.float32([[0, foot], [width, foot], [lay[0] * foot, foot + lay[1] * foot]])
        if wall:
            dst = np.float32([[0, foot], [width, foot], [lay[0] * foot, -0.2 * foot]])
        laid = cv2.warpAffine(alpha, cv2.getAffineTransform(src, dst), (width, height))
        near, far = (cv2.GaussianBlur(laid, (0, 0), k * 0.012 * side) for k in (1, 3))
        away = np.clip(np.abs(foot - np.arange(height))[:, None] / (0.2 * height), 0, 1)
        density = shadow * ((1 - away) * near + away * far)
        band = np.zeros_like(alpha)
        cols = np.nonzero(alpha[foot - height // 20 : foot + 1].max(0) > 0.5)[0]
        axes = ((cols[-1] - cols[0]) // 2 + 2, max(2, int(0.01 * side)))
        cv2.ellipse(band, ((cols[0] + cols[-1]) // 2, foot), axes, 0, 0, 360, 1.0, -1)
        band = cv2.GaussianBlur(band, (0, 0), max(0.5, 0.004 * side))
        density = np.clip(np.maximum(density, min(1.0, shadow * 1.3) * band), 0, 1)
    behind = backdrop * (1 - density[..., None]) + rng.normal(0, noise, backdrop.shape)
    photo = alpha[..., None] * colour_map + (1 - alpha[..., None]) * behind
    return np.clip(photo + 0.5, 0, 255).astype(np.uint8), alpha, density.astype(np.float32)
