"""Several weight registries (user, plugins, built-in), and the helpers plugins share with the core:
``zoo.env_flag``/``offline``/``data_dir``/``cache_dir``, ``zoo.cli_options``, ``-v``/``ZOO_DEBUG``."""

from __future__ import annotations

import json
import re
import shutil
import types
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

import zoo
from zoo import UsageError, ZooError, hookimpl, plugins
from zoo.cli import cli
from zoo.storage import files, hub, publish

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "docs" / "examples" / "zoo-example"
EXAMPLE_REGISTRY = EXAMPLE / "zoo_example" / "registry"
BUILT_IN = ROOT / "registry" / "index.json"


def invoke(*args: str) -> click.testing.Result:
    return CliRunner().invoke(cli, [str(a) for a in args])


def weights_file() -> Path:
    """A real zoo weight file (the example's spirals.two), to list in made-up registries."""
    return next(EXAMPLE_REGISTRY.glob("spirals.two/*.safetensors"))


def make_registry(folder: Path, keys: dict[str, float]) -> Path:
    """A registry folder whose index lists ``keys`` (NAME:TAG → error_mean), all one file."""
    folder.mkdir(parents=True)
    source = weights_file()
    shutil.copyfile(source, folder / "w.safetensors")
    entry = {"url": "w.safetensors", "sha256": files.sha256_file(source),
             "size": source.stat().st_size, "main_metric": "error_mean"}
    index = {"weights": {key: {**entry, "metrics": {"error_mean": value}} for key, value in keys.items()}}
    (folder / "index.json").write_text(json.dumps(index))
    return folder


# ------------------------------------------------------------------ the plugins' registries


def test_hook_zoo_register_weights(example: types.ModuleType) -> None:
    """A relative location is relative to the plugin's package; it sits between user and built-in."""
    assert ("example", str(EXAMPLE_REGISTRY)) in plugins.weight_registries()
    sources = [source for source, _ in hub.index_locations()]
    assert sources.index("example") < sources.index("built-in")
    assert "zoo_register_weights" in plugins.plugin_info["example"].hooks
    assert "spirals.two:default" in zoo.list_pretrained("spirals.*")
    loaded = zoo.load("spirals.two")
    assert loaded.card["plugin"] == "example" and loaded.card["metrics"]["accuracy"] > 0.95
    import torch

    points = torch.tensor([(x, y) for x, y, _ in example.spiral_points(64, 2, 0.0, seed=5)])
    arms = [f"arm {arm}" for _, _, arm in example.spiral_points(64, 2, 0.0, seed=5)]
    predicted = loaded.predict(points)
    assert sum(p == a for p, a in zip(predicted, arms)) >= 60, (predicted, arms)
    with pytest.raises(UsageError, match=r"shape \(3,\) does not fit spirals.two"):
        loaded.predict(torch.zeros(3))


def test_zoo_list_pretrained_names_each_source(example: types.ModuleType) -> None:
    result = invoke("list", "--pretrained")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].split() == ["NAME", "TASK", "/", "DATA", "/", "MODEL", "PRETRAINED", "SOURCE",
                                "DESCRIPTION"]
    rows = {ln.split()[0]: ln.split() for ln in lines[1:]}
    assert rows["spirals.two"][7] == "example" and rows["clock.angles"][7] == "built-in"
    plain = invoke("list", "spirals.*").output
    assert "SOURCE" not in plain and "accuracy=" in plain  # the plain listing keeps its columns


def test_a_failing_weights_hook_is_reported_and_the_rest_works() -> None:
    broken = types.ModuleType("zoo_broken_weights")

    @hookimpl
    def zoo_register_weights(register):
        raise RuntimeError("no registry today")

    broken.zoo_register_weights = zoo_register_weights
    plugins.register_plugin(broken, "broken")
    try:
        assert plugins.weight_registries() == []
        assert "no registry today" in plugins.plugin_info["broken"].error
        assert "clock.angles:default" in zoo.list_pretrained()
    finally:
        plugins.unregister_plugin("broken")


def test_a_module_plugin_registers_paths_relative_to_its_file(tmp_path: Path) -> None:
    module = types.ModuleType("zoo_flat_weights")
    module.__file__ = str(tmp_path / "pkg" / "__init__.py")

    @hookimpl
    def zoo_register_weights(register):
        register("weights")
        register("https://example.org/zoo/index.json")

    module.zoo_register_weights = zoo_register_weights
    plugins.register_plugin(module, "flat")
    try:
        assert plugins.weight_registries() == [
            ("flat", str(tmp_path / "pkg" / "weights")), ("flat", "https://example.org/zoo/index.json")]
    finally:
        plugins.unregister_plugin("flat")


