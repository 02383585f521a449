"""The weight file format: safetensors with a card in the metadata (``zoo.*`` keys).

Plain ``safetensors.torch.load_file`` reads every file zoo writes; nothing is ever unpickled.
Turning a file into a built model is one layer up (``zoo.loading``).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import UsageError, ZooError
from .files import atomic_write, open_regular

if TYPE_CHECKING:
    import torch
    from torch import nn

CARD_PREFIX = "zoo."
STRIP_PREFIXES = ("module.", "_orig_mod.")
TORCH_SUFFIXES = (".pt", ".pth")
MAX_HEADER_BYTES = 100 * 1024 * 1024


def make_card(
    experiment: str, config: Mapping[str, Any], metrics: Mapping[str, Any] | None = None
) -> dict[str, str]:
    """The metadata of a weight file: strings only, as safetensors requires."""
    import torch

    from .. import __version__

    return {
        "zoo.experiment": experiment,
        "zoo.config": json.dumps(config, sort_keys=True),
        "zoo.metrics": json.dumps(dict(metrics or {}), sort_keys=True),
        "zoo.version": __version__,
        "zoo.torch_version": torch.__version__,
        **provenance(experiment),
        "zoo.created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }


def provenance(experiment: str) -> dict[str, str]:
    """``zoo.plugin`` (and ``zoo.plugin_version``): who registered the experiment that trained
    the weights, so a card says which plugin (and release) to install to use them."""
    from ..plugins import catalog, plugin_info

    entry = catalog().tables["experiments"].get(experiment)
    if entry is None:
        return {}
    info = plugin_info.get(entry.plugin)
    version = info.version if info is not None else None
    return {"zoo.plugin": entry.plugin, **({"zoo.plugin_version": version} if version else {})}


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


# Bytes per element of each safetensors dtype torch can hold; anything else is refused up front.
DTYPE_BYTES = {"BOOL": 1, "U8": 1, "I8": 1, "F8_E5M2": 1, "F8_E4M3": 1, "I16": 2, "U16": 2, "F16": 2,
               "BF16": 2, "I32": 4, "U32": 4, "F32": 4, "I64": 8, "U64": 8, "F64": 8}


def _is_count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def read_header(path: Path) -> dict[str, Any]:
    """Parse and check a safetensors header ourselves, so a bad file is a one-line error.

    Checks what safetensors would (known dtypes, byte ranges matching shapes, tensors tiling the
    data exactly) before anything is allocated from the header's numbers: a header is read only
    if the file really holds that many bytes.
    """
    path = Path(path)
    f = open_regular(path)
    try:
        size = os.fstat(f.fileno()).st_size
        with f:
            raw = f.read(8)
            if len(raw) < 8:
                raise ZooError(f"{path}: not a safetensors file (only {size} bytes)")
            n = int.from_bytes(raw, "little")
            if n > min(MAX_HEADER_BYTES, size - 8) and raw.isascii() and raw.decode().isprintable():
                raise ZooError(f"{path}: not a safetensors file (it starts with text: {raw.decode()!r})")
            if n > min(MAX_HEADER_BYTES, size - 8):
                raise ZooError(f"{path}: not a safetensors file (header of {n} bytes, file of {size})")
            header = json.loads(f.read(n))
    except (ValueError, RecursionError):  # bad UTF-8, bad JSON, absurd numbers, deep nesting
        raise ZooError(f"{path}: not a safetensors file (header is not valid JSON)") from None
    if not isinstance(header, dict):
        raise ZooError(f"{path}: not a safetensors file (header is not an object)")
    data_bytes = size - 8 - n
    spans = []
    for key, info in header.items():
        if key == "__metadata__":
            if not isinstance(info, dict) or not all(isinstance(v, str) for v in info.values()):
                raise ZooError(f"{path}: malformed safetensors metadata (must map strings to strings)")
            continue
        ok = isinstance(info, dict) and isinstance(info.get("dtype"), str)
        ok = ok and isinstance(info.get("shape"), list) and all(map(_is_count, info["shape"]))
        offsets = info.get("data_offsets") if ok else None
        ok = ok and isinstance(offsets, list) and len(offsets) == 2 and all(map(_is_count, offsets))
        if not ok:
            raise ZooError(f"{path}: malformed safetensors entry {key!r}")
        if info["dtype"] not in DTYPE_BYTES:
            raise ZooError(f"{path}: tensor {key!r} has unsupported dtype {info['dtype']!r}")
        start, end = offsets
        elements = 1
        for d in info["shape"]:
            elements *= d
        if not start <= end <= data_bytes or end - start != elements * DTYPE_BYTES[info["dtype"]]:
            raise ZooError(f"{path}: tensor {key!r} claims bytes {start}..{end} for shape "
                           f"{info['shape']} {info['dtype']} in {data_bytes} bytes of data "
                           "(truncated or corrupt file)")
        spans.append((start, end, key))
    position = 0
    for start, end, key in sorted(spans):
        if start != position:
            raise ZooError(f"{path}: tensor {key!r} starts at byte {start}, expected {position} "
                           "(overlapping or gapped data)")
        position = end
    if position != data_bytes:
        raise ZooError(f"{path}: tensors cover {position} of {data_bytes} data bytes (corrupt file)")
    return header


def read_card(path: Path) -> dict[str, Any]:
    """The card of a weight file, JSON fields decoded: experiment, config, metrics, versions."""
    meta = read_header(path).get("__metadata__", {})
    card: dict[str, Any] = {}
    for key, value in meta.items():
        if key.startswith(CARD_PREFIX):
            name = key[len(CARD_PREFIX):]
            if name not in ("config", "metrics"):
                card[name] = value
                continue
            try:
                card[name] = json.loads(value)
            except (ValueError, RecursionError):
                raise ZooError(f"{path}: card field {key} is not valid JSON") from None
            if not isinstance(card[name], dict):
                raise ZooError(f"{path}: card field {key} is not a JSON object")
    return card


def load_file(path: Path) -> dict[str, torch.Tensor]:
    """The tensors of a checked safetensors file; a local ``.pt``/``.pth`` only as weights_only.

    Downloads always land in the cache as ``.safetensors``, so nothing downloaded is unpickled.
    """
    path = Path(path)
    if path.suffix in TORCH_SUFFIXES:
        return _load_torch_file(path)
    from safetensors import SafetensorError
    from safetensors.torch import load_file as st_load

    read_header(path)
    try:
        return st_load(str(path))
    except (SafetensorError, OSError, ValueError, RuntimeError) as e:
        raise ZooError(f"{path}: cannot read safetensors: {e}") from None


def _load_torch_file(path: Path) -> dict[str, torch.Tensor]:
    """A local PyTorch checkpoint: ``weights_only=True`` (no arbitrary unpickling), a state dict
    at the top or under ``state_dict``/``model``."""
    import torch

    with open_regular(path) as f:
        magic = f.read(4)
    if not magic.startswith((b"PK\x03\x04", b"\x80")):  # torch.save's zip, or a legacy pickle
        raise ZooError(f"{path}: not a PyTorch weights file (neither a torch.save zip archive nor "
                       "a pickle; a .safetensors file needs that suffix)")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises anything from KeyError to UnpicklingError on bad bytes
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise ZooError(f"{path}: cannot load as weights_only PyTorch file: {first}") from None
    for candidate in (obj, *(obj.get(k) for k in ("state_dict", "model") if isinstance(obj, dict))):
        if isinstance(candidate, dict) and candidate and all(
                isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in candidate.items()):
            return dict(candidate)
    raise ZooError(f"{path}: no state dict of tensors found (top level, 'state_dict' or 'model')")


def strip_prefixes(state_dict: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Remove the ``module.`` (DDP) and ``_orig_mod.`` (torch.compile) prefixes wherever they sit."""
    out: dict[str, torch.Tensor] = {}
    for original, value in state_dict.items():
        key = original
        while key.startswith(STRIP_PREFIXES):
            key = key.split(".", 1)[1]
        if key in out:
            raise ZooError(f"weights hold '{key}' twice once prefixes are stripped (from '{original}')")
        out[key] = value
    return out


