"""A toy zoo plugin the tests register: in-process, or installed as a real distribution.

Tiny on purpose: 8×8 inputs, an MLP, a regression task and a two-step (GAN-like) task.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import zoo
from zoo import Experiment, hookimpl


@dataclass
class BlobsConfig:
    size: int = 256
    noise: float = 0.1


class Blobs(zoo.Dataset):
    """Random 1×8×8 images whose target is their mean brightness."""

    Config = BlobsConfig

    def input_shape(self) -> tuple[int, ...]:
        return (1, 8, 8)

    def split(self, name: str, seed: int):
        import torch

        offsets = {"train": 0, "val": 1, "test": 2}
        g = torch.Generator().manual_seed(seed * 10 + offsets[name])
        n = self.config.size if name == "train" else max(8, self.config.size // 4)
        x = torch.rand(n, 1, 8, 8, generator=g)
        y = x.mean(dim=(1, 2, 3)).unsqueeze(1) + self.config.noise * torch.randn(n, 1, generator=g)
        return torch.utils.data.TensorDataset(x, y)

    def load_image(self, path):
        import torch
        from PIL import Image

        img = Image.open(path).convert("L").resize((8, 8))
        return torch.frombuffer(bytearray(img.tobytes()), dtype=torch.uint8).float().div(255).view(1, 8, 8)


class HashBlobs(Blobs):
    """Blobs generated on the device from their index with a sine hash: no DataLoader at all."""

    on_device = True

    def split(self, name: str, seed: int):
        import torch

        n = self.config.size if name == "train" else max(8, self.config.size // 4)
        return torch.utils.data.TensorDataset(torch.arange(n))  # only its length is used

    def device_batch(self, split, seed, indices):
        import torch

        offset = {"train": 0, "val": 1, "test": 2}[split] * 1_000_003 + seed * 7919
        pixels = torch.arange(64, device=indices.device, dtype=torch.float32)
        x = torch.frac(torch.sin((indices[:, None].float() + offset) * 12.9898 + pixels * 78.233) * 43758.5453)
        x = x.abs().view(-1, 1, 8, 8)
        return x, x.mean(dim=(1, 2, 3)).unsqueeze(1)


@dataclass
class RegressionConfig:
    delay: float = 0.0  # seconds slept per loss call: makes a run slow enough to kill in a test
    fail_at_step: int = 0  # >0: the loss turns nan at that call (to test the nan guard)


class Regression(zoo.Task):
    """Predict one number; judged by mean squared error."""

    Config = RegressionConfig
    main_metric = "mse"

    def __init__(self, config=None):
        super().__init__(config)
        self.calls = 0

    def outputs(self, input_shape):
        return {"y": (1,)}

    def loss(self, model, batch, phase="main"):
        import torch.nn.functional as F

        self.calls += 1
        if self.config.delay:
            time.sleep(self.config.delay)
        x, y = batch
        loss = F.mse_loss(model(x), y)
        if self.config.fail_at_step and self.calls >= self.config.fail_at_step:
            loss = loss * float("nan")
        return loss, {"loss": loss}

    def evaluate(self, model, batches):
        total, n = 0.0, 0
        for x, y in batches:
            total += float(((model(x).float() - y) ** 2).sum())
            n += len(y)
        return {"mse": total / max(n, 1)}

    def decode(self, outputs):
        return [f"{v:.3f}" for v in outputs["y"].flatten().tolist()]


class TwoStep(zoo.Task):
    """A GAN on blobs: two phases through the one trainer contract."""

    main_metric = "d_loss"
    phases = ("discriminator", "generator")

    def outputs(self, input_shape):
        return {"image": input_shape}

    def forward(self, model, batch):
        import torch

        z = torch.randn(len(batch[0]), 4, device=batch[0].device)
        return {"image": model.generator(z)}

    def parameters(self, model, phase="main"):
        return getattr(model, phase).parameters()

    def loss(self, model, batch, phase="main"):
        import torch
        import torch.nn.functional as F

        x = batch[0]
        fake = model.generator(torch.randn(len(x), 4, device=x.device))
        if phase == "discriminator":
            real_logit, fake_logit = model.discriminator(x), model.discriminator(fake.detach())
            loss = F.softplus(-real_logit).mean() + F.softplus(fake_logit).mean()
        else:
            loss = F.softplus(-model.discriminator(fake)).mean()
        return loss, {"loss": loss}

    def evaluate(self, model, batches):
        import torch

        losses = []
        for (x, *_) in batches:
            fake = model.generator(torch.randn(len(x), 4, device=x.device))
            losses.append(float(torch.nn.functional.softplus(-model.discriminator(x)).mean()
                                + torch.nn.functional.softplus(model.discriminator(fake)).mean()))
        return {"d_loss": sum(losses) / max(len(losses), 1)}


@dataclass
class MLPConfig:
    hidden: int = 16
    dropout: float = 0.1


class MLP(zoo.Model):
    """Flatten → Linear → ReLU → Dropout → Linear (one head per declared output)."""

    Config = MLPConfig

    def build(self, spec):
        from math import prod

        from torch import nn

        (name, shape), = spec.outputs.items()
        return nn.Sequential(nn.Flatten(), nn.Linear(prod(spec.input_shape), self.config.hidden),
                             nn.ReLU(), nn.Dropout(self.config.dropout),
                             nn.Linear(self.config.hidden, prod(shape)))


class TinyGAN(zoo.Model):
    """A generator and a discriminator as two submodules."""

    def build(self, spec):
        from math import prod

        from torch import nn

        n = prod(spec.input_shape)
        model = nn.Module()
        model.generator = nn.Sequential(nn.Linear(4, n), nn.Sigmoid(), nn.Unflatten(1, spec.input_shape))
        model.discriminator = nn.Sequential(nn.Flatten(), nn.Linear(n, 1))
        return model


@hookimpl
def zoo_register_tasks(register):
    register("toy-regression", Regression)
    register("toy-twostep", TwoStep)


@hookimpl
def zoo_register_datasets(register):
    register("toy-blobs", Blobs)
    register("toy-hashblobs", HashBlobs)


@hookimpl
def zoo_register_models(register):
    register("toy-mlp", MLP)
    register("toy-gan", TinyGAN)


@hookimpl
def zoo_register_experiments(register):
    settings = {"train.epochs": 2, "train.batch_size": 16, "train.num_workers": 0, "train.log_every": 4}
    register(Experiment("toy.regression", task="toy-regression", dataset="toy-blobs", model="toy-mlp",
                        description="Toy regression on blobs", settings=settings))
    register(Experiment("toy.gan", task="toy-twostep", dataset="toy-blobs", model="toy-gan",
                        description="Toy two-step GAN on blobs", settings=settings))
