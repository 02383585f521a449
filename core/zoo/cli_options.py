"""Click options that every command taking weights, a device or ``--json`` shares.

Core commands (``zoo eval``, ``zoo predict`` …) and plugin commands (``zoo sample`` …) declare
these options through the same helpers, so ``-w`` works everywhere and the help reads alike::

    from zoo import cli_options

    @click.command()
    @click.argument("name")
    @cli_options.weights()
    @cli_options.device(default="cpu")
    @cli_options.json()
    def mycommand(name, weights, pretrained, device, as_json):
        spec = cli_options.pick_weights(name, weights, pretrained)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import click

from .errors import UsageError

F = TypeVar("F", bound=Callable[..., Any])


def weights() -> Callable[[F], F]:
    """``-w/--weights W`` and ``--pretrained``: the parameters ``weights`` and ``pretrained``."""

    def decorate(f: F) -> F:
        f = click.option("--pretrained", is_flag=True, help="Use the published weights of NAME.")(f)
        return click.option("--weights", "-w", "weights", metavar="W",
                            help="NAME[:TAG], a .safetensors path or a URL.")(f)

    return decorate


def pick_weights(name: str, weights: str | None, pretrained: bool,
                 required: bool = True) -> str | None:
    """The weights spec the two options name: ``NAME`` for ``--pretrained``, else ``--weights``."""
    if weights and pretrained:
        raise UsageError("give --weights or --pretrained, not both")
    if pretrained:
        return name
    if required and not weights:
        raise UsageError("weights needed: pass --weights W or --pretrained")
    return weights


def device(default: str | None = "auto") -> Callable[[F], F]:
    """``--device auto|cpu|cuda|cuda:N|mps``: the parameter ``device``."""
    return click.option("--device", default=default, show_default=default is not None,
                        help="auto | cpu | cuda | cuda:N | mps")


def json() -> Callable[[F], F]:
    """``--json``: the parameter ``as_json``; the command prints one JSON object on stdout."""
    return click.option("--json", "as_json", is_flag=True,
                        help="Print one JSON object on stdout (and nothing else there).")
