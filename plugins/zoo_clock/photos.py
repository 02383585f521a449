"""Clock photographs from a folder: ``labels.csv`` (``file,hour,minute``) + the images it names.

Every image goes through ``load_photo``, the same conversion ``zoo predict`` applies to an image
file, so a reader scores a photo folder exactly as it reads each photo on its own. A row that
cannot be used (bad label, missing file, a path leaving the folder, not an image, a
decompression bomb) is reported in one line on stderr and counted (``skipped``), never dropped
silently. Torch is imported inside functions only.
"""

from __future__ import annotations

import csv
import sys
import warnings
from dataclasses import dataclass
from pathlib import Path, PurePath
from typing import TYPE_CHECKING, Any, ClassVar

from zoo import Dataset, UsageError

from .data import SHAPE, NpyClocks, NpyConfig

if TYPE_CHECKING:
    import torch

HEADER = ("file", "hour", "minute")
LAYOUT = "labels.csv (header file,hour,minute; hour 0-12, 12 meaning 0) + the images it names"
SIXTEEN_BIT = ("I;16", "I;16B", "I;16L", "I;16N", "I")
TRANSPARENT = ("RGBA", "LA", "PA", "La", "RGBa", "P")


def load_photo(path: Path, size: int = SHAPE[-1]) -> torch.Tensor:
    """Any image file → ``(1, size, size)`` float in [0, 1]: what the clock readers take.

    EXIF orientation applied; transparency composited on white; 16-bit greyscale scaled from its
    full 0–65535 range (not clipped at 255); CMYK, palette and the rest converted to grey by PIL;
    then the centred square of side min(width, height) is cut out (the longer side loses its
    ends, nothing is padded) and resampled once (Lanczos) to ``size``. JPEGs are decoded at a
    reduced scale (still at least 2·size on the short side) for speed. Unreadable files and
    decompression bombs (PIL's pixel limit) raise ``UsageError`` in one line.
    """
    import numpy as np
    import torch
    from PIL import Image, ImageOps

    try:
        with warnings.catch_warnings():  # over PIL's pixel limit is a bomb, as in zoo predict
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as opened:
                if opened.format == "JPEG":
                    opened.draft(opened.mode, (2 * size, 2 * size))
                img = ImageOps.exif_transpose(opened)
                img.load()
                gray = _grayscale(img, np)
    except Exception as e:  # PIL raises OSError, SyntaxError, ValueError, struct.error, bombs…
        detail = " ".join(str(e).split()) or type(e).__name__
        raise UsageError(f"cannot read image {path}: {detail}") from None
    w, h = gray.size
    side = min(w, h)
    box = ((w - side) / 2, (h - side) / 2, (w + side) / 2, (h + side) / 2)
    gray = gray.resize((size, size), Image.Resampling.LANCZOS, box=box)
    if gray.mode == "F":
        array = np.clip(np.asarray(gray, dtype=np.float32), 0.0, 1.0)
        return torch.from_numpy(array.copy())[None]
    return torch.from_numpy(np.asarray(gray, dtype=np.uint8).copy())[None].float() / 255.0


def _grayscale(img: Any, np: Any) -> Any:
    """One grey channel: ``L`` (8-bit) or, for 16-bit sources, ``F`` in [0, 1]."""
    from PIL import Image

    if img.mode in SIXTEEN_BIT:
        return Image.fromarray(np.clip(np.asarray(img, dtype=np.float32) / 65535.0, 0.0, 1.0))
    if img.mode in TRANSPARENT or "transparency" in img.info:
        rgba = img.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        img = Image.alpha_composite(white, rgba)
    return img.convert("L")


@dataclass
class PhotosConfig:
    root: str | None = None  # the folder holding labels.csv (files are relative to it)
    size: int = SHAPE[-1]  # side of the square input, as the reader was trained (8-1024)
    val_fraction: float = 0.1
    test_fraction: float = 0.1


@dataclass(frozen=True)
class Row:
    """One line of labels.csv: its image (None when the row is unusable) or why not."""

    line: int
    name: str
    path: Path | None = None
    hour: int = 0
    minute: int = 0
    problem: str = ""


