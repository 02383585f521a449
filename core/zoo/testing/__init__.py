"""Contract tests for zoo plugins: a pytest plugin (entry point ``pytest11``) and a test factory.

A plugin author gets ready-made tests for their own registrations with two lines in a test file::

    from zoo.testing import contract_tests

    TestZooContract = contract_tests("zoo-example")   # distribution or entry-point name

or with no file at all: ``pytest --zoo-contract zoo-example`` (or ``zoo_contract = zoo-example`` in
the ``[tool.pytest.ini_options]`` of ``pyproject.toml``).

Every experiment the plugin registers then gets one test each for: its names follow the grammar;
it builds; a forward and backward pass on a tiny batch gives a finite loss in every phase;
its outputs match what the task declares; its weights round-trip through safetensors with the card;
``--set`` of every setting round-trips through ``zoo.experiment.resolve``. Plus one test that the
plugin loads without error and without importing torch.

This module is loaded by every pytest run in an environment where zoo is installed, so it imports
no torch and does nothing unless asked: the tests exist only where ``contract_tests`` is called or
``--zoo-contract`` / ``zoo_contract`` names a plugin.

Datasets that need files (MNIST, an image folder) are drawn from the ``zoo_contract_data`` fixture:
a mapping of dataset name → path, empty by default, filled by ``--zoo-data NAME=PATH`` or by
overriding the fixture in ``conftest.py``. A dataset that cannot be built (files missing, no
network) skips the tests that need a batch, with the dataset's own one-line error as the reason.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import subprocess
import sys
import types
import typing
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import pytest

__all__ = ["contract_tests", "set_text", "tiny_batch"]


# ------------------------------------------------------------------ the pytest plugin


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("zoo", "zoo plugin contract tests")
    group.addoption("--zoo-contract", action="append", default=[], metavar="PLUGIN",
                    help="Run zoo's contract tests for PLUGIN (distribution or entry-point name; "
                         "'*' for every installed plugin). Repeatable or comma-separated.")
    group.addoption("--zoo-data", action="append", default=[], metavar="DATASET=PATH",
                    help="Data for a dataset the contract tests draw a tiny batch from.")
    parser.addini("zoo_contract", type="args", default=[],
                  help="Plugins whose zoo contract tests run in every pytest session.")


def _requested(config: pytest.Config) -> list[str]:
    names = [*config.getoption("zoo_contract", default=[]), *config.getini("zoo_contract")]
    return [n.strip() for item in names for n in item.split(",") if n.strip()]


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "zoo_contract: a zoo plugin contract test")


@pytest.hookimpl(tryfirst=True)  # before -k/-m deselect what it adds
def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config,
                                  items: list[pytest.Item]) -> None:
    """With ``--zoo-contract``/``zoo_contract``, append the contract tests of those plugins."""
    requested = _requested(config)
    if not requested:
        return
    module = types.ModuleType("zoo_contract")
    for plugin in requested:
        cls = contract_tests(plugin)
        module.__dict__[cls.__name__] = cls
    path = Path(__file__).parent.with_suffix(".py")  # node ids keep naming zoo/testing.py
    collector = _ContractModule.from_parent(session, path=path, generated=module)
    items.extend(session.genitems(collector))


class _ContractModule(pytest.Module):
    """A collector over the classes ``--zoo-contract`` generated (they live in no file)."""

    def __init__(self, *args: Any, generated: types.ModuleType, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._generated = generated

    def _getobj(self) -> types.ModuleType:
        return self._generated


@pytest.fixture(scope="session")
def zoo_contract_data(pytestconfig: pytest.Config) -> dict[str, str]:
    """Dataset name → data path for the contract tests; override it in conftest.py to generate data."""
    out: dict[str, str] = {}
    for pair in pytestconfig.getoption("zoo_data", default=[]) or []:
        name, sep, path = pair.partition("=")
        if not sep:
            raise pytest.UsageError(f"--zoo-data expects DATASET=PATH, got {pair!r}")
        out[name.strip()] = os.path.expanduser(path.strip())
    return out


# ------------------------------------------------------------------ helpers


def set_text(value: Any) -> str | None:
    """``value`` written as a user types it after ``--set key=``; None if that syntax cannot say it."""
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, str)):
        return None if "\0" in str(value) else str(value)  # core refuses NUL in settings
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, (tuple, list)):
        parts = [set_text(v) for v in value]
        if not parts or any(p is None or "," in p for p in parts):
            return None
        return ",".join(typing.cast(list[str], parts))
    return None


def tiny_batch(dataset: Any, n: int = 2, seed: int = 0, split: str = "train") -> Any:
    """The first ``n`` samples of a split, collated as the trainer's DataLoader would."""
    from torch.utils.data import default_collate

    data = dataset.split(split, seed)
    count = min(n, len(data))
    if count == 0:
        raise AssertionError(f"split '{split}' of {type(dataset).__name__} is empty")
    return default_collate([data[i] for i in range(count)])


