"""U²-Net, U²-Netp and ISNet architectures (random weights) exported to ONNX, for timing.

Their real weights cannot be fetched here; a network's speed does not depend on its weights'
values, so the benchmark times these graphs, built layer for layer from the papers' architecture
tables (Qin et al. 2020, table 1 / fig. 5: RSU-L blocks, six encoder and five decoder stages,
side outputs fused by a 1×1 convolution; Qin et al. 2022: the same stages behind a stride-2
input convolution, at 1024², six side outputs and no fusion). Written here for the benchmark,
not used by the tool.

BiRefNet is not built: its Swin Transformer backbone and deformable-convolution decoder are a
different order of work, and its export needs custom operators.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn


class ConvBnRelu(nn.Sequential):
    def __init__(self, cin: int, cout: int, dilation: int = 1) -> None:
        super().__init__(
            nn.Conv2d(cin, cout, 3, padding=dilation, dilation=dilation),
            nn.BatchNorm2d(cout),
            nn.ReLU(inplace=True),
        )


def _up(x: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    return F.interpolate(x, size=like.shape[2:], mode="bilinear", align_corners=False)


class RSU(nn.Module):
    """Residual U-block RSU-L (``height`` = L): a small U-Net inside each stage."""

    def __init__(self, height: int, cin: int, mid: int, cout: int) -> None:
        super().__init__()
        self.conv_in = ConvBnRelu(cin, cout)
        self.encoders = nn.ModuleList(
            [ConvBnRelu(cout, mid)] + [ConvBnRelu(mid, mid) for _ in range(height - 2)]
        )
        self.bottom = ConvBnRelu(mid, mid, dilation=2)
        self.decoders = nn.ModuleList(
            [ConvBnRelu(2 * mid, mid) for _ in range(height - 2)] + [ConvBnRelu(2 * mid, cout)]
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        hx_in = self.conv_in(x)
        skips, hx = [], hx_in
        for i, encoder in enumerate(self.encoders):
            hx = encoder(hx if i == 0 else F.max_pool2d(hx, 2, 2, ceil_mode=True))
            skips.append(hx)
        hx = self.bottom(hx)
        for decoder, skip in zip(self.decoders, reversed(skips), strict=True):
            hx = decoder(torch.cat([_up(hx, skip), skip], 1))
        return hx + hx_in


class RSUF(nn.Module):
    """RSU-4F: dilations instead of pooling, for the lowest resolutions."""

    def __init__(self, cin: int, mid: int, cout: int) -> None:
        super().__init__()
        self.conv_in = ConvBnRelu(cin, cout)
        self.encoders = nn.ModuleList(
            [ConvBnRelu(cout, mid, 1), ConvBnRelu(mid, mid, 2), ConvBnRelu(mid, mid, 4)]
        )
        self.bottom = ConvBnRelu(mid, mid, 8)
        self.decoders = nn.ModuleList(
            [ConvBnRelu(2 * mid, mid, 4), ConvBnRelu(2 * mid, mid, 2), ConvBnRelu(2 * mid, cout)]
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        hx_in = self.conv_in(x)
        skips, hx = [], hx_in
        for encoder in self.encoders:
            hx = encoder(hx)
            skips.append(hx)
        hx = self.bottom(hx)
        for decoder, skip in zip(self.decoders, reversed(skips), strict=True):
            hx = decoder(torch.cat([hx, skip], 1))
        return hx + hx_in


# (kind, height, in, mid, out) per stage: encoders 1–6, then decoders 5–1 (paper, table 1).
U2NET_STAGES = [
    ("rsu", 7, 3, 32, 64),
    ("rsu", 6, 64, 32, 128),
    ("rsu", 5, 128, 64, 256),
    ("rsu", 4, 256, 128, 512),
    ("rsuf", 4, 512, 256, 512),
    ("rsuf", 4, 512, 256, 512),
    ("rsuf", 4, 1024, 256, 512),
    ("rsu", 4, 1024, 128, 256),
    ("rsu", 5, 512, 64, 128),
    ("rsu", 6, 256, 32, 64),
    ("rsu", 7, 128, 16, 64),
]
U2NETP_STAGES = [
    ("rsu", 7, 3, 16, 64),
    ("rsu", 6, 64, 16, 64),
    ("rsu", 5, 64, 16, 64),
    ("rsu", 4, 64, 16, 64),
    ("rsuf", 4, 64, 16, 64),
    ("rsuf", 4, 64, 16, 64),
    ("rsuf", 4, 128, 16, 64),
    ("rsu", 4, 128, 16, 64),
    ("rsu", 5, 128, 16, 64),
    ("rsu", 6, 128, 16, 64),
    ("rsu", 7, 128, 16, 64),
]


class U2Net(nn.Module):
    """U²-Net (or U²-Netp, or ISNet's layout with ``isnet=True``): seven sigmoid maps, the
    fused one first (ISNet: six side maps, the finest first)."""

    def __init__(self, stages: list[tuple], *, isnet: bool = False) -> None:
        super().__init__()
        self.isnet = isnet
        if isnet:  # a stride-2 convolution before stage 1 (the authors' pooling after it is
            #         defined but not used in their forward pass): stage 1 runs at half size
            self.stem = nn.Conv2d(3, 64, 3, stride=2, padding=1)
            stages = [("rsu", 7, 64, *stages[0][3:]), *stages[1:]]
        blocks = [
            RSU(h, cin, mid, cout) if kind == "rsu" else RSUF(cin, mid, cout)
            for kind, h, cin, mid, cout in stages
        ]
        self.encoders = nn.ModuleList(blocks[:6])
        self.decoders = nn.ModuleList(blocks[6:])
        side_channels = [stages[i][4] for i in (10, 9, 8, 7, 6)] + [stages[5][4]]
        self.sides = nn.ModuleList(nn.Conv2d(c, 1, 3, padding=1) for c in side_channels)
        self.fuse = nn.Conv2d(6, 1, 1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        size_of = x
        if self.isnet:
            x = self.stem(x)
        features = []
        for i, encoder in enumerate(self.encoders):
            x = encoder(x if i == 0 else F.max_pool2d(x, 2, 2, ceil_mode=True))
            features.append(x)
        decoded = [features[5]]
        hx = features[5]
        for decoder, skip in zip(self.decoders, reversed(features[:5]), strict=True):
            hx = decoder(torch.cat([_up(hx, skip), skip], 1))
            decoded.append(hx)
        # Side maps from the finest stage to the coarsest, at the input's size.
        sides = [_up(side(f), size_of) for side, f in zip(self.sides, decoded[::-1], strict=True)]
        if self.isnet:
            return tuple(torch.sigmoid(s) for s in sides)
        fused = self.fuse(torch.cat(sides, 1))
        return tuple(torch.sigmoid(s) for s in (fused, *sides))


ARCHITECTURES = {
    "u2net": (lambda: U2Net(U2NET_STAGES), 320),
    "u2net_human_seg": (lambda: U2Net(U2NET_STAGES), 320),
    "u2netp": (lambda: U2Net(U2NETP_STAGES), 320),
    "isnet-general-use": (lambda: U2Net(U2NET_STAGES, isnet=True), 1024),
}


def export(name: str, path: Path) -> Path:
    """Write model ``name``'s architecture with random weights as ONNX (free batch axis)."""
    build, size = ARCHITECTURES[name]
    torch.manual_seed(0)
    model = build().eval()
    path.parent.mkdir(parents=True, exist_ok=True)
    with torch.no_grad():
        torch.onnx.export(
            model,
            torch.zeros(1, 3, size, size),
            str(path),
            dynamo=False,
            opset_version=17,
            input_names=["input.1"],
            dynamic_axes={"input.1": {0: "batch"}},
        )
    return path