class ClockPhotos(Dataset):
    """Photos of clocks listed in ``labels.csv``; splits ``all`` (every row) and train/val/test.

    train/val/test are a seeded 80/10/10 partition of the rows, as for ``clock-npy``; ``all`` is
    every row in file order, for ``zoo eval NAME --data DIR --split all``. The images of a split
    are decoded once, when it is first asked for.
    """

    Config = PhotosConfig
    splits: ClassVar[tuple[str, ...]] = ("train", "val", "test", "all")
    data_layout: ClassVar[str] = LAYOUT

    @classmethod
    def accepts(cls, path: Path) -> bool:
        return (Path(path) / "labels.csv").is_file()

    def __init__(self, config: Any = None) -> None:
        super().__init__(config)
        c = self.config
        if not 8 <= c.size <= 1024:
            raise UsageError(f"data.size must be 8-1024, got {c.size}")
        if not (0 <= c.val_fraction < 1 and 0 <= c.test_fraction < 1):
            raise UsageError(f"data.val_fraction and data.test_fraction must be in [0, 1), got "
                             f"{c.val_fraction} and {c.test_fraction}")

    def input_shape(self) -> tuple[int, ...]:
        return (1, self.config.size, self.config.size)

    def load_image(self, path: Path) -> torch.Tensor:
        return load_photo(path, self.config.size)

    def root(self) -> Path:
        if not self.config.root:
            raise UsageError(f"clock-photos needs a folder: pass --data DIR ({LAYOUT})")
        return Path(self.config.root).expanduser()

    def rows(self) -> list[Row]:
        """Every data row of labels.csv, checked (labels, path, file exists); read once."""
        if "_rows" not in self.__dict__:
            self.__dict__["_rows"] = read_labels(self.root())
        return self.__dict__["_rows"]

    def row_indices(self, name: str, seed: int) -> list[int]:
        if name not in self.splits:
            raise UsageError(f"unknown split '{name}'; choose from {', '.join(self.splits)}")
        n = len(self.rows())
        if name == "all":
            return list(range(n))
        fractions = NpyConfig(val_fraction=self.config.val_fraction,
                              test_fraction=self.config.test_fraction)
        return NpyClocks(fractions).indices(name, seed, n).tolist()

    def decoded(self, name: str, seed: int) -> tuple[Any, Any, int]:
        """(images, labels, skipped) of a split: decoded once, each unusable row reported once."""
        import torch

        memo = self.__dict__.setdefault("_decoded", {})
        if (name, seed) in memo:
            return memo[(name, seed)]
        rows = self.rows()
        reported = self.__dict__.setdefault("_reported", set())
        images, labels, skipped = [], [], 0
        for i in self.row_indices(name, seed):
            row, problem = rows[i], rows[i].problem
            if not problem:
                try:
                    images.append(load_photo(row.path, self.config.size))
                    labels.append((row.hour, row.minute))
                    continue
                except UsageError as e:
                    problem = str(e)
            skipped += 1
            if row.line not in reported:
                reported.add(row.line)
                where = f" ({row.name})" if row.name else ""
                print(f"zoo: skipped {self.root() / 'labels.csv'} line {row.line}{where}: "
                      f"{problem}", file=sys.stderr)
        if not images:
            raise UsageError(f"no readable photos in split {name} of {self.root()} "
                             f"({skipped} rows skipped); expected {LAYOUT}")
        memo[(name, seed)] = (torch.stack(images), torch.tensor(labels, dtype=torch.long),
                              skipped)
        return memo[(name, seed)]

    def split(self, name: str, seed: int) -> Any:
        import torch

        images, labels, _ = self.decoded(name, seed)
        return torch.utils.data.TensorDataset(images, labels)

    def skipped(self, split: str, seed: int) -> int:
        return self.decoded(split, seed)[2]


def read_labels(root: Path) -> list[Row]:
    """Parse ``root/labels.csv``; a wrong file as a whole is a UsageError, a wrong row a Row
    with its ``problem`` (so the caller can report and count it)."""
    csv_path = root / "labels.csv"
    if not root.is_dir():
        raise UsageError(f"photo folder {root} does not exist; expected {LAYOUT}")
    if not csv_path.is_file():
        raise UsageError(f"no labels.csv in {root}; expected {LAYOUT}")
    try:
        with open(csv_path, newline="", encoding="utf-8-sig") as f:
            table = list(csv.reader(f))
    except (OSError, UnicodeDecodeError, csv.Error) as e:
        raise UsageError(f"cannot read {csv_path}: {' '.join(str(e).split())}") from None
    header = [c.strip().lower() for c in table[0]] if table else []
    if not set(HEADER) <= set(header):
        found = ",".join(table[0]) if table else "an empty file"
        raise UsageError(f"{csv_path}: the first line must be the header file,hour,minute "
                         f"(found {found!r})")
    column = {c: header.index(c) for c in HEADER}
    resolved_root = root.resolve()
    rows = []
    for line, cells in enumerate(table[1:], start=2):
        if not any(c.strip() for c in cells):
            continue  # blank line: no sample there
        rows.append(_check_row(line, cells, column, root, resolved_root))
    return rows


def _check_row(line: int, cells: list[str], column: dict[str, int], root: Path,
               resolved_root: Path) -> Row:
    if len(cells) < len(column) or max(column.values()) >= len(cells):
        return Row(line, "", problem=f"{len(cells)} fields; expected file,hour,minute")
    name, hour, minute = (cells[column[c]].strip() for c in HEADER)
    if not name:
        return Row(line, name, problem="empty file name")
    for label, text, top in (("hour", hour, 12), ("minute", minute, 59)):
        if not (text.isascii() and text.isdigit() and int(text) <= top):
            return Row(line, name, problem=f"{label} {text!r} is not a whole number 0-{top}")
    pure = PurePath(name)
    path = root / pure
    if pure.is_absolute() or pure.drive or not path.resolve().is_relative_to(resolved_root):
        return Row(line, name, problem=f"file {name!r} is outside {root}")
    if not path.is_file():
        return Row(line, name, problem=f"no such file {path}")
    return Row(line, name, path, int(hour) % 12, int(minute))
