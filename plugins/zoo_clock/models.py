"""Clock reader models: the seed's two CNNs, exactly, and a better ResNet-style reader.

Each builds one linear head per output the task asks for (``Spec.outputs``), so any reader fits
any clock task. Torch is imported inside ``build`` only.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from zoo import Model, Spec, UsageError
from zoo.config import ranged

if TYPE_CHECKING:
    from torch import nn


@dataclass
class SeedConfig:
    dropout: float = ranged(0.0, 0, 1, hi_open=True)  # the seed used none


class Figure1CNN(Model):
    """The seed's Figure 1 (regression) network: Conv(32)-Pool-Conv(64, s2)-Pool-Conv(128)-Pool-
    Flatten(8192)-Dense(256)-Dense(64)-heads; 2,206,593 parameters with one scalar output."""

    Config = SeedConfig

    def build(self, spec: Spec) -> nn.Module:
        from ._nets import SeedCNN

        return SeedCNN(spec.input_shape, (32, 64, 128), (256, 64), spec.outputs,
                       self.config.dropout)


class Figure2CNN(Model):
    """The seed's Figure 2 (classification) network: Conv(16)-Pool-Conv(32, s2)-Pool-Conv(64)-
    Pool-Flatten(4096)-Dense(64)-heads; 287,064 parameters with 24 classes."""

    Config = SeedConfig

    def build(self, spec: Spec) -> nn.Module:
        from ._nets import SeedCNN

        return SeedCNN(spec.input_shape, (16, 32, 64), (64,), spec.outputs, self.config.dropout)


@dataclass
class ResNetConfig:
    width: int = ranged(32, 1)  # channels of the first stage (then 2×, 4×, 8×)
    hidden: int = ranged(256, 1)
    dropout: float = ranged(0.0, 0, 1, hi_open=True)
    backbone: str = ""  # a timm model name (e.g. resnet18) instead of the built-in net


class ClockResNet(Model):
    """A small ResNet reader (or any timm backbone with ``in_chans=1``) with a spatial 4×4 pool."""

    Config = ResNetConfig

    def build(self, spec: Spec) -> nn.Module:
        from ._nets import SmallResNet

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
