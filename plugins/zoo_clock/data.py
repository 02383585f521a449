"""Clock datasets: procedurally rendered clocks (default) and the assignment's .npy files.

Both yield ``(image, label)``: a float tensor ``(1, 150, 150)`` in [0, 1] and a long tensor
``(2,)`` = (hour 0–11, minute 0–59). Torch is imported inside methods only.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from zoo import Dataset, UsageError, data_dir, ranged

if TYPE_CHECKING:
    import torch

SHAPE = (1, 150, 150)
STREAMS = {"train": 0, "val": 1, "test": 2}


def load_image(path: Path, size: int = SHAPE[-1]) -> torch.Tensor:
    """Any image file → ``(1, size, size)`` float in [0, 1], as training images are.

    EXIF rotation applied, transparency composited on white, 16-bit and CMYK handled, converted
    to grayscale, centre-cropped to a square and resized (Lanczos): see ``photos.load_photo``.
    """
    from .photos import load_photo

    return load_photo(path, size)


@dataclass
class SyntheticConfig:
    difficulty: float = ranged(1.0, 0, 3)  # 0 clean … 1 default … 2 hard (see zoo_clock.render)
    train_size: int = ranged(20000, 1)
    val_size: int = ranged(1000, 1)
    test_size: int = ranged(2000, 1)
    test_seed: int = ranged(20240, 0, 2**32 - 1)  # the test set never changes with the run's seed
    supersample: int = ranged(2, 1, 8)  # draw at 2× and warp down: smoother edges, ~25% slower
    cache: bool = True  # render each split once into $ZOO_HOME/cache (zoo_clock.cache)


class RenderedDataset(Dataset):
    """Base of procedural clock datasets: each split rendered once into a cache, then batched.

    A subclass says how to render a split (``render_plan``) and how to render one sample on the fly
    (``on_the_fly``). With ``data.cache`` on (the default) a split is an ``ArrayClocks`` over the
    cached uint8 arrays, whose ``get_batch`` lets the trainer slice whole batches in-process with
    no DataLoader workers: the cheapest input pipeline there is, so the fast CPU path is never
    starved (docs/benchmarks.md).
    """

    def render_plan(self, name: str, seed: int) -> tuple[dict[str, Any], int, Any]:
        """(cache key fields, size, picklable ``make(start, stop)``) of split ``name``."""
        raise NotImplementedError

    def on_the_fly(self, name: str, seed: int) -> Any:
        """A map-style torch dataset rendering each sample when asked (``data.cache=false``)."""
        raise NotImplementedError

    def with_geometry(self) -> bool:
        """Whether samples carry the dial's homography (then ``make`` returns it third)."""
        return False

    def arrays(self, name: str, seed: int) -> tuple[Any, ...]:
        """(images, labels), plus homographies when ``with_geometry()``: memory-mapped."""
        from .cache import materialise

        memo = self.__dict__.setdefault("_arrays", {})
        if (name, seed) not in memo:
            fields, size, make = self.render_plan(name, seed)
            memo[(name, seed)] = materialise(type(self).__name__, fields, size, SHAPE[1:], make,
                                             geometry=self.with_geometry())
        return memo[(name, seed)]

    def cached_arrays(self, name: str, seed: int) -> tuple[Any, ...] | None:
        """The split's arrays if they are cached already (on disk or in this process), else None."""
        from .cache import lookup

        memo = self.__dict__.setdefault("_arrays", {})
        if (name, seed) not in memo:
            fields, size, _ = self.render_plan(name, seed)
            found = lookup(type(self).__name__, fields, size, SHAPE[1:], self.with_geometry())
            if found is None:
                return None
            memo[(name, seed)] = found
        return memo[(name, seed)]

    def split(self, name: str, seed: int) -> Any:
        if not self.config.cache:
            return self.on_the_fly(name, seed)
        from ._torchdata import CachedSplit

        return CachedSplit(self, name, seed)

    def load_image(self, path: Path) -> torch.Tensor:
        return load_image(path)


class SyntheticClocks(RenderedDataset):
    """Procedurally rendered 150×150 grayscale analog clocks (``zoo_clock.render``).

    Sample ``i`` of a split is a pure function of (seed, split, i, difficulty): identical in every
    run, worker and machine. Train and val follow the run's seed; test uses ``test_seed``.
    """

    Config = SyntheticConfig

    def input_shape(self) -> tuple[int, ...]:
        return SHAPE

    def _split_args(self, name: str, seed: int) -> tuple[int, int]:
        c = self.config
        sizes = {"train": c.train_size, "val": c.val_size, "test": c.test_size}
        if name not in sizes:
            raise UsageError(f"unknown split '{name}'; choose from train, val, test")
        if not 0 <= c.difficulty <= 3:
            raise UsageError(f"data.difficulty must be between 0 and 3, got {c.difficulty}")
        return sizes[name], c.test_seed if name == "test" else seed

    def render_plan(self, name: str, seed: int) -> tuple[dict[str, Any], int, Any]:
        from functools import partial

        from .render import RENDER_VERSION, render_range

        c = self.config
        size, split_seed = self._split_args(name, seed)
        fields = {"renderer": RENDER_VERSION, "seed": split_seed, "stream": STREAMS[name],
                  "difficulty": c.difficulty, "supersample": c.supersample}
        return fields, size, partial(render_range, split_seed, STREAMS[name], c.difficulty,
                                     c.supersample)

    def on_the_fly(self, name: str, seed: int) -> Any:
        from ._torchdata import RenderedClocks

        c = self.config
        size, split_seed = self._split_args(name, seed)
        return RenderedClocks(size, split_seed, STREAMS[name], c.difficulty, c.supersample)


