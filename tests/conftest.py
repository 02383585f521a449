"""Shared fixtures: an isolated home, the toy plugin in-process, and installed as a distribution."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from zoo import plugins

HERE = Path(__file__).parent
SUBPROCESS_TIMEOUT = 300  # seconds: a hung child fails its test instead of hanging the suite


def isolate(monkeypatch: pytest.MonkeyPatch, home: Path) -> None:
    """Remove every ``ZOO_*`` variable of the user's environment; cache in ``home``; offline.

    With ``ZOO_REGISTRY`` set, a test would otherwise publish into the user's registry, and
    ``ZOO_DATA`` would change what a dataset reads (no test reads the user's data: each writes the
    little it needs).
    """
    for name in [n for n in os.environ if n.startswith("ZOO_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("ZOO_HOME", str(home / "zoo-home"))
    monkeypatch.setenv("ZOO_OFFLINE", "1")
    monkeypatch.chdir(home)


@pytest.fixture(scope="session", autouse=True)
def isolated_session(tmp_path_factory: pytest.TempPathFactory):
    """The same isolation for module- and session-scoped fixtures, which run before ``isolated``."""
    with pytest.MonkeyPatch.context() as mp:
        isolate(mp, tmp_path_factory.mktemp("session"))
        yield


@pytest.fixture(autouse=True)
def isolated(isolated_session, tmp_path, monkeypatch):
    """Each test gets its own cache, registry and working directory (runs/ lands there)."""
    isolate(monkeypatch, tmp_path)
    yield


@pytest.fixture
def toy():
    """The toy plugin registered in-process for the duration of one test."""
    sys.path.insert(0, str(HERE))
    import zoo_toy

    plugins.register_plugin(zoo_toy, "toy")
    yield zoo_toy
    plugins.unregister_plugin("toy")
    sys.path.remove(str(HERE))


@pytest.fixture
def example():
    """The tutorial's plugin (docs/examples/zoo-example), registered in-process as ``example``."""
    folder = HERE.parent / "docs" / "examples" / "zoo-example"
    sys.path.insert(0, str(folder))
    import zoo_example

    installed = plugins.pm.has_plugin("example")  # pip-installed here too: use that one
    if not installed:
        plugins.register_plugin(zoo_example, "example")
    yield zoo_example
    if not installed:
        plugins.unregister_plugin("example")
    sys.path.remove(str(folder))


def assert_no_crash(result) -> None:
    """A ``CliRunner`` result ended through the CLI's own exit (an exit code), not by an exception
    escaping the command. The runner catches such an exception into ``result.exception`` and keeps
    its traceback out of ``result.output``, so looking for "Traceback" there can never fail."""
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise AssertionError(f"the command crashed: {type(result.exception).__name__}: "
                             f"{result.exception}") from result.exception


def make_distribution(site: Path, dist: str, entry_points: dict[str, str], modules: dict[str, str]) -> None:
    """A real installed distribution: modules plus a ``*.dist-info`` with ``entry_points.txt``."""
    site.mkdir(parents=True, exist_ok=True)
    for name, source in modules.items():
        (site / f"{name}.py").write_text(source)
    info = site / f"{dist.replace('-', '_')}-0.1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 0.1.0\n")
    eps = "\n".join(f"{k} = {v}" for k, v in entry_points.items())
    (info / "entry_points.txt").write_text(f"[zoo]\n{eps}\n")


@pytest.fixture
def toy_site(tmp_path):
    """A site directory holding the toy plugin installed as distribution ``zoo-toy``."""
    site = tmp_path / "site"
    make_distribution(site, "zoo-toy", {"toy": "zoo_toy"}, {"zoo_toy": (HERE / "zoo_toy.py").read_text()})
    return site


def zoo_env(*sites: Path, **extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([*map(str, sites), env.get("PYTHONPATH", "")])
    env.update(extra)
    return env


def run_zoo(args: list[str], env: dict[str, str] | None = None, timeout: float = SUBPROCESS_TIMEOUT,
            **kw):
    """The real ``zoo`` executable in a subprocess."""
    exe = shutil.which("zoo") or ""
    cmd = [exe, *args] if exe else [sys.executable, "-m", "zoo", *args]
    return subprocess.run(cmd, env=env or dict(os.environ), capture_output=True, text=True,
                          timeout=timeout, **kw)
