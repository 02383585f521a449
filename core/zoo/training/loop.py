"""The training loop: whatever a plugin's Task and Model declare, it trains.

Read top to bottom: ``Trainer.__init__`` sets up process, model, data and phases; ``fit`` runs
epochs, ``train_epoch`` batches, ``train_batch`` one forward/backward per phase (``phases.py``);
``finish`` tests and writes the summary; ``save_checkpoint`` / ``restore`` make a killed run
resumable bit for bit on CPU.
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from torch import nn

from ..config import RunConfig
from ..errors import Interrupted, UsageError, ZooError
from ..experiment import Assembled, assemble, count_parameters
from ..loading import resolve_weights
from ..storage import checkpoint
from ..storage.files import atomic_write_text
from ..storage.weights import load_file, load_into, make_card, save_weights
from .data import limited, seed_everything, split_loader, to_device
from .phases import Phase, phase_parameters, toggle_phase
from .progress import Meter, Progress, planned_epochs, total_steps
from .rundir import CHECKPOINT, default_run_dir, prepare_run_dir
from .runtime import Precision, autocast, pick_device, pick_precision, prepare


class NonFiniteLoss(ZooError):
    """The loss went nan/inf; the run stops without saving the broken weights."""


@contextmanager
def split_batches(assembled: Assembled, module: nn.Module, split: str, device: torch.device,
                  dtype: torch.dtype | None = None, batch_size: int = 256, limit_batches: int = 0,
                  seed: int = 0, num_workers: int = -1, channels_last: bool = False) -> Iterator[Any]:
    """One split's batches on the device, ``module`` in eval mode, no grad, under autocast: what
    metrics and figures are computed from."""
    cfg = dataclasses.replace(assembled.config.train, num_workers=num_workers)
    loader = split_loader(assembled.dataset, split, cfg, seed, device, batch_size, shuffle=False)
    was_training = module.training
    module.eval()
    try:
        with torch.no_grad(), autocast(device, dtype):
            yield (to_device(b, device, channels_last) for b in limited(loader, limit_batches))
    finally:
        module.train(was_training)


def evaluate(assembled: Assembled, module: nn.Module, split: str, device: torch.device,
             dtype: torch.dtype | None = None, **options: Any) -> dict[str, float]:
    """The task's metrics of ``module`` over one split: the trainer's val/test and ``zoo eval``.
    ``options``: those of :func:`split_batches`."""
    with split_batches(assembled, module, split, device, dtype, **options) as batches:
        metrics = assembled.task.evaluate(module, batches)
    return {k: float(v) for k, v in metrics.items()}


class Trainer:
    def __init__(self, config: RunConfig, run_dir: Path | None = None, resume: bool = False,
                 init_weights: str | None = None, progress: bool | None = None,
                 overwrite: bool = False) -> None:
        self.config, self.cfg = config, config.train
        self.progress = progress  # None: a bar on a terminal, plain lines elsewhere
        self._setup_process()
        self._setup_model(init_weights)
        self._setup_data()
        self.params = phase_parameters(self.task, self.model, tuple(self.task.phases))
        self.phases = {name: Phase.create(name, ps, self.cfg, self.updates_per_epoch, self.device,
                                          self.dtype)
                       for name, ps in self.params.items()}
        self.ema = None
        if self.cfg.ema:
            from timm.utils import ModelEmaV3

            self.ema = ModelEmaV3(self.model, decay=self.cfg.ema_decay, use_warmup=self.cfg.ema_warmup)
        self.epoch = self.batch_in_epoch = self.global_step = self.micro_step = 0
        self.best: float | None = None
        self.run_dir = Path(run_dir) if run_dir else default_run_dir(config.experiment)
        if resume:
            self.restore(self.run_dir / CHECKPOINT)
        elif self.main:
            prepare_run_dir(self.run_dir, overwrite)
            atomic_write_text(self.run_dir / "config.json", json.dumps(config.to_dict(), indent=2))
        self.writer = self._tensorboard() if self.main else None

    def _setup_process(self) -> None:
        """torchrun's process group (when launched by it), the device, the seeds."""
        self.distributed = int(os.environ.get("WORLD_SIZE", "1")) > 1
        if self.distributed and not dist.is_initialized():
            dist.init_process_group("nccl" if torch.cuda.is_available() and self.cfg.device != "cpu"
                                    else "gloo")
        self.rank = dist.get_rank() if self.distributed else 0
        self.world = dist.get_world_size() if self.distributed else 1
        self.main = self.rank == 0
        self.device = pick_device(self.cfg.device)
        if self.device.type == "cuda":
            torch.cuda.set_device(self.device)
        seed_everything(self.cfg.seed, self.cfg.deterministic)

    def _setup_model(self, init_weights: str | None) -> None:
        """Build, pick the precision and memory format, load starting weights, share them."""
        self.assembled = assemble(self.config)
        self.task = self.assembled.task
        self.model = self.assembled.build_model().to(self.device)
        self.precision: Precision = pick_precision(self.cfg.precision, self.device, self.model,
                                                   self.cfg.channels_last)
        self.dtype, self.channels_last = self.precision.dtype, self.precision.channels_last
        prepare(self.model, self.precision)
        if init_weights:
            load_into(self.model, load_file(resolve_weights(init_weights)), source=init_weights)
        if self.distributed:  # every rank starts from rank 0's weights, then draws its own numbers
            for tensor in self.model.state_dict().values():
                dist.broadcast(tensor, 0)
            torch.manual_seed(self.cfg.seed + 1_000_003 * self.rank)
        self.forward_model = torch.compile(self.model) if self.cfg.compile else self.model

    def _setup_data(self) -> None:
        cfg = self.cfg
        self.loader = split_loader(self.assembled.dataset, "train", cfg, cfg.seed, self.device,
                                   cfg.batch_size, shuffle=True, rank=self.rank, world=self.world)
        self.sampler = self.loader.sampler
        self.batches_per_epoch = len(self.sampler) // cfg.batch_size
        if cfg.limit_batches:
            self.batches_per_epoch = min(self.batches_per_epoch, cfg.limit_batches)
        if self.batches_per_epoch == 0:
            raise UsageError(f"training split has {self.sampler.size} samples: fewer than one batch "
                             f"of {cfg.batch_size} per rank; lower --batch-size")

    def _tensorboard(self) -> Any:
        if not self.cfg.tensorboard:
            return None
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            print("zoo: tensorboard is not installed; pip install 'zoo[tensorboard]'", file=sys.stderr)
            return None
        return SummaryWriter(str(self.run_dir / "tensorboard"))

    # ------------------------------------------------------------ the loop

    @property
    def updates_per_epoch(self) -> int:
        """Optimizer updates per epoch: batches ÷ ``accum_steps`` (at least one)."""
        return max(1, self.batches_per_epoch // self.cfg.accum_steps)

    @property
    def done(self) -> bool:
        return bool(self.cfg.max_steps and self.global_step >= self.cfg.max_steps)

    def fit(self) -> dict[str, Any]:
        cfg = self.cfg
        epochs = planned_epochs(cfg.epochs, self.updates_per_epoch, cfg.max_steps)
        if self.main:
            print(f"zoo: training {self.config.experiment} on {self.device} ({self.precision.describe()}; "
                  f"{self.world} process{'es' if self.world > 1 else ''}): {self.plan(epochs)} → "
                  f"{self.run_dir}", file=sys.stderr)
        self.model.train()
        self.bad_step = torch.tensor(-1, device=self.device)  # first non-finite loss, without a sync
        self.meter, self.stop_requested = Meter(), 0
        progress = Progress(epochs, sys.stderr, bar=self.progress, enabled=self.main)
        progress.start(total_steps(cfg.epochs, self.updates_per_epoch, cfg.max_steps), self.global_step,
                       self.epoch)
        restore_signals = self.catch_signals()
        try:
            while self.epoch < cfg.epochs and not self.done:
                self.train_epoch(progress)
        except KeyboardInterrupt:
            progress.close()
            if self.main and self.stop_requested:  # only between batches is the state consistent
                self.save_checkpoint()
                print(f"\ninterrupted; resume with: zoo run {self.config.experiment} --resume "
                      f"{self.run_dir}", file=sys.stderr)
            raise
        finally:
            progress.close()
            restore_signals()
        return self.finish()

    def train_epoch(self, progress: Progress) -> None:
        """Batches to the end of the epoch (or ``--max-steps``); then evaluate and checkpoint."""
        self.sampler.set_epoch(self.epoch, self.batch_in_epoch)
        start = time.perf_counter()
        for batch in self.loader:
            if self.batch_in_epoch >= self.batches_per_epoch or self.done:
                break
            self.train_batch(to_device(batch, self.device, self.channels_last))
            if self.batch_in_epoch % 10 == 0 and self.meter.sums and self.main:  # .item() syncs
                means = {k: v.item() for k, v in self.meter.means().items()}
                progress.update(self.global_step, means, self.meter.rate(self.world), self.epoch)
            else:
                progress.update(self.global_step, epoch=self.epoch)
            if self.stop_requested:
                raise Interrupted(self.stop_requested)
        self.report_train()
        finished = self.batch_in_epoch >= self.batches_per_epoch
        if finished:
            self.epoch, self.batch_in_epoch = self.epoch + 1, 0
            for phase in self.phases.values():
                phase.end_epoch(self.epoch)
        if finished or self.done:
            val = self.end_of_epoch(time.perf_counter() - start)
            self.save_checkpoint()
            progress.epoch_end(self.epoch if finished else self.epoch + 1, val,
                               time.perf_counter() - start)

    def train_batch(self, batch: Any) -> None:
        """One forward/backward per phase; every ``accum_steps`` batches, one update per phase."""
        cfg = self.cfg
        self.micro_step += 1
        update = self.micro_step % cfg.accum_steps == 0
        for name, phase in self.phases.items():
            toggle_phase(self.params, name)
            with autocast(self.device, self.dtype):
                loss, logs = self.task.loss(self.forward_model, batch, name)
            self.bad_step = torch.where((self.bad_step < 0) & ~torch.isfinite(loss.detach()),
                                        self.global_step, self.bad_step)
            phase.scaler.scale(loss / cfg.accum_steps).backward()
            if update:
                phase.update(self.global_step + 1, cfg.grad_clip, self.world)
            self.meter.add(logs, prefix="" if len(self.phases) == 1 else f"{name}/")
        self.meter.count(len(batch[0]) if isinstance(batch, (list, tuple)) else cfg.batch_size)
        self.batch_in_epoch += 1
        if not update:
            return
        self.global_step += 1
        if self.ema is not None:
            self.ema.update(self.model, step=self.global_step)
        if self.global_step % cfg.log_every == 0:
            self.report_train()
        if cfg.checkpoint_every and self.global_step % cfg.checkpoint_every == 0:
            self.check_finite()
            self.save_checkpoint()

    def plan(self, epochs: int) -> str:
        """The start line's account of the work, true under ``--max-steps`` too."""
        cfg = self.cfg
        per_epoch = f"{self.batches_per_epoch} batches of {cfg.batch_size}"
        if cfg.max_steps and cfg.max_steps < cfg.epochs * self.updates_per_epoch:
            return f"{cfg.max_steps} steps (--max-steps) in {epochs} epoch(s) of {per_epoch}"
        return f"{cfg.epochs} epoch(s) × {per_epoch}"

    def catch_signals(self) -> Any:
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

    def check_finite(self) -> None:
        step = int(self.bad_step.item())
        if step >= 0:
            raise NonFiniteLoss(
                f"loss became nan/inf at step {step + 1}; stopped without saving. "
                f"The last good checkpoint (if any) is in {self.run_dir}")

    # ------------------------------------------------------------ logging

    def report_train(self) -> None:
        """Check the loss stayed finite, then log the train means since the last report."""
        self.check_finite()
        if not self.meter.batches:
            return
        means = self.reduce_mean(self.meter.means())
        lr = next(iter(self.phases.values())).lr
        self.log({"split": "train", "epoch": self.epoch, "step": self.global_step, **means,
                  "lr": lr, "img_per_s": round(self.meter.rate(self.world), 1)})
        self.meter.reset()

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

    # ------------------------------------------------------------ evaluation and the end

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
        """Test metrics, final weights, the task's figures and ``summary.json`` (rank 0)."""
        summary: dict[str, Any] = {}
        if self.main:
            test = self.evaluate("test")
            self.save_weights(self.run_dir / "model.safetensors", {**test, "split": "test"})
            summary = {
                "experiment": self.config.experiment, "main_metric": self.task.main_metric,
                "test": test, "best_val": self.best, "epochs": self.epoch, "steps": self.global_step,
                "params": count_parameters(self.model), "device": str(self.device),
                "world_size": self.world, "weights": str(self.run_dir / "model.safetensors"),
                "figures": [str(f) for f in self.figures()],
            }
            atomic_write_text(self.run_dir / "summary.json", json.dumps(summary, indent=2))
            if self.writer is not None:
                self.writer.close()
        if self.distributed:
            dist.barrier()
        return summary

    def figures(self) -> list[Path]:
        """The task's figures, drawn from the test batches the metrics saw."""
        figures_dir = self.run_dir / "figures"
        figures_dir.mkdir(exist_ok=True)
        model = self.eval_model()
        with split_batches(self.assembled, model, "test", self.device, self.dtype,
                           batch_size=self.cfg.batch_size, limit_batches=self.cfg.limit_batches,
                           seed=self.cfg.seed, num_workers=self.cfg.num_workers) as batches:
            return list(self.task.figures(model, batches, figures_dir))

    # ------------------------------------------------------------ weights and checkpoints

    def save_weights(self, path: Path, metrics: dict[str, Any]) -> None:
        card = make_card(self.config.experiment, self.config.to_dict(), metrics)
        save_weights(path, self.eval_model().state_dict(), card)

    def save_checkpoint(self) -> None:
        if not self.main:
            return
        phases = self.phases.items()
        state = {
            "model": self.model.state_dict(),
            "optimizers": {n: p.optimizer.state_dict() for n, p in phases},
            "schedulers": {n: p.scheduler.state_dict() for n, p in phases if p.scheduler is not None},
            "scalers": {n: p.scaler.state_dict() for n, p in phases},
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
            for name, phase in self.phases.items():
                phase.optimizer.load_state_dict(state["optimizers"][name])
                if phase.scheduler is not None and name in state["schedulers"]:
                    phase.scheduler.load_state_dict(state["schedulers"][name])
                phase.scaler.load_state_dict(state["scalers"][name])
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