# ------------------------------------------------------------------ the user's registries


def test_zoo_registry_adds_and_overrides_like_path(tmp_path: Path, monkeypatch) -> None:
    first = make_registry(tmp_path / "a", {"clock.angles:default": 99.0})
    second = make_registry(tmp_path / "b", {"clock.angles:default": 77.0, "clock.angles:v2": 5.0})
    monkeypatch.setenv("ZOO_REGISTRY", f"  {first}\n\t{second / 'index.json'} ")
    assert [s for s, _ in hub.index_locations()] == ["user", "user", "built-in"]

    index, key, entry = hub.find_entry("clock.angles", "default")
    assert index.location == str(first / "index.json") and entry["metrics"]["error_mean"] == 99.0
    index, _, _ = hub.find_entry("clock.angles", "v2")  # only the second one has it
    assert index.location == str(second / "index.json")
    index, _, _ = hub.find_entry("clock.multihead", "default")  # the built-in one still answers
    assert index.location == str(BUILT_IN)
    assert files.sha256_file(hub.fetch("clock.angles")) == files.sha256_file(weights_file())

    published = {p.key: p for p in hub.published()}
    assert published["clock.angles:default"].headline == "error_mean=99"
    assert published["clock.angles:default"].source == "user"
    assert published["clock.multihead:default"].source == "built-in"
    listed = invoke("list", "--pretrained", "clock.*").output
    rows = {ln.split()[0]: ln.split() for ln in listed.splitlines()[1:]}
    assert rows["clock.angles"][6:8] == ["error_mean=99", "user"], listed
    assert rows["clock.multihead"][7] == "built-in", listed


def test_publish_defaults_to_the_first_user_registry(tmp_path: Path, monkeypatch) -> None:
    first, second = tmp_path / "a", make_registry(tmp_path / "b", {"toy.thing:v1": 1.0})
    first.mkdir()
    monkeypatch.setenv("ZOO_REGISTRY", f"{first} {second}")
    assert publish.default_registry_dir() == first
    monkeypatch.setenv("ZOO_REGISTRY", f"https://example.org/index.json {second}")
    with pytest.raises(UsageError, match="first location is a URL .* pass --registry DIR"):
        publish.default_registry_dir()


