"""Weight files: safetensors with a card in the metadata (``zoo.*`` keys), and loading them.

Plain ``safetensors.torch.load_file`` reads every file zoo writes; nothing is ever unpickled.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import UsageError, ZooError

if TYPE_CHECKING:
    import torch
    from torch import nn

    from .experiment import Assembled

CARD_PREFIX = "zoo."
STRIP_PREFIXES = ("module.", "_orig_mod.")
MAX_HEADER_BYTES = 100 * 1024 * 1024


def atomic_write(path: Path, write: Any) -> None:
    """Call ``write(tmp_path)`` then fsync and rename: the old file stays intact until the end."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        write(Path(tmp))
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    try:  # make the rename itself durable
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    except OSError:
        pass


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write(path, lambda tmp: tmp.write_text(text))


def make_card(
    experiment: str, config: Mapping[str, Any], metrics: Mapping[str, Any] | None = None
) -> dict[str, str]:
    """The metadata of a weight file: strings only, as safetensors requires."""
    import torch

    from . import __version__

    return {
        "zoo.experiment": experiment,
        "zoo.config": json.dumps(config, sort_keys=True),
        "zoo.metrics": json.dumps(dict(metrics or {}), sort_keys=True),
        "zoo.version": __version__,
        "zoo.torch_version": torch.__version__,
        "zoo.created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }


def unshared(tensors: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Detached, contiguous tensors; copies where storage is shared (safetensors refuses it)."""
    seen: set[tuple[int, int]] = set()
    out = {}
    for key, tensor in tensors.items():
        tensor = tensor.detach()
        ident = (tensor.untyped_storage().data_ptr(), tensor.untyped_storage().nbytes())
        if ident in seen or not tensor.is_contiguous() or tensor.storage_offset():
            tensor = tensor.clone().contiguous()
        seen.add(ident)
        out[key] = tensor.cpu()
    return out


def save_weights(
    path: Path, state_dict: Mapping[str, torch.Tensor], card: Mapping[str, str], dtype: Any = None
) -> None:
    """Write ``state_dict`` with ``card`` as metadata, atomically; ``dtype`` casts float tensors."""
    from safetensors.torch import save_file

    tensors = unshared(state_dict)
    if dtype is not None:
        tensors = {k: v.to(dtype) if v.is_floating_point() else v for k, v in tensors.items()}
    atomic_write(Path(path), lambda tmp: save_file(tensors, str(tmp), metadata=dict(card)))


def read_header(path: Path) -> dict[str, Any]:
    """Parse a safetensors header ourselves so a malformed file gives a clear one-line error."""
    path = Path(path)
    try:
        size = path.stat().st_size
        with open(path, "rb") as f:
            raw = f.read(8)
            if len(raw) < 8:
                raise ZooError(f"{path}: not a safetensors file (only {size} bytes)")
            n = int.from_bytes(raw, "little")
            if n > min(MAX_HEADER_BYTES, size - 8):
                raise ZooError(f"{path}: not a safetensors file (header of {n} bytes, file of {size})")
            header = json.loads(f.read(n))
    except FileNotFoundError:
        raise UsageError(f"no such weight file: {path}") from None
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise ZooError(f"{path}: not a safetensors file (header is not JSON)") from None
    if not isinstance(header, dict):
        raise ZooError(f"{path}: not a safetensors file (header is not an object)")
    data_bytes = size - 8 - n
    for key, info in header.items():
        if key == "__metadata__":
            if not isinstance(info, dict) or not all(isinstance(v, str) for v in info.values()):
                raise ZooError(f"{path}: malformed safetensors metadata")
            continue
        try:
            start, end = info["data_offsets"]
            ok = isinstance(info["dtype"], str) and 0 <= start <= end <= data_bytes
            ok = ok and all(isinstance(d, int) and d >= 0 for d in info["shape"])
        except (KeyError, TypeError, ValueError):
            ok = False
        if not ok:
            raise ZooError(f"{path}: malformed or truncated safetensors entry '{key}'")
    return header


def read_card(path: Path) -> dict[str, Any]:
    """The card of a weight file, JSON fields decoded: experiment, config, metrics, versions."""
    meta = read_header(path).get("__metadata__", {})
    card: dict[str, Any] = {}
    for key, value in meta.items():
        if key.startswith(CARD_PREFIX):
            name = key[len(CARD_PREFIX):]
            try:
                card[name] = json.loads(value) if name in ("config", "metrics") else value
            except json.JSONDecodeError:
                raise ZooError(f"{path}: card field {key} is not valid JSON") from None
    return card


def load_file(path: Path) -> dict[str, torch.Tensor]:
    from safetensors import SafetensorError
    from safetensors.torch import load_file as st_load

    read_header(path)
    try:
        return st_load(str(path))
    except (SafetensorError, OSError, ValueError) as e:
        raise ZooError(f"{path}: cannot read safetensors: {e}") from None


def strip_prefixes(state_dict: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Remove the ``module.`` (DDP) and ``_orig_mod.`` (torch.compile) prefixes wherever they sit."""
    out = {}
    for key, value in state_dict.items():
        while key.startswith(STRIP_PREFIXES):
            key = key.split(".", 1)[1]
        out[key] = value
    return out


def load_into(module: nn.Module, state_dict: Mapping[str, torch.Tensor], source: str = "weights") -> None:
    """Load strictly, saying exactly which keys are missing, unexpected or mis-shaped."""
    state_dict = strip_prefixes(state_dict)
    target = module.state_dict()
    missing = sorted(set(target) - set(state_dict))
    unexpected = sorted(set(state_dict) - set(target))
    shapes = [
        f"{k} {tuple(state_dict[k].shape)} vs model {tuple(target[k].shape)}"
        for k in target
        if k in state_dict and state_dict[k].shape != target[k].shape
    ]
    problems = []
    for label, items in (("missing", missing), ("unexpected", unexpected), ("mis-shaped", shapes)):
        if items:
            shown = ", ".join(items[:5]) + (f" (+{len(items) - 5} more)" if len(items) > 5 else "")
            problems.append(f"{label}: {shown}")
    if problems:
        raise ZooError(f"{source} do not fit the model: " + "; ".join(problems))
    cast = {k: v.to(target[k].dtype) for k, v in state_dict.items()}
    module.load_state_dict(cast, strict=True)


def resolve_weights(spec: str) -> Path:
    """``NAME[:TAG]``, a local ``.safetensors`` path or a URL → a verified local file."""
    from . import hub

    return hub.fetch(spec)


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
    from .experiment import assemble, from_dict, resolve, with_data_path, with_overrides

    path = resolve_weights(weights)
    card = read_card(path)
    if name and card.get("experiment") and card["experiment"] != name:
        raise UsageError(f"{weights} holds weights of {card['experiment']}, not {name}")
    if "config" in card:
        config = from_dict(card["config"])
    elif name:
        config = resolve(name)
    else:
        raise UsageError(f"{path} has no zoo card: name the experiment")
    if data_path is not None:
        config = with_data_path(config, data_path)
    config = with_overrides(config, overrides or {})
    assembled = assemble(config)
    module = assembled.build_model()
    load_into(module, load_file(path), source=str(weights))
    return assembled, module.to(device).eval()
