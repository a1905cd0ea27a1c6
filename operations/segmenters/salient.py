"""Salient-object segmentation: any subject (people, animals, products), class-agnostic, with
U²-Net, ISNet or BiRefNet over ONNX Runtime.

Each model family is fed and read the way its authors' inference code does it:

U²-Net (Qin et al. 2020; ``u2net_test.py`` and ``data_loader.py`` of xuebinqin/U-2-Net)
    The photo stretched to 320×320 (``RescaleT``), divided by its own maximum, then ImageNet
    mean/std per channel (``ToTensorLab(flag=0)``). Output 0 is the fused map ``d0``, already a
    probability (the network ends in a sigmoid). ``u2net``, ``u2netp`` (the 4.7 MB version) and
    ``u2net_human_seg`` (the same network trained on people).
ISNet (Qin et al. 2022, "Highly Accurate Dichotomous Image Segmentation"; ``IS-Net/
Inference.py`` of xuebinqin/DIS)
    1024×1024, divided by 255, mean 0.5 and std 1.0. Output 0 is the finest side output ``d1``,
    already a probability.
BiRefNet (Zheng et al. 2024; ``inference.py`` and ``dataset.py`` of ZhengPeng7/BiRefNet)
    1024×1024, divided by 255, ImageNet mean/std. The output is logits: the sigmoid is applied
    here.

The authors' test scripts also stretch each map to its own minimum and maximum before saving it
(``normPRED``); we do not: the map already is a probability, and stretching would turn the faint
noise of a photo with no subject into a confident one (the batch reports "no subject found"
instead). The soft map is kept soft (no threshold) and refined like every backend's.

Aspect ratio: every model was trained on photos stretched to its square input, so photos are
stretched the same way (padding would shrink the subject and show the network borders it never
saw in training), and the map is stretched back to the photo's size, bilinearly. Shrinking
averages areas (the authors' skimage and PIL resizes are anti-aliased too); enlarging is bilinear.

Weights are rembg's published ONNX exports of the authors' weights, under rembg's file names and
checked against the MD5s rembg publishes, so a folder of models downloaded by rembg
(``$U2NET_HOME``, default ``~/.u2net``) is used as it is.
"""

from __future__ import annotations

import functools
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import cv2
import numpy as np

from operations.errors import setting
from operations.media.resize import shrink
from operations.models import (
    DEFAULT_DEVICE,
    WeightsError,
    WeightsSpec,
    caches_kept,
    models_home,
    resolve,
)
from operations.segmenters.base import (
    Backend,
    BackendOption,
    ModelCard,
    Segmenter,
    SegmenterError,
)
from operations.segmenters.onnx_graphs import cpu_graph, not_runnable

if TYPE_CHECKING:
    from operations.segmenters.base import SegmenterSettings

log = logging.getLogger(__name__)

IMAGENET = ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))


@dataclass(frozen=True)
class Family:
    """How a family of networks wants its input and gives its output."""

    name: str
    size: int  # the square input side it was trained at
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    scale: str  # "max": divided by the image's own maximum (U²-Net); "255": by 255
    sigmoid: bool | None  # the output is logits (True), a probability (False), or: look (None)
    output: int = 0  # which of the graph's outputs is the final map


U2NET = Family("U²-Net", 320, *IMAGENET, scale="max", sigmoid=False)
ISNET = Family("ISNet", 1024, (0.5, 0.5, 0.5), (1.0, 1.0, 1.0), scale="255", sigmoid=False)
BIREFNET = Family("BiRefNet", 1024, *IMAGENET, scale="255", sigmoid=True)
# A user's own .onnx file of unknown family: ImageNet statistics on [0, 1] pixels (what most
# saliency and matting networks use), and a sigmoid when the map is not already within [0, 1].
CUSTOM = Family("custom", 1024, *IMAGENET, scale="255", sigmoid=None)


@dataclass(frozen=True)
class SalientModel:
    family: Family
    url: str
    md5: str  # as rembg's model registry publishes it
    licence: str


