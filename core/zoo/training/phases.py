"""Optimizer phases: what one update is made of.

A task declares ``phases``: ``("main",)`` for most, ``("discriminator", "generator")`` for a GAN.
For every batch and every phase the loop computes ``task.loss(model, batch, phase)``,
backpropagates it and, every ``accum_steps`` batches, steps that phase's optimizer. Each phase has
its own optimizer and scheduler (timm's factories) and gradient scaler. ``zoo.testing`` checks
plugins with these same functions, not a copy of them.

Under torchrun, gradients are averaged across ranks with one all-reduce per phase (what DDP does,
without the overlap), which works for any number of phases and any submodule a task uses.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist
from torch import nn

from ..config import TrainConfig
from ..errors import UsageError


def phase_parameters(task: Any, model: nn.Module, phases: tuple[str, ...]) -> dict[str, list[nn.Parameter]]:
    """Each phase's trainable parameters, as the task names them (one may be in several)."""
    return {phase: [p for p in task.parameters(model, phase) if p.requires_grad] for phase in phases}


def toggle_phase(params: dict[str, list[nn.Parameter]], phase: str) -> None:
    """With several phases, only ``phase``'s parameters collect gradients; a parameter shared by
    two phases learns in both."""
    if len(params) == 1:
        return
    for other, ps in params.items():
        if other != phase:
            for p in ps:
                p.requires_grad_(False)
    for p in params[phase]:
        p.requires_grad_(True)


def create_optimizer(params: list[nn.Parameter], cfg: TrainConfig) -> torch.optim.Optimizer:
    from timm.optim import create_optimizer_v2

    kwargs: dict[str, Any] = {"betas": tuple(cfg.betas)} if cfg.betas is not None else {}
    try:
        return create_optimizer_v2(params, opt=cfg.optimizer, lr=cfg.lr, weight_decay=cfg.weight_decay,
                                   momentum=cfg.momentum, **kwargs)
    except (AssertionError, ValueError, KeyError) as e:
        raise UsageError(f"bad optimizer '{cfg.optimizer}': {e}") from None


def create_scheduler(optimizer: torch.optim.Optimizer, cfg: TrainConfig, updates_per_epoch: int) -> Any:
    """timm's scheduler, stepped per update; planned over the epochs ``--max-steps`` leaves."""
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


@dataclass
class Phase:
    """One phase's parameters, optimizer, scheduler (or None) and gradient scaler."""

    name: str
    params: list[nn.Parameter]
    optimizer: torch.optim.Optimizer
    scheduler: Any
    scaler: torch.amp.GradScaler

    @classmethod
    def create(cls, name: str, params: list[nn.Parameter], cfg: TrainConfig, updates_per_epoch: int,
               device: torch.device, dtype: torch.dtype | None) -> Phase:
        optimizer = create_optimizer(params, cfg)
        return cls(name, params, optimizer, create_scheduler(optimizer, cfg, updates_per_epoch),
                   torch.amp.GradScaler(device.type, enabled=dtype == torch.float16))

    def update(self, next_step: int, grad_clip: float, world: int = 1) -> None:
        """Average gradients across ranks, clip, step, clear, and move the schedule on."""
        if world > 1:
            grads = [p.grad for p in self.params if p.grad is not None]
            if grads:
                flat = torch._utils._flatten_dense_tensors(grads)
                dist.all_reduce(flat)
                flat /= world
                for g, synced in zip(grads, torch._utils._unflatten_dense_tensors(flat, grads)):
                    g.copy_(synced)
        if grad_clip:
            self.scaler.unscale_(self.optimizer)
            torch.nn.utils.clip_grad_norm_(self.params, grad_clip)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.optimizer.zero_grad(set_to_none=True)
        if self.scheduler is not None:
            self.scheduler.step_update(next_step)

    def end_epoch(self, epoch: int) -> None:
        if self.scheduler is not None:
            self.scheduler.step(epoch)

    @property
    def lr(self) -> float:
        return float(self.optimizer.param_groups[0]["lr"])
