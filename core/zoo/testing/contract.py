"""The contract checks: one function per promise a plugin makes, judged by core's own code.

Each ``check_*`` takes what it judges as arguments (an experiment name, the dataset name → path
mapping of the ``zoo_contract_data`` fixture, a batch, the kit's ``--set`` settings) and fails with
an AssertionError naming the broken promise. Settings resolve through ``zoo.experiment.resolve``
and ``assemble`` (the path ``zoo run`` takes), parameters are picked and toggled by the trainer's
``zoo.training.phases``, weights go through ``zoo.storage.weights``: the kit calls that code, never
a copy of it, so it cannot disagree with the trainer. ``contract_tests`` (``suite.py``) only wraps
these functions in parametrized tests.

Loaded by every pytest run where zoo is installed: torch is imported inside the checks only.
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
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..config import RunConfig
    from ..experiment import Assembled

SECTIONS = ("task", "data", "model", "train")  # the RunConfig sections a `--set` key may name


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


def plugin_matches(plugin: str, entry_plugin: str) -> bool:
    """Whether ``plugin`` (distribution or entry-point name, or ``"*"``) names ``entry_plugin``."""
    from .. import plugins

    if plugin in ("*", entry_plugin):
        return True
    info = plugins.plugin_info.get(entry_plugin)
    dist = (info.distribution or "") if info else ""
    normal = plugin.replace("_", "-").lower()
    return bool(dist) and dist.replace("_", "-").lower() == normal


def experiment_names(plugin: str, register: Any = None) -> list[str]:
    """The experiments ``plugin`` registers (``register``: an in-process plugin object), read
    without importing torch."""
    from .. import plugins
    from .._catalog import Catalog

    if register is not None:
        scratch = Catalog()
        hook = getattr(register, "zoo_register_experiments", None)
        try:
            if hook is not None:
                hook(register=scratch.register_callback("experiments", plugin))
        except Exception:  # check_plugin_loads reports the plugin's error
            pass
        return scratch.names("experiments")
    reg = plugins.catalog()
    return [e.name for e in reg.entries("experiments") if plugin_matches(plugin, e.plugin)]


def component_names(plugin: str) -> dict[str, list[str]]:
    """The tasks, datasets and models ``plugin`` registers, by kind."""
    from .. import plugins

    reg = plugins.catalog()
    return {kind: [e.name for e in reg.entries(kind) if plugin_matches(plugin, e.plugin)]
            for kind in ("tasks", "datasets", "models")}


def config_for(experiment: str, data: Mapping[str, str], settings: Mapping[str, Any] | None = None,
               overrides: Mapping[str, Any] | None = None) -> RunConfig:
    """``experiment``'s RunConfig as ``zoo run --data PATH --set ...`` resolves it: ``data`` gives the
    path of its dataset (or of one its ``--data`` may switch to); ``settings`` the kit's ``--set``
    values for the settings this experiment has; ``overrides`` more ``--set`` values on top."""
    from ..experiment import resolve
    from ..plugins import catalog

    entry = catalog().get("experiments", experiment).obj
    data_path = next((data[n] for n in (entry.dataset, *entry.data_path_datasets) if n in data), None)
    own: dict[str, Any] = {}
    if settings:
        base = resolve(experiment, None, data_path=data_path)
        own = {key: value for key, value in settings.items() if _has_setting(base, key)}
    return resolve(experiment, {**own, **(overrides or {})}, data_path=data_path)


def parts_for(experiment: str, data: Mapping[str, str], settings: Mapping[str, Any] | None = None
              ) -> Assembled:
    """``experiment`` assembled (task, dataset, model factory) as ``zoo run`` assembles it."""
    from ..experiment import assemble

    return assemble(config_for(experiment, data, settings))


def batch_or_reason(experiment: str, data: Mapping[str, str], settings: Mapping[str, Any] | None,
                    batch_size: int, seed: int) -> Any:
    """A tiny train batch, or (a str) why the dataset cannot be built here (files, network)."""
    from ..errors import ZooError

    assembled = parts_for(experiment, data, settings)
    try:
        return tiny_batch(assembled.dataset, batch_size, seed)
    except (ZooError, OSError) as e:  # data missing offline: a real missing capability
        return f"dataset '{assembled.config.data}' unavailable: {e}".splitlines()[0]


def _has_setting(config: RunConfig, key: str) -> bool:
    """Whether ``section.field`` names a field of this resolved configuration."""
    section, _, field = key.partition(".")
    if section not in SECTIONS:
        return False
    return field in {f.name for f in dataclasses.fields(config.section(section))}


def _finite(value: Any) -> bool:
    import torch

    if isinstance(value, torch.Tensor):
        return bool(torch.isfinite(value.detach().float()).all())
    return math.isfinite(float(value))


def _positive_ints(shape: Any) -> bool:
    return all(isinstance(d, int) and d > 0 for d in shape)


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")


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


# ------------------------------------------------------------------ the checks


def check_plugin_loads(plugin: str, register: Any, names: list[str]) -> None:
    """The plugin registered without error, registering it imports no torch, and it registers
    experiments (``names``)."""
    from .. import plugins

    failed = [f"{i.name}: {i.error}" for i in plugins.failures() if plugin_matches(plugin, i.name)]
    assert not failed, f"plugin failed to load: {'; '.join(failed)}"
    if register is None and plugin != "*":
        found = any(plugin_matches(plugin, n) for n in plugins.plugin_info)
        assert found, (f"no zoo plugin {plugin!r} is installed; installed: "
                       f"{', '.join(sorted(plugins.plugin_info)) or 'none'}")
    check_registering_imports_no_torch(plugin, register)
    assert names, f"plugin {plugin!r} registers no experiments"


def check_registering_imports_no_torch(plugin: str, register: Any = None) -> None:
    """Registering the plugin in a fresh process imports neither torch nor torchvision."""
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
                if info.distribution and plugin_matches(plugin, n)]
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


def check_names(experiment: str) -> None:
    """``family.variant`` lowercase, the parts it names exist, and every component of its plugin
    has a dataclass Config that builds with its defaults."""
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
    for kind, names in component_names(entry.plugin).items():
        for name in names:
            obj = catalog().get(kind, name).obj
            assert dataclasses.is_dataclass(obj.Config), f"{name}.Config must be a dataclass"
            obj.Config()  # every field needs a default: `zoo run` builds it with none given


def check_builds(experiment: str, data: Mapping[str, str],
                 settings: Mapping[str, Any] | None = None) -> None:
    """Resolve, assemble and build the model; every phase has trainable parameters."""
    from torch import nn

    from ..training.phases import phase_parameters  # the trainer's rule for a phase's parameters

    assembled = parts_for(experiment, data, settings)
    spec = assembled.spec
    assert spec.input_shape and _positive_ints(spec.input_shape), (
        f"input_shape {spec.input_shape} must be positive ints")
    assert spec.outputs, "task.outputs() declares no outputs"
    for key, shape in spec.outputs.items():
        assert isinstance(key, str) and _positive_ints(shape), (
            f"output {key!r}: shape {shape} must be positive ints")
    model = assembled.build_model()
    assert isinstance(model, nn.Module), f"build() returned {type(model).__name__}, not nn.Module"
    phases = tuple(assembled.task.phases)
    assert phases and len(set(phases)) == len(phases), f"phases {phases} empty or repeated"
    for phase, params in phase_parameters(assembled.task, model, phases).items():
        assert params, f"phase {phase!r} has no trainable parameters"


def check_forward_backward(experiment: str, data: Mapping[str, str], batch: Any,
                           settings: Mapping[str, Any] | None = None, seed: int = 0) -> None:
    """Each phase, as the trainer runs it: finite scalar loss, finite logs, finite gradients on the
    phase's parameters, one SGD step."""
    import torch

    from ..training.phases import phase_parameters, toggle_phase  # the trainer's rules

    assembled = parts_for(experiment, data, settings)
    task = assembled.task
    torch.manual_seed(seed)
    model = assembled.build_model().train()
    params = phase_parameters(task, model, tuple(task.phases))
    for phase, ps in params.items():
        toggle_phase(params, phase)
        model.zero_grad(set_to_none=True)
        _check_phase_step(task, model, batch, phase, ps)
    for ps in params.values():  # leave every parameter trainable again
        for p in ps:
            p.requires_grad_(True)


