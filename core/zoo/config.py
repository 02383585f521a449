"""Typed run settings and ``--set key=value`` overrides.

A run's configuration has four sections: ``train`` (TrainConfig below) and ``task``, ``data``,
``model`` (each component's own ``Config`` dataclass). ``--set model.width=64`` changes a field,
converted to the field's declared type; ``--set model=other-model`` swaps the component.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass
from typing import Any, Literal

from .errors import UsageError

SECTIONS = ("task", "data", "model")
SWAP_KEYS = {"task": "task", "data": "data", "dataset": "data", "model": "model"}


@dataclass
class TrainConfig:
    """Everything the trainer does, the same for every experiment."""

    epochs: int = 1
    max_steps: int = 0  # 0: no limit; else stop after this many optimizer steps
    limit_batches: int = 0  # 0: all; else batches per epoch (train) and per evaluation
    batch_size: int = 64
    lr: float = 1e-3
    optimizer: str = "adamw"  # any name timm.optim.create_optimizer_v2 knows
    weight_decay: float = 0.0
    betas: tuple[float, ...] | None = None
    momentum: float = 0.9
    scheduler: str = "cosine"  # none | cosine | step | plateau … (timm.scheduler)
    warmup_epochs: float = 0.0
    min_lr: float = 0.0
    grad_clip: float = 0.0  # 0: off; else max global L2 norm per optimizer step
    accum_steps: int = 1
    ema: bool = False
    ema_decay: float = 0.999
    device: str = "auto"  # auto | cpu | cuda | cuda:N | mps
    precision: Literal["auto", "fp32", "bf16", "fp16"] = "auto"
    compile: bool = False
    channels_last: bool = True  # on CUDA only
    seed: int = 0
    deterministic: bool = False
    num_workers: int = -1  # -1: pick from the CPU count
    log_every: int = 50  # steps between metrics.jsonl lines
    checkpoint_every: int = 0  # 0: at epoch ends only; else also every N steps
    eval_every: int = 1  # epochs between validation passes
    tensorboard: bool = False


@dataclass
class RunConfig:
    """The resolved configuration of one run: what ``config.json`` and weight cards store."""

    experiment: str
    task: str
    data: str
    model: str
    train: TrainConfig
    task_config: Any
    data_config: Any
    model_config: Any

    def to_dict(self) -> dict[str, Any]:
        return {
            "experiment": self.experiment,
            "train": dataclasses.asdict(self.train),
            "task": {"name": self.task, **dataclasses.asdict(self.task_config)},
            "data": {"name": self.data, **dataclasses.asdict(self.data_config)},
            "model": {"name": self.model, **dataclasses.asdict(self.model_config)},
        }

    def section(self, name: str) -> Any:
        return {"train": self.train, "task": self.task_config, "data": self.data_config,
                "model": self.model_config}[name]


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")


def coerce(text: Any, tp: Any, key: str) -> Any:
    """Convert a ``--set`` string (or a JSON value) to the field type ``tp``."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        if isinstance(text, str) and text.lower() in ("none", "null", "") and type(None) in args:
            return None
        if text is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return coerce(text, arg, key)
            except UsageError as e:
                errors.append(str(e))
        raise UsageError(errors[0] if errors else f"bad value for {key}: {text!r}")
    if origin is Literal:
        value = text if not isinstance(text, str) else text.strip()
        if value not in args:
            raise UsageError(f"bad value for {key}: {text!r} (choose from {', '.join(map(str, args))})")
        return value
    if origin in (tuple, list):
        items = text.split(",") if isinstance(text, str) else list(text)
        item_type = args[0] if args else str
        value = [coerce(item.strip() if isinstance(item, str) else item, item_type, key) for item in items]
        return tuple(value) if origin is tuple else value
    if tp is bool:
        if isinstance(text, bool):
            return text
        lowered = str(text).strip().lower()
        if lowered in ("1", "true", "yes", "on"):
            return True
        if lowered in ("0", "false", "no", "off"):
            return False
        raise UsageError(f"bad value for {key}: {text!r} (expected true or false)")
    if tp in (int, float):
        if isinstance(text, bool):
            raise UsageError(f"bad value for {key}: {text!r} (expected {tp.__name__})")
        try:
            if tp is int and isinstance(text, float) and not text.is_integer():
                raise ValueError
            return tp(text) if not isinstance(text, str) else tp(text.strip())
        except (TypeError, ValueError):
            raise UsageError(f"bad value for {key}: {text!r} (expected {tp.__name__})") from None
    if tp is str:
        return str(text)
    if tp is Any:
        return text
    raise UsageError(f"cannot set {key}: unsupported type {_type_name(tp)}")


def field_types(config_cls: type) -> dict[str, Any]:
    hints = typing.get_type_hints(config_cls)
    return {f.name: hints[f.name] for f in dataclasses.fields(config_cls)}


def apply(config: Any, key: str, value: Any, section: str) -> Any:
    """Return ``config`` with one field replaced, converted to its declared type."""
    types_ = field_types(type(config))
    if key not in types_:
        valid = ", ".join(f"{section}.{k}" for k in types_) or "(none)"
        raise UsageError(f"unknown setting {section}.{key}; valid keys: {valid}")
    return dataclasses.replace(config, **{key: coerce(value, types_[key], f"{section}.{key}")})


def parse_sets(pairs: typing.Iterable[str]) -> dict[str, str]:
    """``["a.b=1", "c=x"]`` → ``{"a.b": "1", "c": "x"}``, with a clear error for a missing ``=``."""
    out: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise UsageError(f"--set expects key=value, got {pair!r}")
        out[key.strip()] = value
    return out


def make_config(config_cls: type, values: dict[str, Any], section: str) -> Any:
    config = config_cls()
    for key, value in values.items():
        config = apply(config, key, value, section)
    return config


def split_overrides(overrides: dict[str, Any]) -> tuple[dict[str, str], dict[str, dict[str, Any]]]:
    """Separate component swaps (``model=x``) from field settings (``model.width=3``).

    A key with no section (``epochs=3``) means ``train.epochs``.
    """
    swaps: dict[str, str] = {}
    fields: dict[str, dict[str, Any]] = {"train": {}, "task": {}, "data": {}, "model": {}}
    for key, value in overrides.items():
        if "." not in key:
            if key in SWAP_KEYS:
                swaps[SWAP_KEYS[key]] = str(value)
            else:
                fields["train"][key] = value
            continue
        section, _, name = key.partition(".")
        section = "data" if section == "dataset" else section
        if section not in fields:
            raise UsageError(f"unknown setting {key}; sections are train, task, data, model")
        fields[section][name] = value
    return swaps, fields

