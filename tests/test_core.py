"""Core behaviour: registration, entry points, broken plugins, names, settings, laziness."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass
from typing import Literal

import pytest
from click.testing import CliRunner

from zoo import Experiment, Task, UsageError, config, hookimpl, plugins
from zoo._catalog import natural_key
from zoo.cli import cli
from zoo.experiment import resolve

from conftest import SUBPROCESS_TIMEOUT, assert_no_crash, make_distribution, run_zoo, zoo_env


def invoke(*args: str):
    return CliRunner().invoke(cli, list(args))


def test_toy_plugin_registers_every_kind(toy):
    result = invoke("list")
    assert result.exit_code == 0, result.output
    assert "toy.regression" in result.output and "toy-regression / toy-blobs / toy-mlp" in result.output
    assert "toy-mlp" in invoke("list", "--kind", "models").output
    assert "toy-blobs" in invoke("list", "--kind", "datasets").output
    assert "toy-twostep" in invoke("list", "--kind", "tasks").output


def test_list_pattern_uses_wildcards(toy):
    out = invoke("list", "toy.r*").output
    assert "toy.regression" in out and "toy.gan" not in out
    assert "no experiments match" in invoke("list", "nothing.*").output
    plain = invoke("list", "regress").output  # no wildcard: a substring match
    assert "toy.regression" in plain and "toy.gan" not in plain


def test_natural_sort_orders_numbers_by_value():
    names = ["clock.cls720", "clock.cls24", "clock.cls72", "clock.regression"]
    assert sorted(names, key=natural_key) == ["clock.cls24", "clock.cls72", "clock.cls720", "clock.regression"]


def test_info_prints_assembly_and_params(toy):
    result = invoke("info", "toy.regression", "--set", "model.hidden=8")
    assert result.exit_code == 0, result.output
    assert "model.hidden = 8" in result.output
    assert "train.epochs = 2" in result.output
    # 64*8+8 + 8*1+1
    assert "params: 529" in result.output


def test_info_shows_what_set_accepts(toy):
    """Each setting's line names the range or choices that ``--set`` checks."""
    lines = invoke("info", "toy.regression").output.splitlines()
    assert "  train.lr = 0.001  (value > 0)" in lines
    assert "  train.precision = 'auto'  (one of auto, fp32, bf16, fp16)" in lines
    assert "  model.hidden = 16" in lines  # no range declared: nothing invented
    component = invoke("info", "clock-wild").output.splitlines()
    assert "  tilt_p = 0.75  (0 <= value <= 1)" in component


def test_info_still_lists_settings_whose_annotation_does_not_resolve(capsys):
    """A plugin may annotate with a name imported only under TYPE_CHECKING: info shows the value."""
    import dataclasses

    from zoo.cli import _echo_fields

    @dataclasses.dataclass
    class Config:
        mode: NotImportedHere = "fast"  # noqa: F821
        width: int = 4

    _echo_fields(Config())
    assert capsys.readouterr().out.splitlines() == ["  mode = 'fast'", "  width = 4"]


def test_unknown_name_exits_2_with_close_match(toy):
    result = invoke("info", "toy.regresion")
    assert result.exit_code == 2
    assert "unknown name 'toy.regresion'" in result.output and "toy.regression" in result.output
    assert_no_crash(result)
    result = invoke("run", "toy.regresion")
    assert result.exit_code == 2 and "did you mean toy.regression" in result.output


def test_bad_set_key_lists_valid_keys(toy):
    result = invoke("info", "toy.regression", "--set", "model.width=3")
    assert result.exit_code == 2
    assert "unknown setting model.width" in result.output and "model.hidden" in result.output


@pytest.mark.parametrize("pair, message", [
    ("model.hidden=wide", "expected int"),
    ("train.ema=maybe", "expected true or false"),
    ("train.precision=fp64", "choose from"),
    ("nonsense", "key=value"),
])
def test_bad_set_value_is_one_line_exit_2(toy, pair, message):
    result = invoke("info", "toy.regression", "--set", pair)
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_set_converts_types():
    @dataclass
    class C:
        n: int = 1
        x: float = 0.5
        flag: bool = False
        betas: tuple[float, ...] | None = None
        name: str | None = None
        mode: Literal["a", "b"] = "a"

    c = config.make_config(C, {"n": "3", "x": "1e-3", "flag": "yes", "betas": "0.5,0.999",
                               "name": "none", "mode": "b"}, "s")
    assert c == C(3, 1e-3, True, (0.5, 0.999), None, "b")


def test_swap_component_starts_from_its_defaults(toy):
    cfg = resolve("toy.regression", {"model": "toy-gan", "task": "toy-twostep", "epochs": "5"})
    assert cfg.model == "toy-gan" and cfg.task == "toy-twostep"
    assert cfg.train.epochs == 5


def test_same_name_from_two_plugins_names_both(toy):
    class Other:
        @hookimpl
        def zoo_register_models(self, register):
            register("toy-mlp", toy.MLP)

    plugins.register_plugin(Other(), "other")
    try:
        failed = {f.name: f.error for f in plugins.failures()}
        assert "other" in failed
        assert "'toy'" in failed["other"] and "'other'" in failed["other"]
        assert plugins.catalog().get("models", "toy-mlp").plugin == "toy"
    finally:
        plugins.unregister_plugin("other")


def test_misspelt_hook_fails_loudly(toy):
    class Typo:
        @hookimpl
        def zoo_register_modles(self, register):
            pass

    with pytest.raises(plugins.PluginError, match="zoo_register_modles"):
        plugins.register_plugin(Typo(), "typo")


