"""Datasets: MNIST (torchvision layout) and any folder tree of images resized to 64×64 RGB.

This module imports no torch at load time; ``split`` and friends import it when data is needed.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from zoo import Dataset, UsageError, data_dir, ranged

if TYPE_CHECKING:
    import torch

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".ppm", ".pgm"}
SPLIT_DIRS = {"train": ("train", "training"), "val": ("valid", "val", "validation"), "test": ("test", "testing")}


def data_root(root: str) -> Path:
    """``root`` if given, else ``zoo.data_dir()`` ($ZOO_DATA, else $ZOO_HOME/data)."""
    return Path(root).expanduser() if root else data_dir()


def seeded_permutation(n: int, seed: int) -> list[int]:
    """The same permutation of ``range(n)`` for the same seed on every machine."""
    import torch

    return torch.randperm(n, generator=torch.Generator().manual_seed(seed)).tolist()


class TensorImages:
    """A map-style dataset over a uint8 (N, C, H, W) tensor: items are (float image in [0,1], label)."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, indices: list[int] | None = None) -> None:
        self.images, self.labels = images, labels
        self.indices = indices if indices is not None else list(range(len(images)))

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        j = self.indices[i]
        return self.images[j].float().div_(255.0), self.labels[j]

    def get_batch(self, indices: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Samples ``indices`` as one batch (the trainer's in-process path: no workers)."""
        import torch

        rows = torch.as_tensor(self.indices)[indices]
        return self.images[rows].float().div_(255.0), self.labels[rows]


class MNIST(Dataset):
    """MNIST digits, 1×28×28 in [0, 1]; val is a seeded hold-out of the training set."""

    @dataclass
    class Config:
        root: str = ""  # default: $ZOO_DATA, else $ZOO_HOME/data (torchvision layout MNIST/raw/...)
        val_size: int = ranged(5000, 1)

    def input_shape(self) -> tuple[int, ...]:
        return (1, 28, 28)

    def _load(self, train: bool) -> tuple[torch.Tensor, torch.Tensor]:
        from torchvision.datasets import MNIST as TorchMNIST

        from .fetch import ensure_mnist

        root = data_root(self.config.root)
        ensure_mnist(root, explicit=bool(self.config.root))  # fetched and verified, or one clear error
        ds = TorchMNIST(str(root), train=train, download=False)
        return ds.data.unsqueeze(1).contiguous(), ds.targets

    def split(self, name: str, seed: int) -> TensorImages:
        if name not in self.splits:
            raise UsageError(f"unknown split '{name}'; choose from {', '.join(self.splits)}")
        if name == "test":
            return TensorImages(*self._load(train=False))
        images, labels = self._load(train=True)
        val_size = min(max(self.config.val_size, 0), len(images) - 1)
        order = seeded_permutation(len(images), seed)
        indices = sorted(order[:val_size]) if name == "val" else sorted(order[val_size:])
        return TensorImages(images, labels, indices)

    def load_image(self, path: Path) -> torch.Tensor:
        from PIL import Image
        from torchvision.transforms.functional import pil_to_tensor, resize

        with Image.open(path) as im:
            x = pil_to_tensor(im.convert("L"))
        return resize(x, [28, 28], antialias=True).float() / 255.0


def list_images(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())


class FolderImages:
    """Images under a folder, decoded and resized on access; unreadable files are replaced.

    A file that fails to decode is skipped: the item is taken from the next readable file, the
    file is remembered, and one warning counts them, so an epoch never dies on a bad JPEG.
    """

    def __init__(self, files: list[Path], labels: list[int], size: int) -> None:
        self.files, self.labels, self.size = files, labels, size
        self.bad: set[int] = set()

    def __len__(self) -> int:
        return len(self.files)

    def skip(self, j: int) -> None:
        """Remember an unreadable file and say how many have been skipped so far."""
        self.bad.add(j)
        warnings.warn(f"imagefolder: skipped {len(self.bad)} unreadable file(s), latest {self.files[j]}",
                      stacklevel=3)

    def _read(self, i: int) -> torch.Tensor:
        return read_image(self.files[i], self.size)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        import torch

        for k in range(len(self.files)):
            j = (i + k) % len(self.files)
            if j in self.bad:
                continue
            try:
                return self._read(j), self.labels[j]
            except Exception:  # PIL raises many types for broken files
                self.skip(j)
        return torch.zeros(3, self.size, self.size), -1  # every file unreadable: checked at build


def read_image(path: Path, size: int) -> torch.Tensor:
    """One image → 3×size×size float RGB in [0, 1] (shorter side resized, then center-cropped)."""
    from PIL import Image
    from torchvision.transforms import functional as TF

    with Image.open(path) as im:
        im = im.convert("RGB")
        im = TF.center_crop(TF.resize(im, size, antialias=True), [size, size])
        return TF.pil_to_tensor(im).float().div_(255.0)


class ImageFolder(Dataset):
    """Any folder tree of images (e.g. Butterfly & Moth), as 3×64×64 RGB in [0, 1].

    Uses ``train/``, ``valid/`` and ``test/`` subfolders when present; otherwise a seeded split.
    Labels are the index of each image's top-level class folder (unused by the generative tasks).
    """

    @dataclass
    class Config:
        root: str = ""  # the image folder (--data DIR); "" → $ZOO_DATA/butterfly (zoo data pull butterfly)
        size: int = ranged(64, 1)
        val_fraction: float = ranged(0.05, 0, 1, hi_open=True)
        test_fraction: float = ranged(0.05, 0, 1, hi_open=True)

    def input_shape(self) -> tuple[int, ...]:
        return (3, self.config.size, self.config.size)

    def _root(self) -> Path:
        if not self.config.root:
            from .fetch import default_image_root

            root = default_image_root()
            if not root.is_dir():
                raise UsageError(f"imagefolder: no --data DIR given and no images in {root} (ZOO_DATA): "
                                 "pass --data DIR, or run `zoo data pull butterfly`")
            return root
        root = Path(self.config.root).expanduser()
        if not root.is_dir():
            raise UsageError(f"no such image folder: {root}")
        return root

    def _files(self, name: str, seed: int) -> tuple[list[Path], list[int]]:
        root = self._root()
        subdirs = {s: next((root / d for d in SPLIT_DIRS[s] if (root / d).is_dir()), None) for s in SPLIT_DIRS}
        if subdirs["train"] is not None:
            base = subdirs[name] or subdirs["train"]  # a missing val/test falls back to train
            files = list_images(base)
        else:
            base = root
            everything = list_images(root)
            order = seeded_permutation(len(everything), seed)
            n_val = int(len(everything) * self.config.val_fraction)
            n_test = int(len(everything) * self.config.test_fraction)
            if name == "val":
                chosen = order[:n_val]
            elif name == "test":
                chosen = order[n_val:n_val + n_test]
            else:
                chosen = order[n_val + n_test:] or order
            files = [everything[i] for i in sorted(chosen)] or everything
        if not files:
            raise UsageError(f"no images ({', '.join(sorted(IMAGE_SUFFIXES))}) under {base}")
        classes = sorted({f.relative_to(base).parts[0] for f in files if len(f.relative_to(base).parts) > 1})
        index = {c: i for i, c in enumerate(classes)}
        labels = [index.get(f.relative_to(base).parts[0], 0) for f in files]
        return files, labels

    def split(self, name: str, seed: int) -> FolderImages:
        if name not in self.splits:
            raise UsageError(f"unknown split '{name}'; choose from {', '.join(self.splits)}")
        files, labels = self._files(name, seed)
        ds = FolderImages(files, labels, self.config.size)
        readable = _first_readable(ds)
        if readable is None:
            raise UsageError(f"none of the {len(files)} image files under {self.config.root} can be read")
        return ds

    def load_image(self, path: Path) -> torch.Tensor:
        return read_image(Path(path), self.config.size)


def _first_readable(ds: FolderImages) -> Any:
    """Index of some decodable file (stops at the first), or None when none decodes."""
    for i in range(len(ds)):
        try:
            ds._read(i)
            return i
        except Exception:
            ds.skip(i)
    return None
