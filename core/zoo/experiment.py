"""Assemble an experiment by name: resolve its settings, then build task, dataset and model."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from . import config as cfg
from .api import Dataset, Experiment, Model, Spec, Task
from .errors import UsageError, ZooError
from .plugins import catalog

if TYPE_CHECKING:
    from torch import nn


def resolve(
    base: str | Mapping[str, Any] | cfg.RunConfig, overrides: Mapping[str, Any] | None = None,
    data_path: str | None = None,
) -> cfg.RunConfig:
    """The one path to a run configuration: ``zoo run``, ``--resume``, eval, predict, sample, the
    Python API and the contract kit all come through here.

    ``base`` is an experiment name (its settings; ``--set data=NAME`` may swap a component, which
    then starts from its own defaults) or a saved configuration (a run's ``config.json``, a weight
    card's config; its components are fixed). Then ``--data`` (the dataset's ``root``, or the
    dataset of the experiment that reads that folder), then ``--set`` fields, so ``--set`` wins.
    """
    swaps, fields = cfg.split_overrides(dict(overrides or {}))
    if isinstance(base, str):
        config = _experiment_config(base, swaps)
    elif swaps:
        raise UsageError(f"cannot swap {', '.join(swaps)} here: a saved configuration (run or "
                         "weights) fixes the components")
    else:
        config = base if isinstance(base, cfg.RunConfig) else from_dict(base)
    if data_path is not None:
        config = _with_data_path(config, data_path, switch="data" not in swaps)
    return _with_fields(config, fields)


def _experiment_config(name: str, swaps: Mapping[str, str]) -> cfg.RunConfig:
    """Experiment ``name``'s own settings, with ``swaps`` (section → component name) applied."""
    reg = catalog()
    experiment: Experiment = reg.get("experiments", name).obj
    parts = {"task": experiment.task, "data": experiment.dataset, "model": experiment.model}
    base_swaps, fields = cfg.split_overrides(dict(experiment.settings))
    parts.update(base_swaps)
    for section, new in swaps.items():  # a swapped component starts from its own defaults
        if new != parts[section]:
            fields[section] = {}
        parts[section] = new
    kinds = {"task": "tasks", "data": "datasets", "model": "models"}
    classes = {s: reg.get(kinds[s], parts[s]).obj for s in cfg.SECTIONS}
    return cfg.RunConfig(
        experiment=name,
        task=parts["task"],
        data=parts["data"],
        model=parts["model"],
        train=cfg.make_config(cfg.TrainConfig, fields["train"], "train"),
        task_config=cfg.make_config(classes["task"].Config, fields["task"], "task"),
        data_config=cfg.make_config(classes["data"].Config, fields["data"], "data"),
        model_config=cfg.make_config(classes["model"].Config, fields["model"], "model"),
    )


def _short(value: Any) -> str:
    """A bad value for an error line: its repr, cut short (a card may hold anything)."""
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def from_dict(data: Mapping[str, Any]) -> cfg.RunConfig:
    """Rebuild a RunConfig from ``config.json`` or a weight card (components by name)."""
    reg = catalog()
    if not isinstance(data, Mapping):
        raise UsageError(f"malformed run configuration: expected an object, got {type(data).__name__}")
    for key in ("task", "data", "model"):  # each an object naming its component
        section = data.get(key)
        if not isinstance(section, Mapping) or not isinstance(section.get("name"), str):
            raise UsageError(f"malformed run configuration: '{key}' must be an object with a "
                             f"string 'name', got {_short(section)}")
    if not isinstance(data.get("train", {}), Mapping):
        raise UsageError(f"malformed run configuration: 'train' must be an object, got "
                         f"{_short(data.get('train'))}")
    if not isinstance(data.get("experiment"), str):
        raise UsageError(f"malformed run configuration: 'experiment' must be a string, got "
                         f"{_short(data.get('experiment'))}")
    sections = {s: dict(data[s]) for s in ("task", "data", "model")}
    names = {s: sections[s].pop("name") for s in sections}
    train = dict(data.get("train", {}))
    experiment = data["experiment"]
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


