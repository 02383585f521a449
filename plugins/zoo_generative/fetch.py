"""``zoo data pull mnist`` and ``zoo data pull butterfly``: the plugin's data, fetched and verified.

MNIST comes through torchvision's mirrors (its md5s checked) or from a local copy (``--from DIR``
holding torchvision's ``MNIST/raw/*`` or the raw ``.gz``/ubyte files); the four uncompressed files
are checked against the official md5s either way. Butterfly & Moth (Kaggle, 100 species) comes
through ``kagglehub`` (``pip install -e ".[kaggle]"``) and is laid out as ``train/ valid/ test/``
for the ``imagefolder`` dataset. Both stage into a temporary folder and rename when verified.
No torch at import.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import shutil
import sys
from pathlib import Path

from zoo import UsageError, ZooError, data_dir, offline, staging

# md5 of the uncompressed files of the official release (torchvision lists those of the .gz)
MNIST_FILES = {
    "train-images-idx3-ubyte": "6bbc9ace898e44ae57da46a324031adb",
    "train-labels-idx1-ubyte": "a25bea736e30d166cdddb491f175f624",
    "t10k-images-idx3-ubyte": "2646ac647ad5339dbf082846283269ea",
    "t10k-labels-idx1-ubyte": "27ae3e4e09519cfbb04c329615203637",
}
KAGGLE_BUTTERFLY = "gpiosenka/butterfly-images40-species"  # "Butterfly & Moths Image Classification 100 species"
BUTTERFLY_SPLITS = ("train", "valid", "test")
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp"}


def md5(path: Path) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def say(message: str) -> None:
    print(f"zoo: {message}", file=sys.stderr, flush=True)


# ------------------------------------------------------------------ MNIST


def mnist_folder(root: Path) -> Path:
    """Where torchvision (and the ``mnist`` dataset) reads MNIST under a data root."""
    return root / "MNIST" / "raw"


def mnist_present(root: Path) -> bool:
    raw = mnist_folder(root)
    return all((raw / name).is_file() for name in MNIST_FILES)


def mnist_missing(root: Path, explicit: bool = False) -> UsageError:
    """The one error for absent MNIST: where it looked, what sets that place, what fixes it."""
    if explicit:
        where = "(--data)"
    elif os.environ.get("ZOO_DATA", "").strip():
        where = "(ZOO_DATA)"
    else:
        where = "(ZOO_DATA unset: $ZOO_HOME/data)"
    hint = "; ZOO_OFFLINE=1, so nothing is downloaded" if offline() else ""
    return UsageError(f"MNIST not found in {mnist_folder(root)} {where}{hint}: run `zoo data pull "
                      "mnist` (add --from DIR to copy a local MNIST), or set ZOO_DATA to a folder "
                      "that holds MNIST/raw")


def _check(path: Path, expected: str, origin: str) -> None:
    got = md5(path)
    if got != expected:
        raise ZooError(f"checksum mismatch: {path.name} from {origin} has md5 {got}, expected "
                       f"{expected}; nothing was written")


def _gunzip(gz: Path, dest: Path) -> None:
    with gzip.open(gz, "rb") as src, open(dest, "wb") as out:
        shutil.copyfileobj(src, out, 1 << 20)


def _gz_md5s() -> dict[str, str]:
    from torchvision.datasets import MNIST

    return dict(MNIST.resources)


def _copy_mnist_file(source: Path, name: str, tmp: Path) -> None:
    """One file from a local copy: uncompressed as is, or a .gz checked (torchvision's md5) and unpacked."""
    for folder in (source / "MNIST" / "raw", source / "raw", source):
        if (folder / name).is_file():
            shutil.copyfile(folder / name, tmp / name)
            return
        gz = folder / f"{name}.gz"
        if gz.is_file():
            _check(gz, _gz_md5s()[gz.name], str(gz.parent))
            _gunzip(gz, tmp / name)
            return
    raise UsageError(f"--from {source}: no {name} (or .gz) in it, in raw/ or in MNIST/raw/")


def _download_mnist_file(name: str, tmp: Path) -> None:
    """One .gz from torchvision's mirrors, in turn, with a progress bar; md5 checked, unpacked."""
    from torchvision.datasets import MNIST
    from torchvision.datasets.utils import download_url

    gz, errors = f"{name}.gz", []
    for mirror in MNIST.mirrors:
        try:
            download_url(f"{mirror}{gz}", root=str(tmp), filename=gz, md5=_gz_md5s()[gz])
            break
        except Exception as e:  # urllib, http and torchvision's own "File not found or corrupted."
            (tmp / gz).unlink(missing_ok=True)
            errors.append(f"{mirror}: {' '.join(str(e).split()) or type(e).__name__}")
    else:
        raise ZooError(f"could not download {gz} ({'; '.join(errors)}); with a copy at hand: "
                       "zoo data pull mnist --from DIR")
    _gunzip(tmp / gz, tmp / name)
    (tmp / gz).unlink()


def pull_mnist(root: Path, source: Path | None = None) -> Path:
    """MNIST into ``root/MNIST/raw`` (torchvision layout), verified; returns that folder."""
    final = mnist_folder(root)
    if mnist_present(root) and all(md5(final / n) == m for n, m in MNIST_FILES.items()):
        say(f"MNIST already in {final} (verified)")
        return final
    if source is None and offline():
        raise UsageError(f"ZOO_OFFLINE=1: cannot download MNIST into {final}; pass --from DIR "
                         "(a folder holding MNIST/raw or the .gz files) or unset ZOO_OFFLINE")
    origin = str(source) if source is not None else "the download"
    with staging(final) as tmp:
        for name, expected in MNIST_FILES.items():
            if source is not None:
                _copy_mnist_file(source, name, tmp)
            else:
                _download_mnist_file(name, tmp)
            _check(tmp / name, expected, origin)
    say(f"MNIST in {final} (4 files, md5 verified)")
    return final


def ensure_mnist(root: Path, explicit: bool) -> None:
    """What the ``mnist`` dataset calls: present, or fetched into the data root, or one clear error."""
    if mnist_present(root):
        return
    if explicit or offline():
        raise mnist_missing(root, explicit)
    say(f"MNIST not in {mnist_folder(root)}: fetching it (`zoo data pull mnist`)")
    try:
        pull_mnist(root)
    except ZooError as e:
        raise UsageError(f"{mnist_missing(root)} (download failed: {e})") from None


# ------------------------------------------------------------------ Butterfly & Moth


def butterfly_folder(root: Path) -> Path:
    """Where ``zoo data pull butterfly`` lays the set out, and where ``imagefolder`` looks by default."""
    return root / "butterfly"


def _split_folders(tree: Path) -> Path:
    """The folder holding ``train/ valid/ test/`` in a downloaded tree (top level or one below)."""
    for candidate in (tree, *sorted(p for p in tree.iterdir() if p.is_dir())):
        if all((candidate / s).is_dir() for s in BUTTERFLY_SPLITS):
            return candidate
    raise UsageError(f"{tree} holds no train/, valid/ and test/ folders: not the Butterfly & Moth "
                   "layout; nothing was written")


def _link_or_copy(src: str, dst: str) -> None:
    """Hard links cost no space next to kagglehub's cache; copies where links cannot be made."""
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


def _kaggle_download() -> Path:
    try:
        import kagglehub
    except ImportError:
        raise UsageError("the Butterfly & Moth set comes through kagglehub: pip install -e \".[kaggle]\" "
                         "(or pip install kagglehub), or pass --from DIR with a copy") from None
    try:
        return Path(kagglehub.dataset_download(KAGGLE_BUTTERFLY))
    except Exception as e:  # network, credentials, a moved dataset: one line
        raise ZooError(f"kagglehub could not fetch {KAGGLE_BUTTERFLY}: "
                       f"{' '.join(str(e).split()) or type(e).__name__}") from None


def pull_butterfly(root: Path, source: Path | None = None) -> Path:
    """Butterfly & Moth into ``root/butterfly/{train,valid,test}/CLASS/*.jpg``; returns that folder."""
    final = butterfly_folder(root)
    if all((final / s).is_dir() for s in BUTTERFLY_SPLITS):
        say(f"Butterfly & Moth already in {final}")
        return final
    if source is None and offline():
        raise UsageError(f"ZOO_OFFLINE=1: cannot download Butterfly & Moth into {final}; pass --from "
                         "DIR (a folder holding train/ valid/ test/) or unset ZOO_OFFLINE")
    tree = _split_folders(source if source is not None else _kaggle_download())
    counts = {}
    with staging(final) as tmp:
        for split in BUTTERFLY_SPLITS:
            shutil.copytree(tree / split, tmp / split, copy_function=_link_or_copy,
                            ignore=lambda d, names: [n for n in names if (Path(d) / n).is_file()
                                                     and Path(n).suffix.lower() not in IMAGE_SUFFIXES])
            counts[split] = sum(1 for p in (tmp / split).rglob("*") if p.is_file())
            if not counts[split]:
                raise ZooError(f"{tree / split} holds no images; nothing was written")
    say(f"Butterfly & Moth in {final}: " + ", ".join(f"{n} {s}" for s, n in counts.items()) + " images")
    return final


def default_image_root() -> Path:
    return butterfly_folder(data_dir())
