"""Clock reader models: the seed's two CNNs, exactly, a better ResNet-style reader, and an
align-then-read reader for clocks in the wild (``clock-stn``).

Each builds one linear head per output the task asks for (``Spec.outputs``), so any reader fits
any clock task. This module is torch-free (factories and their ``Config``); the ``nn.Module`` code
lives in ``nets``, imported inside ``build``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from zoo import Model, Spec, UsageError, ranged

if TYPE_CHECKING:
    from torch import nn


class Figure1CNN(Model):
    """The seed's Figure 1 (regression) network: Conv(32)-Pool-Conv(64, s2)-Pool-Conv(128)-Pool-
    Flatten(8192)-Dense(256)-Dense(64)-heads; 2,206,593 parameters with one scalar output."""

    @dataclass
    class Config:
        dropout: float = ranged(0.0, 0, 1, hi_open=True)  # the seed used none

    def build(self, spec: Spec) -> nn.Module:
        from .nets import SeedCNN

        return SeedCNN(spec.input_shape, (32, 64, 128), (256, 64), spec.outputs,
                       self.config.dropout)


class Figure2CNN(Model):
    """The seed's Figure 2 (classification) network: Conv(16)-Pool-Conv(32, s2)-Pool-Conv(64)-
    Pool-Flatten(4096)-Dense(64)-heads; 287,064 parameters with 24 classes."""

    Config = Figure1CNN.Config  # the seed's two networks take the same settings

    def build(self, spec: Spec) -> nn.Module:
        from .nets import SeedCNN

        return SeedCNN(spec.input_shape, (16, 32, 64), (64,), spec.outputs, self.config.dropout)


class ClockResNet(Model):
    """A small ResNet reader (or any timm backbone with ``in_chans=1``) with a spatial 4×4 pool."""

    @dataclass
    class Config:
        width: int = ranged(32, 1)  # channels of the first stage (then 2×, 4×, 8×)
        hidden: int = ranged(256, 1)
        dropout: float = ranged(0.0, 0, 1, hi_open=True)
        backbone: str = ""  # a timm model name (e.g. resnet18) instead of the built-in net

    def build(self, spec: Spec) -> nn.Module:
        from .nets import SmallResNet

        c = self.config
        if not c.backbone:
            return SmallResNet(spec.input_shape, spec.outputs, c.width, c.hidden, c.dropout)
        import timm

        try:
            body = timm.create_model(c.backbone, pretrained=False, in_chans=spec.input_shape[0],
                                     num_classes=0, global_pool="")
        except RuntimeError as e:  # timm: unknown model
            raise UsageError(f"model.backbone: {str(e).splitlines()[0]}") from None
        return SmallResNet(spec.input_shape, spec.outputs, hidden=c.hidden, dropout=c.dropout,
                           backbone=body, backbone_features=body.num_features)


class ClockSTN(Model):
    """Align, then read (a spatial transformer): a small localiser CNN finds where the dial's
    12/3/6/9 o'clock points lie, a homography solved from them samples an upright ``crop``² dial,
    and a clock-resnet reader reads that. With a task that declares ``points``
    (``clock-angles-aligned``) the points are an output too, so alignment can be supervised."""

    @dataclass
    class Config:
        crop: int = ranged(150, 16, 512)  # side of the aligned crop read (150: as trained)
        margin: float = ranged(1.2, 1, 3)  # crop spans ±margin dial radii (1.2: as a clean clock)
        loc_size: int = ranged(64, 16, 256)  # side of the localiser's downscaled input
        loc_width: int = ranged(16, 1)  # localiser channels of the first stage (then 2×, 4×, 8×)
        reader_grad: bool = False  # the reading loss also trains the localiser (through the warp)
        width: int = ranged(32, 1)  # reader, as clock-resnet
        hidden: int = ranged(256, 1)
        dropout: float = ranged(0.0, 0, 1, hi_open=True)
        backbone: str = ""  # a timm model name for the reader instead of the built-in net

    def build(self, spec: Spec) -> nn.Module:
        from .nets import AlignedReader, SmallResNet

        c = self.config
        reader = None
        if c.backbone:
            crop_shape = (spec.input_shape[0], c.crop, c.crop)
            heads = {k: v for k, v in spec.outputs.items() if k != "points"}
            settings = ClockResNet.Config(hidden=c.hidden, dropout=c.dropout, backbone=c.backbone)
            reader = ClockResNet(settings).build(Spec(crop_shape, heads))
            assert isinstance(reader, SmallResNet)
        return AlignedReader(spec.input_shape, spec.outputs, reader, c.crop, c.margin,
                             c.loc_size, c.loc_width, c.reader_grad, width=c.width,
                             hidden=c.hidden, dropout=c.dropout)


def stn_init_from_reader(reader_weights: str, out: str, **model_settings: object) -> str:
    """Write a ``clock-stn`` weight file whose reader is a trained ``clock-resnet``'s (same
    width/hidden/backbone) and whose localiser is untrained (identity): pass it to
    ``zoo run clock.wild-stn --weights OUT`` to start from a reader that already reads clean
    clocks. ``reader_weights`` is ``NAME[:TAG]``, a file or a URL; returns ``out``.
    """
    import torch
    from safetensors.torch import load_file, save_file

    from zoo import atomic_write, fetch

    from .tasks import ClockAnglesAligned

    tensors = load_file(fetch(reader_weights))
    spec = Spec((1, 150, 150), ClockAnglesAligned().outputs((1, 150, 150)))
    torch.manual_seed(0)
    model = ClockSTN(ClockSTN.Config(**model_settings)).build(spec)  # type: ignore[arg-type]
    state = model.state_dict()
    reader_keys = [k for k in state if k.startswith("reader.")]
    missing = [k for k in reader_keys if k.removeprefix("reader.") not in tensors]
    if missing:
        raise UsageError(f"{reader_weights} is not a clock-resnet reader of this shape "
                         f"(no {missing[0].removeprefix('reader.')})")
    for k in reader_keys:
        src = tensors[k.removeprefix("reader.")]
        if src.shape != state[k].shape:
            raise UsageError(f"{reader_weights}: {k.removeprefix('reader.')} has shape "
                             f"{tuple(src.shape)}, the reader needs {tuple(state[k].shape)}")
        state[k] = src.to(state[k].dtype)
    atomic_write(Path(out), lambda tmp: save_file({k: v.contiguous() for k, v in state.items()},
                                                  str(tmp)))
    return out
