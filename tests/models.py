"""Models with random weights saved in their real file formats, in the caches the environment
names (TORCH_HOME, Ultralytics' folders, …), for the tests (``conftest.py``'s fixtures) and the
scripts that run the tool end to end (``scripts/check_identical.py``). Never a download."""

from __future__ import annotations

import os
from pathlib import Path


def make_deeplab() -> Path:
    """TORCH_HOME with a random-weights DeepLabv3-MobileNetV3 saved as torch.hub names it."""
    import torch
    from torchvision.models.segmentation import deeplabv3_mobilenet_v3_large

    from operations.models import torchvision_spec
    from operations.segmenters.deeplab import weights_entry

    spec = torchvision_spec("deeplabv3_mobilenet_v3_large", weights_entry("mobilenet_v3_large"))
    if not spec.cached.exists():
        torch.manual_seed(0)
        model = deeplabv3_mobilenet_v3_large(
            weights=None, weights_backbone=None, num_classes=21, aux_loss=True
        )
        spec.cache_dir.mkdir(parents=True, exist_ok=True)
        torch.save(model.state_dict(), spec.cached)
    return Path(os.environ["TORCH_HOME"])


def make_yolo() -> Path:
    """Ultralytics' weights folder with a random-weights yolov8n-seg.pt written by YOLO().save().

    The class scores' biases are raised so the random network detects things: the soft-mask
    path then runs end to end (what it finds is meaningless; tests of the mask maths use
    controlled tensors).
    """
    from operations.segmenters.yolo import import_ultralytics

    import_ultralytics()
    from ultralytics import YOLO

    from operations.segmenters.yolo import weights_spec

    spec = weights_spec("n")
    if not spec.cached.exists():
        import torch

        torch.manual_seed(0)
        import yaml
        from ultralytics.utils import ROOT as ULTRALYTICS_ROOT

        yolo = YOLO("yolov8n-seg.yaml", task="segment")
        # Real checkpoints carry their class names: COCO's, from the file Ultralytics ships.
        coco = yaml.safe_load((ULTRALYTICS_ROOT / "cfg/datasets/coco.yaml").read_text())
        yolo.model.names = dict(coco["names"])
        head = yolo.model.model[-1]
        for branch in head.cv3:
            branch[-1].bias.data.fill_(4.0)
        spec.cache_dir.mkdir(parents=True, exist_ok=True)
        yolo.save(spec.cached)
    return spec.cached


def make_vgg() -> Path:
    """TORCH_HOME holding a random-weights VGG19 under torch.hub's name for it.

    The file is a torchvision VGG19 ``state_dict`` holding the ``features.*`` tensors, which are
    all the tool reads (the classifier's 480 MB are left out to keep the test fast).
    """
    import torch
    from torchvision.models import VGG19_Weights, vgg19

    from operations.models import torchvision_spec

    spec = torchvision_spec("vgg19", VGG19_Weights.IMAGENET1K_V1)
    if not spec.cached.exists():
        torch.manual_seed(0)
        state = {
            k: v for k, v in vgg19(weights=None).state_dict().items() if k.startswith("features.")
        }
        spec.cache_dir.mkdir(parents=True, exist_ok=True)
        torch.save(state, spec.cached)
    return spec.cached


def tiny_clip_tokenizer(model_max_length: int = 16, vocab_size: int = 0):
    """A CLIP tokenizer over single characters (no merges); ``vocab_size`` pads its vocabulary
    with unused entries (CLIP's is 49408), for a text encoder of the real size."""
    from transformers import CLIPTokenizer

    printable = [
        *range(ord("!"), ord("~") + 1),
        *range(ord("¡"), ord("¬") + 1),
        *range(ord("®"), ord("ÿ") + 1),
    ]
    # CLIP's byte-to-unicode table: printable bytes stand for themselves, the rest map past 255.
    chars = [chr(b) for b in printable]
    chars += [chr(256 + n) for n, _ in enumerate(b for b in range(256) if b not in printable)]
    vocab = {"<|startoftext|>": 0, "<|endoftext|>": 1}
    for char in chars:
        vocab.setdefault(char, len(vocab))
        vocab.setdefault(char + "</w>", len(vocab))
    while len(vocab) < vocab_size:
        vocab[f"<unused{len(vocab)}>"] = len(vocab)
    # transformers 5 takes the vocabulary itself (its ``vocab_file`` keyword is gone: given it,
    # the tokenizer silently knew only its special tokens and read every prompt as one token).
    return CLIPTokenizer(vocab=vocab, merges=[], model_max_length=model_max_length)


