"""The networks (torch code): imported only when a model is built, never at plugin load.

Every generative net exposes ``latent_dim`` and ``generate(z)`` (images in [0, 1]) where it has a
prior, so ``zoo sample`` / ``zoo interpolate`` work on any of them without knowing the family.
"""

from __future__ import annotations

import torch
from torch import nn

from zoo import UsageError


def _check_shape(shape: tuple[int, ...]) -> tuple[int, int]:
    """(channels, size) for the two supported geometries: 28×28 (MNIST nets) and 64×64."""
    if len(shape) != 3 or shape[1] != shape[2] or shape[1] not in (28, 64):
        raise UsageError(f"generative nets take C×28×28 or C×64×64 inputs, got {'×'.join(map(str, shape))}")
    return shape[0], shape[1]


def _encoder(channels: int, size: int, width: int) -> tuple[nn.Sequential, int]:
    """Four (MNIST) or five (64×64) strided Conv2D layers; returns the net and its flat size."""
    act = nn.LeakyReLU(0.2)
    w = width
    if size == 28:  # the report's encoder: four Conv2D, 28 → 14 → 7, no resizing
        layers = [
            nn.Conv2d(channels, w, 3, 1, 1), act,
            nn.Conv2d(w, 2 * w, 4, 2, 1), act,
            nn.Conv2d(2 * w, 2 * w, 3, 1, 1), act,
            nn.Conv2d(2 * w, 4 * w, 4, 2, 1), act,
        ]
        return nn.Sequential(*layers, nn.Flatten()), 4 * w * 7 * 7
    layers = [nn.Conv2d(channels, w, 4, 2, 1), act]  # 64 → 32 → 16 → 8 → 4
    c = w
    for _ in range(3):
        layers += [nn.Conv2d(c, 2 * c, 4, 2, 1), nn.BatchNorm2d(2 * c), act]
        c *= 2
    return nn.Sequential(*layers, nn.Flatten()), c * 4 * 4


