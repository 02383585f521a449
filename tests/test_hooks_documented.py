"""Meta-tests, as datasette does them: every hook in hookspecs.py is documented and exercised.

Documented: ``docs/plugins.md`` has a ``### `zoo_hook(args)` `` section per hook spec, with the
spec's own argument names. Exercised: a ``test_hook_<name>`` below calls each hook through pluggy
on the tutorial's example plugin (the ``example`` fixture of conftest.py, registered in-process).
"""

from __future__ import annotations

import inspect
import re
from pathlib import Path
from types import ModuleType

import click
import pytest
from click.testing import CliRunner

from zoo import hookspecs, plugins

ROOT = Path(__file__).resolve().parents[1]
HOOKS = sorted(name for name, fn in vars(hookspecs).items()
               if name.startswith("zoo_") and inspect.isfunction(fn))


def test_hookspecs_are_the_ones_the_loader_knows() -> None:
    assert set(HOOKS) == plugins.HOOK_NAMES
    assert all(inspect.getdoc(getattr(hookspecs, name)) for name in HOOKS), "a hook spec lacks a docstring"


@pytest.mark.parametrize("hook", HOOKS)
def test_every_hook_is_documented(hook: str) -> None:
    args = ", ".join(inspect.signature(getattr(hookspecs, hook)).parameters)
    heading = f"### `{hook}({args})`"
    text = (ROOT / "docs" / "plugins.md").read_text()
    assert heading in text, f"docs/plugins.md has no section {heading!r}"
    section = text.split(heading, 1)[1].split("\n#", 1)[0]
    assert "Called" in section, f"the section on {hook} does not say when it is called"


@pytest.mark.parametrize("hook", HOOKS)
def test_every_hook_is_exercised_by_a_test(hook: str) -> None:
    sources = "\n".join(p.read_text() for p in (ROOT / "tests").glob("test_*.py"))
    assert re.search(rf"^def test_hook_{hook}\(", sources, flags=re.M), f"no test_hook_{hook} in tests/"


def registered(kind: str, name: str) -> object:
    entry = plugins.catalog().get(kind, name)
    assert entry.plugin == "example", f"{name} registered by {entry.plugin}"
    assert not [f for f in plugins.failures() if f.name == "example"], plugins.failures()
    return entry.obj


def test_hook_zoo_register_tasks(example: ModuleType) -> None:
    assert registered("tasks", "spiral-arm") is example.SpiralArm


def test_hook_zoo_register_datasets(example: ModuleType) -> None:
    assert registered("datasets", "spirals") is example.Spirals


def test_hook_zoo_register_models(example: ModuleType) -> None:
    assert registered("models", "spiral-mlp") is example.SpiralMLP


def test_hook_zoo_register_experiments(example: ModuleType) -> None:
    from zoo.experiment import resolve

    experiment = registered("experiments", "spirals.three")
    assert (experiment.task, experiment.dataset, experiment.model) == ("spiral-arm", "spirals", "spiral-mlp")
    config = resolve("spirals.three")
    assert (config.data_config.arms, config.task_config.arms, config.model_config.width) == (3, 3, 128)
    assert plugins.plugin_info["example"].hooks[:4] == [
        "zoo_register_tasks", "zoo_register_datasets", "zoo_register_models", "zoo_register_experiments"]


def test_hook_zoo_register_commands(example: ModuleType) -> None:
    group = click.Group("zoo")
    plugins.pm.hook.zoo_register_commands(cli=group)
    assert "spirals" in group.commands
    result = CliRunner().invoke(group, ["spirals", "--arms", "3", "-n", "90"])
    assert result.exit_code == 0, result.output
    assert {"o", "x", "+"} <= set(result.output)