def _with_fields(config: cfg.RunConfig, fields: Mapping[str, Mapping[str, Any]]) -> cfg.RunConfig:
    """``--set`` fields on top of a configuration, each converted to its type and range-checked."""
    changes = {}
    for section, values in fields.items():
        obj = config.section(section)
        for key, value in values.items():
            obj = cfg.apply(obj, key, value, section)
        changes[{"train": "train", "task": "task_config", "data": "data_config",
                 "model": "model_config"}[section]] = obj
    return dataclasses.replace(config, **changes)


def _with_data_path(config: cfg.RunConfig, data_path: str, switch: bool = True) -> cfg.RunConfig:
    """Point a configuration at ``--data PATH``: the dataset's ``root``, or (``switch``) the
    dataset the experiment names for files on disk (``data_path_dataset``) that accepts PATH, with
    its defaults and the settings it shares by name with the dataset it replaces."""
    reg = catalog()
    entry = reg.tables["experiments"].get(config.experiment)
    experiment = entry.obj if entry else None
    target = dataset_for_path(experiment, config.data, data_path, config.experiment) if switch else config.data
    if target == config.data:
        return dataclasses.replace(config, data_config=cfg.apply(config.data_config, "root", data_path, "data"))
    target_cls = reg.get("datasets", target).obj
    values = {**carried_fields(config.data_config, target_cls), "root": data_path}
    data_config = cfg.make_config(target_cls.Config, values, "data")
    return dataclasses.replace(config, data=target, data_config=data_config)


def dataset_for_path(experiment: Experiment | None, current: str, path: str, name: str) -> str:
    """The dataset that reads ``--data path``: ``current`` itself when it has a ``root`` field
    (and is not one of several candidates), else the first of the experiment's
    ``data_path_dataset`` names whose ``accepts(path)`` is true; one line naming every expected
    layout when none does."""
    reg = catalog()
    candidates = experiment.data_path_datasets if experiment else ()
    reads_root = "root" in cfg.field_types(reg.get("datasets", current).obj.Config)
    if reads_root and (current not in candidates or len(candidates) < 2):
        return current
    if not candidates:
        raise UsageError(f"dataset '{current}' of {name} reads no --data path")
    if len(candidates) == 1:  # its own errors say best what is missing
        return candidates[0]
    classes = {n: reg.get("datasets", n).obj for n in candidates}
    folder = Path(path).expanduser()
    for candidate, cls in classes.items():
        if cls.accepts(folder):
            return candidate
    layouts = " or ".join(f"{cls.data_layout or 'its files'} ({n})" for n, cls in classes.items())
    raise UsageError(f"--data {path}: {_describe(folder)}; {name} reads {layouts}")


def _describe(folder: Path) -> str:
    """What is at ``folder``, in a few words, for an error message."""
    if not folder.exists():
        return "no such folder"
    if not folder.is_dir():
        return "a file, not a folder"
    names = sorted(p.name for p in folder.iterdir())
    if not names:
        return "the folder is empty"
    more = f" and {len(names) - 5} more" if len(names) > 5 else ""
    return f"found {', '.join(names[:5])}{more}"


def carried_fields(config: Any, target: type[Dataset]) -> dict[str, Any]:
    """Settings of ``config`` that ``target``'s Config has too, same name and type (``root``
    aside): e.g. the input size a reader was trained at carries over to the dataset ``--data``
    switches to, so its samples fit the model."""
    own = cfg.field_types(type(config))
    theirs = cfg.field_types(target.Config)
    return {k: getattr(config, k) for k, tp in own.items()
            if k != "root" and theirs.get(k) == tp}


