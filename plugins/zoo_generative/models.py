"""Model factories: typed configs here (torch-free); the nn.Modules live in ``nets``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from zoo import Model, Spec, ranged

if TYPE_CHECKING:
    from torch import nn


class ConvAE(Model):
    """Convolutional autoencoder: 4-Conv2D encoder (MNIST) / strided 64×64 encoder, ConvTranspose decoder."""

    @dataclass
    class Config:
        latent_dim: int = ranged(32, 1)
        width: int = ranged(16, 1)  # channels of the first conv layer; later layers use 2× and 4×

    def build(self, spec: Spec) -> nn.Module:
        from .nets import ConvAE as Net

        return Net(spec.input_shape, self.config.latent_dim, self.config.width)


class ConvVAE(Model):
    """Convolutional VAE with a diagonal-Gaussian posterior and the autoencoder's layout."""

    Config = ConvAE.Config  # the autoencoder's layout, so the same settings

    def build(self, spec: Spec) -> nn.Module:
        from .nets import ConvVAE as Net

        return Net(spec.input_shape, self.config.latent_dim, self.config.width)


class DCGAN(Model):
    """DCGAN-style generator and discriminator (a 28×28 variant for MNIST)."""

    @dataclass
    class Config:
        latent_dim: int = ranged(256, 1)
        width: int = ranged(16, 1)
        spectral_norm: bool = False  # spectrally normalised discriminator without batch norm (SN-GAN)

    def build(self, spec: Spec) -> nn.Module:
        from .nets import GAN

        return GAN(spec.input_shape, self.config.latent_dim, self.config.width, self.config.spectral_norm)


class LeNet(Model):
    """LeNet-5-style CNN classifier; exposes ``features`` for the Fréchet distance."""

    def build(self, spec: Spec) -> nn.Module:
        from .nets import LeNet as Net

        (classes,) = spec.outputs["logits"]
        return Net(spec.input_shape, classes)
