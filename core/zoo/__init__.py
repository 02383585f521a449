"""zoo: a plugin-based model zoo for PyTorch.

Importing ``zoo`` never imports torch; building or training something does. The Python API
(``zoo.list``, ``zoo.create``, ``zoo.load``, ``zoo.train``, ``zoo.predict``; docs/python.md) is
loaded on first use, so ``import zoo`` stays as light as ``zoo --help``.
"""

from __future__ import annotations

from importlib import import_module
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from .api import Dataset, Experiment, Model, NoConfig, Spec, Task
from .config import RunConfig, TrainConfig, ranged
from .env import cache_dir, data_dir, env_flag, offline
from .errors import UnknownName, UsageError, ZooError
from .hookspecs import hookimpl

try:
    __version__ = version("zoo")
except PackageNotFoundError:  # running from a source tree that was not installed
    __version__ = "0.0.0+unknown"

__all__ = [
    "Dataset",
    "Experiment",
    "Model",
    "NoConfig",
    "RunConfig",
    "Spec",
    "Task",
    "TrainConfig",
    "UnknownName",
    "UsageError",
    "ZooError",
    "cache_dir",
    "cli_options",
    "data_dir",
    "env_flag",
    "hookimpl",
    "offline",
    "ranged",
    "__version__",
]

# Imported when first asked for (PEP 562), so ``import zoo`` stays torch- and click-free: the
# Python API (not in __all__: ``from zoo import *`` must not shadow the builtin ``list``; call it
# as ``zoo.list()``) and the plugin utilities (docs/plugins.md, "Plugin utilities").
LAZY = {
    **{name: ("python_api", name) for name in ("list", "list_pretrained", "create", "load", "train",
                                               "predict")},
    "fetch": ("loading", "resolve_weights"),  # NAME[:TAG], file or URL → a verified local file
    "atomic_write": ("storage.files", "atomic_write"),
    "atomic_write_text": ("storage.files", "atomic_write_text"),
    "staging": ("datasources", "staging"),
}


def __getattr__(name: str) -> Any:
    if name == "cli_options":
        return import_module(".cli_options", __name__)
    if name in LAZY:
        module, attr = LAZY[name]
        return getattr(import_module(f".{module}", __name__), attr)
    raise AttributeError(f"module 'zoo' has no attribute {name!r}")
