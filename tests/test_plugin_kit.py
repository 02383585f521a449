"""zoo.testing, the contract-test kit: the built-in and toy plugins pass it; broken plugins fail it.

The built-in plugins are checked through ``contract_tests("*")``, so whatever they register (and any
other plugin installed here) is picked up without listing names.
"""

from __future__ import annotations

import importlib
import inspect
import struct
import sys
import textwrap
import types
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from zoo import config, plugins
from zoo.testing import contract_tests, set_text

import zoo_toy
from conftest import HERE, SUBPROCESS_TIMEOUT

pytest_plugins = ["pytester"]  # nested pytest runs for --zoo-contract and the ini setting

# data.cache=false: a clock dataset would otherwise render a whole split (10,000 clocks, minutes on
# two cores) into its cache to hand out the two samples a contract test needs
TestBuiltins = contract_tests("*", settings={"data.cache": False})
TestToy = contract_tests("toy", register=zoo_toy)


def write_mnist(root: Path, n_train: int = 5002, n_test: int = 4) -> Path:
    """A stand-in MNIST in torchvision's raw layout; 5002 so that 2 stay after the 5000 val hold-out."""
    import numpy as np

    raw = root / "MNIST" / "raw"
    raw.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        images = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
        labels = (np.arange(n) % 10).astype(np.uint8)
        (raw / f"{prefix}-images-idx3-ubyte").write_bytes(struct.pack(">IIII", 2051, n, 28, 28)
                                                          + images.tobytes())
        (raw / f"{prefix}-labels-idx1-ubyte").write_bytes(struct.pack(">II", 2049, n) + labels.tobytes())
    return root


def write_images(root: Path, n: int = 12) -> Path:
    """A folder of small colour images (two class folders)."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(1)
    for i in range(n):
        folder = root / f"class{i % 2}"
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 256, (40, 48, 3), dtype=np.uint8)).save(folder / f"{i}.png")
    return root


@pytest.fixture(scope="session")
def zoo_contract_data(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Overrides zoo.testing's fixture: tiny files for the datasets that read from disk."""
    root = tmp_path_factory.mktemp("contract-data")
    return {"mnist": str(write_mnist(root / "mnist")), "imagefolder": str(write_images(root / "images"))}


# ------------------------------------------------------------------ broken plugins fail the kit

BROKEN = '''
"""One experiment per broken promise; each should fail exactly the contract test named after it."""

from dataclasses import dataclass
from pathlib import Path

import zoo
from zoo import Experiment, Spec, hookimpl

import zoo_toy


class WrongShape(zoo_toy.MLP):
    """Declares y: (1,) through the task but emits two numbers."""

    def build(self, spec):
        return super().build(Spec(spec.input_shape, {"y": (2,)}))


class Detached(zoo_toy.Regression):
    """The loss is cut off from the model: no gradient reaches any parameter."""

    def loss(self, model, batch, phase="main"):
        import torch.nn.functional as F

        x, y = batch
        loss = F.mse_loss(model(x).detach(), y).requires_grad_()
        return loss, {"loss": loss.detach()}


class Frozen(zoo_toy.TwoStep):
    """Declares a generator phase but gives it no parameters."""

    def parameters(self, model, phase="main"):
        return model.discriminator.parameters() if phase == "discriminator" else iter(())


class SharedTrunk(zoo_toy.TwoStep):
    """Not broken: the generator phase also trains the discriminator, so the discriminator's
    parameters belong to both phases; the trainer lets them learn in each (the kit must agree)."""

    def parameters(self, model, phase="main"):
        if phase == "discriminator":
            return model.discriminator.parameters()
        return [*model.generator.parameters(), *model.discriminator.parameters()]


@dataclass
class PathConfig:
    hidden: int = 16
    dropout: float = 0.0
    cache: Path = Path("cache")  # neither JSON (the card) nor --set can carry a Path


class PathModel(zoo_toy.MLP):
    Config = PathConfig


@hookimpl
def zoo_register_tasks(register):
    register("broken-regression", zoo_toy.Regression)
    register("broken-detached", Detached)
    register("broken-frozen", Frozen)
    register("broken-shared", SharedTrunk)


@hookimpl
def zoo_register_datasets(register):
    register("broken-blobs", zoo_toy.Blobs)


@hookimpl
def zoo_register_models(register):
    register("broken-mlp", zoo_toy.MLP)
    register("broken-wide", WrongShape)
    register("broken-path", PathModel)
    register("broken-gan", zoo_toy.TinyGAN)


@hookimpl
def zoo_register_experiments(register):
    def experiment(name, task="broken-regression", model="broken-mlp", **settings):
        register(Experiment(name, task=task, dataset="broken-blobs", model=model, settings=settings))

    experiment("broken.ok")
    experiment("broken.shape", model="broken-wide")
    experiment("broken.nan", **{"task.fail_at_step": 1})
    experiment("broken.detached", task="broken-detached")
    experiment("broken.frozen", task="broken-frozen", model="broken-gan")
    experiment("broken.shared", task="broken-shared", model="broken-gan")
    experiment("broken.path", model="broken-path")
    register(Experiment("broken.unknown", task="broken-regression", dataset="no-such-data",
                        model="broken-mlp"))
'''