RELEASE = "https://github.com/danielgatis/rembg/releases/download/v0.0.0"
# The first is the default: ISNet sees 1024² (U²-Net 320²), so it can resolve finer edges, at
# 1.75 s per 1080p photo on a 2-core CPU (U²-Net 0.6 s), and its licence allows any use.
MODELS: dict[str, SalientModel] = {
    "isnet-general-use": SalientModel(
        ISNET, f"{RELEASE}/isnet-general-use.onnx", "fc16ebd8b0c10d971d3513d564d01e29", "Apache-2.0"
    ),
    "u2net": SalientModel(
        U2NET, f"{RELEASE}/u2net.onnx", "60024c5c889badc19c04ad937298a77b", "Apache-2.0"
    ),
    "u2netp": SalientModel(
        U2NET, f"{RELEASE}/u2netp.onnx", "8e83ca70e441ab06c318d82300c84806", "Apache-2.0"
    ),
    "u2net_human_seg": SalientModel(
        U2NET, f"{RELEASE}/u2net_human_seg.onnx", "c09ddc2e0104f800e3e1bb4652583d1f", "Apache-2.0"
    ),
    "birefnet-general": SalientModel(
        BIREFNET,
        f"{RELEASE}/BiRefNet-general-epoch_244.onnx",
        "7a35a0141cbbc80de11d9c9a28f52697",
        "MIT",
    ),
    "birefnet-general-lite": SalientModel(
        BIREFNET,
        f"{RELEASE}/BiRefNet-general-bb_swin_v1_tiny-epoch_232.onnx",
        "4fab47adc4ff364be1713e97b7e66334",
        "MIT",
    ),
    "birefnet-portrait": SalientModel(
        BIREFNET,
        f"{RELEASE}/BiRefNet-portrait-epoch_150.onnx",
        "c3a64a6abf20250d090cd055f12a3b67",
        "MIT",
    ),
}
DEFAULT_MODEL = next(iter(MODELS))


def rembg_dir() -> Path:
    """rembg's model folder (``$U2NET_HOME``, default ``~/.u2net``): read, never written."""
    home = os.environ.get("U2NET_HOME") or Path(os.environ.get("XDG_DATA_HOME", "~")) / ".u2net"
    return Path(home).expanduser()


def weights_spec(name: str) -> WeightsSpec:
    """Where model ``name`` is cached (as ``NAME.onnx``, rembg's file name) and fetched from."""
    model = MODELS[name]
    return WeightsSpec(
        name=name,
        url=model.url,
        cache_dir=models_home(),
        option=f"{setting('weights')} (or {setting('salient_model')} FILE.onnx)",
        cache_variable="BACKGROUNDSWAP_HOME",
        md5=model.md5,
        file_name=f"{name}.onnx",
        alternates=(rembg_dir(),),
        download_name=f"salient-{name}",
    )


def _family_of(path: Path) -> Family:
    """A user's file: its family by its file name when it is one of the known models'."""
    stem = path.name.lower()
    for name, model in MODELS.items():
        if stem in (f"{name}.onnx", model.url.rsplit("/", 1)[-1].lower()):
            return model.family
    return CUSTOM


def load_onnxruntime() -> Any:
    """ONNX Runtime, its telemetry off and the files it writes at import (a device id and a
    database, under ``~/.cache/Microsoft/DeveloperTools``) kept in our cache folder."""
    with caches_kept("XDG_CACHE_HOME", "onnxruntime"):
        import onnxruntime
    onnxruntime.disable_telemetry_events()
    return onnxruntime


def _providers(device: str) -> list[str]:
    """ONNX Runtime's providers for ``--device``: never a silent CPU run for a named GPU."""
    onnxruntime = load_onnxruntime()

    available = onnxruntime.get_available_providers()
    if device == "cuda":
        if "CUDAExecutionProvider" not in available:
            raise SegmenterError(
                f"{setting('device')} cuda: this onnxruntime has no CUDA provider; install "
                f"onnxruntime-gpu "
                f"in its place (pip uninstall onnxruntime && pip install "
                f"onnxruntime-gpu=={onnxruntime.__version__})"
            )
        return ["CUDAExecutionProvider"]
    if device == "auto" and "CUDAExecutionProvider" in available:
        return ["CUDAExecutionProvider", "CPUExecutionProvider"]
    return ["CPUExecutionProvider"]