@dataclass
class NpyConfig:
    root: str | None = None  # folder with images.npy and labels.npy; default $ZOO_DATA/clock
    val_fraction: float = ranged(0.1, 0, 1, hi_open=True)
    test_fraction: float = ranged(0.1, 0, 1, hi_open=True)


EXPECTED = ("expected images.npy (N,150,150) uint8 and labels.npy (N,2) int "
            "(hour 0-11, minute 0-59)")


class NpyClocks(Dataset):
    """The assignment's files: ``images.npy`` (N,150,150) uint8 + ``labels.npy`` (N,2) int.

    Split 80/10/10 by a permutation drawn from the seed; memory-mapped, so workers share pages.
    """

    Config = NpyConfig
    data_layout = "images.npy (N,150,150) uint8 + labels.npy (N,2) int"

    @classmethod
    def accepts(cls, path: Path) -> bool:
        return (Path(path) / "images.npy").is_file() or (Path(path) / "labels.npy").is_file()

    def input_shape(self) -> tuple[int, ...]:
        return SHAPE

    def root(self) -> Path:
        if self.config.root:
            return Path(self.config.root).expanduser()
        default = data_dir() / "clock"
        if default.is_dir():
            return default
        raise UsageError(f"clock-npy needs a folder: pass --data DIR or fill {default} ({EXPECTED})")

    def arrays(self) -> tuple[Any, Any]:
        """Load and check both files; any problem is one line: found vs expected."""
        import numpy as np

        root = self.root()
        if not root.is_dir():
            raise UsageError(f"clock data folder {root} does not exist; {EXPECTED}")
        found = sorted(p.name for p in root.iterdir())[:8]
        arrays = {}
        for name in ("images.npy", "labels.npy"):
            path = root / name
            if (path.exists() or path.is_symlink()) and not path.is_file():  # np.load on a FIFO hangs
                raise UsageError(f"{path} is not a regular file (a folder, FIFO or broken link); "
                                 f"{EXPECTED}")
            if not path.is_file():
                raise UsageError(f"no {name} in {root} (found: {', '.join(found) or 'nothing'}); "
                                 f"{EXPECTED}")
            with open(path, "rb") as f:
                magic = f.read(6)
            if magic != b"\x93NUMPY":  # else numpy calls any text file "pickled data"
                raise UsageError(f"{path} is not a .npy file (it starts with {magic!r}); {EXPECTED}")
            try:
                arrays[name] = np.load(path, mmap_mode="r", allow_pickle=False)
            except (ValueError, OSError) as e:
                raise UsageError(f"cannot read {path} as .npy ({str(e).splitlines()[0]}); "
                                 f"{EXPECTED}") from None
        images, labels = arrays["images.npy"], arrays["labels.npy"]
        if images.ndim != 3 or images.shape[1:] != (150, 150) or images.dtype != np.uint8:
            raise UsageError(f"images.npy has shape {images.shape} dtype {images.dtype}; "
                             f"expected (N,150,150) uint8")
        if labels.ndim != 2 or labels.shape[1] != 2 or labels.dtype.kind not in "iu":
            raise UsageError(f"labels.npy has shape {labels.shape} dtype {labels.dtype}; "
                             f"expected (N,2) int (hour, minute)")
        if labels.shape[0] != images.shape[0]:
            raise UsageError(f"images.npy has {images.shape[0]} images but labels.npy "
                             f"{labels.shape[0]} labels; expected the same N")
        if labels.shape[0] < 10:
            raise UsageError(f"clock-npy needs at least 10 samples, found {labels.shape[0]}")
        lab = np.asarray(labels)
        bad = ~((lab[:, 0] >= 0) & (lab[:, 0] <= 11) & (lab[:, 1] >= 0) & (lab[:, 1] <= 59))
        if bad.any():
            i = int(np.argmax(bad))
            raise UsageError(f"labels.npy row {i} is {lab[i].tolist()} ({int(bad.sum())} rows "
                             f"out of range); expected hour 0-11, minute 0-59")
        return images, lab

    def indices(self, name: str, seed: int, n: int) -> Any:
        import numpy as np

        perm = np.random.default_rng([int(seed) & 0xFFFFFFFF, 7919]).permutation(n)
        n_test = max(1, round(n * self.config.test_fraction))
        n_val = max(1, round(n * self.config.val_fraction))
        parts = {"test": perm[:n_test], "val": perm[n_test:n_test + n_val],
                 "train": perm[n_test + n_val:]}
        if name not in parts:
            raise UsageError(f"unknown split '{name}'; choose from train, val, test")
        return np.sort(parts[name])

    def split(self, name: str, seed: int) -> Any:
        from ._torchdata import ArrayClocks

        images, labels = self.arrays()
        return ArrayClocks(images, labels, self.indices(name, seed, len(labels)))

    def load_image(self, path: Path) -> torch.Tensor:
        return load_image(path)