def _plugin_matches(plugin: str, entry_plugin: str) -> bool:
    from .. import plugins

    if plugin in ("*", entry_plugin):
        return True
    info = plugins.plugin_info.get(entry_plugin)
    dist = (info.distribution or "") if info else ""
    normal = plugin.replace("_", "-").lower()
    return bool(dist) and dist.replace("_", "-").lower() == normal


def _names_of(plugin: str, register: Any) -> list[str]:
    """The experiments ``plugin`` registers, read without importing torch."""
    from .. import plugins
    from .._catalog import Catalog

    if register is not None:
        scratch = Catalog()
        hook = getattr(register, "zoo_register_experiments", None)
        try:
            if hook is not None:
                hook(register=scratch.register_callback("experiments", plugin))
        except Exception:  # test_plugin_loads reports the plugin's error
            pass
        return scratch.names("experiments")
    reg = plugins.catalog()
    return [e.name for e in reg.entries("experiments") if _plugin_matches(plugin, e.plugin)]


def _component_names(plugin: str) -> dict[str, list[str]]:
    from .. import plugins

    reg = plugins.catalog()
    return {kind: [e.name for e in reg.entries(kind) if _plugin_matches(plugin, e.plugin)]
            for kind in ("tasks", "datasets", "models")}


def _finite(value: Any) -> bool:
    import torch

    if isinstance(value, torch.Tensor):
        return bool(torch.isfinite(value.detach().float()).all())
    return math.isfinite(float(value))