class SalientSegmenter(Segmenter):
    """U²-Net, ISNet or BiRefNet (or any such ``.onnx`` file), one ONNX Runtime session."""

    fine_mask: ClassVar[bool] = True  # matte-like alphas at 320–1024 px: kept, not snapped

    name: ClassVar[str] = "salient"
    thread_safe: ClassVar[bool] = False  # one session, one call at a time; it uses every core

    def __init__(
        self,
        model: str = DEFAULT_MODEL,
        *,
        weights: Path | None = None,
        device: str = DEFAULT_DEVICE,
        offline: bool = False,
    ) -> None:
        super().__init__()
        try:
            onnxruntime = load_onnxruntime()
        except ImportError:
            raise SegmenterError(
                "the salient backend needs ONNX Runtime: pip install -r "
                "requirements-salient.txt (or, from the checkout, pip install '.[salient]')"
            ) from None
        if model in MODELS:
            try:
                path = resolve(weights_spec(model), weights, offline=offline)
            except WeightsError as exc:
                raise SegmenterError(str(exc)) from None
            self.family = MODELS[model].family
        else:
            path = Path(weights or model).expanduser()
            if not path.is_file():
                raise SegmenterError(
                    f"{setting('salient_model')} {model!r}: choose from "
                    f"{', '.join(MODELS)}, or give a .onnx file"
                )
            self.family = _family_of(path)
        options = onnxruntime.SessionOptions()
        # One call at a time (the model lock), each using every core; ONNX Runtime's own
        # chatter (its warnings go to the terminal) only on errors.
        options.intra_op_num_threads = os.cpu_count() or 1
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        # ONNX Runtime's memory pattern plans every run's buffers as one block, allocated on
        # the second run beside the arena the first one grew: ISNet's process held 2.2 GB
        # instead of 1.4 GB, for no speed (measured, benchmarks/bench_rembg.py).
        options.enable_mem_pattern = False
        providers = _providers(device)
        graph = path
        if providers == ["CPUExecutionProvider"]:  # the CPU's own precision (a GPU keeps fp16)
            graph = cpu_graph(path, self.family.output)
        try:
            try:
                self.session = onnxruntime.InferenceSession(
                    str(graph), sess_options=options, providers=providers
                )
            except Exception:
                if graph == path:
                    raise
                # The graph we made from it does not run (a model we did not foresee): the
                # file as it is, from now on.
                log.warning("%s runs as it is: its graph prepared for the CPU did not", path.name)
                not_runnable(path, self.family.output)
                self.session = onnxruntime.InferenceSession(
                    str(path), sess_options=options, providers=providers
                )
        except SegmenterError:
            raise
        except Exception as exc:  # noqa: BLE001 - ONNX Runtime raises its own types for bad files
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise SegmenterError(
                f"{path} is not an ONNX model ONNX Runtime can run: {first}"
            ) from None
        graph_outputs = self.session.get_outputs()  # the map's (the CPU's graph has it alone)
        self.output_name = graph_outputs[min(self.family.output, len(graph_outputs) - 1)].name
        graph_input = self.session.get_inputs()[0]
        self.input_name = graph_input.name
        shape = list(graph_input.shape)
        if len(shape) != 4 or shape[1] not in (3, "3"):
            raise SegmenterError(f"{path}: expected an N×3×H×W image input, found {shape}")
        # The input size is read from the graph; a graph with free height and width gets the
        # size its family was trained at.
        fixed = [d if isinstance(d, int) and d > 0 else None for d in shape[2:]]
        self.input_size = (fixed[1] or self.family.size, fixed[0] or self.family.size)  # (w, h)
        self.mask_side = max(self.input_size)
        self.batched = not (isinstance(shape[0], int) and shape[0] > 0)  # a free batch axis
        self.dtype = np.float16 if graph_input.type == "tensor(float16)" else np.float32
        self.path = path

    @classmethod
    def from_settings(cls, settings: SegmenterSettings) -> SalientSegmenter:
        return cls(
            settings["salient_model"],
            weights=settings.weights,
            device=settings.device,
            offline=settings.offline,
        )

    def preprocess(self, rgb: np.ndarray) -> np.ndarray:
        """``3×h×w`` input for one photo, as the family's authors prepare it."""
        width, height = self.input_size
        if rgb.shape[0] * rgb.shape[1] > width * height:
            small = shrink(rgb, width, height)
        else:
            small = cv2.resize(rgb, (width, height), interpolation=cv2.INTER_LINEAR)
        pixels = small.astype(np.float32)
        peak = float(pixels.max()) if self.family.scale == "max" else 255.0
        pixels *= np.float32(1.0 / max(peak, 1.0))
        mean = np.array(self.family.mean, np.float32)
        std = np.array(self.family.std, np.float32)
        return ((pixels - mean) / std).transpose(2, 0, 1).astype(self.dtype)

    def _maps(self, batch: np.ndarray) -> np.ndarray:
        """``N×h×w`` float32 probabilities for an ``N×3×h×w`` input."""
        outputs = self.session.run([self.output_name], {self.input_name: batch})
        maps = np.asarray(outputs[0], dtype=np.float32)
        maps = maps.reshape(maps.shape[0], *maps.shape[-2:])  # N×1×h×w or N×h×w
        sigmoid = self.family.sigmoid
        if sigmoid is None:  # a custom model: logits when the map leaves [0, 1]
            sigmoid = bool(maps.min() < 0.0 or maps.max() > 1.0)
        if sigmoid:
            maps = np.float32(1) / (np.float32(1) + np.exp(-maps))
        return np.clip(maps, 0.0, 1.0)

    def predict(self, rgb: np.ndarray) -> np.ndarray:
        return self.predict_batch([rgb])[0]

    def predict_batch(self, images: list[np.ndarray]) -> list[np.ndarray]:
        """One session call for the whole batch when the graph's batch axis is free."""
        inputs = [self.preprocess(rgb) for rgb in images]
        if self.batched:
            maps = list(self._maps(np.stack(inputs)))
        else:
            maps = [self._maps(tensor[None])[0] for tensor in inputs]
        return [
            cv2.resize(m, (rgb.shape[1], rgb.shape[0]), interpolation=cv2.INTER_LINEAR)
            for m, rgb in zip(maps, images, strict=True)
        ]