def _castable(source: torch.dtype, target: torch.dtype) -> bool:
    """Half/bfloat/single/double floats load into each other (an fp16 file into an fp32 model);
    anything else must match exactly: int, bool or fp8 data in a float slot is a wrong file."""
    import torch

    floats = (torch.float16, torch.bfloat16, torch.float32, torch.float64)
    return source == target or (source in floats and target in floats)


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
    dtypes = [f"{k} {str(state_dict[k].dtype).removeprefix('torch.')} vs model "
              f"{str(target[k].dtype).removeprefix('torch.')}"
              for k in target if k in state_dict and not _castable(state_dict[k].dtype, target[k].dtype)]
    problems = []
    for label, items in (("missing", missing), ("unexpected", unexpected), ("mis-shaped", shapes),
                         ("wrong dtype", dtypes)):
        if items:
            shown = ", ".join(items[:5]) + (f" (+{len(items) - 5} more)" if len(items) > 5 else "")
            problems.append(f"{label}: {shown}")
    if problems:
        raise ZooError(f"{source} do not fit the model: " + "; ".join(problems))
    for key, value in state_dict.items():
        if value.is_floating_point() and not bool(value.isfinite().all()):
            raise UsageError(f"{source}: tensor {key!r} holds NaN or infinite values; expected "
                             "finite weights (a diverged run? publish or load an earlier checkpoint)")
    cast = {k: v.to(target[k].dtype) for k, v in state_dict.items()}
    module.load_state_dict(cast, strict=True)