# ------------------------------------------------------------------ the tests


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
    names = list(experiments) if experiments is not None else _names_of(plugin, register)
    each = pytest.mark.parametrize("experiment", names)
    cache: dict[tuple[str, str], Any] = {}

    def resolve(experiment: str, data: Mapping[str, str], overrides: Mapping[str, Any] | None = None
                ) -> Any:
        from ..experiment import resolve as _resolve
        from ..plugins import catalog

        entry = catalog().get("experiments", experiment).obj
        # --zoo-data NAME=DIR for the experiment's dataset or any dataset its --data may switch to
        data_path = next((data[n] for n in (entry.dataset, *entry.data_path_datasets) if n in data), None)
        own: dict[str, Any] = {}
        if settings:
            base = _resolve(experiment, None, data_path=data_path)
            own = {key: value for key, value in settings.items() if _has_setting(base, key)}
        return _resolve(experiment, {**own, **(overrides or {})}, data_path=data_path)

    def parts(experiment: str, data: Mapping[str, str]) -> Any:
        from ..experiment import assemble

        return assemble(resolve(experiment, data))

    def batch_of(experiment: str, data: Mapping[str, str]) -> Any:
        """A tiny train batch, or a skip naming why the dataset cannot be built here."""
        from ..errors import ZooError

        key = (experiment, json.dumps(dict(data), sort_keys=True))
        if key not in cache:
            assembled = parts(experiment, data)
            try:
                cache[key] = tiny_batch(assembled.dataset, batch_size, seed)
            except (ZooError, OSError) as e:  # data missing offline: a real missing capability
                cache[key] = f"dataset '{assembled.config.data}' unavailable: {e}".splitlines()[0]
        if isinstance(cache[key], str):
            pytest.skip(cache[key] + " (give its path with --zoo-data or the zoo_contract_data fixture)")
        return cache[key]

    @pytest.mark.zoo_contract
    class TestZooContract:
        __doc__ = f"zoo contract tests for plugin {plugin!r}."

        # xunit-style class setup, not a class-scoped fixture method: pytest 9 warns about those
        # (PytestRemovedIn10Warning), which fails every project that runs with ``-W error``.
        @classmethod
        def setup_class(cls) -> None:
            """Register an in-process plugin object for the class's tests."""
            if register is not None:
                from .. import plugins

                plugins.register_plugin(register, plugin)

        @classmethod
        def teardown_class(cls) -> None:
            if register is not None:
                from .. import plugins

                plugins.unregister_plugin(plugin)

        def test_plugin_loads(self) -> None:
            """The plugin registered without error and importing it imports no torch."""
            from .. import plugins

            failed = [f"{i.name}: {i.error}" for i in plugins.failures() if _plugin_matches(plugin, i.name)]
            assert not failed, f"plugin failed to load: {'; '.join(failed)}"
            if register is None and plugin != "*":
                found = any(_plugin_matches(plugin, n) for n in plugins.plugin_info)
                assert found, (f"no zoo plugin {plugin!r} is installed; installed: "
                               f"{', '.join(sorted(plugins.plugin_info)) or 'none'}")
            self._assert_torch_free()
            assert names, f"plugin {plugin!r} registers no experiments"

        def _assert_torch_free(self) -> None:
            if register is not None:
                module = getattr(register, "__name__", None)
                if not isinstance(register, types.ModuleType) or not module:
                    return  # an object defined in a test file: nothing separate to import
                code = ("import sys, importlib; from zoo import plugins; "
                        f"plugins.register_plugin(importlib.import_module({module!r}), {plugin!r}); ")
                load = [plugin]
            else:
                from .. import plugins

                load = [n for n, info in plugins.plugin_info.items()  # installed ones, not in-process
                        if info.distribution and _plugin_matches(plugin, n)]
                code = "import sys; from zoo import plugins; "
            code += (f"plugins.catalog(); assert set({load!r}) <= set(plugins.plugin_info), 'not loaded'; "
                     "bad = [m for m in ('torch', 'torchvision') if m in sys.modules]; print(','.join(bad))")
            env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
            if plugin != "*":  # judge this plugin alone (by its entry-point names), not its neighbours
                env["ZOO_LOAD_PLUGINS"] = ",".join(load)
            done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                                  timeout=120)
            assert done.returncode == 0, f"registering failed in a fresh process:\n{done.stderr}"
            assert not done.stdout.strip(), (
                f"registering imports {done.stdout.strip()}: keep torch imports inside methods so "
                f"'zoo list' stays fast")

        @each
        def test_names_follow_grammar(self, experiment: str) -> None:
            """``family.variant`` lowercase, and the parts it names exist."""
            from .._catalog import COMPONENT_NAME, EXPERIMENT_NAME
            from ..plugins import catalog

            assert EXPERIMENT_NAME.match(experiment), f"{experiment!r} is not family.variant lowercase"
            entry = catalog().get("experiments", experiment)
            exp = entry.obj
            for kind, name in (("tasks", exp.task), ("datasets", exp.dataset), ("models", exp.model),
                               *(("datasets", n) for n in exp.data_path_datasets)):
                if name is None:
                    continue
                assert COMPONENT_NAME.match(name), f"{kind[:-1]} name {name!r} is not lowercase -_."
                assert name in catalog().tables[kind], f"{experiment} names unknown {kind[:-1]} {name!r}"
            for kind, component_names in _component_names(entry.plugin).items():
                for name in component_names:
                    obj = catalog().get(kind, name).obj
                    assert dataclasses.is_dataclass(obj.Config), f"{name}.Config must be a dataclass"
                    obj.Config()  # every field needs a default: `zoo run` builds it with none given

        @each
        def test_builds(self, experiment: str, zoo_contract_data: dict[str, str]) -> None:
            """Resolve, assemble and build the model; every phase has parameters."""
            from torch import nn

            assembled = parts(experiment, zoo_contract_data)
            spec = assembled.spec
            assert spec.input_shape and all(isinstance(d, int) and d > 0 for d in spec.input_shape), (
                f"input_shape {spec.input_shape} must be positive ints")
            assert spec.outputs, "task.outputs() declares no outputs"
            for key, shape in spec.outputs.items():
                assert isinstance(key, str) and all(isinstance(d, int) and d > 0 for d in shape), (
                    f"output {key!r}: shape {shape} must be positive ints")
            model = assembled.build_model()
            assert isinstance(model, nn.Module), f"build() returned {type(model).__name__}, not nn.Module"
            phases = tuple(assembled.task.phases)
            assert phases and len(set(phases)) == len(phases), f"phases {phases} empty or repeated"
            for phase in phases:
                params = [p for p in assembled.task.parameters(model, phase) if p.requires_grad]
                assert params, f"phase {phase!r} has no trainable parameters"

        @each
        def test_forward_backward(self, experiment: str, zoo_contract_data: dict[str, str]) -> None:
            """Each phase: finite scalar loss, finite logs, finite gradients, one SGD step."""
            import torch

            from ..training.phases import phase_parameters, toggle_phase  # the trainer's rules

            batch = batch_of(experiment, zoo_contract_data)
            assembled = parts(experiment, zoo_contract_data)
            task = assembled.task
            torch.manual_seed(seed)
            model = assembled.build_model().train()
            params = phase_parameters(task, model, tuple(task.phases))
            for phase, ps in params.items():
                toggle_phase(params, phase)
                model.zero_grad(set_to_none=True)
                loss, logs = task.loss(model, batch, phase)
                assert isinstance(loss, torch.Tensor) and loss.dim() == 0, (
                    f"phase {phase!r}: loss must be a scalar tensor, got {getattr(loss, 'shape', loss)!r}")
                assert _finite(loss), f"phase {phase!r}: loss is {loss.item()}"
                for key, value in logs.items():
                    assert isinstance(value, torch.Tensor), f"phase {phase!r}: log {key!r} is not a tensor"
                    assert _finite(value), f"phase {phase!r}: log {key!r} is not finite"
                loss.backward()
                grads = [p.grad for p in ps if p.grad is not None]
                assert grads, f"phase {phase!r}: no gradient reaches the phase's parameters"
                assert all(_finite(g) for g in grads), f"phase {phase!r}: non-finite gradients"
                with torch.no_grad():  # a plain SGD step (torch.optim would import torch._dynamo: 4 s)
                    for p in ps:
                        if p.grad is not None:
                            p.add_(p.grad, alpha=-1e-3)
            for ps in params.values():  # leave every parameter trainable again
                for p in ps:
                    p.requires_grad_(True)

        @each
        def test_outputs_match_task(self, experiment: str, zoo_contract_data: dict[str, str]) -> None:
            """``task.forward`` returns exactly the declared names with (batch, *shape) shapes."""
            import torch

            batch = batch_of(experiment, zoo_contract_data)
            assembled = parts(experiment, zoo_contract_data)
            task = assembled.task
            model = assembled.build_model().eval()
            n = len(batch[0]) if isinstance(batch, (list, tuple)) else batch_size
            with torch.no_grad():
                outputs = task.forward(model, batch)
            declared = dict(task.outputs(assembled.spec.input_shape))
            assert set(outputs) == set(declared), (
                f"forward returned {sorted(outputs)}, task.outputs declares {sorted(declared)}")
            for key, shape in declared.items():
                got = tuple(outputs[key].shape)
                assert got == (n, *shape), f"output {key!r}: shape {got}, declared (batch, *{shape})"
            if type(task).decode is not _task_base().decode:
                decoded = task.decode(outputs)
                assert len(decoded) == n and all(isinstance(s, str) for s in decoded), (
                    f"decode() must give one string per sample, got {decoded!r}")

        @each
        def test_weights_round_trip(self, experiment: str, zoo_contract_data: dict[str, str],
                                    tmp_path: Path) -> None:
            """Weights + card → safetensors → a fresh model: same tensors, same configuration."""
            import torch
            from safetensors.torch import load_file as plain_load

            from ..experiment import from_dict
            from ..storage import weights

            assembled = parts(experiment, zoo_contract_data)
            config = assembled.config
            torch.manual_seed(seed)
            model = assembled.build_model()
            card = weights.make_card(experiment, config.to_dict(), {"contract": 1.0})
            path = tmp_path / "model.safetensors"
            weights.save_weights(path, model.state_dict(), card)
            read = weights.read_card(path)
            assert read["experiment"] == experiment and read["metrics"] == {"contract": 1.0}
            assert read["config"] == json.loads(json.dumps(config.to_dict())), "card config differs"
            assert from_dict(read["config"]) == config, "the card's config rebuilds a different run"
            assert set(plain_load(str(path))) == set(model.state_dict()), "plain safetensors differs"
            torch.manual_seed(seed + 1)
            fresh = parts(experiment, zoo_contract_data).build_model()
            weights.load_into(fresh, weights.load_file(path), source=str(path))
            before, after = model.state_dict(), fresh.state_dict()
            for key, tensor in before.items():
                assert torch.equal(tensor, after[key]), f"{key} differs after the round trip"

        @each
        def test_overrides_round_trip(self, experiment: str, zoo_contract_data: dict[str, str]) -> None:
            """``--set section.key=<its value>`` for every setting resolves to the same value."""
            from ..config import field_types
            from ..errors import UsageError

            base = resolve(experiment, zoo_contract_data)
            checked = 0
            for section in ("task", "data", "model", "train"):
                obj = base.section(section)
                for key, tp in field_types(type(obj)).items():
                    value = getattr(obj, key)
                    text = set_text(value)
                    if text is None and isinstance(value, (tuple, list)) and not value:
                        text = value  # "--set key=" cannot say (); config files (JSON) can
                    assert text is not None, (
                        f"{section}.{key} = {value!r} ({_type_name(tp)}) cannot be given with --set: "
                        f"use bool, int, float, str, Literal, None-able or tuples of those")
                    got = getattr(resolve(experiment, zoo_contract_data,
                                          {f"{section}.{key}": text}).section(section), key)
                    assert got == value, f"--set {section}.{key}={text} resolved to {got!r}, not {value!r}"
                    checked += 1
                    for changed in _changes(value, tp):
                        try:
                            got = getattr(resolve(experiment, zoo_contract_data,
                                                  {f"{section}.{key}": set_text(changed)}
                                                  ).section(section), key)
                        except UsageError:  # outside the setting's declared range: try another
                            continue
                        assert got == changed, f"--set {section}.{key}={changed} was not applied"
                        break
            assert checked, "no setting could be round-tripped"

    TestZooContract.__name__ = TestZooContract.__qualname__ = (
        "TestZooContract" if plugin == "*" else f"TestZooContract_{_ident(plugin)}")
    return TestZooContract


def _has_setting(config: Any, key: str) -> bool:
    """Whether ``section.field`` names a field of this resolved configuration."""
    section, _, field = key.partition(".")
    if section not in ("task", "data", "model", "train"):
        return False
    return field in {f.name for f in dataclasses.fields(config.section(section))}


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")


def _task_base() -> type:
    from ..api import Task

    return Task


def _ident(text: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in text)


def _changes(value: Any, tp: Any) -> list[Any]:
    """Different values of the same type, to see an override take effect (the first one that the
    setting's range allows is used); none when unsure what a different value would be."""
    if isinstance(value, bool) and tp is bool:
        return [not value]
    if isinstance(value, int) and not isinstance(value, bool) and tp is int:
        return [value + 1, value - 1]
    if isinstance(value, float) and tp is float:
        return [c for c in (value * 2 + 1.0, value / 2, value + 0.5, value - 0.5) if c != value]
    return []
