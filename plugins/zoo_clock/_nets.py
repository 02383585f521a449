"""``nn.Module`` code of the clock readers (imported only when a model is built)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import torch
from torch import nn


class Heads(nn.Module):
    """One linear layer per named output, reshaped to the output's per-sample shape."""

    def __init__(self, features: int, outputs: Mapping[str, tuple[int, ...]]) -> None:
        super().__init__()
        self.shapes = {k: tuple(v) for k, v in outputs.items()}
        self.heads = nn.ModuleDict(
            {k: nn.Linear(features, math.prod(v)) for k, v in self.shapes.items()})

    def forward(self, z: torch.Tensor) -> dict[str, torch.Tensor]:
        return {k: h(z).reshape(z.shape[0], *self.shapes[k]) for k, h in self.heads.items()}


class SeedCNN(nn.Module):
    """The seed's Keras-style CNN: three (valid 3×3 conv, ReLU, 2×2 max-pool) blocks, the second
    conv with stride 2, then dense ReLU layers and a linear head per output."""

    def __init__(self, in_shape: Sequence[int], channels: Sequence[int], dense: Sequence[int],
                 outputs: Mapping[str, tuple[int, ...]], dropout: float = 0.0) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        c_in = in_shape[0]
        for i, c in enumerate(channels):
            layers += [nn.Conv2d(c_in, c, 3, stride=2 if i == 1 else 1), nn.ReLU(inplace=True),
                       nn.MaxPool2d(2)]
            c_in = c
        self.features = nn.Sequential(*layers, nn.Flatten())
        with torch.no_grad():
            flat = self.features(torch.zeros(1, *in_shape)).shape[1]
        mlp: list[nn.Module] = []
        for d in dense:
            mlp += [nn.Linear(flat, d), nn.ReLU(inplace=True)]
            if dropout:
                mlp.append(nn.Dropout(dropout))
            flat = d
        self.mlp = nn.Sequential(*mlp)
        self.heads = Heads(flat, outputs)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        return self.heads(self.mlp(self.features(x)))


class Block(nn.Module):
    """A ResNet basic block (two 3×3 convs, BN, identity or 1×1 shortcut)."""

    def __init__(self, c_in: int, c_out: int, stride: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False), nn.BatchNorm2d(c_out),
            nn.ReLU(inplace=True),
            nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False), nn.BatchNorm2d(c_out))
        self.skip = nn.Identity() if stride == 1 and c_in == c_out else nn.Sequential(
            nn.Conv2d(c_in, c_out, 1, stride, bias=False), nn.BatchNorm2d(c_out))
        self.act = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.body(x) + self.skip(x))


class SmallResNet(nn.Module):
    """A compact ResNet for 150×150 clocks that keeps *where* things are.

    Stem (5×5 stride 2 + max-pool) → 4 stages (widths w, 2w, 4w, 8w; strides 1, 2, 2, 2) →
    4×4 adaptive average pool → flatten → dense → heads. Pooling to 4×4 rather than 1×1 keeps the
    spatial layout the hand angles live in; CPU cost ≈ 0.1 GMAC per image at w=32.
    """

    def __init__(self, in_shape: Sequence[int], outputs: Mapping[str, tuple[int, ...]],
                 width: int = 32, hidden: int = 256, dropout: float = 0.0,
                 backbone: nn.Module | None = None, backbone_features: int = 0) -> None:
        super().__init__()
        if backbone is None:
            w = width
            self.body: nn.Module = nn.Sequential(
                nn.Conv2d(in_shape[0], w, 5, 2, 2, bias=False), nn.BatchNorm2d(w),
                nn.ReLU(inplace=True), nn.MaxPool2d(3, 2, 1),
                Block(w, w, 1), Block(w, 2 * w, 2), Block(2 * w, 4 * w, 2), Block(4 * w, 8 * w, 2))
            feats = 8 * w
        else:
            self.body, feats = backbone, backbone_features
        self.pool = nn.Sequential(nn.AdaptiveAvgPool2d(4), nn.Flatten())
        self.mlp = nn.Sequential(nn.Linear(feats * 16, hidden), nn.ReLU(inplace=True),
                                 nn.Dropout(dropout) if dropout else nn.Identity())
        self.heads = Heads(hidden, outputs)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        return self.heads(self.mlp(self.pool(self.body(x))))
