"""Files on disk: written atomically (temp + fsync + rename), read only when regular, hashed.

Every file zoo keeps (weights, checkpoints, indexes, caches, figures) is written through
:func:`atomic_write`, so an interrupted write never leaves a half file under the real name.
"""

from __future__ import annotations

import hashlib
import os
import stat
import tempfile
from pathlib import Path
from typing import Any

from ..errors import UsageError, ZooError

CHUNK = 1 << 20


def replace_from_temp(tmp: str | Path, dest: Path) -> None:
    """Rename a finished temp file over ``dest`` with the permissions a plain ``open()`` gives.

    ``mkstemp`` makes files 0600; without the chmod, cached and published weights would be
    unreadable to other users of a shared cache or registry.
    """
    mask = os.umask(0)
    os.umask(mask)
    os.chmod(tmp, 0o666 & ~mask)
    os.replace(tmp, dest)


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
        replace_from_temp(tmp, path)
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


def open_regular(path: Path, what: str = "weight file") -> Any:
    """Open ``path`` for reading only if it is a regular file (a binary file object).

    A FIFO or device named ``*.safetensors`` would block ``open`` or never end a read; opening
    non-blocking and checking the opened descriptor (not the name) leaves no window to swap it.
    """
    path = Path(path)
    a = "an" if what[:1] in "aeiou" else "a"
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except FileNotFoundError:
        raise UsageError(f"no such {what}: {path}") from None
    except IsADirectoryError:
        raise UsageError(f"{path} is a directory, not {a} {what}") from None
    except OSError as e:
        raise ZooError(f"cannot read {path}: {e.strerror or e}") from None
    mode = os.fstat(fd).st_mode
    if not stat.S_ISREG(mode):
        os.close(fd)
        kind = "a directory" if stat.S_ISDIR(mode) else "not a regular file (FIFO, socket or device)"
        raise UsageError(f"{path} is {kind}; expected {a} {what}")
    if hasattr(os, "O_NONBLOCK"):
        os.set_blocking(fd, True)
    return os.fdopen(fd, "rb")


def check_regular(path: Path, what: str = "weight file") -> Path:
    """Raise unless ``path`` is a regular file: for readers that open by name (torch, safetensors)."""
    open_regular(path, what).close()
    return Path(path)



def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open_regular(path, "file") as f:
        for chunk in iter(lambda: f.read(CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()
