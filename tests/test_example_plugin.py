"""The tutorial's plugin, installed with pip into a throwaway virtual environment and run for real.

One venv for the module, made from the interpreter running the tests, that sees that interpreter's
packages (torch above all) through a ``.pth`` file: ``--system-site-packages`` would not do, since in
a venv it exposes the *base* interpreter's packages, not the venv's. zoo and the example are then
installed into it with pip (``--no-index --no-deps --no-build-isolation``, so it works offline),
exactly as ``docs/plugins.md`` says, and its own ``zoo`` executable runs the tutorial's commands.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import site
import subprocess
import sys
from fnmatch import fnmatch
from pathlib import Path

import pytest

from conftest import SUBPROCESS_TIMEOUT

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "docs" / "examples" / "zoo-example"
TUTORIAL = ROOT / "docs" / "plugins.md"
IGNORED = ("__pycache__", "*.egg-info", "build", "dist", ".pytest_cache")


def example_files() -> dict[str, str]:
    """Every file of the example package (relative path → text), caches and build output aside."""
    out = {}
    for path in sorted(EXAMPLE.rglob("*")):
        rel = path.relative_to(EXAMPLE)
        if path.suffix == ".safetensors":  # binary weights: the tutorial shows the index listing them
            continue
        if path.is_file() and not any(fnmatch(part, p) for part in rel.parts for p in IGNORED):
            out[rel.as_posix()] = path.read_text()
    return out


def tutorial_files() -> dict[str, str]:
    """The tutorial's fenced blocks captioned ``title="zoo-example/PATH"``, by PATH."""
    blocks = re.findall(r'^```\w* title="zoo-example/([^"]+)"\n(.*?)^```$', TUTORIAL.read_text(),
                        flags=re.M | re.S)
    return dict(blocks)


def test_tutorial_shows_exactly_the_example_package() -> None:
    shown, files = tutorial_files(), example_files()
    assert set(shown) == set(files), "the tutorial and docs/examples/zoo-example list different files"
    for rel, text in files.items():
        assert shown[rel] == text, f"docs/plugins.md's {rel} differs from docs/examples/zoo-example/{rel}"


# ------------------------------------------------------------------ the venv


class Venv:
    def __init__(self, root: Path) -> None:
        self.root, self.bin = root, root / "venv" / "bin"
        self.project = root / "zoo-example"  # a copy: pip's build must not write into the repo
        self.env = {k: v for k, v in os.environ.items()
                    if k not in ("ZOO_LOAD_PLUGINS", "ZOO_STRICT_PLUGINS", "ZOO_REGISTRY", "PYTHONPATH")}
        self.env.update(PATH=f"{self.bin}{os.pathsep}{os.environ.get('PATH', '')}",
                        VIRTUAL_ENV=str(root / "venv"), ZOO_HOME=str(root / "zoo-home"), ZOO_OFFLINE="1")

    def run(self, *args: str, cwd: Path | None = None, timeout: float = SUBPROCESS_TIMEOUT,
            **env: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(a) for a in args], cwd=cwd or self.project, env={**self.env, **env},
                              capture_output=True, text=True, timeout=timeout)

    def zoo(self, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
        done = self.run(self.bin / "zoo", *args, **env)
        assert done.returncode == 0, f"zoo {' '.join(map(str, args))} failed:\n{done.stdout}\n{done.stderr}"
        return done


def outer_site_dirs() -> list[str]:
    """The site-packages of the interpreter running the tests: a venv's own, or the system's."""
    dirs = list(site.getsitepackages())
    if site.ENABLE_USER_SITE:
        dirs.append(site.getusersitepackages())
    return [d for d in dirs if Path(d).is_dir()]


def see_outer_packages(python: Path) -> None:
    """Let the venv of ``python`` import what the test interpreter has, after its own packages.

    ``site.addsitedir`` (not a bare path) so that the outer ``.pth`` files (editable installs) apply.
    """
    purelib = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                             capture_output=True, text=True, check=True, timeout=SUBPROCESS_TIMEOUT).stdout.strip()
    lines = [f"import site; site.addsitedir({d!r})" for d in outer_site_dirs()]
    (Path(purelib) / "zoo_tests_outer_site.pth").write_text("\n".join(lines) + "\n")


@pytest.fixture(scope="module")
def venv(tmp_path_factory: pytest.TempPathFactory) -> Venv:
    """``python -m venv`` + ``pip install -e /path/to/zoo`` + ``pip install -e .`` (the tutorial)."""
    v = Venv(tmp_path_factory.mktemp("example-venv"))
    shutil.copytree(EXAMPLE, v.project, ignore=shutil.ignore_patterns(*IGNORED))
    # --without-pip: the venv uses the test interpreter's pip and setuptools (ensurepip is slow and
    # would shadow them with older copies); pip still installs into the venv.
    made = v.run(sys.executable, "-m", "venv", "--without-pip", v.root / "venv")
    assert made.returncode == 0, made.stderr
    see_outer_packages(v.bin / "python")
    installed = v.run(v.bin / "python", "-m", "pip", "install", "-q", "--no-index", "--no-deps",
                      "--no-build-isolation", "-e", ROOT, "-e", ".")
    assert installed.returncode == 0, installed.stdout + installed.stderr
    assert (v.bin / "zoo").is_file(), "pip did not install the zoo executable into the venv"
    where = v.run(v.bin / "python", "-c", "import zoo_example, torch; print(zoo_example.__file__)")
    assert where.returncode == 0, where.stderr
    assert Path(where.stdout.strip()).is_relative_to(v.project), "the example imported from elsewhere"
    return v


