"""What the zoo trainer costs over a hand-written PyTorch loop (goal: ratio ≥ 0.98 on CPU).

Both train the same small CNN on the same in-memory data with the same batch size, optimizer
(AdamW, constant lr) and number of steps, then evaluate the test split and save weights. They
alternate in one process for several rounds; the medians are compared. The zoo side is the real
``Trainer.fit`` with everything it does: logging, progress accounting, nan guard, checkpoints,
validation and the weight card.

    python benchmarks/trainer_overhead.py [--rounds 5] [--steps 200] [--device cpu]

Ends with ``trainer_overhead ratio=<zoo throughput / plain throughput>``.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors.torch import save_file
from torch import nn

import zoo
from zoo import Experiment, hookimpl, plugins
from zoo.experiment import resolve
from zoo.training.loop import Trainer
from zoo.training.runtime import pick_device

BATCH = 64


@dataclass
class DataConfig:
    steps: int = 60


class RandomImages(zoo.Dataset):
    """Fixed random 3×32×32 images with 10 labels, held in memory."""

    Config = DataConfig

    def input_shape(self):
        return (3, 32, 32)

    def split(self, name, seed):
        n = self.config.steps * BATCH if name == "train" else BATCH
        g = torch.Generator().manual_seed(seed + hash(name) % 100)
        return torch.utils.data.TensorDataset(torch.randn(n, 3, 32, 32, generator=g),
                                              torch.randint(0, 10, (n,), generator=g))


class Classify(zoo.Task):
    main_metric = "accuracy"
    higher_is_better = True

    def outputs(self, input_shape):
        return {"logits": (10,)}

    def loss(self, model, batch, step="main"):
        x, y = batch
        loss = F.cross_entropy(model(x), y)
        return loss, {"loss": loss}

    def evaluate(self, model, batches):
        correct = total = 0
        for x, y in batches:
            correct += int((model(x).argmax(1) == y).sum())
            total += len(y)
        return {"accuracy": correct / max(total, 1)}


def make_cnn() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(3, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(64 * 8 * 8, 128), nn.ReLU(), nn.Linear(128, 10))


class CNN(zoo.Model):
    def build(self, spec):
        return make_cnn()


class BenchPlugin:
    @hookimpl
    def zoo_register_tasks(self, register):
        register("bench-classify", Classify)

    @hookimpl
    def zoo_register_datasets(self, register):
        register("bench-images", RandomImages)

    @hookimpl
    def zoo_register_models(self, register):
        register("bench-cnn", CNN)

    @hookimpl
    def zoo_register_experiments(self, register):
        register(Experiment("bench.cnn", task="bench-classify", dataset="bench-images", model="bench-cnn"))


def plain_loop(steps: int, device: torch.device, out: Path) -> float:
    """The loop a user writes by hand; returns images per second."""
    start = time.perf_counter()
    data = RandomImages(DataConfig(steps))
    loader = torch.utils.data.DataLoader(data.split("train", 0), batch_size=BATCH, shuffle=True,
                                         drop_last=True, num_workers=0)
    test = torch.utils.data.DataLoader(data.split("test", 0), batch_size=BATCH)
    model = make_cnn().to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.0)
    model.train()
    for x, y in loader:
        x, y = x.to(device), y.to(device)
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
    model.eval()
    with torch.no_grad():
        correct = sum(int((model(x.to(device)).argmax(1) == y.to(device)).sum()) for x, y in test)
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(out / "plain.safetensors"))
    assert correct >= 0
    if device.type == "cuda":
        torch.cuda.synchronize()
    return steps * BATCH / (time.perf_counter() - start)


def zoo_loop(steps: int, device: torch.device, out: Path) -> float:
    config = resolve("bench.cnn", {"train.batch_size": BATCH, "train.scheduler": "none", "train.epochs": 1,
                                   "train.num_workers": 0, "train.device": str(device),
                                   "train.precision": "fp32", "data.steps": steps})
    start = time.perf_counter()
    Trainer(config, out / f"zoo-{time.time_ns()}", progress=False).fit()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return steps * BATCH / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    device = pick_device(args.device)
    plugins.register_plugin(BenchPlugin(), "bench")
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        plain_loop(5, device, out), zoo_loop(5, device, out)  # warm-up: allocator, kernels, imports
        plain, ours = [], []
        for i in range(args.rounds):
            plain.append(plain_loop(args.steps, device, out))
            ours.append(zoo_loop(args.steps, device, out))
            print(f"round {i + 1}: plain {plain[-1]:8.1f} img/s   zoo {ours[-1]:8.1f} img/s")
    p, z = statistics.median(plain), statistics.median(ours)
    print(f"device {device}, torch {torch.__version__}, batch {BATCH}, {args.steps} steps, {args.rounds} rounds")
    print(f"median plain {p:.1f} img/s, zoo {z:.1f} img/s")
    print(f"trainer_overhead ratio={z / p:.3f}")


if __name__ == "__main__":
    main()