def _check_phase_step(task: Any, model: Any, batch: Any, phase: str, params: list[Any]) -> None:
    """One phase's loss, logs and gradients on ``batch``, then a plain SGD step on ``params``."""
    import torch

    loss, logs = task.loss(model, batch, phase)
    assert isinstance(loss, torch.Tensor) and loss.dim() == 0, (
        f"phase {phase!r}: loss must be a scalar tensor, got {getattr(loss, 'shape', loss)!r}")
    assert _finite(loss), f"phase {phase!r}: loss is {loss.item()}"
    for key, value in logs.items():
        assert isinstance(value, torch.Tensor), f"phase {phase!r}: log {key!r} is not a tensor"
        assert _finite(value), f"phase {phase!r}: log {key!r} is not finite"
    loss.backward()
    grads = [p.grad for p in params if p.grad is not None]
    assert grads, f"phase {phase!r}: no gradient reaches the phase's parameters"
    assert all(_finite(g) for g in grads), f"phase {phase!r}: non-finite gradients"
    with torch.no_grad():  # a plain SGD step (torch.optim would import torch._dynamo: 4 s)
        for p in params:
            if p.grad is not None:
                p.add_(p.grad, alpha=-1e-3)


def check_outputs(experiment: str, data: Mapping[str, str], batch: Any,
                  settings: Mapping[str, Any] | None = None, batch_size: int = 2) -> None:
    """``task.forward`` returns exactly the declared names with (batch, *shape) shapes; ``decode``,
    if the task defines it, gives one string per sample."""
    import torch

    from ..api import Task

    assembled = parts_for(experiment, data, settings)
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
    if type(task).decode is not Task.decode:
        decoded = task.decode(outputs)
        assert len(decoded) == n and all(isinstance(s, str) for s in decoded), (
            f"decode() must give one string per sample, got {decoded!r}")


