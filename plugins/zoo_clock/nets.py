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


# --- align, then read: a spatial transformer for clocks in the wild --------------------------

# Canonical dial coordinates: the face is the unit circle, 12 o'clock at (0, -1), y down. The four
# control points are where 12, 3, 6 and 9 o'clock sit; no three are collinear, so their four
# images fix a homography.
CONTROL_POINTS = ((0.0, -1.0), (1.0, 0.0), (0.0, 1.0), (-1.0, 0.0))


def homography_from_points(src: torch.Tensor, dst: torch.Tensor) -> torch.Tensor:
    """The ``(B, 3, 3)`` homographies (``[2, 2]`` = 1) taking 4 points ``src`` to ``dst``.

    ``src`` ``(4, 2)`` or ``(B, 4, 2)``, ``dst`` ``(B, 4, 2)``. The direct linear transform: each
    pair (x, y) → (u, v) gives two rows of an 8×8 system in the 8 unknown entries, solved in
    float32 and differentiable in ``dst``. A degenerate quadrilateral (no solution) gives NaN rows
    rather than an exception, which a caller can replace.
    """
    dst = dst.float()
    src = src.float().to(dst.device).expand(dst.shape[0], 4, 2)
    x, y, u, v = src[..., 0], src[..., 1], dst[..., 0], dst[..., 1]
    one, zero = torch.ones_like(x), torch.zeros_like(x)
    rows_u = torch.stack([x, y, one, zero, zero, zero, -u * x, -u * y], -1)
    rows_v = torch.stack([zero, zero, zero, x, y, one, -v * x, -v * y], -1)
    a = torch.cat([rows_u, rows_v], 1)  # (B, 8, 8)
    b = torch.cat([u, v], 1)  # (B, 8)
    h, info = torch.linalg.solve_ex(a, b)
    h = torch.where((info == 0)[:, None], h, torch.full_like(h, float("nan")))
    return torch.cat([h, torch.ones_like(h[:, :1])], 1).reshape(-1, 3, 3)


def canonical_grid(side: int, margin: float, device: torch.device | None = None) -> torch.Tensor:
    """``(side, side, 3)`` homogeneous canonical coordinates of the crop's pixel centres: the crop
    spans [-margin, margin]² (the unit dial plus a border), row-major, y down."""
    lin = ((torch.arange(side, device=device, dtype=torch.float32) + 0.5) / side * 2 - 1) * margin
    v, u = torch.meshgrid(lin, lin, indexing="ij")
    return torch.stack([u, v, torch.ones_like(u)], -1)


def warp(images: torch.Tensor, h: torch.Tensor, grid: torch.Tensor) -> torch.Tensor:
    """Sample ``images`` ``(B, C, H, W)`` at ``h`` (canonical → [-1, 1] image coordinates,
    ``align_corners=False``) of every canonical point of ``grid`` ``(S, S, 3)``: ``(B, C, S, S)``,
    the dial upright and centred. ``F.affine_grid`` + ``grid_sample``, generalised to
    homographies; outside the image reads 0."""
    import torch.nn.functional as F

    p = torch.einsum("ijk,blk->bijl", grid, h.float())  # (B, S, S, 3)
    z = p[..., 2:].clamp(min=1e-4)  # points behind the camera do not occur for a dial in view
    return F.grid_sample(images.float(), p[..., :2] / z, mode="bilinear", padding_mode="zeros",
                         align_corners=False)


class Localiser(nn.Module):
    """Where is the dial? A small CNN on a ``size``² downscale of the input → 4 control points.

    Four stride-2 stages (widths w, 2w, 4w, 8w; two 3×3 convs each) → 4×4 average pool (keeps
    *where*) → dense → 8 numbers, added to ``base`` (the points of a centred upright dial). The
    last layer starts at zero, so an untrained localiser says "the base dial" for any image.
    """

    def __init__(self, in_chans: int, base: torch.Tensor, size: int = 64, width: int = 16,
                 hidden: int = 128) -> None:
        super().__init__()
        self.size = size
        layers: list[nn.Module] = []
        c_in = in_chans
        for c in (width, 2 * width, 4 * width, 8 * width):
            layers += [nn.Conv2d(c_in, c, 3, 2, 1, bias=False), nn.BatchNorm2d(c),
                       nn.ReLU(inplace=True), nn.Conv2d(c, c, 3, 1, 1, bias=False),
                       nn.BatchNorm2d(c), nn.ReLU(inplace=True)]
            c_in = c
        self.body = nn.Sequential(*layers, nn.AdaptiveAvgPool2d(4), nn.Flatten(),
                                  nn.Linear(16 * c_in, hidden), nn.ReLU(inplace=True))
        self.out = nn.Linear(hidden, 8)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)
        self.register_buffer("base", base.float().reshape(4, 2).clone(), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        import torch.nn.functional as F

        small = F.adaptive_avg_pool2d(x, self.size) if x.shape[-1] != self.size else x
        offsets = self.out(self.body(small)).float().reshape(-1, 4, 2)
        return self.base + offsets


class AlignedReader(nn.Module):
    """Align, then read: ``Localiser`` → homography (DLT of its 4 points) → an upright
    ``crop``² crop of the dial spanning ``margin`` dial radii each way → a reader.

    ``outputs`` are the task's: every one but ``points`` is a reader head; ``points`` (4, 2),
    when asked for, is the localiser's answer, so the task can supervise alignment. Untrained,
    the localiser puts the dial at the frame's centre with radius ``1 / margin``: the crop is
    then the whole input, resampled, and the model is a plain reader. ``reader_grad`` lets the
    reading loss move the localiser through the sampling grid too (the classic, unsupervised
    spatial transformer); off, the localiser learns from the supervised points alone.
    """

    def __init__(self, in_shape: Sequence[int], outputs: Mapping[str, tuple[int, ...]],
                 reader: nn.Module | None = None, crop: int = 150, margin: float = 1.2,
                 loc_size: int = 64, loc_width: int = 16, reader_grad: bool = False,
                 **reader_args: object) -> None:
        super().__init__()
        self.with_points = "points" in outputs
        self.reader_grad = reader_grad
        heads = {k: v for k, v in outputs.items() if k != "points"}
        c = in_shape[0]
        control = torch.tensor(CONTROL_POINTS)
        self.loc = Localiser(c, control / margin, loc_size, loc_width)
        self.reader = reader if reader is not None else SmallResNet(
            (c, crop, crop), heads, **reader_args)  # type: ignore[arg-type]
        self.register_buffer("control", control, persistent=False)
        self.register_buffer("grid", canonical_grid(crop, margin), persistent=False)

    def align(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(points (B, 4, 2), homography (B, 3, 3), upright crop (B, C, crop, crop))."""
        points = self.loc(x)
        with torch.autocast(x.device.type, enabled=False):  # geometry in float32
            h = homography_from_points(self.control,
                                       points.float() if self.reader_grad else points.detach().float())
            fallback = homography_from_points(self.control, self.loc.base[None])
            h = torch.where(torch.isfinite(h).all(-1).all(-1)[:, None, None], h, fallback)
            crop = warp(x, h, self.grid)
        return points, h, crop

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        points, _, crop = self.align(x)
        out = self.reader(crop)
        if self.with_points:
            out["points"] = points
        return out
