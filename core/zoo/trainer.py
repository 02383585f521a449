"""The trainer: whatever a plugin's Task and Model declare, it trains.

Read top to bottom: ``Trainer.__init__`` sets up device, data, model, optimizers; ``fit`` is the
loop; ``save_checkpoint`` / ``restore`` make a killed run resumable bit for bit on CPU.

For each batch, for each name in ``task.optimizer_steps`` (``("main",)`` for most tasks, two for a
GAN) the trainer computes ``task.loss(model, batch, step)``, backpropagates it and, every
``accum_steps`` batches, steps that step's optimizer, scaler and scheduler. Under torchrun,
gradients are averaged across ranks with one all-reduce per optimizer step (what DDP does,
without the overlap), which works for any number of optimizer steps and any submodule a task uses.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import random
import sys
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from torch.utils.data import DataLoader, Sampler

from .api import Dataset
from .config import RunConfig, TrainConfig
from .errors import Interrupted, UsageError, ZooError
from .experiment import Assembled, assemble, count_parameters
from .loading import resolve_weights
from .progress import Progress, planned_epochs, total_steps
from .runtime import Precision, autocast, pick_device, pick_precision, prepare
from .storage import checkpoint
from .storage.files import atomic_write_text
from .storage.weights import load_file, load_into, make_card, save_weights

CHECKPOINT = "checkpoint.safetensors"


class NonFiniteLoss(ZooError):
    pass


# ---------------------------------------------------------------- devices, precision, seeds


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


# ---------------------------------------------------------------- evaluation


@torch.no_grad()
def evaluate(assembled: Assembled, module: nn.Module, split: str, device: torch.device,
             dtype: torch.dtype | None = None, batch_size: int = 256, limit_batches: int = 0,
             seed: int = 0, num_workers: int = -1, channels_last: bool = False) -> dict[str, float]:
    """The task's metrics of ``module`` over one split of the dataset."""
    cfg = dataclasses.replace(assembled.config.train, num_workers=num_workers)
    loader = split_loader(assembled.dataset, split, cfg, seed, device, batch_size, shuffle=False)
    was_training = module.training
    module.eval()
    try:
        with autocast(device, dtype):
            batches = (to_device(b, device, channels_last) for b in limited(loader, limit_batches))
            metrics = assembled.task.evaluate(module, batches)
    finally:
        module.train(was_training)
    return {k: float(v) for k, v in metrics.items()}


# ---------------------------------------------------------------- the trainer


def step_parameters(task: Any, model: nn.Module, steps: tuple[str, ...]) -> dict[str, list[nn.Parameter]]:
    """Each optimizer step's trainable parameters, as the task names them (one may be in several)."""
    return {s: [p for p in task.parameters(model, s) if p.requires_grad] for s in steps}


def toggle_step(params: dict[str, list[nn.Parameter]], s: str) -> None:
    """With several optimizer steps, only step ``s``'s parameters collect gradients.

    A parameter shared by two steps learns in both. Public so that ``zoo.testing`` checks a
    plugin with exactly the trainer's rule rather than a copy of it.
    """
    if len(params) == 1:
        return
    for step, ps in params.items():
        if step != s:
            for p in ps:
                p.requires_grad_(False)
    for p in params[s]:
        p.requires_grad_(True)


def default_run_dir(name: str) -> Path:
    return Path("runs") / name / datetime.now().strftime("%Y%m%d-%H%M%S")


def latest_run_dir(name: str) -> Path:
    runs = sorted(p.parent for p in (Path("runs") / name).glob(f"*/{CHECKPOINT}"))
    if not runs:
        raise UsageError(f"no run of {name} with a checkpoint under runs/{name}/ to resume")
    return runs[-1]


RUN_FILES = ("summary.json", "model.safetensors", CHECKPOINT, "metrics.jsonl")  # what a run leaves


def check_run_dir(run_dir: Path, overwrite: bool = False) -> None:
    """Refuse to start a new run in a folder that holds one: its weights would be replaced and its
    metrics appended to. ``overwrite`` allows it (``prepare_run_dir`` then clears those files)."""
    if run_dir.exists() and not run_dir.is_dir():
        raise UsageError(f"--out {run_dir} is a file, not a folder")
    found = [name for name in RUN_FILES if (run_dir / name).exists()]
    if found and not overwrite:
        finished = "summary.json" in found or "model.safetensors" in found
        what = "a finished run" if finished else "an unfinished run"
        raise UsageError(f"{run_dir} already holds {what} ({', '.join(found)}); continue it with "
                         f"--resume {run_dir}, pick another --out, or pass --overwrite to replace it")


