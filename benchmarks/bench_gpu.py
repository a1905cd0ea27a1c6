"""Every model's GPU path, timed in one process within a time budget: images/s and peak memory.

Made for the few minutes a GPU is lent (``python benchmarks/bench_gpu.py --json FILE``, 420 s by
default); ``--device cpu --quick`` runs the same code on the CPU in under a minute, and a test runs
that so this script cannot rot before the day it is needed.

What it times, most important first (the budget is spent in this order; an item that would start
after the budget is listed as not reached, and a row under way stops repeating when it runs out):

1. MediaPipe selfie segmentation, on the CPU always: the reference the GPU rows are read against.
2. Salient models (U²-Netp, ISNet) through ONNX Runtime as the tool runs them
   (``SalientSegmenter.predict_batch``), batched 1/4/8, from an fp32 graph and from the same
   graph converted to fp16 (``onnxruntime.transformers.float16``; the tool feeds a graph the
   dtype its input asks for; on the CPU it runs an fp16 graph as fp32, so there both rows are
   fp32 in). Where ONNX Runtime has no CUDA provider (``onnxruntime`` rather
   than ``onnxruntime-gpu``), the tool cannot put these models on the GPU, and the rows say so;
   the same architectures are then timed in PyTorch instead, labelled ``torch (reference)``: what
   the GPU can do with the network, not what the tool does. BiRefNet is listed as not measured:
   no graph of its architecture can be built here (``salient_nets.py`` says why).
3. The command line end to end on a folder of 1600-px photos (``run.py --mode salient``,
   ISNet, ``--batch-size 8``): decoding, the model, edges, compositing, encoding, and the
   threads between them — the rate the progress bar shows, start-up apart.
4. DeepLabv3 (ResNet-101, MobileNetV3) through ``DeepLabSegmenter.predict_batch``, 1/4/8
   (half precision on CUDA, as the tool runs it).
5. The command line end to end with DeepLab ResNet-101.
6. YOLOv8-seg (n, s), 1/4/8, half precision on CUDA.
7. VGG19 style transfer (``StyleTransfer.stylize``) at the default size and steps.
8. Stable Diffusion 1.5 text-to-image at 512 px, the default 30 steps (fp16 on CUDA).
9. Stable Diffusion 1.5 inpainting at 512 px (``--around``'s model).

Weights are random, in the real architectures at full size, written where the tool looks for
real ones (temporary caches) and loaded through its own loading code: a network's speed does not
depend on its weights' values. ``--quick`` shrinks what a CPU cannot do in a minute (one salient
model, batches 1 and 2, small photos, SD 1.5's network 10× narrower, a short style transfer)
and keeps every code path.

Each row: a warm-up call, then calls repeated for at least ``--seconds`` (three at least), the
median counted. Peak memory is the most the device held above what it held before the row's model
was built (CUDA: the whole device's use, sampled, so ONNX Runtime's arena counts too; CPU: this
process's resident set, or the command line's), model weights included.

On a lent GPU machine (its Python has PyTorch and ONNX Runtime but not our other packages; the
wheels that travel are listed by ``benchmarks/gpu_wheels.sh``), in one call::

    python3 -m pip install -q --no-index --no-deps --target /tmp/site .whl/*.whl &&
    PYTHONPATH=/tmp/site PYTHONUNBUFFERED=1 python3 benchmarks/bench_gpu.py --json $OUT/gpu.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from functools import partial
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from operations.media.decode import decode  # noqa: E402

STYLE = ROOT / "background" / "hubble_deep_field.jpg"
OVERRUN = 60.0  # seconds past the budget after which a stuck row is abandoned (the process ends)


@dataclass
class Row:
    item: str
    model: str
    batch: int = 1
    precision: str = "fp32"
    engine: str = ""
    rate: float | None = None  # per second, in ``unit``
    unit: str = "images/s"
    ms_per_image: float | None = None
    peak_mib: float | None = None
    note: str = ""


@dataclass
class Scale:
    """What is measured: the full set, or ``--quick``'s CPU-sized one (same code paths)."""

    photo_side: int = 1600
    batches: tuple[int, ...] = (1, 4, 8)
    salient: tuple[str, ...] = ("isnet-general-use", "u2netp")
    deeplab: tuple[str, ...] = ("resnet101", "mobilenet_v3_large")
    yolo: tuple[str, ...] = ("n", "s")
    cli_photos: int = 24
    cli_batch: int = 8
    nst_size: int | None = None  # None: the tool's defaults
    nst_steps: int | None = None
    sd_width: int = 320  # SD 1.5's own; --quick: a narrower copy
    sd_side: int = 512
    sd_steps: int = 30
    seconds: float = 3.0


