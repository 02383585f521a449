"""Map-style torch datasets behind the clock Dataset components (imported lazily)."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from .render import render


class RenderedClocks(torch.utils.data.Dataset):
    """``size`` clocks of (seed, stream), each rendered when asked for."""

    def __init__(self, size: int, seed: int, stream: int, difficulty: float,
                 supersample: int = 2) -> None:
        self.size, self.seed, self.stream = int(size), int(seed), int(stream)
        self.difficulty, self.supersample = float(difficulty), int(supersample)

    def __len__(self) -> int:
        return self.size

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        if not 0 <= index < self.size:
            raise IndexError(index)
        s = render(self.seed, index, self.difficulty, self.stream, supersample=self.supersample)
        x = torch.from_numpy(s.image)[None].float().div_(255.0)
        return x, torch.tensor([s.hour, s.minute], dtype=torch.long)


class ArrayClocks(torch.utils.data.Dataset):
    """Rows ``indices`` of (memory-mapped) image and label arrays, and of the (N,3,3)
    homographies when given: items and batches are then (x, y, H) instead of (x, y)."""

    def __init__(self, images: Any, labels: np.ndarray, indices: np.ndarray,
                 homographies: Any = None) -> None:
        self.images, self.labels, self.indices = images, labels, indices
        self.homographies = homographies

    def __len__(self) -> int:
        return len(self.indices)

    def get_batch(self, indices: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """Samples ``indices`` as one batch, sliced at once (the trainer's in-process path)."""
        rows = np.asarray(self.indices)[indices.numpy()]
        order = np.argsort(rows, kind="stable")  # memory maps read fastest in file order
        images = np.empty((len(rows), *self.images.shape[1:]), dtype=np.uint8)
        images[order] = self.images[rows[order]]
        x = torch.from_numpy(images).unsqueeze(1).float().div_(255.0)
        y = torch.from_numpy(np.asarray(self.labels[rows], dtype=np.int64))
        if self.homographies is None:
            return x, y
        return x, y, torch.from_numpy(np.array(self.homographies[rows], dtype=np.float32))

    def __getitem__(self, index: int) -> tuple[torch.Tensor, ...]:
        i = int(self.indices[index])
        x = torch.from_numpy(np.array(self.images[i], dtype=np.uint8))[None].float().div_(255.0)
        y = torch.from_numpy(np.asarray(self.labels[i], dtype=np.int64).copy())
        if self.homographies is None:
            return x, y
        return x, y, torch.from_numpy(np.array(self.homographies[i], dtype=np.float32))


class CachedSplit(torch.utils.data.Dataset):
    """A rendered split whose render cache is filled when the first whole batch is asked for.

    The trainer asks for batches (``get_batch``): the split is then rendered once, on every core,
    and sliced from memory ever after. Single items (the plugin kit's tiny batches, ``zoo
    predict`` checks, DataLoader workers) come from the cache when it exists and are rendered one
    by one when it does not, so touching three samples of a 60,000-clock split renders three.
    """

    def __init__(self, dataset: Any, name: str, seed: int) -> None:
        self.dataset, self.name, self.seed = dataset, name, seed
        self.size = dataset.render_plan(name, seed)[1]
        self._arrays: ArrayClocks | None = None
        self._fly: Any = None

    def __len__(self) -> int:
        return self.size

    def _wrap(self, arrays: tuple[Any, ...]) -> ArrayClocks:
        images, labels, *geometry = arrays
        return ArrayClocks(images, labels, np.arange(len(labels)), *geometry)

    def get_batch(self, indices: torch.Tensor) -> tuple[torch.Tensor, ...]:
        if self._arrays is None:
            self._arrays = self._wrap(self.dataset.arrays(self.name, self.seed))
        return self._arrays.get_batch(indices)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, ...]:
        if self._arrays is None:
            cached = self.dataset.cached_arrays(self.name, self.seed)
            if cached is not None:
                self._arrays = self._wrap(cached)
        if self._arrays is not None:
            return self._arrays[index]
        if self._fly is None:
            self._fly = self.dataset.on_the_fly(self.name, self.seed)
        return self._fly[index]


class RenderedWildClocks(torch.utils.data.Dataset):
    """``size`` wild clocks of (seed, stream); optionally with the dial's normalised homography."""

    def __init__(self, size: int, seed: int, stream: int, config: Any,
                 with_geometry: bool = False, synthetic: float = 0.0) -> None:
        self.size, self.seed, self.stream = int(size), int(seed), int(stream)
        self.config, self.with_geometry, self.synthetic = config, bool(with_geometry), synthetic

    def __len__(self) -> int:
        return self.size

    def __getitem__(self, index: int) -> tuple[torch.Tensor, ...]:
        from .wild import normalised_homography, render_mixed

        if not 0 <= index < self.size:
            raise IndexError(index)
        s = render_mixed(self.seed, index, self.stream, self.config, self.synthetic)
        x = torch.from_numpy(s.image)[None].float().div_(255.0)
        y = torch.tensor([s.hour, s.minute], dtype=torch.long)
        if not self.with_geometry:
            return x, y
        if getattr(s, "homography", None) is None:  # a clock-synthetic clock of the mix
            return x, y, torch.full((3, 3), float("nan"))
        h = torch.from_numpy(normalised_homography(s.homography).astype(np.float32))
        return x, y, h