def test_registering_a_non_component_is_rejected(toy):
    class Bad:
        @hookimpl
        def zoo_register_tasks(self, register):
            register("bad-task", object)

    plugins.register_plugin(Bad(), "bad")
    try:
        assert "must be a subclass of zoo.Task" in {f.name: f.error for f in plugins.failures()}["bad"]
    finally:
        plugins.unregister_plugin("bad")


def test_a_task_with_the_old_optimizer_steps_is_told_to_rename_it(toy):
    """A plugin written against the pre-phases API fails at registration with the fix in the line,
    not later with a GAN silently trained as one phase."""
    class OldGAN(toy.TwoStep):
        optimizer_steps = ("discriminator", "generator")

    class Old:
        @hookimpl
        def zoo_register_tasks(self, register):
            register("old-gan", OldGAN)

    plugins.register_plugin(Old(), "old")
    try:
        error = {f.name: f.error for f in plugins.failures()}["old"]
        assert "declares optimizer_steps: rename it to phases" in error
    finally:
        plugins.unregister_plugin("old")


def test_experiment_names_follow_the_grammar(toy):
    class BadName:
        @hookimpl
        def zoo_register_experiments(self, register):
            register(Experiment("NoDot", task="toy-regression", dataset="toy-blobs", model="toy-mlp"))

    plugins.register_plugin(BadName(), "badname")
    try:
        assert "family.variant" in {f.name: f.error for f in plugins.failures()}["badname"]
    finally:
        plugins.unregister_plugin("badname")


def test_task_base_is_abstract_enough():
    with pytest.raises(NotImplementedError):
        Task().outputs((1, 2, 2))


def test_entry_point_distribution_is_discovered(toy_site):
    env = zoo_env(toy_site)
    listed = run_zoo(["list"], env)
    assert listed.returncode == 0, listed.stderr
    assert "toy.regression" in listed.stdout and "toy.gan" in listed.stdout
    shown = run_zoo(["plugins"], env)
    assert "toy (zoo-toy 0.1.0): zoo_register_tasks" in shown.stdout


def test_zoo_load_plugins_limits_what_loads(toy_site):
    """By distribution or entry-point name: exactly the plugins named load, and they do load."""
    only_toy = run_zoo(["plugins"], zoo_env(toy_site, ZOO_LOAD_PLUGINS="zoo-toy"))
    assert only_toy.returncode == 0, only_toy.stderr
    shown = only_toy.stdout.strip().splitlines()
    assert len(shown) == 1 and shown[0].startswith("toy (zoo-toy 0.1.0): zoo_register_tasks"), shown
    listed = run_zoo(["list"], zoo_env(toy_site, ZOO_LOAD_PLUGINS="toy")).stdout
    assert "toy.regression" in listed and "toy.gan" in listed and "clock." not in listed, listed
    without = run_zoo(["list"], zoo_env(toy_site, ZOO_LOAD_PLUGINS="clock"))
    assert without.returncode == 0, without.stderr
    assert "toy.regression" not in without.stdout and "clock.multihead" in without.stdout
    assert "cae.mnist" not in without.stdout  # the generative plugin was not named either


def test_broken_plugin_is_reported_and_the_rest_works(tmp_path, toy_site):
    broken = tmp_path / "broken-site"
    make_distribution(broken, "zoo-broken", {"broken": "zoo_broken"},
                      {"zoo_broken": "raise RuntimeError('boom at import')\n"})
    env = zoo_env(toy_site, broken)
    listed = run_zoo(["list"], env)
    assert listed.returncode == 0
    assert "toy.regression" in listed.stdout
    assert "zoo: plugin 'broken' failed: RuntimeError: boom at import" in listed.stderr
    assert "Traceback" not in listed.stderr
    assert "broken (zoo-broken 0.1.0): FAILED: RuntimeError: boom at import" in run_zoo(["plugins"], env).stdout
    strict = run_zoo(["list"], zoo_env(toy_site, broken, ZOO_STRICT_PLUGINS="1"))
    assert strict.returncode != 0
    assert strict.stderr.strip() == "zoo: error: plugin 'broken' failed: RuntimeError: boom at import"


@pytest.mark.parametrize("args", [["--help"], ["list"], ["plugins"], ["list", "--kind", "models"]])
def test_listing_does_not_import_torch(args, toy_site):
    code = ("import sys\nfrom zoo.cli import cli\n"
            f"try:\n    cli({args!r})\nexcept SystemExit as e:\n    assert not e.code, e.code\n"
            "assert 'torch' not in sys.modules, 'torch was imported'\n"
            "print('TORCH-FREE')")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=zoo_env(toy_site),
                         timeout=SUBPROCESS_TIMEOUT)
    assert "TORCH-FREE" in out.stdout, out.stderr


def test_python_dash_m_and_version():
    out = subprocess.run([sys.executable, "-m", "zoo", "--version"], capture_output=True, text=True,
                         timeout=SUBPROCESS_TIMEOUT)
    assert out.returncode == 0 and out.stdout.startswith("zoo, version")


def test_usage_error_type():
    with pytest.raises(UsageError):
        config.parse_sets(["novalue"])


def test_info_refuses_set_on_a_component_rather_than_ignoring_it(toy):
    result = CliRunner().invoke(cli, ["info", "toy-mlp", "--set", "model.width=0"])
    assert result.exit_code == 2 and "--set applies to experiments; toy-mlp is a model" in result.output
    assert CliRunner().invoke(cli, ["info", "toy-mlp"]).exit_code == 0