QUICK = Scale(
    photo_side=400,
    batches=(1, 2),
    salient=("u2netp",),
    deeplab=("mobilenet_v3_large",),
    yolo=("n",),
    cli_photos=2,
    cli_batch=2,
    nst_size=64,
    nst_steps=4,
    sd_width=32,
    sd_side=64,
    sd_steps=3,
    seconds=0.0,
)


@dataclass
class Bench:
    device: str  # "cuda" or "cpu"
    scale: Scale
    budget: float
    work: Path
    started: float = field(default_factory=time.monotonic)
    rows: list[Row] = field(default_factory=list)

    def left(self) -> float:
        return self.budget - (time.monotonic() - self.started)

    def add(self, row: Row) -> None:
        self.rows.append(row)
        print(format_row(row), flush=True)

    def skip(self, item: str, model: str, why: str, **fields: object) -> None:
        self.add(Row(item, model, note=why, **fields))


# --- measuring ------------------------------------------------------------------------------


def _synchronize(device: str) -> None:
    if device == "cuda":
        import torch

        torch.cuda.synchronize()


class PeakMemory:
    """The most a device held, sampled every 10 ms, above what it held when sampling began."""

    def __init__(self, device: str, pid: int | None = None) -> None:
        self.device, self.pid = device, pid
        if device == "cuda":
            import torch

            torch.cuda.empty_cache()
        self.base = self._used()
        self.peak = self.base
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()

    def _used(self) -> int:
        if self.device == "cuda":
            import torch

            free, total = torch.cuda.mem_get_info()
            return total - free
        status = Path(f"/proc/{self.pid or 'self'}/status")
        try:
            line = next(x for x in status.read_text().splitlines() if x.startswith("VmRSS"))
        except (OSError, StopIteration):
            return 0
        return int(line.split()[1]) * 1024

    def _sample(self) -> None:
        while not self._stop.wait(0.01):
            self.peak = max(self.peak, self._used())

    def stop(self) -> float:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self._used())
        return (self.peak - self.base) / 2**20


def timed(bench: Bench, call: Callable[[], object]) -> float:
    """Median seconds per call: one warm-up, then at least three calls and ``seconds`` of them,
    fewer when the budget runs out."""
    call()
    times: list[float] = []
    spent = 0.0
    while len(times) < 3 or spent < bench.scale.seconds:
        if times and bench.left() <= 0:
            break
        _synchronize(bench.device)
        start = time.perf_counter()
        call()
        _synchronize(bench.device)
        times.append(time.perf_counter() - start)
        spent += times[-1]
    return statistics.median(times)


Built = tuple[Callable[[], object], str]  # the call to time, and a note for its row


def measure(bench: Bench, row: Row, build: Callable[[], Built], per_call: int = 1) -> None:
    """Build (memory counted, time not), time, and record ``row``, its note the build's; a
    failure is recorded as the row's note."""
    memory = PeakMemory(bench.device)
    try:
        call, note = build()
        seconds = timed(bench, call)
    except Exception as exc:  # noqa: BLE001 - a row that fails is reported, the others still run
        memory.stop()
        row.note = f"failed: {type(exc).__name__}: {str(exc).strip().splitlines()[0][:160]}"
        bench.add(row)
        return
    row.peak_mib = memory.stop()
    row.rate = per_call / seconds
    row.ms_per_image = 1000 * seconds / (per_call if row.unit == "images/s" else 1)
    row.note = row.note or note
    bench.add(row)