def test_zoo_plugins_lists_the_example_with_version_and_hooks(venv: Venv) -> None:
    out = venv.zoo("plugins", ZOO_STRICT_PLUGINS="1").stdout
    line = next((ln for ln in out.splitlines() if ln.startswith("example ")), None)
    assert line == ("example (zoo-example 0.1.0): zoo_register_tasks, zoo_register_datasets, "
                    "zoo_register_models, zoo_register_experiments, zoo_register_commands, "
                    "zoo_register_weights"), out
    assert line in TUTORIAL.read_text(), "docs/plugins.md shows another `zoo plugins` line"
    assert "FAILED" not in out


def test_zoo_list_shows_what_the_tutorial_shows(venv: Venv) -> None:
    done = venv.zoo("list", "spirals.*")
    lines = done.stdout.strip().splitlines()
    assert [ln.split()[0] for ln in lines] == ["NAME", "spirals.three", "spirals.two"], done.stdout
    tutorial = TUTORIAL.read_text()
    for line in lines:
        assert line in tutorial, f"docs/plugins.md does not show this `zoo list` line:\n{line}"
    models = venv.zoo("list", "--kind", "models", "spiral-*").stdout
    assert re.search(r"spiral-mlp\s+example\s+A small MLP", models), models
    assert not done.stderr, done.stderr  # no failed plugin reported


def test_plugin_command_runs(venv: Venv) -> None:
    art = venv.zoo("spirals", "--arms", "3", "-n", "300").stdout
    assert {"o", "x", "+"} <= set(art) and len(art.splitlines()) > 10, art


def test_the_examples_declared_ranges_guard_set_and_show_in_info(venv: Venv) -> None:
    """``zoo.ranged`` in a third-party Config: ``zoo info`` shows the range, ``--set`` outside it
    is one line and exit 2 before any work."""
    info = venv.zoo("info", "spirals.two").stdout
    assert "  data.arms = 2  (value >= 2)" in info.splitlines(), info
    refused = venv.run(venv.bin / "zoo", "run", "spirals.two", "--set", "data.arms=1", "--out", venv.root / "no-run")
    assert refused.returncode == 2, refused.stdout + refused.stderr
    assert refused.stderr.strip() == "zoo: error: bad value for data.arms: 1 (expected value >= 2)", refused.stderr
    assert not (venv.root / "no-run").exists()


def test_zoo_run_one_batch_then_publish_and_pull_the_weights(venv: Venv) -> None:
    run_dir = venv.root / "run"
    done = venv.zoo("run", "spirals.two", "--max-steps", "1", "--limit-batches", "1", "--out", run_dir)
    assert "test accuracy:" in done.stdout, done.stdout
    for name in ("config.json", "metrics.jsonl", "summary.json", "model.safetensors"):
        assert (run_dir / name).is_file(), f"the run wrote no {name}"
    assert json.loads((run_dir / "summary.json").read_text())["steps"] == 1

    registry = venv.root / "registry"
    published = venv.zoo("publish", run_dir, "--registry", registry).stdout
    assert "published spirals.two:default" in published, published
    index = json.loads((registry / "index.json").read_text())
    entry = index["weights"]["spirals.two:default"]
    assert (registry / entry["url"]).is_file() and entry["main_metric"] == "accuracy"

    listed = venv.zoo("list", "--pretrained", ZOO_REGISTRY=str(registry)).stdout
    assert "spirals.two" in listed and "spirals.three" not in listed, listed
    # what a user of the registry does first (zoo eval/run --pretrained go through the same lookup)
    pulled = Path(venv.zoo("pull", "spirals.two", ZOO_REGISTRY=str(registry)).stdout.strip())
    assert pulled.is_file() and pulled.read_bytes() == (run_dir / "model.safetensors").read_bytes()


def test_the_example_ships_weights_through_its_own_registry(venv: Venv) -> None:
    """``zoo_register_weights``: the package's registry is listed (source: the plugin) and loads,
    with no ZOO_REGISTRY; the card names the plugin and version that trained the weights."""
    listed = venv.zoo("list", "--pretrained", "spirals.*").stdout
    row = next(ln for ln in listed.splitlines() if ln.startswith("spirals.two "))
    assert re.search(r"accuracy=0\.9\d+\s+example\s", row), listed
    assert row in TUTORIAL.read_text(), f"docs/plugins.md does not show this line:\n{row}"
    metrics = json.loads(venv.zoo("eval", "spirals.two", "--pretrained", "--json").stdout)
    assert metrics["accuracy"] > 0.95, metrics
    pulled = venv.zoo("pull", "spirals.two").stdout.strip()
    card = venv.zoo("info", pulled).stdout
    assert "plugin: example\nplugin_version: 0.1.0\n" in card, card


def test_contract_kit_passes_in_the_venv(venv: Venv) -> None:
    """The example's own tests (tests/test_zoo_contract.py), run as the author would: ``pytest``,
    with warnings as errors (as many projects run it): the kit itself must raise none."""
    done = venv.run(venv.bin / "python", "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rs", "-W", "error")
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    passed = re.search(r"(\d+) passed", done.stdout)
    assert passed and int(passed.group(1)) == 1 + 6 * 2, done.stdout  # loads + 6 tests × 2 experiments
    assert "skipped" not in done.stdout, done.stdout