def prepare_run_dir(run_dir: Path, overwrite: bool = False) -> None:
    """Create the run folder for a fresh run; with ``overwrite``, remove the old run's files."""
    check_run_dir(run_dir, overwrite)
    run_dir.mkdir(parents=True, exist_ok=True)
    for name in (*RUN_FILES, "best.safetensors", "config.json"):
        (run_dir / name).unlink(missing_ok=True)


class Trainer:
    def __init__(self, config: RunConfig, run_dir: Path | None = None, resume: bool = False,
                 init_weights: str | None = None, progress: bool | None = None,
                 overwrite: bool = False) -> None:
        self.config, cfg = config, config.train
        self.cfg = cfg
        self.distributed = int(os.environ.get("WORLD_SIZE", "1")) > 1
        if self.distributed and not dist.is_initialized():
            backend = "nccl" if torch.cuda.is_available() and cfg.device != "cpu" else "gloo"
            dist.init_process_group(backend)
        self.rank = dist.get_rank() if self.distributed else 0
        self.world = dist.get_world_size() if self.distributed else 1
        self.main = self.rank == 0
        self.device = pick_device(cfg.device)
        if self.device.type == "cuda":
            torch.cuda.set_device(self.device)
        self.progress = progress  # None: a bar on a terminal, plain lines elsewhere
        seed_everything(cfg.seed, cfg.deterministic)

        self.assembled = assemble(config)
        self.task = self.assembled.task
        self.steps = tuple(self.task.optimizer_steps)
        self.model = self.assembled.build_model().to(self.device)
        self.precision: Precision = pick_precision(cfg.precision, self.device, self.model,
                                                   cfg.channels_last)
        self.dtype, self.channels_last = self.precision.dtype, self.precision.channels_last
        prepare(self.model, self.precision)
        if init_weights:
            load_into(self.model, load_file(resolve_weights(init_weights)), source=init_weights)
        if self.distributed:  # every rank starts from rank 0's weights
            for tensor in self.model.state_dict().values():
                dist.broadcast(tensor, 0)
        if self.distributed:  # after identical initialisation, each rank draws its own numbers
            torch.manual_seed(cfg.seed + 1_000_003 * self.rank)
        self.forward_model = torch.compile(self.model) if cfg.compile else self.model
        self.params = step_parameters(self.task, self.model, self.steps)

        self.loader = split_loader(self.assembled.dataset, "train", cfg, cfg.seed, self.device,
                                   cfg.batch_size, shuffle=True, rank=self.rank, world=self.world)
        self.sampler = self.loader.sampler
        self.batches_per_epoch = len(self.sampler) // cfg.batch_size
        if cfg.limit_batches:
            self.batches_per_epoch = min(self.batches_per_epoch, cfg.limit_batches)
        if self.batches_per_epoch == 0:
            raise UsageError(f"training split has {self.sampler.size} samples: fewer than one batch "
                             f"of {cfg.batch_size} per rank; lower --batch-size")
        updates_per_epoch = max(1, self.batches_per_epoch // cfg.accum_steps)

        self.optimizers, self.schedulers, self.scalers = {}, {}, {}
        for s in self.steps:
            self.optimizers[s] = self._optimizer(self.params[s])
            self.schedulers[s] = self._scheduler(self.optimizers[s], updates_per_epoch)
            self.scalers[s] = torch.amp.GradScaler(self.device.type, enabled=self.dtype == torch.float16)
        self.ema = None
        if cfg.ema:
            from timm.utils import ModelEmaV3

            self.ema = ModelEmaV3(self.model, decay=cfg.ema_decay)

        self.epoch = self.batch_in_epoch = self.global_step = self.micro_step = 0
        self.best: float | None = None
        self.run_dir = Path(run_dir) if run_dir else default_run_dir(config.experiment)
        if resume:
            self.restore(self.run_dir / CHECKPOINT)
        elif self.main:
            prepare_run_dir(self.run_dir, overwrite)
            atomic_write_text(self.run_dir / "config.json", json.dumps(config.to_dict(), indent=2))
        self.writer = self._tensorboard() if self.main else None

    def _optimizer(self, params: list[nn.Parameter]) -> torch.optim.Optimizer:
        from timm.optim import create_optimizer_v2

        cfg = self.cfg
        kwargs: dict[str, Any] = {}
        if cfg.betas is not None:
            kwargs["betas"] = tuple(cfg.betas)
        try:
            return create_optimizer_v2(params, opt=cfg.optimizer, lr=cfg.lr, weight_decay=cfg.weight_decay,
                                       momentum=cfg.momentum, **kwargs)
        except (AssertionError, ValueError, KeyError) as e:
            raise UsageError(f"bad optimizer '{cfg.optimizer}': {e}") from None

    def _scheduler(self, optimizer: torch.optim.Optimizer, updates_per_epoch: int) -> Any:
        cfg = self.cfg
        if cfg.scheduler == "none":
            return None
        from timm.scheduler import create_scheduler_v2

        epochs = cfg.epochs
        if cfg.max_steps:
            epochs = min(epochs, math.ceil(cfg.max_steps / updates_per_epoch))
        try:
            scheduler, _ = create_scheduler_v2(
                optimizer, sched=cfg.scheduler, num_epochs=max(1, epochs), warmup_epochs=cfg.warmup_epochs,
                min_lr=cfg.min_lr, step_on_epochs=False, updates_per_epoch=updates_per_epoch,
                warmup_lr=cfg.lr * 0.01 if cfg.warmup_epochs else 0.0)
        except (AssertionError, ValueError) as e:
            raise UsageError(f"bad scheduler '{cfg.scheduler}': {e}") from None
        if scheduler is None:
            raise UsageError(f"bad scheduler '{cfg.scheduler}' (none, cosine, step, tanh, poly, plateau…)")
        return scheduler

    def _tensorboard(self) -> Any:
        if not self.cfg.tensorboard:
            return None
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            print("zoo: tensorboard is not installed; pip install 'zoo[tensorboard]'", file=sys.stderr)
            return None
        return SummaryWriter(str(self.run_dir / "tensorboard"))

    # ------------------------------------------------------------ logging

    def log(self, record: dict[str, Any]) -> None:
        if not self.main:
            return
        with open(self.run_dir / "metrics.jsonl", "a") as f:
            f.write(json.dumps(record) + "\n")
        if self.writer is not None:
            for key, value in record.items():
                if isinstance(value, (int, float)) and key not in ("step", "epoch"):
                    self.writer.add_scalar(f"{record.get('split', 'train')}/{key}", value, self.global_step)

    def reduce_mean(self, values: dict[str, torch.Tensor]) -> dict[str, float]:
        """Average logged values across ranks (one all-reduce for all of them)."""
        if not values:
            return {}
        stacked = torch.stack([v.float() for v in values.values()])
        if self.distributed:
            dist.all_reduce(stacked)
            stacked /= self.world
        return dict(zip(values, stacked.tolist()))

    # ------------------------------------------------------------ the loop

    def fit(self) -> dict[str, Any]:
        cfg, task = self.cfg, self.task
        self.model.train()
        bad_step = torch.tensor(-1, device=self.device)
        sums: dict[str, torch.Tensor] = {}
        count, t0, seen = 0, time.perf_counter(), 0
        done = bool(cfg.max_steps and self.global_step >= cfg.max_steps)
        updates_per_epoch = max(1, self.batches_per_epoch // cfg.accum_steps)
        epochs = planned_epochs(cfg.epochs, updates_per_epoch, cfg.max_steps)
        progress = Progress(epochs, sys.stderr, bar=self.progress, enabled=self.main)
        if self.main:
            precision = self.precision.describe()
            print(f"zoo: training {self.config.experiment} on {self.device} ({precision}; {self.world} "
                  f"process{'es' if self.world > 1 else ''}): {self.plan(epochs)} → {self.run_dir}",
                  file=sys.stderr)
        self.stop_requested = 0  # the signal that asked to stop, once one arrives
        restore_sigint = self.catch_sigint()
        progress.start(total_steps(cfg.epochs, updates_per_epoch, cfg.max_steps), self.global_step,
                       self.epoch)
        try:
            while self.epoch < cfg.epochs and not done:
                self.sampler.set_epoch(self.epoch, self.batch_in_epoch)
                epoch_start = time.perf_counter()
                for batch in self.loader:
                    if self.batch_in_epoch >= self.batches_per_epoch:
                        break
                    batch = to_device(batch, self.device, self.channels_last)
                    self.micro_step += 1
                    update = self.micro_step % cfg.accum_steps == 0
                    for s in self.steps:
                        self.toggle(s)
                        with autocast(self.device, self.dtype):
                            loss, logs = task.loss(self.forward_model, batch, s)
                        bad_step = torch.where((bad_step < 0) & ~torch.isfinite(loss.detach()),
                                               self.global_step, bad_step)
                        self.scalers[s].scale(loss / cfg.accum_steps).backward()
                        if update:
                            self.optimizer_step(s)
                        for key, value in logs.items():
                            name = key if len(self.steps) == 1 else f"{s}/{key}"
                            sums[name] = sums.get(name, 0) + value.detach().float()
                    count += 1
                    seen += len(batch[0]) if isinstance(batch, (list, tuple)) else cfg.batch_size
                    self.batch_in_epoch += 1
                    if update:
                        self.global_step += 1
                        if self.ema is not None:
                            self.ema.update(self.model, step=self.global_step)
                        if self.global_step % cfg.log_every == 0:
                            self.check_finite(bad_step)
                            rate = seen * self.world / (time.perf_counter() - t0)
                            self.log_train(sums, count, rate)
                            sums, count, t0, seen = {}, 0, time.perf_counter(), 0
                        if cfg.checkpoint_every and self.global_step % cfg.checkpoint_every == 0:
                            self.check_finite(bad_step)
                            self.save_checkpoint()
                        done = bool(cfg.max_steps and self.global_step >= cfg.max_steps)
                    if self.batch_in_epoch % 10 == 0 and sums and self.main:  # .item() syncs: not every batch
                        rate = seen * self.world / max(1e-9, time.perf_counter() - t0)
                        progress.update(self.global_step, {k: v.item() / count for k, v in sums.items()},
                                        rate, self.epoch)
                    else:
                        progress.update(self.global_step, epoch=self.epoch)
                    if self.stop_requested:
                        raise Interrupted(self.stop_requested)
                    if done:
                        break
                self.check_finite(bad_step)
                if count:
                    rate = seen * self.world / (time.perf_counter() - t0)
                    self.log_train(sums, count, rate)
                    sums, count, t0, seen = {}, 0, time.perf_counter(), 0
                finished_epoch = self.batch_in_epoch >= self.batches_per_epoch
                if finished_epoch:
                    self.epoch += 1
                    self.batch_in_epoch = 0
                    for scheduler in self.schedulers.values():
                        if scheduler is not None:
                            scheduler.step(self.epoch)
                val = self.end_of_epoch(time.perf_counter() - epoch_start) if finished_epoch or done else {}
                if finished_epoch or done:
                    self.save_checkpoint()
                    progress.epoch_end(self.epoch if finished_epoch else self.epoch + 1, val,
                                       time.perf_counter() - epoch_start)
        except KeyboardInterrupt:
            progress.close()
            if self.main and self.stop_requested:  # only between batches is the state consistent
                self.save_checkpoint()
                print(f"\ninterrupted; resume with: zoo run {self.config.experiment} --resume {self.run_dir}",
                      file=sys.stderr)
            raise
        finally:
            progress.close()
            restore_sigint()
        return self.finish()

    def plan(self, epochs: int) -> str:
        """The start line's account of the work, true under ``--max-steps`` too."""
        cfg = self.cfg
        per_epoch = f"{self.batches_per_epoch} batches of {cfg.batch_size}"
        updates_per_epoch = max(1, self.batches_per_epoch // cfg.accum_steps)
        if cfg.max_steps and cfg.max_steps < cfg.epochs * updates_per_epoch:
            return f"{cfg.max_steps} steps (--max-steps) in {epochs} epoch(s) of {per_epoch}"
        return f"{cfg.epochs} epoch(s) × {per_epoch}"

    def catch_sigint(self) -> Any:
        """First Ctrl-C or SIGTERM (``timeout``, schedulers, ``docker stop``): finish the batch,
        checkpoint, stop; ``stop_requested`` holds the signal. A second one: stop at once."""
        import signal
        import threading

        if threading.current_thread() is not threading.main_thread():
            return lambda: None
        caught = (signal.SIGINT, signal.SIGTERM)
        previous = {signum: signal.getsignal(signum) for signum in caught}

        def handler(signum: int, frame: Any) -> None:
            if self.stop_requested:
                self.stop_requested = 0  # mid-batch: no checkpoint of a half-done step
                raise Interrupted(signum)
            self.stop_requested = signum

        for signum in caught:
            signal.signal(signum, handler)
        return lambda: [signal.signal(signum, action) for signum, action in previous.items()]

    def toggle(self, s: str) -> None:
        toggle_step(self.params, s)

    def optimizer_step(self, s: str) -> None:
        optimizer, scaler = self.optimizers[s], self.scalers[s]
        params = self.params[s]
        if self.distributed:
            grads = [p.grad for p in params if p.grad is not None]
            if grads:
                flat = torch._utils._flatten_dense_tensors(grads)
                dist.all_reduce(flat)
                flat /= self.world
                for g, synced in zip(grads, torch._utils._unflatten_dense_tensors(flat, grads)):
                    g.copy_(synced)
        if self.cfg.grad_clip:
            scaler.unscale_(optimizer)
            torch.nn.utils.clip_grad_norm_(params, self.cfg.grad_clip)
        scaler.step(optimizer)
        scaler.update()
        optimizer.zero_grad(set_to_none=True)
        if self.schedulers[s] is not None:
            self.schedulers[s].step_update(self.global_step + 1)

    def check_finite(self, bad_step: torch.Tensor) -> None:
        step = int(bad_step.item())
        if step >= 0:
            raise NonFiniteLoss(
                f"loss became nan/inf at step {step + 1}; stopped without saving. "
                f"The last good checkpoint (if any) is in {self.run_dir}")

    def log_train(self, sums: dict[str, torch.Tensor], count: int, rate: float) -> None:
        means = self.reduce_mean({k: v / count for k, v in sums.items()})
        lr = self.optimizers[self.steps[0]].param_groups[0]["lr"]
        self.log({"split": "train", "epoch": self.epoch, "step": self.global_step, **means,
                  "lr": lr, "img_per_s": round(rate, 1)})

    def eval_model(self) -> nn.Module:
        """The weights that are evaluated and saved: EMA's when on."""
        return self.ema.module if self.ema is not None else self.model

    def evaluate(self, split: str) -> dict[str, float]:
        return evaluate(self.assembled, self.eval_model(), split, self.device, self.dtype,
                        batch_size=self.cfg.batch_size, limit_batches=self.cfg.limit_batches,
                        seed=self.cfg.seed, num_workers=self.cfg.num_workers,
                        channels_last=self.channels_last)

    def end_of_epoch(self, seconds: float) -> dict[str, float]:
        if self.cfg.eval_every <= 0 or self.epoch % self.cfg.eval_every and self.epoch != self.cfg.epochs:
            return {}
        metrics: dict[str, float] = {}
        if self.main:
            metrics = self.evaluate("val")
            self.log({"split": "val", "epoch": self.epoch, "step": self.global_step, **metrics,
                      "epoch_seconds": round(seconds, 2)})
            main = metrics.get(self.task.main_metric)
            better = main is not None and (self.best is None or (
                main > self.best if self.task.higher_is_better else main < self.best))
            if better:
                self.best = main
                self.save_weights(self.run_dir / "best.safetensors", {**metrics, "split": "val"})
        if self.distributed:
            dist.barrier()
        return metrics

    def finish(self) -> dict[str, Any]:
        summary: dict[str, Any] = {}
        if self.main:
            test = self.evaluate("test")
            model = self.eval_model()
            self.save_weights(self.run_dir / "model.safetensors", {**test, "split": "test"})
            figures_dir = self.run_dir / "figures"
            figures_dir.mkdir(exist_ok=True)
            with torch.no_grad(), autocast(self.device, self.dtype):
                loader = split_loader(self.assembled.dataset, "test", self.cfg, self.cfg.seed,
                                      self.device, self.cfg.batch_size, shuffle=False)
                was_training = model.training
                model.eval()
                batches = limited(loader, self.cfg.limit_batches)  # the split the metrics saw
                figures = self.task.figures(model, (to_device(b, self.device) for b in batches), figures_dir)
                model.train(was_training)
            summary = {
                "experiment": self.config.experiment,
                "main_metric": self.task.main_metric,
                "test": test,
                "best_val": self.best,
                "epochs": self.epoch,
                "steps": self.global_step,
                "params": count_parameters(self.model),
                "device": str(self.device),
                "world_size": self.world,
                "weights": str(self.run_dir / "model.safetensors"),
                "figures": [str(f) for f in figures],
            }
            atomic_write_text(self.run_dir / "summary.json", json.dumps(summary, indent=2))
            if self.writer is not None:
                self.writer.close()
        if self.distributed:
            dist.barrier()
        return summary

    # ------------------------------------------------------------ weights and checkpoints

    def save_weights(self, path: Path, metrics: dict[str, Any]) -> None:
        card = make_card(self.config.experiment, self.config.to_dict(), metrics)
        save_weights(path, self.eval_model().state_dict(), card)

    def save_checkpoint(self) -> None:
        if not self.main:
            return
        state = {
            "model": self.model.state_dict(),
            "optimizers": {s: o.state_dict() for s, o in self.optimizers.items()},
            "schedulers": {s: sch.state_dict() for s, sch in self.schedulers.items() if sch is not None},
            "scalers": {s: sc.state_dict() for s, sc in self.scalers.items()},
            "ema": self.ema.state_dict() if self.ema is not None else None,
            "position": {"epoch": self.epoch, "batch_in_epoch": self.batch_in_epoch,
                         "global_step": self.global_step, "micro_step": self.micro_step,
                         "best": self.best, "world_size": self.world},
            "rng": checkpoint.rng_state(),
        }
        checkpoint.save(self.run_dir / CHECKPOINT, state)

    def restore(self, path: Path) -> None:
        if not path.is_file():
            raise UsageError(f"nothing to resume: {path} does not exist")
        state = checkpoint.load(path)
        try:  # a tampered or foreign checkpoint fails here with one line, not a traceback
            pos = state["position"]
            counters = {k: pos[k] for k in ("epoch", "batch_in_epoch", "global_step", "micro_step")}
            for key, value in counters.items():
                if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                    raise ValueError(f"position {key} must be a count, got {value!r:.40}")
            if pos["best"] is not None and (isinstance(pos["best"], bool)
                                            or not isinstance(pos["best"], (int, float))):
                raise ValueError(f"position best must be a number or null, got {pos['best']!r:.40}")
            if pos.get("world_size", 1) != self.world:
                raise UsageError(f"checkpoint was written by {pos['world_size']} process(es), "
                                 f"resuming with {self.world}: use the same --nproc_per_node")
            self.model.load_state_dict(state["model"])
            for s in self.steps:
                self.optimizers[s].load_state_dict(state["optimizers"][s])
                if self.schedulers[s] is not None and s in state["schedulers"]:
                    self.schedulers[s].load_state_dict(state["schedulers"][s])
                self.scalers[s].load_state_dict(state["scalers"][s])
            if self.ema is not None and state["ema"] is not None:
                self.ema.load_state_dict(state["ema"])
            self.epoch, self.batch_in_epoch = counters["epoch"], counters["batch_in_epoch"]
            self.global_step, self.micro_step = counters["global_step"], counters["micro_step"]
            self.best = pos["best"]
            checkpoint.set_rng_state(state["rng"])
        except (KeyError, TypeError, ValueError, RuntimeError, IndexError, AttributeError) as e:
            detail = " ".join(str(e).split())[:300] or type(e).__name__
            raise ZooError(f"checkpoint {path} does not fit this run ({type(e).__name__}: {detail}); "
                           "expected one this run wrote: restore it, or start a new run without "
                           "--resume") from None
        if self.distributed:  # ranks draw different random numbers, reproducibly
            torch.manual_seed(int(torch.randint(0, 2**62, (1,)).item()) + self.rank)


def train(config: RunConfig, run_dir: Path | None = None, resume: bool = False,
          init_weights: str | None = None, progress: bool | None = None,
          overwrite: bool = False) -> dict[str, Any]:
    """Train one run to the end and return its summary (what ``summary.json`` holds)."""
    trainer = Trainer(config, run_dir, resume=resume, init_weights=init_weights, progress=progress,
                      overwrite=overwrite)
    return trainer.fit()
