"""The pytest side of the kit: options, the ini setting, the data fixture, and the tests
``--zoo-contract`` / ``zoo_contract`` add to a session without any test file.

pytest finds these hooks on ``zoo.testing`` (entry point ``pytest11``), which re-exports them.
"""

from __future__ import annotations

import os
import types
from pathlib import Path
from typing import Any

import pytest

from .suite import contract_tests


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
    # node ids keep naming zoo/testing.py, the kit's file before it became a package, so that a
    # --deselect or CI filter written against them still matches; nothing is read from that path
    path = Path(__file__).parent.with_suffix(".py")
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
