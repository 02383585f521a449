"""From a weight file to a built model: the card's config, ``--data``/``--set`` on top, a
meta-device size check, then a strict load. Everything that opens weights comes through here."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from .errors import UsageError, ZooError
from .storage.weights import (
    TORCH_SUFFIXES,
    load_file,
    load_into,
    read_card,
    read_header,
    strip_prefixes,
)

if TYPE_CHECKING:
    from torch import nn

    from .experiment import Assembled


def check_model_fits(assembled: Assembled, shapes: Mapping[str, tuple[int, ...]],
                     source: str) -> None:
    """Build the model on the ``meta`` device (no memory) and refuse it if it needs more
    parameters than the file holds, before the real build: a card (or ``--set``) asking for
    ``model.width=20000`` of a 1 MB file would otherwise allocate gigabytes first."""
    from math import prod

    import torch

    try:
        with torch.device("meta"):
            meta = assembled.build_model()
    except ZooError:
        raise
    except Exception as e:  # a plugin's build refusing the values (dropout 1e308, …)
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise UsageError(f"{source}: its configuration does not build a model: "
                         f"{type(e).__name__}: {first}") from None
    wanted = sum(prod(t.shape) for t in meta.state_dict().values())
    held = sum(prod(shape) for shape in strip_prefixes(shapes).values())  # type: ignore[arg-type]
    if wanted > held:
        raise UsageError(f"{source}: its configuration builds a model of {wanted:,} values but the "
                         f"file holds {held:,}; expected the configuration the weights were "
                         "trained with (a tampered card, or a --set that changes the model?)")


def resolve_weights(spec: str) -> Path:
    """``NAME[:TAG]``, a local ``.safetensors`` path or a URL → a verified local file."""
    from .storage.hub import fetch

    return fetch(spec)


def load_model(
    name: str | None,
    weights: str,
    overrides: Mapping[str, Any] | None = None,
    device: str = "cpu",
    data_path: str | None = None,
) -> tuple[Assembled, nn.Module]:
    """Build the model a weight file was trained as (its card's config), then load the weights.

    ``name`` may be None (taken from the card); when given it must match the card's experiment.
    """
    opened = open_weights(name, weights, overrides, device, data_path)
    return opened.assembled, opened.model


class OpenedWeights(NamedTuple):
    """A weight file made usable: its parts assembled, the model loaded (eval mode), its card."""

    assembled: Assembled
    model: nn.Module
    card: dict[str, Any]
    path: Path


def open_weights(
    name: str | None,
    weights: str,
    overrides: Mapping[str, Any] | None = None,
    device: str = "cpu",
    data_path: str | None = None,
) -> OpenedWeights:
    """The one path from weights (``NAME[:TAG]``, file or URL) to a loaded model: the CLI's
    eval/predict/sample and the Python API's ``zoo.load`` all come through here."""
    from .experiment import assemble, from_dict, resolve

    path = resolve_weights(weights)
    torch_file = path.suffix in TORCH_SUFFIXES
    card = {} if torch_file else read_card(path)
    if name and card.get("experiment") and card["experiment"] != name:
        raise UsageError(f"{weights} holds weights of {card['experiment']}, not {name}")
    if "config" in card:
        try:
            config = from_dict(card["config"])
        except ZooError as e:  # the card is data from whoever wrote the file: name it
            raise UsageError(f"{weights}: its card's config is not a valid configuration: {e}") from None
    elif name:
        config = resolve(name)
    else:
        raise UsageError(f"{path} has no zoo card: name the experiment")
    config = resolve(config, overrides, data_path)
    assembled = assemble(config)
    tensors = load_file(path) if torch_file else None
    shapes = ({k: tuple(v.shape) for k, v in tensors.items()} if tensors is not None else
              {k: tuple(v["shape"]) for k, v in read_header(path).items() if k != "__metadata__"})
    check_model_fits(assembled, shapes, source=str(weights))
    module = assembled.build_model()
    load_into(module, tensors if tensors is not None else load_file(path), source=str(weights))
    return OpenedWeights(assembled, module.to(device).eval(), card, path)
