"""Render once, train many epochs: procedural clocks materialised into a uint8 cache on disk.

Rendering a clock costs about as much CPU as training on it (≈ 900 clocks/s on one core against
≈ 450/s consumed by the fast CPU path on two), so rendering on the fly in DataLoader workers
starves training on small machines. Instead a split is rendered once, by every core in parallel,
into ``images.npy`` (N,150,150) uint8 + ``labels.npy`` (N,2) under
``$ZOO_HOME/cache/<dataset>/<key>/``, where the key hashes everything a sample depends on. Later
runs, epochs, evaluations and processes read the same files. A dataset that carries geometry
(``clock-wild`` with ``data.with_geometry=true``) also stores ``homography.npy`` (N,3,3) float32
there, NaN where a sample has none; geometry is part of the key. ``--set data.cache=false`` renders
on the fly instead (what a machine with many idle cores may prefer).

Numpy and the standard library only: no torch, so worker processes start quickly.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import sys
import tempfile
from collections.abc import Callable, Mapping
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from zoo import UsageError

CHUNK = 256
# (start, stop) → images, labels (and homographies when the split carries geometry)
Make = Callable[[int, int], tuple[np.ndarray, ...]]


def cache_root() -> Path:
    from zoo import cache_dir as zoo_home

    return zoo_home() / "cache"


def cache_key(fields: Mapping[str, Any]) -> str:
    return hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()[:20]


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


def _store(arrays: tuple[np.ndarray, ...], start: int, stop: int,
           parts: tuple[np.ndarray, ...]) -> None:
    if len(parts) != len(arrays):
        raise ValueError(f"a render chunk gave {len(parts)} arrays, the cache holds {len(arrays)}")
    for array, part in zip(arrays, parts):
        array[start:stop] = part


def _render_all(make: Make, size: int, *arrays: np.ndarray) -> None:
    chunks = [(s, min(size, s + CHUNK)) for s in range(0, size, CHUNK)]
    workers = min(_cores(), len(chunks))
    if workers <= 1:
        for start, stop in chunks:
            _store(arrays, start, stop, make(start, stop))
        return
    with ProcessPoolExecutor(workers) as pool:
        futures = {pool.submit(make, start, stop): (start, stop) for start, stop in chunks}
        for future, (start, stop) in futures.items():
            _store(arrays, start, stop, future.result())


def _folder(dataset: str, fields: Mapping[str, Any], size: int, shape: tuple[int, int],
            geometry: bool) -> Path:
    if geometry:  # only then: caches without geometry keep the keys (and folders) they had
        fields = {**fields, "geometry": True}
    return cache_root() / dataset / cache_key({**fields, "size": size, "shape": list(shape)})


def lookup(dataset: str, fields: Mapping[str, Any], size: int, shape: tuple[int, int],
           geometry: bool = False) -> tuple[np.ndarray, ...] | None:
    """The cached arrays of a split if an earlier run rendered them, else None (renders nothing)."""
    try:
        return _open(_folder(dataset, fields, size, shape, geometry), geometry)
    except (OSError, ValueError):
        return None


def materialise(dataset: str, fields: Mapping[str, Any], size: int, shape: tuple[int, int],
                make: Make, geometry: bool = False) -> tuple[np.ndarray, ...]:
    """The (images, labels) arrays of one split, rendered on first use and memory-mapped after;
    with ``geometry`` a third, the (N,3,3) float32 homographies ``make`` returns third.

    ``fields`` must name everything the samples depend on (renderer version, seed, stream,
    settings): it is the cache key. ``make`` must be picklable (a module-level function or a
    ``functools.partial`` of one) because chunks are rendered in worker processes.
    """
    folder = _folder(dataset, fields, size, shape, geometry)
    try:
        return _open(folder, geometry)
    except (OSError, ValueError):
        shutil.rmtree(folder, ignore_errors=True)  # absent, or damaged: render it anew
    need = size * (shape[0] * shape[1] + 16 + (36 if geometry else 0))
    try:
        folder.parent.mkdir(parents=True, exist_ok=True)
        free = shutil.disk_usage(folder.parent).free
    except OSError as e:
        raise UsageError(f"cannot create the render cache in {folder.parent} ({e.strerror}); "
                         f"set ZOO_HOME to a writable folder or --set data.cache=false") from None
    if need > free:
        raise UsageError(f"the render cache needs {need / 1e9:.1f} GB in {folder.parent}, "
                         f"{free / 1e9:.1f} GB free; use --set data.cache=false or a smaller split")
    if size >= 4 * CHUNK:
        print(f"zoo: rendering {size} {dataset} clocks once into {folder} ({_cores()} processes)",
              file=sys.stderr)
    tmp = Path(tempfile.mkdtemp(prefix=".part-", dir=folder.parent))
    try:
        images = np.lib.format.open_memmap(tmp / "images.npy", "w+", np.uint8, (size, *shape))
        labels = np.lib.format.open_memmap(tmp / "labels.npy", "w+", np.int16, (size, 2))
        arrays = [images, labels]
        if geometry:
            arrays.append(np.lib.format.open_memmap(tmp / "homography.npy", "w+", np.float32,
                                                    (size, 3, 3)))
        _render_all(make, size, *arrays)
        for array in arrays:
            array.flush()
        del images, labels, arrays
        (tmp / "fields.json").write_text(json.dumps({**fields, "size": size}, indent=1))
        try:
            os.rename(tmp, folder)  # atomic; fails if another process finished first
        except OSError:
            if not folder.is_dir():
                raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return _open(folder, geometry)


def _open(folder: Path, geometry: bool = False) -> tuple[np.ndarray, ...]:
    names = ("images.npy", "labels.npy", "homography.npy")[:3 if geometry else 2]
    arrays = tuple(np.load(folder / n, mmap_mode="r", allow_pickle=False) for n in names)
    if len({len(a) for a in arrays}) != 1:
        raise ValueError(f"inconsistent cache {folder}")
    with contextlib.suppress(OSError):  # "last used", which `zoo cache clear --older-than` reads
        os.utime(folder)
    return arrays
