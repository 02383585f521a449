"""Data for the loop: seeding, a resumable sample order, and batches that keep up.

Splits held in memory (``get_batch(indices)``) or built on the device are sliced a whole batch
at a time in-process (:class:`BatchLoader`); anything else goes through a DataLoader.
"""

from __future__ import annotations

import os
import random
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Sampler

from ..api import Dataset
from ..config import TrainConfig


def seed_everything(seed: int, deterministic: bool = False) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    if deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True)
        torch.backends.cudnn.benchmark = False
    elif torch.cuda.is_available():
        torch.backends.cudnn.benchmark = True


def seed_worker(worker_id: int) -> None:
    """DataLoader workers: NumPy and Python seeded from torch's per-worker seed."""
    seed = torch.initial_seed() % 2**32
    np.random.seed(seed)
    random.seed(seed)


def to_device(batch: Any, device: torch.device, channels_last: bool = False) -> Any:
    if isinstance(batch, torch.Tensor):
        batch = batch.to(device, non_blocking=True)
        return batch.contiguous(memory_format=torch.channels_last) if channels_last and batch.dim() == 4 else batch
    if isinstance(batch, (list, tuple)):
        return type(batch)(to_device(b, device, channels_last) for b in batch)
    if isinstance(batch, dict):
        return {k: to_device(v, device, channels_last) for k, v in batch.items()}
    return batch


# ---------------------------------------------------------------- data order that can resume


class ResumableSampler(Sampler[int]):
    """A seeded permutation per epoch, sharded across ranks, that can start mid-epoch.

    Replaces RandomSampler + DistributedSampler: the order depends only on (seed, epoch), so a
    resumed run sees exactly the batches the uninterrupted run would have seen.
    """

    def __init__(self, size: int, batch_size: int, shuffle: bool, seed: int, rank: int = 0,
                 world: int = 1) -> None:
        self.size, self.batch_size, self.shuffle, self.seed = size, batch_size, shuffle, seed
        self.rank, self.world = rank, world
        self.per_rank = size // world
        self.epoch, self.start_batch = 0, 0

    def set_epoch(self, epoch: int, start_batch: int = 0) -> None:
        self.epoch, self.start_batch = epoch, start_batch

    def __iter__(self) -> Iterator[int]:
        if self.shuffle:
            g = torch.Generator().manual_seed(self.seed * 100_003 + self.epoch)
            order = torch.randperm(self.size, generator=g)
        else:
            order = torch.arange(self.size)
        mine = order[self.rank : self.per_rank * self.world : self.world]
        return iter(mine[self.start_batch * self.batch_size :].tolist())

    def __len__(self) -> int:
        return max(0, self.per_rank - self.start_batch * self.batch_size)


def default_workers() -> int:
    return max(0, min(8, (os.cpu_count() or 1) - 1))


class BatchLoader:
    """Whole batches fetched in-process, in the sampler's (resumable) order: no workers, no collate.

    Used for data already in memory (a split with ``get_batch(indices)``) or built on the device
    (``Dataset.on_device``): slicing a batch out of a tensor costs far less than a DataLoader
    worker, and leaves every core to the model.
    """

    def __init__(self, fetch: Callable[[torch.Tensor], Any], sampler: Sampler, batch_size: int,
                 drop_last: bool, device: torch.device | None = None) -> None:
        self.fetch, self.sampler, self.batch_size = fetch, sampler, batch_size
        self.drop_last, self.device = drop_last, device

    def __iter__(self) -> Iterator[Any]:
        order = torch.tensor(list(self.sampler), dtype=torch.long)
        stop = len(order) - len(order) % self.batch_size if self.drop_last else len(order)
        for start in range(0, stop, self.batch_size):
            indices = order[start : start + self.batch_size]
            yield self.fetch(indices.to(self.device) if self.device is not None else indices)


def make_loader(dataset: Any, cfg: TrainConfig, sampler: Sampler, device: torch.device,
                drop_last: bool, batch_size: int) -> DataLoader:
    workers = default_workers() if cfg.num_workers < 0 else cfg.num_workers
    return DataLoader(
        dataset,
        batch_size=batch_size,
        sampler=sampler,
        num_workers=workers,
        pin_memory=device.type == "cuda",
        persistent_workers=workers > 0,
        drop_last=drop_last,
        worker_init_fn=seed_worker,
        generator=torch.Generator().manual_seed(cfg.seed),  # keeps the global RNG untouched
    )


def split_loader(dataset: Dataset, split: str, cfg: TrainConfig, seed: int, device: torch.device,
                 batch_size: int, shuffle: bool, rank: int = 0, world: int = 1) -> Any:
    """Batches of one split: the dataset's own on-device batches, whole batches sliced from
    memory (a split with ``get_batch``), or a DataLoader with workers."""
    data = dataset.split(split, seed)
    sampler = ResumableSampler(len(data), batch_size, shuffle, seed, rank, world)
    if dataset.on_device:
        return BatchLoader(lambda i: dataset.device_batch(split, seed, i), sampler, batch_size,
                           shuffle, device)
    if callable(getattr(data, "get_batch", None)) and cfg.num_workers <= 0:
        return BatchLoader(data.get_batch, sampler, batch_size, drop_last=shuffle)
    return make_loader(data, cfg, sampler, device, drop_last=shuffle, batch_size=batch_size)


def limited(loader: DataLoader, limit: int) -> Iterator[Any]:
    for i, batch in enumerate(loader):
        if limit and i >= limit:
            return
        yield batch
