"""The suite's own isolation: no test sees the user's ZOO_* variables, module fixtures included."""

from __future__ import annotations

import pytest

from conftest import HERE

pytest_plugins = ["pytester"]

PROBE = '''
import os
from pathlib import Path

import pytest


@pytest.fixture(scope="module")
def module_env():
    return dict(os.environ), Path.cwd()


def zoo_vars(env):
    return {k: v for k, v in env.items() if k.startswith("ZOO_")}


def test_module_fixture(module_env, tmp_path_factory):
    env, cwd = module_env
    root = tmp_path_factory.getbasetemp()
    assert set(zoo_vars(env)) == {"ZOO_HOME", "ZOO_OFFLINE"}, zoo_vars(env)
    assert Path(env["ZOO_HOME"]).is_relative_to(root) and cwd.is_relative_to(root)


def test_function(tmp_path):
    assert set(zoo_vars(os.environ)) == {"ZOO_HOME", "ZOO_OFFLINE"}, zoo_vars(os.environ)
    assert os.environ["ZOO_HOME"] == str(tmp_path / "zoo-home") and os.environ["ZOO_OFFLINE"] == "1"
'''


def test_user_zoo_variables_never_reach_a_test(pytester: pytest.Pytester, monkeypatch, tmp_path) -> None:
    """A nested pytest with the suite's conftest, started with the user's ZOO_REGISTRY, ZOO_DATA,
    ZOO_HOME… set: neither a test nor a module-scoped fixture sees them (a test would otherwise
    publish into the user's registry, or train with the user's cache)."""
    user = {"ZOO_REGISTRY": str(tmp_path / "users-registry"), "ZOO_DATA": str(tmp_path / "users-data"),
            "ZOO_HOME": str(tmp_path / "users-home"), "ZOO_OFFLINE": "0", "ZOO_LOAD_PLUGINS": "clock",
            "ZOO_STRICT_PLUGINS": "1", "ZOO_SOMETHING_NEW": "x"}
    for name, value in user.items():
        monkeypatch.setenv(name, value)
    pytester.makeconftest((HERE / "conftest.py").read_text())
    pytester.makepyfile(test_probe=PROBE)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-q", timeout=120)
    result.assert_outcomes(passed=2)
    assert not (tmp_path / "users-home").exists() and not (tmp_path / "users-registry").exists()