def run_kit(cls: type, tmp_path: Path) -> dict[str, str]:
    """Call every test of a contract class by hand: test id → "passed", "skipped" or the error.

    (Collecting it with a nested pytest in this process is unsafe: pytester forgets modules first
    imported inside the run, and a second import of torch's internals crashes the process.)
    """
    results: dict[str, str] = {}
    instance = cls()
    for attr in sorted(vars(cls)):
        method = getattr(instance, attr)
        if not attr.startswith("test_"):
            continue
        marks = [m for m in getattr(method, "pytestmark", []) if m.name == "parametrize"]
        cases = marks[0].args[1] if marks else [None]
        for case in cases:
            available = {"experiment": case, "zoo_contract_data": {}, "tmp_path": tmp_path / f"{attr}-{case}"}
            kwargs = {k: v for k, v in available.items() if k in inspect.signature(method).parameters}
            key = attr if case is None else f"{attr}[{case}]"
            try:
                method(**kwargs)
                results[key] = "passed"
            except pytest.skip.Exception:
                results[key] = "skipped"
            except Exception as e:  # AssertionError, or whatever the plugin raised
                results[key] = f"{type(e).__name__}: {e}"
    return results


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Path]:
    """A folder on sys.path for plugin modules written by a test (the kit's subprocess sees it too)."""
    folder = tmp_path / "site"
    folder.mkdir()
    sys.path.insert(0, str(folder))
    before = set(sys.modules)
    yield folder
    sys.path.remove(str(folder))
    for name in set(sys.modules) - before:
        if name.startswith("zoo_") and name.endswith("_plugin"):
            del sys.modules[name]


def load_module(name: str, source: str, site: Path) -> types.ModuleType:
    (site / f"{name}.py").write_text(textwrap.dedent(source))
    return importlib.import_module(name)


@pytest.fixture
def broken(site: Path) -> types.ModuleType:
    return load_module("zoo_broken_plugin", BROKEN, site)


@pytest.mark.filterwarnings("ignore:Using a target size")  # broken.shape's loss broadcasts
def test_broken_plugin_fails_exactly_the_broken_promises(broken: types.ModuleType, tmp_path: Path) -> None:
    cls = contract_tests("broken", register=broken)
    plugins.register_plugin(broken, "broken")
    try:
        got = run_kit(cls, tmp_path)
    finally:
        plugins.unregister_plugin("broken")
    failed = {k for k, v in got.items() if v not in ("passed", "skipped")}
    assert failed == {
        "test_outputs_match_task[broken.shape]",
        "test_forward_backward[broken.nan]",
        "test_forward_backward[broken.detached]",
        "test_builds[broken.frozen]",
        "test_forward_backward[broken.frozen]",
        "test_weights_round_trip[broken.path]",
        "test_overrides_round_trip[broken.path]",
        "test_names_follow_grammar[broken.unknown]",
        "test_builds[broken.unknown]",
        "test_forward_backward[broken.unknown]",
        "test_outputs_match_task[broken.unknown]",
        "test_weights_round_trip[broken.unknown]",
        "test_overrides_round_trip[broken.unknown]",
    }, got
    assert got["test_plugin_loads"] == "passed"
    for ok in ("broken.ok", "broken.shared"):
        assert [k for k, v in got.items() if k.endswith(f"[{ok}]") and v == "passed"] == [
            f"{t}[{ok}]" for t in ("test_builds", "test_forward_backward", "test_names_follow_grammar",
                                   "test_outputs_match_task", "test_overrides_round_trip",
                                   "test_weights_round_trip")], got
    assert "declared (batch, *(1,))" in got["test_outputs_match_task[broken.shape]"]
    assert "loss is nan" in got["test_forward_backward[broken.nan]"]
    assert "no gradient reaches" in got["test_forward_backward[broken.detached]"]
    assert "'generator' has no trainable parameters" in got["test_builds[broken.frozen]"]
    assert "cannot be given with --set" in got["test_overrides_round_trip[broken.path]"]
    assert "unknown dataset 'no-such-data'" in got["test_names_follow_grammar[broken.unknown]"]