def _decoder(latent: int, channels: int, size: int, width: int) -> nn.Sequential:
    """Mirror of the encoder ending in a ConvTranspose2d; outputs logits."""
    act = nn.LeakyReLU(0.2)
    w = width
    if size == 28:
        return nn.Sequential(
            nn.Linear(latent, 4 * w * 7 * 7), act,
            nn.Unflatten(1, (4 * w, 7, 7)),
            nn.ConvTranspose2d(4 * w, 2 * w, 4, 2, 1), act,  # 14
            nn.Conv2d(2 * w, 2 * w, 3, 1, 1), act,
            nn.ConvTranspose2d(2 * w, w, 4, 2, 1), act,  # 28
            nn.ConvTranspose2d(w, channels, 3, 1, 1),
        )
    c = 8 * w
    layers: list[nn.Module] = [nn.Linear(latent, c * 4 * 4), act, nn.Unflatten(1, (c, 4, 4))]
    for _ in range(3):
        layers += [nn.ConvTranspose2d(c, c // 2, 4, 2, 1), nn.BatchNorm2d(c // 2), act]
        c //= 2
    layers.append(nn.ConvTranspose2d(c, channels, 4, 2, 1))
    return nn.Sequential(*layers)


class ConvAE(nn.Module):
    """Deterministic convolutional autoencoder: ``forward`` returns reconstruction logits."""

    def __init__(self, shape: tuple[int, ...], latent_dim: int, width: int) -> None:
        super().__init__()
        channels, size = _check_shape(shape)
        self.latent_dim = latent_dim
        self.encoder, flat = _encoder(channels, size, width)
        self.to_code = nn.Linear(flat, latent_dim)
        self.decoder = _decoder(latent_dim, channels, size, width)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.to_code(self.encoder(x))

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return self.decoder(z)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"recon": self.decode(self.encode(x))}


class ConvVAE(nn.Module):
    """Gaussian-posterior VAE; the decoder's logits are Bernoulli logits or sigmoid means."""

    def __init__(self, shape: tuple[int, ...], latent_dim: int, width: int) -> None:
        super().__init__()
        channels, size = _check_shape(shape)
        self.latent_dim = latent_dim
        self.encoder, flat = _encoder(channels, size, width)
        self.to_stats = nn.Linear(flat, 2 * latent_dim)
        self.decoder = _decoder(latent_dim, channels, size, width)

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mu, logvar = self.to_stats(self.encoder(x)).chunk(2, dim=1)
        return mu, logvar.clamp(-12.0, 8.0)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return self.decoder(z)

    @torch.no_grad()
    def generate(self, z: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.decode(z))

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        mu, _ = self.encode(x)
        return {"recon": self.decode(mu)}


class _Generator(nn.Module):
    def __init__(self, latent: int, channels: int, size: int, width: int) -> None:
        super().__init__()
        w = width
        if size == 28:
            self.net = nn.Sequential(
                nn.Linear(latent, 4 * w * 7 * 7, bias=False),
                nn.Unflatten(1, (4 * w, 7, 7)), nn.BatchNorm2d(4 * w), nn.ReLU(),
                nn.ConvTranspose2d(4 * w, 2 * w, 4, 2, 1, bias=False), nn.BatchNorm2d(2 * w), nn.ReLU(),
                nn.ConvTranspose2d(2 * w, w, 4, 2, 1, bias=False), nn.BatchNorm2d(w), nn.ReLU(),
                nn.ConvTranspose2d(w, channels, 3, 1, 1), nn.Tanh(),
            )
        else:  # DCGAN (Radford et al.): 1 → 4 → 8 → 16 → 32 → 64
            c = 8 * w
            layers: list[nn.Module] = [
                nn.Unflatten(1, (latent, 1, 1)),
                nn.ConvTranspose2d(latent, c, 4, 1, 0, bias=False), nn.BatchNorm2d(c), nn.ReLU(),
            ]
            for _ in range(3):
                layers += [nn.ConvTranspose2d(c, c // 2, 4, 2, 1, bias=False), nn.BatchNorm2d(c // 2), nn.ReLU()]
                c //= 2
            layers += [nn.ConvTranspose2d(c, channels, 4, 2, 1), nn.Tanh()]
            self.net = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z)


class _Discriminator(nn.Module):
    """DCGAN's discriminator; with ``spectral_norm`` every layer is spectrally normalised (Miyato
    et al. 2018) and batch norm is left out, as in SN-GAN."""

    def __init__(self, channels: int, size: int, width: int, spectral_norm: bool = False) -> None:
        super().__init__()
        w = width
        act = nn.LeakyReLU(0.2)
        sn = nn.utils.parametrizations.spectral_norm if spectral_norm else (lambda m: m)

        def bn(c: int) -> nn.Module:
            return nn.Identity() if spectral_norm else nn.BatchNorm2d(c)

        if size == 28:
            self.net = nn.Sequential(
                sn(nn.Conv2d(channels, w, 4, 2, 1)), act,  # 14
                sn(nn.Conv2d(w, 2 * w, 4, 2, 1)), bn(2 * w), act,  # 7
                sn(nn.Conv2d(2 * w, 4 * w, 3, 2, 1)), bn(4 * w), act,  # 4
                nn.Flatten(), sn(nn.Linear(4 * w * 4 * 4, 1)),
            )
        else:
            layers: list[nn.Module] = [sn(nn.Conv2d(channels, w, 4, 2, 1)), act]
            c = w
            for _ in range(3):
                layers += [sn(nn.Conv2d(c, 2 * c, 4, 2, 1, bias=False)), bn(2 * c), act]
                c *= 2
            layers += [sn(nn.Conv2d(c, 1, 4, 1, 0)), nn.Flatten()]
            self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x).flatten()


def dcgan_init(module: nn.Module) -> None:
    """DCGAN's N(0, 0.02) init: it measurably steadies early GAN training."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            spectral = nn.utils.parametrize.is_parametrized(m, "weight")
            nn.init.normal_(m.parametrizations.weight.original if spectral else m.weight, 0.0, 0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
            nn.init.normal_(m.weight, 1.0, 0.02)
            nn.init.zeros_(m.bias)


class GAN(nn.Module):
    """Generator (z → tanh image) and discriminator (image → logit) under one module."""

    def __init__(self, shape: tuple[int, ...], latent_dim: int, width: int,
                 spectral_norm: bool = False) -> None:
        super().__init__()
        channels, size = _check_shape(shape)
        self.latent_dim = latent_dim
        self.generator = _Generator(latent_dim, channels, size, width)
        self.discriminator = _Discriminator(channels, size, width, spectral_norm)
        dcgan_init(self)

    @torch.no_grad()
    def generate(self, z: torch.Tensor) -> torch.Tensor:
        return (self.generator(z) + 1) / 2

    def forward(self, z: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"image": self.generator(z)}


class LeNet(nn.Module):
    """LeNet-5-style classifier; ``features`` (the 84-d penultimate layer) feed the Fréchet distance."""

    def __init__(self, shape: tuple[int, ...], classes: int) -> None:
        super().__init__()
        channels, size = shape[0], shape[-1]
        self.body = nn.Sequential(
            nn.Conv2d(channels, 16, 5, padding=2), nn.BatchNorm2d(16), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(16, 32, 5), nn.BatchNorm2d(32), nn.ReLU(), nn.MaxPool2d(2),
            nn.Flatten(),
        )
        flat = 32 * ((size // 2 - 4) // 2) ** 2
        self.head = nn.Sequential(
            nn.Linear(flat, 120), nn.ReLU(), nn.Dropout(0.25), nn.Linear(120, 84), nn.ReLU()
        )
        self.classifier = nn.Linear(84, classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x))

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"logits": self.classifier(self.features(x))}
