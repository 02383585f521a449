"""zoo: a plugin-based model zoo for PyTorch.

Importing ``zoo`` never imports torch; building or training something does.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

from .api import Dataset, Experiment, Model, NoConfig, Spec, Task
from .config import RunConfig, TrainConfig
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
    "hookimpl",
    "__version__",
]