def test_plugin_that_fails_to_register_fails_plugin_loads(site: Path, tmp_path: Path) -> None:
    module = load_module("zoo_bad_name_plugin", """
        from zoo import Experiment, hookimpl

        @hookimpl
        def zoo_register_experiments(register):
            register(Experiment("BadName", task="t", dataset="d", model="m"))
    """, site)
    cls = contract_tests("badname", register=module)
    plugins.register_plugin(module, "badname")
    try:
        got = run_kit(cls, tmp_path)
    finally:
        plugins.unregister_plugin("badname")
    assert list(got) == ["test_plugin_loads"], got  # no experiment made it into the registry
    assert "plugin failed to load: badname: ValueError" in got["test_plugin_loads"]
    assert "family.variant" in got["test_plugin_loads"]


def test_registering_must_not_import_torch(site: Path, tmp_path: Path) -> None:
    module = load_module("zoo_heavy_plugin", """
        import sys
        import types

        # the mistake, `import torch` at the top of a plugin, as the kit sees it (a module named
        # torch in sys.modules) without the seconds a real import of torch takes
        sys.modules.setdefault("torch", types.ModuleType("torch"))
        from zoo import Experiment, hookimpl

        @hookimpl
        def zoo_register_experiments(register):
            register(Experiment("heavy.one", task="t", dataset="d", model="m"))
    """, site)
    cls = contract_tests("heavy", register=module, experiments=[])
    plugins.register_plugin(module, "heavy")
    try:
        got = run_kit(cls, tmp_path)
    finally:
        plugins.unregister_plugin("heavy")
    assert "registering imports torch" in got["test_plugin_loads"], got
    assert "keep torch imports inside methods" in got["test_plugin_loads"]


def test_contract_option_and_ini_setting_switch_the_kit_on(pytester: pytest.Pytester) -> None:
    """``--zoo-contract toy`` and ``zoo_contract = ...`` (ini) collect the kit with no test file;
    a plugin that is not installed fails, naming it. (A nested pytest in its own process; the -k
    filter keeps torch out of it, so it is quick.)"""
    pytester.makeconftest(f"""
        import sys
        sys.path.insert(0, {str(HERE)!r})
        import zoo_toy
        from zoo import plugins

        def pytest_configure(config):
            plugins.register_plugin(zoo_toy, "toy")
    """)
    pytester.makeini("[pytest]\nzoo_contract = zoo-not-installed\n")
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--zoo-contract", "toy", "-v",
                                           "-W", "error",  # the kit itself raises no warning
                                           "-k", "loads or names or overrides", timeout=SUBPROCESS_TIMEOUT)
    result.stdout.fnmatch_lines_random([
        "*TestZooContract_toy::test_plugin_loads PASSED*",
        "*TestZooContract_toy::test_names_follow_grammar?toy.gan? PASSED*",
        "*TestZooContract_toy::test_overrides_round_trip?toy.regression? PASSED*",
        "*no zoo plugin 'zoo-not-installed' is installed*",
    ])
    result.assert_outcomes(passed=5, failed=1, skipped=2)


def test_kit_is_off_unless_asked(request: pytest.FixtureRequest) -> None:
    """This very session has no --zoo-contract: the pytest11 plugin added no test of its own."""
    assert not [item for item in request.session.items if "zoo/testing.py" in item.nodeid]
    assert request.config.getoption("zoo_contract") == [] and request.config.getini("zoo_contract") == []


@pytest.mark.parametrize("value, text", [
    (None, "none"), (True, "true"), (False, "false"), (3, "3"), (0.1, "0.1"), (1e-5, "1e-05"),
    ("adamw", "adamw"), ((0.5, 0.999), "0.5,0.999"), ((), None), (Path("x"), None), ({"a": 1}, None),
])
def test_set_text_spells_values_as_typed(value: object, text: str | None) -> None:
    assert set_text(value) == text


@given(st.one_of(
    st.integers().map(lambda v: (v, int)),
    st.floats(allow_nan=False, allow_infinity=False).map(lambda v: (v, float)),
    st.booleans().map(lambda v: (v, bool)),
    st.text(st.characters(codec="utf-8", exclude_characters=",\0"), min_size=1)  # core refuses NUL
      .filter(lambda v: v.strip() == v).map(lambda v: (v, str)),
    st.lists(st.floats(allow_nan=False, allow_infinity=False), min_size=1, max_size=4)
      .map(lambda v: (tuple(v), tuple[float, ...])),
    st.one_of(st.none(), st.integers()).map(lambda v: (v, int | None)),
))
def test_set_text_round_trips_through_coerce(case: tuple[object, object]) -> None:
    """What the kit types after ``--set key=`` is read back by core as the same value."""
    value, tp = case
    text = set_text(value)
    assert text is not None
    assert config.coerce(text, tp, "k") == value
