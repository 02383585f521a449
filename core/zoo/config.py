"""Typed run settings and ``--set key=value`` overrides.

A run's configuration has four sections: ``train`` (TrainConfig below) and ``task``, ``data``,
``model`` (each component's own ``Config`` dataclass). ``--set model.width=64`` changes a field,
converted to the field's declared type; ``--set model=other-model`` swaps the component.

Allowed values are declared once, next to the field (``batch_size: int = ranged(64, 1)``, or
``dataclasses.field(default=64, metadata={"range": (1, None)})``), and ``apply`` checks them for
every value that reaches a config — CLI flags, ``--set``, experiment settings, ``config.json``.
A float must be finite unless its field says ``metadata={"finite": False}``.
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from dataclasses import dataclass
from typing import Any, Literal

from .errors import UsageError

SECTIONS = ("task", "data", "model")
SWAP_KEYS = {"task": "task", "data": "data", "dataset": "data", "model": "model"}
INT64 = (-(2**63), 2**63 - 1)  # what torch and numpy accept: ints outside are refused everywhere


@dataclass(frozen=True)
class Range:
    """The allowed values of a numeric setting; ``None`` leaves a side unbounded."""

    lo: float | None = None
    hi: float | None = None
    lo_open: bool = False  # True: lo itself is not allowed (``lr > 0``)
    hi_open: bool = False

    def __contains__(self, value: float) -> bool:
        lo_ok = self.lo is None or (value > self.lo if self.lo_open else value >= self.lo)
        hi_ok = self.hi is None or (value < self.hi if self.hi_open else value <= self.hi)
        return lo_ok and hi_ok

    def __str__(self) -> str:
        left = "" if self.lo is None else f"{self.lo} {'<' if self.lo_open else '<='} "
        right = "" if self.hi is None else f" {'<' if self.hi_open else '<='} {self.hi}"
        if self.lo is not None and self.hi is None:
            return f"value {'>' if self.lo_open else '>='} {self.lo}"
        return f"{left}value{right}"


def ranged(default: Any, lo: float | None = None, hi: float | None = None, *, lo_open: bool = False,
           hi_open: bool = False) -> Any:
    """A dataclass field whose values ``apply`` checks: ``width: int = ranged(32, 1)`` (≥ 1)."""
    return dataclasses.field(default=default, metadata={"range": Range(lo, hi, lo_open, hi_open)})


def field_range(f: dataclasses.Field) -> Range | None:
    """A field's declared range: a ``Range`` or a ``(lo, hi)`` tuple (inclusive) in its metadata."""
    declared = f.metadata.get("range")
    if declared is None or isinstance(declared, Range):
        return declared
    lo, hi = declared
    return Range(lo, hi)


def check_value(value: Any, f: dataclasses.Field, key: str) -> None:
    """Refuse a coerced value outside the field's range, a nan/inf float, or an int beyond int64."""
    if isinstance(value, (tuple, list)):
        for item in value:
            check_value(item, f, key)
        return
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return
    if isinstance(value, float) and not math.isfinite(value) and f.metadata.get("finite", True):
        raise UsageError(f"bad value for {key}: {value} (expected a finite number)")
    allowed = field_range(f)
    if allowed is not None and value not in allowed:
        raise UsageError(f"bad value for {key}: {value} (expected {allowed})")
    if isinstance(value, int) and value not in Range(*INT64):
        raise UsageError(f"bad value for {key}: {value} (expected an int between {INT64[0]} and {INT64[1]})")


@dataclass
class TrainConfig:
    """Everything the trainer does, the same for every experiment."""

    epochs: int = ranged(1, 1)
    max_steps: int = ranged(0, 0)  # 0: no limit; else stop after this many optimizer steps
    limit_batches: int = ranged(0, 0)  # 0: all; else batches per epoch (train) and per evaluation
    batch_size: int = ranged(64, 1)
    lr: float = ranged(1e-3, 0, lo_open=True)
    optimizer: str = "adamw"  # any name timm.optim.create_optimizer_v2 knows
    weight_decay: float = ranged(0.0, 0)
    betas: tuple[float, ...] | None = ranged(None, 0, 1, hi_open=True)
    momentum: float = ranged(0.9, 0, 1)
    scheduler: str = "cosine"  # none | cosine | step | plateau … (timm.scheduler)
    warmup_epochs: float = ranged(0.0, 0)
    min_lr: float = ranged(0.0, 0)
    grad_clip: float = ranged(0.0, 0)  # 0: off; else max global L2 norm per optimizer step
    accum_steps: int = ranged(1, 1)
    ema: bool = False
    ema_decay: float = ranged(0.999, 0, 1, lo_open=True, hi_open=True)
    ema_warmup: bool = False  # timm's use_warmup: decay ramps 1 − (1 + step)^(−2/3) up to ema_decay
    device: str = "auto"  # auto | cpu | cuda | cuda:N | mps
    precision: Literal["auto", "fp32", "bf16", "fp16"] = "auto"
    compile: bool = False
    channels_last: bool = True  # conv nets, where the precision pays for it (zoo.training.runtime)
    seed: int = ranged(0, 0, 2**32 - 1)  # what NumPy accepts
    deterministic: bool = False
    num_workers: int = ranged(-1, -1)  # -1: pick from the CPU count
    log_every: int = ranged(50, 1)  # steps between metrics.jsonl lines
    checkpoint_every: int = ranged(0, 0)  # 0: at epoch ends only; else also every N steps
    eval_every: int = ranged(1, 0)  # epochs between validation passes
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
        if "\0" in str(text):
            raise UsageError(f"bad value for {key}: {text!r} (contains a NUL character)")
        return str(text)
    if tp is Any:
        return text
    raise UsageError(f"cannot set {key}: unsupported type {_type_name(tp)}")


def field_types(config_cls: type) -> dict[str, Any]:
    hints = typing.get_type_hints(config_cls)
    return {f.name: hints[f.name] for f in dataclasses.fields(config_cls)}


def apply(config: Any, key: str, value: Any, section: str) -> Any:
    """Return ``config`` with one field replaced, converted to its declared type and range-checked."""
    types_ = field_types(type(config))
    if key not in types_:
        valid = ", ".join(f"{section}.{k}" for k in types_) or "(none)"
        raise UsageError(f"unknown setting {section}.{key}; valid keys: {valid}")
    coerced = coerce(value, types_[key], f"{section}.{key}")
    check_value(coerced, {f.name: f for f in dataclasses.fields(config)}[key], f"{section}.{key}")
    return dataclasses.replace(config, **{key: coerced})


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