def photos(bench: Bench, count: int) -> list[np.ndarray]:
    """``count`` photos, the bundled samples enlarged (or shrunk) to the scale's long side."""
    samples = sorted((ROOT / "input").glob("*.jpg"))
    side = bench.scale.photo_side
    out = []
    for i in range(count):
        rgb = decode(samples[i % len(samples)]).rgb
        scale = side / max(rgb.shape[:2])
        out.append(cv2.resize(rgb, None, fx=scale, fy=scale, interpolation=cv2.INTER_CUBIC))
    return out


# --- items, most important first --------------------------------------------------------------


def item_mediapipe(bench: Bench) -> None:
    from operations.segmenters.mediapipe import MediaPipeSegmenter

    photo = photos(bench, 1)[0]

    def build() -> Built:
        segmenter = MediaPipeSegmenter("general")
        return lambda: segmenter.predict(photo), ""

    measure(bench, Row("mediapipe", "general", engine="tflite (CPU)"), build)


def _fp16_graph(source: Path, target: Path) -> Path:
    import onnx
    from onnxruntime.transformers.float16 import convert_float_to_float16

    model = convert_float_to_float16(onnx.load(str(source)), keep_io_types=False)
    onnx.save(model, str(target))
    return target


def _ort_has_cuda() -> bool:
    from operations.segmenters.salient import load_onnxruntime

    return "CUDAExecutionProvider" in load_onnxruntime().get_available_providers()


def item_salient(bench: Bench) -> None:
    from bench_backends import random_weights_salient

    from operations.segmenters.salient import MODELS, weights_spec

    for name in [m for m in MODELS if m.startswith("birefnet-general")]:
        bench.skip("salient", name, "not measured: no graph of its architecture can be built here")
    if bench.device == "cuda" and not _ort_has_cuda():
        for name in bench.scale.salient:
            bench.skip(
                "salient",
                name,
                "not on the GPU: this onnxruntime has no CUDA provider (onnxruntime-gpu needed)",
                engine="onnxruntime",
            )
        _salient_in_torch(bench)
        return
    images = photos(bench, max(bench.scale.batches))
    for name in bench.scale.salient:
        random_weights_salient(name)
        fp32 = weights_spec(name).cached
        graphs = {"fp32": fp32, "fp16": _fp16_graph(fp32, bench.work / f"{name}-fp16.onnx")}
        for precision, graph in graphs.items():
            for batch in bench.scale.batches:
                if bench.left() <= 0:
                    return

                row = Row("salient", name, batch, precision, engine="onnxruntime")
                measure(
                    bench, row, partial(_salient_call, bench, name, graph, images[:batch]), batch
                )


def _salient_call(bench: Bench, name: str, graph: Path, images: list[np.ndarray]) -> Built:
    from operations.segmenters.salient import SalientSegmenter

    segmenter = SalientSegmenter(name, weights=graph, device=bench.device, offline=True)
    fed = f"{np.dtype(segmenter.dtype).name} in, {segmenter.session.get_providers()[0]}"
    return lambda: segmenter.predict_batch(images), fed


def _salient_in_torch(bench: Bench) -> None:
    """The salient architectures in PyTorch on the GPU (the tool's path needs onnxruntime-gpu)."""
    import torch
    from salient_nets import ARCHITECTURES

    for name in bench.scale.salient:
        make, size = ARCHITECTURES[name]
        for dtype, precision in ((torch.float32, "fp32"), (torch.float16, "fp16")):
            for batch in bench.scale.batches:
                if bench.left() <= 0:
                    return

                row = Row("salient", name, batch, precision, engine="torch (reference)")
                measure(bench, row, partial(_torch_call, bench, make, size, dtype, batch), batch)


def _torch_call(bench: Bench, make: Callable, size: int, dtype: object, batch: int) -> Built:
    import torch

    net = make().eval().to(bench.device, dtype)
    x = torch.rand(batch, 3, size, size, device=bench.device, dtype=dtype)

    def call() -> object:
        with torch.inference_mode():
            return net(x)[0].float().cpu()

    return call, ""


_RATE = re.compile(r"start-up ([\d.]+) s, ([\d.]+) images/s")


