"""Interleaved spirals: a dataset, a classification task and an MLP, the three parts of a recipe.

Nothing here imports torch at module level: ``zoo list`` imports every plugin, and must stay fast.
Each method imports what it needs.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

import zoo


def spiral_points(n: int, arms: int, noise: float, seed: int) -> list[tuple[float, float, int]]:
    """``n`` points (x, y, arm) on ``arms`` interleaved spirals; the same seed gives the same points."""
    rng = random.Random(seed)
    points = []
    for i in range(n):
        arm = i % arms
        r = rng.random()
        angle = 2 * math.pi * arm / arms + 3 * math.pi * r
        x = r * math.cos(angle) + rng.gauss(0, noise)
        y = r * math.sin(angle) + rng.gauss(0, noise)
        points.append((x, y, arm))
    return points


class Spirals(zoo.Dataset):
    """Points on interleaved spirals, generated from the seed: no download, no files."""

    @dataclass
    class Config:
        # zoo.ranged declares what --set may give; bad values stop with one line before any work
        size: int = zoo.ranged(2048, 4)  # training points; val and test get a quarter each
        arms: int = zoo.ranged(2, 2)
        noise: float = zoo.ranged(0.03, 0)

    def input_shape(self) -> tuple[int, ...]:
        return (2,)

    def split(self, name: str, seed: int):
        import torch

        offset = {"train": 0, "val": 1, "test": 2}[name]
        n = self.config.size if name == "train" else self.config.size // 4
        points = spiral_points(n, self.config.arms, self.config.noise, seed * 3 + offset)
        x = torch.tensor([(px, py) for px, py, _ in points], dtype=torch.float32)
        y = torch.tensor([arm for _, _, arm in points], dtype=torch.long)
        return torch.utils.data.TensorDataset(x, y)


class SpiralArm(zoo.Task):
    """Which spiral arm a point lies on; judged by accuracy."""

    main_metric = "accuracy"
    higher_is_better = True

    @dataclass
    class Config:
        arms: int = zoo.ranged(2, 2)

    def outputs(self, input_shape: tuple[int, ...]) -> dict[str, tuple[int, ...]]:
        return {"logits": (self.config.arms,)}

    def loss(self, model, batch, phase="main"):
        import torch.nn.functional as F

        x, y = batch
        logits = self.forward(model, batch)["logits"]
        loss = F.cross_entropy(logits, y)
        return loss, {"loss": loss.detach()}

    def evaluate(self, model, batches):
        import torch.nn.functional as F

        correct, total, loss = 0, 0, 0.0
        for x, y in batches:
            logits = self.forward(model, (x, y))["logits"].float()
            loss += float(F.cross_entropy(logits, y, reduction="sum"))
            correct += int((logits.argmax(1) == y).sum())
            total += len(y)
        return {"accuracy": correct / max(total, 1), "loss": loss / max(total, 1)}

    def decode(self, outputs):
        return [f"arm {i}" for i in outputs["logits"].argmax(1).tolist()]


class SpiralMLP(zoo.Model):
    """A small MLP: input → (Linear, ReLU) × depth → one logit per arm."""

    @dataclass
    class Config:
        width: int = zoo.ranged(64, 1)
        depth: int = zoo.ranged(2, 0)  # hidden layers; 0 is a linear classifier

    def build(self, spec: zoo.Spec):
        from math import prod

        from torch import nn

        (shape,) = spec.outputs.values()
        layers, width_in = [], prod(spec.input_shape)
        for _ in range(self.config.depth):
            layers += [nn.Linear(width_in, self.config.width), nn.ReLU()]
            width_in = self.config.width
        layers.append(nn.Linear(width_in, prod(shape)))
        return nn.Sequential(*layers)
