"""Name → component tables filled by the plugins' ``zoo_register_*`` hooks."""

from __future__ import annotations

import fnmatch
import re
import textwrap
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from .api import Dataset, Experiment, Model, Task
from .errors import UnknownName, UsageError

KINDS = ("experiments", "tasks", "datasets", "models")
BASES: dict[str, type] = {"tasks": Task, "datasets": Dataset, "models": Model}
EXPERIMENT_NAME = re.compile(r"^[a-z][a-z0-9_-]*(\.[a-z0-9][a-z0-9_-]*)+$")
COMPONENT_NAME = re.compile(r"^[a-z][a-z0-9_.-]*$")
SUMMARY_WIDTH = 90  # characters of a description that `zoo list` shows


@dataclass(frozen=True)
class Entry:
    name: str
    obj: Any  # a Task/Dataset/Model subclass, or an Experiment
    plugin: str

    @property
    def summary(self) -> str:
        """The description's first paragraph on one line, cut at a word (``zoo list``'s column)."""
        doc = self.obj.description if isinstance(self.obj, Experiment) else self.obj.__doc__
        paragraph = re.sub(r"-\n\s*", "-", (doc or "").strip().split("\n\n")[0])  # Conv-\nPool
        paragraph = " ".join(paragraph.split())
        return textwrap.shorten(paragraph, SUMMARY_WIDTH, placeholder=" …", break_on_hyphens=False)


def natural_key(name: str) -> list[Any]:
    """Sort ``cls24`` before ``cls720``: digits compare as numbers."""
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name)]


def name_matcher(pattern: str | None) -> Callable[[str], bool]:
    """``zoo list PATTERN``'s rule: wildcards (``clock.*``) match whole names, a plain word
    matches anywhere (``zoo list clock``), None matches everything."""
    if pattern is None:
        return lambda name: True
    if not any(c in pattern for c in "*?["):
        pattern = f"*{pattern}*"
    return lambda name: fnmatch.fnmatchcase(name, pattern)


class Catalog:
    def __init__(self) -> None:
        self.tables: dict[str, dict[str, Entry]] = {kind: {} for kind in KINDS}
        self.duplicates: list[str] = []  # "model 'x'" a plugin registered twice (last one wins)

    def register_callback(self, kind: str, plugin: str) -> Callable[..., None]:
        """The ``register`` a plugin's hook receives: validates, then records who registered it."""

        def register(name_or_experiment: Any, obj: Any = None) -> None:
            if kind == "experiments":
                experiment = name_or_experiment
                if not isinstance(experiment, Experiment):
                    raise TypeError(f"register() takes an Experiment, got {type(experiment).__name__}")
                if not EXPERIMENT_NAME.match(experiment.name):
                    raise ValueError(f"experiment name {experiment.name!r} is not family.variant lowercase")
                name, obj = experiment.name, experiment
            else:
                name = name_or_experiment
                base = BASES[kind]
                if not (isinstance(obj, type) and issubclass(obj, base)):
                    raise TypeError(f"{kind[:-1]} {name!r} must be a subclass of zoo.{base.__name__}")
                if not isinstance(name, str) or not COMPONENT_NAME.match(name):
                    raise ValueError(f"{kind[:-1]} name {name!r} must be lowercase letters, digits, -_.")
                if kind == "tasks" and hasattr(obj, "optimizer_steps"):  # the name before 0.2
                    raise TypeError(f"task {name!r} declares optimizer_steps: rename it to phases "
                                    "(one optimizer per phase; docs/plugins.md)")
            table = self.tables[kind]
            if name in table and table[name].plugin == plugin:
                self.duplicates.append(f"{kind[:-1]} '{name}'")
            if name in table and table[name].plugin != plugin:
                raise ValueError(
                    f"{kind[:-1]} '{name}' is registered by both '{table[name].plugin}' and '{plugin}'"
                )
            table[name] = Entry(name, obj, plugin)

        return register

    def get(self, kind: str, name: str) -> Entry:
        table = self.tables[kind]
        if name not in table:
            raise UnknownName(kind[:-1], name, table)
        return table[name]

    def names(self, kind: str, pattern: str | None = None) -> list[str]:
        if kind not in self.tables:
            raise UsageError(f"unknown kind '{kind}'; choose from {', '.join(KINDS)}")
        matches = name_matcher(pattern)
        return sorted(filter(matches, self.tables[kind]), key=natural_key)

    def entries(self, kind: str, pattern: str | None = None) -> Iterator[Entry]:
        for name in self.names(kind, pattern):
            yield self.tables[kind][name]

    def by_plugin(self, plugin: str) -> dict[str, list[str]]:
        return {
            kind: sorted((n for n, e in table.items() if e.plugin == plugin), key=natural_key)
            for kind, table in self.tables.items()
        }