def _cli(bench: Bench, label: str, model: str, arguments: list[str]) -> None:
    """``run.py`` on a folder of photos in a child process: the rate its summary line gives."""
    from bench_batch import make_photos

    folder = bench.work / f"cli-{label}"
    shutil.rmtree(folder, ignore_errors=True)
    (folder / "in").mkdir(parents=True)
    make_photos(folder / "in", bench.scale.cli_photos, bench.scale.photo_side)
    argv = [
        sys.executable,
        str(ROOT / "run.py"),
        "--input",
        str(folder / "in"),
        "--output",
        str(folder / "out"),
        "--bg",
        str(ROOT / "background" / "hubble_deep_field.jpg"),
        "--device",
        bench.device,
        "--batch-size",
        str(bench.scale.cli_batch),
        "--offline",
        *arguments,
    ]
    row = Row(f"cli-{label}", model, bench.scale.cli_batch, engine="run.py")
    row.precision = "fp16" if bench.device == "cuda" and label != "salient" else "fp32"
    child = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    memory = PeakMemory(bench.device, pid=child.pid)
    try:
        output, _ = child.communicate(timeout=max(bench.left(), 0) + OVERRUN)
    except subprocess.TimeoutExpired:
        child.kill()
        output, _ = child.communicate()
    peak = memory.stop()
    found = _RATE.search(output)
    if child.returncode != 0 or found is None:
        last = output.strip().splitlines()[-1] if output.strip() else ""
        row.note = f"failed (exit {child.returncode}): {last[:160]}"
    else:
        startup, rate = float(found[1]), float(found[2])
        row.rate, row.ms_per_image, row.peak_mib = rate, 1000 / rate, peak
        size = f"{bench.scale.cli_photos} photos of {bench.scale.photo_side} px"
        row.note = f"{size}, start-up {startup:.1f} s"
    bench.add(row)


def item_cli_salient(bench: Bench) -> None:
    if bench.device == "cuda" and not _ort_has_cuda():
        bench.skip("cli-salient", "isnet-general-use", "not on the GPU: no CUDA provider")
        return
    model = bench.scale.salient[0]
    from bench_backends import random_weights_salient

    random_weights_salient(model)
    _cli(bench, "salient", model, ["--mode", "salient", "--salient-model", model])


def item_deeplab(bench: Bench) -> None:
    from bench_backends import random_weights_deeplab

    images = photos(bench, max(bench.scale.batches))
    precision = "fp16" if bench.device == "cuda" else "fp32"
    for variant in bench.scale.deeplab:
        random_weights_deeplab(variant)
        for batch in bench.scale.batches:
            if bench.left() <= 0:
                return

            row = Row("deeplab", variant, batch, precision, engine="torch")
            measure(bench, row, partial(_deeplab_call, bench, variant, images[:batch]), batch)


def _deeplab_call(bench: Bench, variant: str, images: list[np.ndarray]) -> Built:
    from operations.segmenters.deeplab import DeepLabSegmenter

    segmenter = DeepLabSegmenter(variant, device=bench.device, offline=True)
    return lambda: segmenter.predict_batch(images), ""


def item_cli_deeplab(bench: Bench) -> None:
    from bench_backends import random_weights_deeplab

    variant = bench.scale.deeplab[0]
    random_weights_deeplab(variant)
    _cli(bench, "deeplab", variant, ["--mode", "1", "--deeplab-model", variant])


def _random_yolo(size: str, images: list[np.ndarray]) -> None:
    """Random YOLOv8-seg weights that find a few things on the photos, so that the mask head and
    the soft-mask post-processing run as on a real photo.

    Freshly initialised, the network's activations vanish layer by layer (its batch norms' running
    statistics are the defaults, not its data's), and every anchor gets the same score: nothing
    or everything is detected. The batch norms' statistics are therefore taken from these photos
    (as training would set them), and the class biases put so that a handful of anchors pass the
    default confidence; the table's note gives the number found.
    """
    import torch

    from operations.segmenters.yolo import import_ultralytics, weights_spec

    import_ultralytics()
    from ultralytics import YOLO

    spec = weights_spec(size)
    if spec.cached.exists():
        return
    torch.manual_seed(0)
    yolo = YOLO(f"yolov8{size}-seg.yaml", task="segment")
    net = yolo.model
    for module in net.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.momentum = None  # a plain average over the calibration batch
            module.reset_running_stats()
    batch = np.stack([cv2.resize(rgb, (640, 640)) for rgb in images])
    net.train()
    with torch.no_grad():
        net(torch.from_numpy(batch).permute(0, 3, 1, 2).float() / 255)
    net.eval()
    for branch in net.model[-1].cv3:
        branch[-1].bias.data.fill_(-9.0)
    spec.cache_dir.mkdir(parents=True, exist_ok=True)
    yolo.save(spec.cached)


