"""Assemble an experiment by name: resolve its settings, then build task, dataset and model."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Any

from . import config as cfg
from .api import Dataset, Experiment, Model, Spec, Task
from .errors import UsageError
from .plugins import registry

if TYPE_CHECKING:
    from torch import nn


def resolve(
    name: str, overrides: Mapping[str, Any] | None = None, data_path: str | None = None
) -> cfg.RunConfig:
    """The full, typed configuration of experiment ``name`` after the user's overrides.

    Order: the experiment's own settings, then ``--data``, then ``--set`` (so ``--set`` wins).
    """
    reg = registry()
    experiment: Experiment = reg.get("experiments", name).obj
    swaps, fields = cfg.split_overrides(dict(overrides or {}))
    parts = {"task": experiment.task, "data": experiment.dataset, "model": experiment.model}
    base_swaps, base_fields = cfg.split_overrides(dict(experiment.settings))
    parts.update(base_swaps)
    if data_path is not None and "data" not in swaps:
        data_cls = reg.get("datasets", parts["data"]).obj
        if "root" not in cfg.field_types(data_cls.Config):
            if not experiment.data_path_dataset:
                raise UsageError(f"dataset '{parts['data']}' of {name} reads no --data path")
            parts["data"] = experiment.data_path_dataset
            base_fields["data"] = {}
    for section, new in swaps.items():  # a swapped component starts from its own defaults
        if new != parts[section]:
            base_fields[section] = {}
        parts[section] = new
    if data_path is not None:
        base_fields["data"]["root"] = data_path
    merged = {s: {**base_fields[s], **fields[s]} for s in base_fields}
    kinds = {"task": "tasks", "data": "datasets", "model": "models"}
    classes = {s: reg.get(kinds[s], parts[s]).obj for s in cfg.SECTIONS}
    return cfg.RunConfig(
        experiment=name,
        task=parts["task"],
        data=parts["data"],
        model=parts["model"],
        train=cfg.make_config(cfg.TrainConfig, merged["train"], "train"),
        task_config=cfg.make_config(classes["task"].Config, merged["task"], "task"),
        data_config=cfg.make_config(classes["data"].Config, merged["data"], "data"),
        model_config=cfg.make_config(classes["model"].Config, merged["model"], "model"),
    )


def from_dict(data: Mapping[str, Any]) -> cfg.RunConfig:
    """Rebuild a RunConfig from ``config.json`` or a weight card (components by name)."""
    reg = registry()
    try:
        sections = {s: dict(data[s]) for s in ("task", "data", "model")}
        names = {s: sections[s].pop("name") for s in sections}
        train = dict(data.get("train", {}))
        experiment = data["experiment"]
    except (KeyError, TypeError) as e:
        raise UsageError(f"malformed run configuration: missing {e}") from None
    kinds = {"task": "tasks", "data": "datasets", "model": "models"}
    classes = {s: reg.get(kinds[s], names[s]).obj for s in sections}
    known_train = cfg.field_types(cfg.TrainConfig)
    return cfg.RunConfig(
        experiment=experiment,
        task=names["task"],
        data=names["data"],
        model=names["model"],
        train=cfg.make_config(cfg.TrainConfig, {k: v for k, v in train.items() if k in known_train}, "train"),
        task_config=cfg.make_config(classes["task"].Config, sections["task"], "task"),
        data_config=cfg.make_config(classes["data"].Config, sections["data"], "data"),
        model_config=cfg.make_config(classes["model"].Config, sections["model"], "model"),
    )


def with_overrides(config: cfg.RunConfig, overrides: Mapping[str, Any]) -> cfg.RunConfig:
    """Apply ``--set`` fields (not swaps) on top of an already resolved configuration."""
    swaps, fields = cfg.split_overrides(dict(overrides))
    if swaps:
        raise UsageError(f"cannot swap {', '.join(swaps)} here: the weights fix the components")
    changes = {}
    for section, values in fields.items():
        obj = config.section(section)
        for key, value in values.items():
            obj = cfg.apply(obj, key, value, section)
        changes[{"train": "train", "task": "task_config", "data": "data_config",
                 "model": "model_config"}[section]] = obj
    return dataclasses.replace(config, **changes)


def with_data_path(config: cfg.RunConfig, data_path: str) -> cfg.RunConfig:
    """Point a resolved configuration at ``--data PATH``: the dataset's ``root``, or the dataset
    the experiment names for files on disk (``data_path_dataset``), with its defaults."""
    reg = registry()
    data_cls = reg.get("datasets", config.data).obj
    if "root" in cfg.field_types(data_cls.Config):
        return dataclasses.replace(config, data_config=cfg.apply(config.data_config, "root", data_path, "data"))
    experiment = reg.tables["experiments"].get(config.experiment)
    target = experiment.obj.data_path_dataset if experiment else None
    if not target:
        raise UsageError(f"dataset '{config.data}' of {config.experiment} reads no --data path")
    data_config = cfg.make_config(reg.get("datasets", target).obj.Config, {"root": data_path}, "data")
    return dataclasses.replace(config, data=target, data_config=data_config)


@dataclass
class Assembled:
    """The parts of one run, built lazily: nothing here imports torch until ``build_model``."""

    config: cfg.RunConfig

    @cached_property
    def task(self) -> Task:
        return registry().get("tasks", self.config.task).obj(self.config.task_config)

    @cached_property
    def dataset(self) -> Dataset:
        return registry().get("datasets", self.config.data).obj(self.config.data_config)

    @cached_property
    def model_factory(self) -> Model:
        return registry().get("models", self.config.model).obj(self.config.model_config)

    @cached_property
    def spec(self) -> Spec:
        input_shape = tuple(self.dataset.input_shape())
        return Spec(input_shape=input_shape, outputs=self.task.outputs(input_shape))

    def build_model(self) -> nn.Module:
        return self.model_factory.build(self.spec)


def assemble(config: cfg.RunConfig) -> Assembled:
    return Assembled(config)


def count_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())