def make_tiny_sd(root: Path, *, inpaint: bool = False) -> Path:
    """A tiny random Stable Diffusion pipeline saved with save_pretrained (native size 64 px):
    text-to-image, or with ``inpaint`` an inpainting one (its UNet takes 9 channels)."""
    folder = root / ("tiny-inpaint" if inpaint else "tiny-sd")
    if (folder / "model_index.json").exists():
        return folder
    import torch
    from diffusers import (
        AutoencoderKL,
        DDIMScheduler,
        StableDiffusionInpaintPipeline,
        StableDiffusionPipeline,
        UNet2DConditionModel,
    )
    from transformers import CLIPTextConfig, CLIPTextModel

    tokenizer = tiny_clip_tokenizer()
    torch.manual_seed(0)
    unet = UNet2DConditionModel(
        block_out_channels=(4, 8),
        layers_per_block=1,
        sample_size=32,
        in_channels=9 if inpaint else 4,
        out_channels=4,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        cross_attention_dim=32,
        norm_num_groups=2,
    )
    vae = AutoencoderKL(
        block_out_channels=[4, 8],
        in_channels=3,
        out_channels=3,
        latent_channels=4,
        down_block_types=["DownEncoderBlock2D"] * 2,
        up_block_types=["UpDecoderBlock2D"] * 2,
        norm_num_groups=2,
    )
    text_encoder = CLIPTextModel(
        CLIPTextConfig(
            bos_token_id=0,
            eos_token_id=tokenizer.eos_token_id,
            pad_token_id=tokenizer.pad_token_id,
            hidden_size=32,
            intermediate_size=64,
            num_attention_heads=4,
            num_hidden_layers=2,
            vocab_size=max(tokenizer.get_vocab().values()) + 1,
            max_position_embeddings=16,
        )
    )
    scheduler = DDIMScheduler(
        beta_start=0.00085,
        beta_end=0.012,
        beta_schedule="scaled_linear",
        clip_sample=False,
        set_alpha_to_one=False,
        steps_offset=1,
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
    pipeline.save_pretrained(folder)
    return folder


def write_graph(
    path: Path,
    size: tuple[int, int],
    *,
    batch: int | str = "N",
    gain: float = 1.0,
    dtype: int | None = None,
) -> Path:
    """An ONNX graph ``N×3×H×W → (gain · channel 0, −channel 0)``: two outputs, like the real
    models' several side outputs, of which the first is the one to read (``dtype``: an ONNX
    tensor type, float32 by default)."""
    import onnx
    from onnx import TensorProto, helper

    dtype = TensorProto.FLOAT if dtype is None else dtype
    height, width = size
    image = helper.make_tensor_value_info("input.1", dtype, [batch, 3, height, width])
    first = helper.make_tensor_value_info("d0", dtype, [batch, 1, height, width])
    second = helper.make_tensor_value_info("d1", dtype, [batch, 1, height, width])
    constants = [
        helper.make_tensor("starts", TensorProto.INT64, [1], [0]),
        helper.make_tensor("ends", TensorProto.INT64, [1], [1]),
        helper.make_tensor("axes", TensorProto.INT64, [1], [1]),
        helper.make_tensor("gain", dtype, [], [gain]),
    ]
    nodes = [
        helper.make_node("Slice", ["input.1", "starts", "ends", "axes"], ["red"]),
        helper.make_node("Mul", ["red", "gain"], ["d0"]),
        helper.make_node("Neg", ["red"], ["d1"]),
    ]
    graph = helper.make_graph(nodes, "tiny", [image], [first, second], constants)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 9
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(path))
    return path
