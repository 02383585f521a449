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

This package is loaded by every pytest run in an environment where zoo is installed, so it imports
no torch and does nothing unless asked: the tests exist only where ``contract_tests`` is called or
``--zoo-contract`` / ``zoo_contract`` names a plugin.

Datasets that need files (MNIST, an image folder) are drawn from the ``zoo_contract_data`` fixture:
a mapping of dataset name → path, empty by default, filled by ``--zoo-data NAME=PATH`` or by
overriding the fixture in ``conftest.py``. A dataset that cannot be built (files missing, no
network) skips the tests that need a batch, with the dataset's own one-line error as the reason.

Layout: ``contract.py`` holds the checks, one module-level function per promise, calling core's own
code (``zoo.experiment``, ``zoo.training.phases``, ``zoo.storage.weights``); ``suite.py`` wraps them
in the parametrized class ``contract_tests`` returns; ``plugin.py`` is the pytest plugin (options,
ini setting, fixture), whose hooks this package re-exports so that pytest finds them here.
"""

from __future__ import annotations

from .contract import set_text, tiny_batch
from .plugin import pytest_addoption as pytest_addoption
from .plugin import pytest_collection_modifyitems as pytest_collection_modifyitems
from .plugin import pytest_configure as pytest_configure
from .plugin import zoo_contract_data as zoo_contract_data
from .suite import contract_tests

__all__ = ["contract_tests", "set_text", "tiny_batch"]