@dataclass
class Assembled:
    """The parts of one run, built lazily: nothing here imports torch until ``build_model``."""

    config: cfg.RunConfig

    @cached_property
    def task(self) -> Task:
        return catalog().get("tasks", self.config.task).obj(self.config.task_config)

    @cached_property
    def dataset(self) -> Dataset:
        return catalog().get("datasets", self.config.data).obj(self.config.data_config)

    @cached_property
    def model_factory(self) -> Model:
        return catalog().get("models", self.config.model).obj(self.config.model_config)

    @cached_property
    def spec(self) -> Spec:
        input_shape = tuple(self.dataset.input_shape())
        return Spec(input_shape=input_shape, outputs=self.task.outputs(input_shape))

    def build_model(self) -> nn.Module:
        """The model; a plugin whose ``build`` fails on these settings (``--set model.hidden=-1``
        for a field that declares no range) gives one line naming the plugin, not a traceback."""
        refuse_remote_settings(self.config)
        try:
            return self.model_factory.build(self.spec)
        except ZooError:
            raise
        except (RuntimeError, ValueError, TypeError, OverflowError, MemoryError) as e:
            entry = catalog().get("models", self.config.model)
            settings = ", ".join(f"{k}={v!r}" for k, v in dataclasses.asdict(self.config.model_config).items())
            raise UsageError(f"model '{entry.name}' (plugin {entry.plugin}) cannot be built with "
                             f"{settings or 'its defaults'} for input {self.spec.input_shape}: "
                             f"{type(e).__name__}: {e}") from e

    def use_split(self, split: str) -> None:
        """Check that ``split`` can be read; ``all`` always can: a dataset without its own is
        replaced here by ``AllSplits`` (every sample of every split, in split order)."""
        splits = self.dataset.splits
        if split == "all" and "all" not in splits:
            self.dataset = AllSplits(self.dataset)  # replaces the cached_property's value
        elif split not in splits:
            choices = ", ".join(dict.fromkeys([*splits, "all"]))
            raise UsageError(f"unknown split '{split}'; choose from {choices}")


class AllSplits(Dataset):
    """Split ``all`` of a dataset that has none: its splits concatenated (train, val, test).

    Datasets whose samples are made on the device get ``all`` the same way: each batch's
    indices are handed to the split they fall in and the pieces put back in order.
    """

    splits: ClassVar[tuple[str, ...]] = ("all",)

    def __init__(self, inner: Dataset) -> None:
        super().__init__(inner.config)
        self.inner = inner
        self.on_device = inner.on_device
        self.parts = [s for s in inner.splits if s != "all"]

    def input_shape(self) -> tuple[int, ...]:
        return self.inner.input_shape()

    def load_image(self, path: Path) -> Any:
        return self.inner.load_image(path)

    def skipped(self, split: str, seed: int) -> int:
        return sum(self.inner.skipped(part, seed) for part in self.parts)

    def split(self, name: str, seed: int) -> Any:
        import torch

        if name != "all":
            raise UsageError(f"unknown split '{name}'; choose from all")
        return torch.utils.data.ConcatDataset([self.inner.split(p, seed) for p in self.parts])

    def device_batch(self, split: str, seed: int, indices: Any) -> Any:
        import torch

        pieces, positions, start = [], [], 0
        for part in self.parts:
            n = len(self.inner.split(part, seed))
            inside = (indices >= start) & (indices < start + n)
            if inside.any():
                pieces.append(self.inner.device_batch(part, seed, indices[inside] - start))
                positions.append(inside.nonzero().squeeze(1))
            start += n
        order = torch.cat(positions).argsort()
        return tuple(torch.cat(field)[order] for field in zip(*pieces))


# What a builder would fetch over the network: a URL, or timm's ``hf-hub:``/``hf_hub:`` names.
REMOTE_SETTING = re.compile(r"\s*(?:[A-Za-z][A-Za-z0-9+.-]*://|hf[-_]hub:)", re.IGNORECASE)


def refuse_remote_settings(config: cfg.RunConfig) -> None:
    """With ``ZOO_OFFLINE=1``, refuse settings naming a remote resource before building: a model
    built from ``backbone=hf-hub:…`` (from ``--set`` or a weight card) would download its
    configuration while being built."""
    from .env import offline

    if not offline():
        return
    for section in cfg.SECTIONS:
        for key, value in dataclasses.asdict(config.section(section)).items():
            for item in value if isinstance(value, (list, tuple)) else (value,):
                if isinstance(item, str) and REMOTE_SETTING.match(item):
                    raise UsageError(f"{section}.{key}={item!r} names a remote resource but "
                                     "ZOO_OFFLINE=1 forbids network access; expected a local name "
                                     "(or unset ZOO_OFFLINE)")


def assemble(config: cfg.RunConfig) -> Assembled:
    return Assembled(config)


def count_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())
