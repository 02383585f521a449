"""Resume checkpoints without pickle: every tensor in safetensors, the rest as JSON in its metadata.

One file per checkpoint, written atomically, so a crash never leaves a half-new, half-old state.
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..errors import ZooError
from .files import atomic_write, check_regular
from .weights import unshared

STATE_KEY = "zoo.checkpoint"


def flatten(obj: Any, prefix: str, tensors: dict[str, torch.Tensor]) -> Any:
    """Replace tensors by references into ``tensors``; keep everything else JSON-shaped.

    Dicts become lists of pairs so non-string keys (optimizer state uses ints) survive.
    """
    if isinstance(obj, torch.Tensor):
        tensors[prefix] = obj
        return {"__tensor__": prefix}
    if isinstance(obj, dict):
        return {"__dict__": [[k, flatten(v, f"{prefix}.{i}", tensors)] for i, (k, v) in enumerate(obj.items())]}
    if isinstance(obj, (list, tuple)):
        items = [flatten(v, f"{prefix}.{i}", tensors) for i, v in enumerate(obj)]
        return {"__tuple__": items} if isinstance(obj, tuple) else items
    if isinstance(obj, np.ndarray):
        tensors[prefix] = torch.from_numpy(obj.copy())
        return {"__ndarray__": prefix}
    if isinstance(obj, (np.integer, np.floating)):
        return obj.item()
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    raise TypeError(f"cannot store {type(obj).__name__} at {prefix} in a checkpoint")


def unflatten(obj: Any, tensors: dict[str, torch.Tensor]) -> Any:
    if isinstance(obj, list):
        return [unflatten(v, tensors) for v in obj]
    if isinstance(obj, dict):
        if "__tensor__" in obj:
            return tensors[obj["__tensor__"]]
        if "__ndarray__" in obj:
            return tensors[obj["__ndarray__"]].numpy()
        if "__tuple__" in obj:
            return tuple(unflatten(v, tensors) for v in obj["__tuple__"])
        return {k: unflatten(v, tensors) for k, v in obj["__dict__"]}
    return obj


def rng_state() -> dict[str, Any]:
    """Python, NumPy and torch (CPU and every CUDA device) generator states."""
    state: dict[str, Any] = {
        "python": random.getstate(),
        "numpy": np.random.get_state(),
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    np.random.set_state(tuple(state["numpy"]))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save(path: Path, state: dict[str, Any]) -> None:
    tensors: dict[str, torch.Tensor] = {}
    skeleton = flatten(state, "s", tensors)
    from safetensors.torch import save_file

    tensors = unshared(tensors)
    meta = {STATE_KEY: json.dumps(skeleton)}
    atomic_write(path, lambda tmp: save_file(tensors, str(tmp), metadata=meta))


def load(path: Path) -> dict[str, Any]:
    """The state ``save`` wrote; a damaged or foreign file is one ZooError line, never a crash."""
    from safetensors import safe_open


    check_regular(path, "checkpoint")
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
            tensors = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118 (safe_open has no items)
    except Exception as e:
        raise ZooError(f"cannot read checkpoint {path}: {e}") from None
    if STATE_KEY not in meta:
        raise ZooError(f"{path} is not a zoo checkpoint")
    try:
        state = unflatten(json.loads(meta[STATE_KEY]), tensors)
    except (ValueError, RecursionError, KeyError, TypeError, IndexError, AttributeError) as e:
        detail = " ".join(str(e).split())[:200] or type(e).__name__
        raise ZooError(f"{path}: corrupt checkpoint state ({type(e).__name__}: {detail}); expected "
                       "the JSON zoo writes: restore the file, or start a new run without --resume"
                       ) from None
    if not isinstance(state, dict):
        raise ZooError(f"{path}: corrupt checkpoint state (not an object); expected the JSON zoo "
                       "writes: restore the file, or start a new run without --resume")
    return state
