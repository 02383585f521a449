"""The hooks a zoo plugin can implement. Each receives a callback, as in simonw/llm."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pluggy

hookspec = pluggy.HookspecMarker("zoo")
hookimpl = pluggy.HookimplMarker("zoo")


@hookspec
def zoo_register_tasks(register: Callable[..., None]) -> None:
    """Register Task classes: ``register("clock-multihead", ClockMultiHead)``.

    A task says what is predicted and how it is judged (loss, metrics, decoding).
    """


@hookspec
def zoo_register_datasets(register: Callable[..., None]) -> None:
    """Register Dataset classes: ``register("clock-synthetic", SyntheticClocks)``.

    A dataset says where samples come from and how they split into train/val/test.
    """


@hookspec
def zoo_register_models(register: Callable[..., None]) -> None:
    """Register Model classes: ``register("clock-cnn", ClockCNN)``.

    A model builds an ``nn.Module`` for a task's outputs and a dataset's input shape.
    """


@hookspec
def zoo_register_experiments(register: Callable[..., None]) -> None:
    """Register experiments: ``register(Experiment("clock.multihead", task=..., dataset=..., model=...))``.

    An experiment is a named recipe assembled by name from the three parts above.
    """


@hookspec
def zoo_register_commands(cli: Any) -> None:
    """Add subcommands to the ``zoo`` click group: ``@cli.command() def mycommand(): ...``."""


@hookspec
def zoo_register_data(register: Callable[..., None]) -> None:
    """Register a data source for ``zoo data pull NAME``: ``register("mnist", pull, "summary")``.

    ``pull(root, source)`` fills a folder under ``root`` (``$ZOO_DATA``) from the network, or
    from the local copy ``source`` (``--from DIR``) when it is not None, verified, and returns it.
    """


@hookspec
def zoo_register_weights(register: Callable[..., None]) -> None:
    """Declare a registry of pretrained weights: ``register("registry")``.

    ``register`` takes the location of an ``index.json``: a path (a folder holding one, or the
    file), relative paths being relative to the plugin's package, or a URL. Lookups of
    ``NAME[:TAG]`` search the user's ``ZOO_REGISTRY`` first, then the plugins' registries, then
    the built-in one; ``zoo list --pretrained`` names the plugin as each entry's source.
    """
