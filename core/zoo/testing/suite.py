"""``contract_tests``: the test class a plugin's test file assigns to a ``Test*`` name.

Each test parametrizes over the plugin's experiments and calls one check of ``contract.py``; the
class adds only what pytest owns: the parameters, the fixtures, skips and a batch cache.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from .contract import (
    batch_or_reason,
    check_builds,
    check_forward_backward,
    check_names,
    check_outputs,
    check_overrides_round_trip,
    check_plugin_loads,
    check_weights_round_trip,
    experiment_names,
)


def contract_tests(
    plugin: str = "*",
    *,
    register: Any = None,
    experiments: Iterable[str] | None = None,
    batch_size: int = 2,
    seed: int = 0,
    settings: Mapping[str, Any] | None = None,
) -> type:
    """A pytest test class checking ``plugin``'s experiments; assign it to a ``Test*`` name.

    ``plugin``: the distribution (``zoo-example``) or entry-point name (``example``); ``"*"`` checks
    everything installed. ``register``: a plugin object (module) to register in-process for the
    tests, for a plugin that is not installed. ``experiments``: check only these names.
    ``settings``: ``--set`` values (``{"data.cache": False}``) applied to every experiment that has
    that setting, e.g. to keep a dataset from preparing a whole split to hand out two samples.
    """
    names = list(experiments) if experiments is not None else experiment_names(plugin, register)
    each = pytest.mark.parametrize("experiment", names)
    kit = _Kit(plugin, register, settings, batch_size, seed)

    @pytest.mark.zoo_contract
    class TestZooContract:
        __doc__ = f"zoo contract tests for plugin {plugin!r}."

        # xunit setup, not a class-scoped fixture method: pytest 9 warns about those (fails -W error)
        @classmethod
        def setup_class(cls) -> None:
            kit.register_plugin()

        @classmethod
        def teardown_class(cls) -> None:
            kit.unregister_plugin()

        def test_plugin_loads(self) -> None:
            check_plugin_loads(plugin, register, names)

        @each
        def test_names_follow_grammar(self, experiment: str) -> None:
            check_names(experiment)

        @each
        def test_builds(self, experiment: str, zoo_contract_data: dict[str, str]) -> None:
            check_builds(experiment, zoo_contract_data, settings)

        @each
        def test_forward_backward(self, experiment: str, zoo_contract_data: dict[str, str]) -> None:
            check_forward_backward(experiment, zoo_contract_data,
                                   kit.batch(experiment, zoo_contract_data), settings, seed)

        @each
        def test_outputs_match_task(self, experiment: str, zoo_contract_data: dict[str, str]) -> None:
            check_outputs(experiment, zoo_contract_data,
                          kit.batch(experiment, zoo_contract_data), settings, batch_size)

        @each
        def test_weights_round_trip(self, experiment: str, zoo_contract_data: dict[str, str],
                                    tmp_path: Path) -> None:
            check_weights_round_trip(experiment, zoo_contract_data, tmp_path, settings, seed)

        @each
        def test_overrides_round_trip(self, experiment: str, zoo_contract_data: dict[str, str]) -> None:
            check_overrides_round_trip(experiment, zoo_contract_data, settings)

    TestZooContract.__name__ = TestZooContract.__qualname__ = (
        "TestZooContract" if plugin == "*" else f"TestZooContract_{_ident(plugin)}")
    return TestZooContract


@dataclass
class _Kit:
    """What one ``contract_tests`` call checks with, and the tiny batches it has built."""

    plugin: str
    register: Any  # a plugin object registered in-process around the tests, or None
    settings: Mapping[str, Any] | None
    batch_size: int
    seed: int
    batches: dict[tuple[str, str], Any] = field(default_factory=dict)  # batch, or why there is none

    def batch(self, experiment: str, data: Mapping[str, str]) -> Any:
        """A tiny train batch, built once per class, or a skip naming why the dataset cannot be built."""
        key = (experiment, json.dumps(dict(data), sort_keys=True))
        if key not in self.batches:
            self.batches[key] = batch_or_reason(experiment, data, self.settings, self.batch_size,
                                                self.seed)
        if isinstance(self.batches[key], str):
            pytest.skip(self.batches[key] + " (give its path with --zoo-data or the zoo_contract_data fixture)")
        return self.batches[key]

    def register_plugin(self) -> None:
        if self.register is not None:
            from .. import plugins

            plugins.register_plugin(self.register, self.plugin)

    def unregister_plugin(self) -> None:
        if self.register is not None:
            from .. import plugins

            plugins.unregister_plugin(self.plugin)


def _ident(text: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in text)