def test_an_unreadable_user_registry_is_skipped_with_a_warning(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("ZOO_REGISTRY", str(tmp_path / "missing" / "index.json"))
    result = invoke("pull", "clock.angles")
    assert result.exit_code == 0, result.output
    assert "warning: skipping the user registry: registry index not found" in result.output
    result = invoke("pull", "nothing.here")  # found nowhere: the broken registry is the likely cause
    assert result.exit_code == 1 and result.output.splitlines()[-1] == (
        f"zoo: error: registry index not found: {tmp_path / 'missing' / 'index.json'}")


def test_unknown_weights_across_registries(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("ZOO_REGISTRY", str(make_registry(tmp_path / "a", {"toy.thing:v1": 1.0})))
    result = invoke("pull", "toy.thing")
    assert result.exit_code == 2 and "no tag 'default' for toy.thing in any registry" in result.output
    assert "published tags: v1" in result.output
    result = invoke("pull", "clock.angle")
    assert result.exit_code == 2 and "did you mean clock.angles:default" in result.output


def test_cards_record_the_plugin_and_version_that_trained_them() -> None:
    from zoo.storage.weights import make_card

    card = make_card("clock.angles", {}, {})
    assert card["zoo.plugin"] == "clock" and card["zoo.plugin_version"] == zoo.__version__
    assert "zoo.plugin" not in make_card("not.registered", {}, {})


# ------------------------------------------------------------------ plugin utilities


@pytest.mark.parametrize(("value", "expected"), [
    ("1", True), ("true", True), ("YES", True), (" on ", True),
    ("0", False), ("false", False), ("No", False), ("off", False), ("", False)])
def test_env_flag_has_one_truth_table(monkeypatch, value: str, expected: bool) -> None:
    monkeypatch.setenv("ZOO_SOMETHING", value)
    assert zoo.env_flag("ZOO_SOMETHING") is expected
    monkeypatch.setenv("ZOO_OFFLINE", value)
    assert zoo.offline() is expected and hub.offline() is expected


def test_env_flag_unset_and_malformed(monkeypatch) -> None:
    monkeypatch.delenv("ZOO_SOMETHING", raising=False)
    assert zoo.env_flag("ZOO_SOMETHING") is False and zoo.env_flag("ZOO_SOMETHING", True) is True
    monkeypatch.setenv("ZOO_SOMETHING", "ture")
    with pytest.raises(UsageError, match="ZOO_SOMETHING='ture' is not a switch"):
        zoo.env_flag("ZOO_SOMETHING")
    monkeypatch.setenv("ZOO_OFFLINE", "maybe")
    result = invoke("pull", "clock.angles")
    assert result.exit_code == 2 and result.output == (
        "zoo: error: ZOO_OFFLINE='maybe' is not a switch: use 1/true/yes/on or 0/false/no/off\n")


def test_plugins_read_the_environment_through_zoo(monkeypatch, tmp_path: Path) -> None:
    """The built-in plugins use the public helpers: no second parser to drift (ZOO_OFFLINE=off)."""
    from zoo_clock.data import NpyClocks
    from zoo_generative import data as generative_data

    monkeypatch.delenv("ZOO_DATA", raising=False)
    assert zoo.data_dir() == zoo.cache_dir() / "data" == Path(str(tmp_path / "zoo-home")) / "data"
    assert generative_data.data_root("") == zoo.data_dir()
    monkeypatch.setenv("ZOO_DATA", str(tmp_path / "data"))
    assert generative_data.data_root("") == tmp_path / "data"
    with pytest.raises(UsageError, match="pass --data DIR or fill .*data/clock"):
        NpyClocks().root()
    (tmp_path / "data" / "clock").mkdir(parents=True)
    assert NpyClocks().root() == tmp_path / "data" / "clock"
    sources = "\n".join(p.read_text() for p in (ROOT / "plugins").rglob("*.py"))
    assert not re.search(r"environ\b.*ZOO_(OFFLINE|HOME)", sources), "a plugin parses ZOO_* itself"


def test_every_command_taking_weights_has_the_same_options() -> None:
    """Core and plugin commands declare -w/--weights, --pretrained, --device via zoo.cli_options."""
    ctx = click.Context(cli)
    commands = {name: cli.get_command(ctx, name) for name in cli.list_commands(ctx)}
    with_weights = {name: cmd for name, cmd in commands.items()
                    if any(p.name == "weights" for p in cmd.params)}
    assert {"eval", "predict", "run", "sample", "interpolate"} <= set(with_weights)
    for name, cmd in with_weights.items():
        options = {p.name: p for p in cmd.params}
        assert options["weights"].opts == ["--weights", "-w"], name
        assert options["pretrained"].opts == ["--pretrained"] and options["pretrained"].is_flag, name
        assert options["device"].help == "auto | cpu | cuda | cuda:N | mps", name


# ------------------------------------------------------------------ diagnostics


def test_verbose_and_zoo_debug_show_the_traceback_behind_the_error(monkeypatch) -> None:
    quiet = invoke("eval", "clock.angles", "-w", "nope.safetensors")
    assert quiet.exit_code == 2 and quiet.output == "zoo: error: no such weight file: nope.safetensors\n"
    for result in (invoke("-v", "eval", "clock.angles", "-w", "nope.safetensors"),
                   (monkeypatch.setenv("ZOO_DEBUG", "1"),
                    invoke("eval", "clock.angles", "-w", "nope.safetensors"))[1]):
        assert result.exit_code == 2
        assert result.output.startswith("Traceback (most recent call last):"), result.output
        assert "zoo.errors.UsageError: no such weight file" in result.output
        assert result.output.splitlines()[-1] == "zoo: error: no such weight file: nope.safetensors"


def test_verbose_logs_where_weights_come_from(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("ZOO_REGISTRY", str(make_registry(tmp_path / "a", {"toy.thing:default": 1.0})))
    result = invoke("-v", "pull", "toy.thing")
    assert result.exit_code == 0, result.output
    assert f"toy.thing:default found in the user registry {tmp_path / 'a' / 'index.json'}" in result.output
    assert "found in" not in invoke("pull", "toy.thing").output  # quiet without -v


def test_errors_stay_errors_in_python(tmp_path: Path) -> None:
    with pytest.raises(ZooError):
        zoo.load(tmp_path / "none.safetensors")