def item_yolo(bench: Bench) -> None:
    images = photos(bench, max(bench.scale.batches))
    precision = "fp16" if bench.device == "cuda" else "fp32"
    for size in bench.scale.yolo:
        _random_yolo(size, images)
        for batch in bench.scale.batches:
            if bench.left() <= 0:
                return
            row = Row("yolo", f"yolov8{size}-seg", batch, precision, engine="torch")
            measure(bench, row, partial(_yolo_call, bench, size, images[:batch]), batch)


def _yolo_call(bench: Bench, size: str, images: list[np.ndarray]) -> Built:
    from operations.segmenters.yolo import YoloSegmenter

    segmenter = YoloSegmenter(size, device=bench.device, offline=True)
    found = [len(segmenter.instance_masks(rgb)) for rgb in images]
    return lambda: segmenter.predict_batch(images), f"instances per photo: {found}"


def item_style(bench: Bench) -> None:
    from operations.stages.neural_style_transfer import StyleSettings, StyleTransfer
    from tests.models import make_vgg

    make_vgg()
    photo = photos(bench, 1)[0]
    alpha = np.zeros(photo.shape[:2], np.float32)
    alpha[photo.shape[0] // 4 :, photo.shape[1] // 3 : 2 * photo.shape[1] // 3] = 1.0
    settings = StyleSettings(tolerance=0.0)  # every step runs: random weights must not converge
    if bench.scale.nst_size:
        settings = replace(settings, size=bench.scale.nst_size, steps=bench.scale.nst_steps or 5)

    def build() -> Built:
        transfer = StyleTransfer(decode(STYLE).rgb, settings, device=bench.device, offline=True)
        return lambda: transfer.stylize(photo, alpha), f"{settings.size} px, {settings.steps} steps"

    measure(bench, Row("style", "vgg19", engine="torch"), build)


def _sd15(root: Path, *, inpaint: bool, device: str, width: int) -> Path:
    """Stable Diffusion 1.5's architecture (its UNet, VAE and CLIP ViT-L/14 text encoder, with
    CLIP's tokenizer size) with random weights, saved with ``save_pretrained`` in the precision
    the tool loads on ``device``. ``width`` scales every layer's channels: 320 is SD 1.5 itself;
    ``--quick`` builds the same network 10× narrower."""
    folder = root / f"sd15-{width}{'-inpaint' if inpaint else ''}"
    if (folder / "model_index.json").exists():
        return folder
    import torch
    from diffusers import (
        AutoencoderKL,
        PNDMScheduler,
        StableDiffusionInpaintPipeline,
        StableDiffusionPipeline,
        UNet2DConditionModel,
    )
    from transformers import CLIPTextConfig, CLIPTextModel

    from tests.models import tiny_clip_tokenizer

    # CLIP's vocabulary size and 77-token context; single-character entries, since the text
    # encoder's cost depends on the lengths, not on which words they are.
    tokenizer = tiny_clip_tokenizer(model_max_length=77, vocab_size=49408)
    text_width = 64 * max(1, round(12 * width / 320))  # 768 at 320: 12 heads of 64
    vae_width = 8 * max(1, round(16 * width / 320))  # 128 at 320
    torch.manual_seed(0)
    with torch.device(device):  # initialised where it runs: seconds, not minutes, on a GPU
        unet = UNet2DConditionModel(
            sample_size=64,
            in_channels=9 if inpaint else 4,
            block_out_channels=(width, 2 * width, 4 * width, 4 * width),
            cross_attention_dim=text_width,
            attention_head_dim=8,
            norm_num_groups=min(32, width // 4),
        )
        vae = AutoencoderKL(
            block_out_channels=[vae_width, 2 * vae_width, 4 * vae_width, 4 * vae_width],
            down_block_types=["DownEncoderBlock2D"] * 4,
            up_block_types=["UpDecoderBlock2D"] * 4,
            layers_per_block=2,
            latent_channels=4,
            sample_size=512,
            norm_num_groups=min(32, vae_width // 2),
        )
        text_encoder = CLIPTextModel(
            CLIPTextConfig(
                hidden_size=text_width,
                intermediate_size=4 * text_width,
                num_attention_heads=text_width // 64,
                num_hidden_layers=12,
                hidden_act="quick_gelu",
                max_position_embeddings=77,
                vocab_size=len(tokenizer),
                bos_token_id=0,
                eos_token_id=tokenizer.eos_token_id,
                pad_token_id=tokenizer.pad_token_id,
            )
        )
    scheduler = PNDMScheduler(
        beta_start=0.00085,
        beta_end=0.012,
        beta_schedule="scaled_linear",
        skip_prk_steps=True,
        steps_offset=1,
        set_alpha_to_one=False,
    )
    kind = StableDiffusionInpaintPipeline if inpaint else StableDiffusionPipeline
    pipeline = kind(
        unet=unet,
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        scheduler=scheduler,
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )
    if device == "cuda":
        pipeline.to(torch.float16)
    pipeline.save_pretrained(folder)
    return folder


def _diffusion(bench: Bench, inpaint: bool) -> None:
    import diffusers

    from operations.stages.text_to_image import BackgroundGenerator, GenerationRequest

    diffusers.utils.logging.disable_progress_bar()  # save_pretrained's shard bar
    scale = bench.scale
    item = "sd-inpaint" if inpaint else "sd-txt2img"
    label = "sd-1.5-inpainting" if inpaint else "sd-1.5"
    if scale.sd_width != 320:
        label += f" (width {scale.sd_width})"
    try:
        folder = _sd15(bench.work, inpaint=inpaint, device=bench.device, width=scale.sd_width)
    except Exception as exc:  # noqa: BLE001 - reported as the row's failure
        bench.skip(item, label, f"failed to build: {type(exc).__name__}: {exc}"[:200])
        return
    side = scale.sd_side
    request = GenerationRequest(
        "a quiet beach at dusk",
        None,
        str(folder),
        0,
        scale.sd_steps,
        7.5,
        side,
        side,
        around="bench" if inpaint else None,
        strength=1.0 if inpaint else None,
    )
    rgb = photos(bench, 1)[0]
    rgb = cv2.resize(rgb, (side, side), interpolation=cv2.INTER_AREA)
    paint = np.ones((side, side), bool)
    paint[side // 4 :, side // 3 : 2 * side // 3] = False

    def build() -> Built:
        generator = BackgroundGenerator(
            str(folder), device=bench.device, offline=True, progress=False, inpaint=inpaint
        )
        note = f"{side} px, {scale.sd_steps} steps (ms/image: the whole image)"
        if inpaint:
            return lambda: generator.paint_around(request, rgb, paint), note
        return lambda: generator.generate(request), note

    precision = "fp16" if bench.device == "cuda" else "fp32"
    row = Row(item, label, 1, precision, engine="diffusers", unit="steps/s")
    measure(bench, row, build, scale.sd_steps)


ITEMS: list[tuple[str, Callable[[Bench], None]]] = [
    ("mediapipe", item_mediapipe),
    ("salient", item_salient),
    ("cli-salient", item_cli_salient),
    ("deeplab", item_deeplab),
    ("cli-deeplab", item_cli_deeplab),
    ("yolo", item_yolo),
    ("style", item_style),
    ("sd-txt2img", lambda bench: _diffusion(bench, inpaint=False)),
    ("sd-inpaint", lambda bench: _diffusion(bench, inpaint=True)),
]


# --- output -----------------------------------------------------------------------------------

HEADER = (
    f"{'item':12s} {'model':28s} {'batch':>5s} {'prec':4s} {'engine':18s} "
    f"{'rate':>14s} {'ms/image':>9s} {'peak MiB':>9s}  note"
)


def format_row(row: Row) -> str:
    rate = f"{row.rate:9.2f} {row.unit.split('/')[0]:4s}" if row.rate else f"{'-':>14s}"
    ms = f"{row.ms_per_image:9.1f}" if row.ms_per_image else f"{'-':>9s}"
    peak = f"{row.peak_mib:9.0f}" if row.peak_mib is not None else f"{'-':>9s}"
    return (
        f"{row.item:12s} {row.model[:28]:28s} {row.batch:5d} {row.precision:4s} "
        f"{row.engine[:18]:18s} {rate} {ms} {peak}  {row.note}"
    )


def describe(device: str) -> dict[str, object]:
    import torch

    facts: dict[str, object] = {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "cpu_threads": torch.get_num_threads(),
    }
    if device == "cuda":
        props = torch.cuda.get_device_properties(0)
        facts["gpu"] = props.name
        facts["gpu_memory_mib"] = props.total_memory // 2**20
    try:
        from operations.segmenters.salient import load_onnxruntime

        ort = load_onnxruntime()
        facts["onnxruntime"] = f"{ort.__version__} {ort.get_available_providers()}"
    except ImportError:
        facts["onnxruntime"] = None
    return facts


@contextmanager
def scratch_caches(work: Path) -> Iterator[None]:
    """Every model cache the tool reads pointed into ``work``: random weights are written
    there, never into a user's cache, and no real weights are picked up by surprise."""
    names = {
        "TORCH_HOME": "torch",
        "BACKGROUNDSWAP_HOME": "backgroundswap",
        "U2NET_HOME": "u2net",
        "YOLO_CONFIG_DIR": "ultralytics",
        "HF_HOME": "huggingface",
    }
    before = {name: os.environ.get(name) for name in names}
    for name, sub in names.items():
        os.environ[name] = str(work / sub)
    try:
        yield
    finally:
        for name, value in before.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _watchdog(bench: Bench, item: list[str]) -> None:
    """A row stuck far past the budget: print what was measured and end the process."""
    while bench.left() > -OVERRUN:
        time.sleep(1.0)
    print(f"\nstopped: {item[0]} ran {OVERRUN:.0f} s past the budget; measured so far:")
    print(HEADER)
    for row in bench.rows:
        print(format_row(row))
    sys.stdout.flush()
    os._exit(2)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", choices=("auto", "cuda", "cpu"), default="auto")
    parser.add_argument("--budget", type=float, default=420.0, metavar="SECONDS")
    parser.add_argument("--quick", action="store_true", help="CPU-sized models and photos")
    parser.add_argument("--json", type=Path, metavar="FILE", help="write the table as JSON")
    parser.add_argument("--only", nargs="*", choices=[name for name, _ in ITEMS])
    args = parser.parse_args(argv)

    import torch

    device = args.device
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda: PyTorch sees no CUDA device")
    work = Path(tempfile.mkdtemp(prefix="bench-gpu-"))
    bench = Bench(device, QUICK if args.quick else Scale(), args.budget, work)
    facts = describe(device)
    print(f"device {device}, budget {args.budget:.0f} s, {'quick' if args.quick else 'full'}")
    print(", ".join(f"{k} {v}" for k, v in facts.items()), flush=True)
    print(HEADER, flush=True)
    current = ["start"]
    threading.Thread(target=_watchdog, args=(bench, current), daemon=True).start()
    not_reached, spent = [], {}
    try:
        with scratch_caches(work):
            for name, item in ITEMS:
                if args.only and name not in args.only:
                    continue
                if bench.left() <= 0:
                    not_reached.append(name)
                    continue
                current[0] = name
                began = time.monotonic()
                item(bench)
                spent[name] = round(time.monotonic() - began, 1)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    elapsed = time.monotonic() - bench.started
    print(f"\n{HEADER}")
    for row in bench.rows:
        print(format_row(row))
    print(
        "seconds per item, model building included: "
        + ", ".join(f"{k} {v}" for k, v in spent.items())
    )
    if not_reached:
        print(f"budget spent after {elapsed:.0f} s; not reached: {', '.join(not_reached)}")
    else:
        print(f"all measured in {elapsed:.0f} s")
    if args.json:
        report = {
            "device": device,
            "quick": args.quick,
            "budget_s": args.budget,
            "elapsed_s": round(elapsed, 1),
            "facts": facts,
            "rows": [asdict(row) for row in bench.rows],
            "item_seconds": spent,
            "not_reached": not_reached,
        }
        args.json.write_text(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