def check_weights_round_trip(experiment: str, data: Mapping[str, str], folder: Path,
                             settings: Mapping[str, Any] | None = None, seed: int = 0) -> None:
    """Weights + card → safetensors in ``folder`` → a fresh model: same tensors, same configuration."""
    import torch
    from safetensors.torch import load_file as plain_load

    from ..experiment import from_dict
    from ..storage import weights

    assembled = parts_for(experiment, data, settings)
    config = assembled.config
    torch.manual_seed(seed)
    model = assembled.build_model()
    card = weights.make_card(experiment, config.to_dict(), {"contract": 1.0})
    path = folder / "model.safetensors"
    weights.save_weights(path, model.state_dict(), card)
    read = weights.read_card(path)
    assert read["experiment"] == experiment and read["metrics"] == {"contract": 1.0}
    assert read["config"] == json.loads(json.dumps(config.to_dict())), "card config differs"
    assert from_dict(read["config"]) == config, "the card's config rebuilds a different run"
    assert set(plain_load(str(path))) == set(model.state_dict()), "plain safetensors differs"
    torch.manual_seed(seed + 1)
    fresh = parts_for(experiment, data, settings).build_model()
    weights.load_into(fresh, weights.load_file(path), source=str(path))
    before, after = model.state_dict(), fresh.state_dict()
    for key, tensor in before.items():
        assert torch.equal(tensor, after[key]), f"{key} differs after the round trip"


def check_overrides_round_trip(experiment: str, data: Mapping[str, str],
                               settings: Mapping[str, Any] | None = None) -> None:
    """``--set section.key=<its value>`` for every setting resolves to the same value, and a
    changed number or flag takes effect."""
    from ..config import field_types

    def resolved(key: str, text: Any) -> Any:
        section, _, field = key.partition(".")
        return getattr(config_for(experiment, data, settings, {key: text}).section(section), field)

    base = config_for(experiment, data, settings)
    checked = 0
    for section in SECTIONS:
        obj = base.section(section)
        for key, tp in field_types(type(obj)).items():
            _check_setting_round_trip(resolved, f"{section}.{key}", getattr(obj, key), tp)
            checked += 1
    assert checked, "no setting could be round-tripped"


def _check_setting_round_trip(resolved: Callable[[str, Any], Any], key: str, value: Any,
                              tp: Any) -> None:
    """``--set key=<value>`` gives ``value`` back; the first changed value in range is applied."""
    from ..errors import UsageError

    text = set_text(value)
    if text is None and isinstance(value, (tuple, list)) and not value:
        text = value  # "--set key=" cannot say (); config files (JSON) can
    assert text is not None, (
        f"{key} = {value!r} ({_type_name(tp)}) cannot be given with --set: "
        f"use bool, int, float, str, Literal, None-able or tuples of those")
    got = resolved(key, text)
    assert got == value, f"--set {key}={text} resolved to {got!r}, not {value!r}"
    for changed in _changes(value, tp):
        try:
            got = resolved(key, set_text(changed))
        except UsageError:  # outside the setting's declared range: try another
            continue
        assert got == changed, f"--set {key}={changed} was not applied"
        break