def _model(value: str) -> str | None:
    if value in MODELS or str(value).lower().endswith(".onnx"):
        return None
    return f"choose from {', '.join(MODELS)}, or give a .onnx file"


BACKEND = Backend(
    name="salient",
    alias="3",
    summary="salient object: any subject, people, animals, products (U²-Net, ISNet, BiRefNet)",
    segmenter=SalientSegmenter,
    options=(
        BackendOption(
            "--salient-model",
            DEFAULT_MODEL,
            metavar="NAME|FILE.onnx",
            check=_model,
            help=f"salient-object model: {', '.join(MODELS)}, or a .onnx file",
            doc="salient-object model: `{default}` (default), "
            + ", ".join(f"`{m}`" for m in MODELS if m != DEFAULT_MODEL)
            + ", or any such `.onnx` file (its input size is read from the graph)",
        ),
    ),
    devices=("cpu", "cuda"),
    extra="salient",
    requires=("onnxruntime",),
    weights={f"salient-{name}": functools.partial(weights_spec, name) for name in MODELS},
    models=tuple(
        ModelCard(
            f"`--salient-model {name}` ({m.family.name}, {m.family.size}²)",
            f"`{name}.onnx` from rembg's release (MD5 `{m.md5}`)",
            m.licence,
            "`--weights FILE`, then `$BACKGROUNDSWAP_HOME/models/` (default "
            "`~/.cache/backgroundswap/models/`), then rembg's `$U2NET_HOME` (default `~/.u2net`)",
        )
        for name, m in MODELS.items()
    ),
)
