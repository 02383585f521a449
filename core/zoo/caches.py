"""``zoo cache``: what zoo keeps under ``$ZOO_HOME`` that it can fetch or rebuild, and pruning it.

Three kinds of entry, each recognised by the exact shape zoo gives its names, so that a
``ZOO_HOME`` pointed at a folder holding other things never loses them:

- ``weights``: ``weights/NAME/TAG-<16 hex>.safetensors``, pulled weights (verified again on use);
- ``index``: ``registry/<16 hex>.json``, cached copies of remote registry indexes;
- ``data``: ``cache/GROUP/<hex key>/``, data a plugin rendered or unpacked (the clock plugin's
  render cache). A plugin opts in by keeping such folders there and touching them when used.

Plus ``partial``: temp files of downloads or renders a killed process left behind (cleared only
once an hour old, so a live download or render keeps its own). "Last used" is a
file's or folder's mtime: zoo touches a cached weight file on each pull and a render on each open.
"""

from __future__ import annotations

import re
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import click

from .env import cache_dir
from .errors import UsageError

HEX16 = re.compile(r"[0-9a-f]{16}")
DATA_KEY = re.compile(r"[0-9a-f]{8,64}")
KINDS = ("weights", "index", "data", "partial")
DAY = 86400.0


@dataclass(frozen=True)
class Entry:
    kind: str
    name: str  # relative to $ZOO_HOME
    path: Path
    size: int
    last_used: float  # seconds since the epoch


def _size(path: Path) -> int:
    if not path.is_dir() or path.is_symlink():
        return path.lstat().st_size
    return sum(p.lstat().st_size for p in path.rglob("*") if not p.is_dir() or p.is_symlink())


def _entry(kind: str, path: Path, home: Path) -> Entry:
    try:
        size, used = _size(path), path.lstat().st_mtime
    except OSError:  # unreadable, or removed by another process meanwhile: size unknown
        size, used = 0, 0.0
    return Entry(kind, path.relative_to(home).as_posix(), path, size, used)


def _children(folder: Path, want_dirs: bool) -> list[Path]:
    """Real sub-folders (or regular files) only: a symlink is never followed, so nothing outside
    ``$ZOO_HOME`` is seen; a folder that cannot be read shows nothing."""
    try:
        if not folder.is_dir() or folder.is_symlink():
            return []
        return sorted(p for p in folder.iterdir()
                      if not p.is_symlink() and (p.is_dir() if want_dirs else p.is_file()))
    except OSError:
        return []


def _dirs(folder: Path) -> list[Path]:
    return _children(folder, want_dirs=True)


def _files(folder: Path) -> list[Path]:
    return _children(folder, want_dirs=False)


def entries() -> Iterator[Entry]:
    """Every entry zoo can rebuild, in a stable order (kind, then name)."""
    from .storage import hub  # not at import: `zoo --help` stays light

    home = cache_dir()
    # the names hub.cache_path gives: TAG-<first 16 hex of the sha256>.safetensors
    weight_file = re.compile(rf"(?:{hub.NAME_RE.pattern})-[0-9a-f]{{16}}\.safetensors")
    for folder in _dirs(hub.weights_dir()):
        for path in _files(folder):
            if weight_file.fullmatch(path.name):
                yield _entry("weights", path, home)
            elif path.name.startswith(".") and path.name.endswith(".part"):  # transfer.download's
                yield _entry("partial", path, home)
    for path in _files(hub.index_cache_dir()):
        if path.suffix == ".json" and HEX16.fullmatch(path.stem):
            yield _entry("index", path, home)
    for group in _dirs(home / "cache"):
        for folder in _dirs(group):
            if DATA_KEY.fullmatch(folder.name):
                yield _entry("data", folder, home)
            elif folder.name.startswith(".part-"):
                yield _entry("partial", folder, home)


def remove(entry: Entry) -> None:
    if entry.path.is_dir() and not entry.path.is_symlink():
        shutil.rmtree(entry.path)
    else:
        entry.path.unlink(missing_ok=True)


def human(size: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1000 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    raise AssertionError("unreachable")


def _age(seconds: float) -> str:
    days = max(0.0, time.time() - seconds) / DAY
    return "today" if days < 1 else f"{days:.0f} d ago"


# ------------------------------------------------------------------ the commands


@click.group("cache")
def cache_group() -> None:
    """What zoo keeps under $ZOO_HOME and can fetch or rebuild: list it, prune it."""


@cache_group.command("list")
@click.option("--kind", type=click.Choice(KINDS), multiple=True, help="Only these kinds (repeatable).")
def list_command(kind: tuple[str, ...]) -> None:
    """Each cached entry: kind, size, last use, name; then the total."""
    found = [e for e in entries() if not kind or e.kind in kind]
    click.echo(f"ZOO_HOME: {cache_dir()}")
    click.echo(f"{'KIND':<8} {'SIZE':>9}  {'LAST USED':>10}  PATH")
    for e in found:
        click.echo(f"{e.kind:<8} {human(e.size):>9}  {_age(e.last_used):>10}  {e.name}")
    click.echo(f"total: {len(found)} entries, {human(sum(e.size for e in found))}")


@cache_group.command("clear")
@click.option("--kind", type=click.Choice(KINDS), multiple=True,
              help="Only these kinds (repeatable; default: all).")
@click.option("--older-than", "older_than", type=float, default=0.0,
              help="Only entries last used more than DAYS ago.", metavar="DAYS")
@click.option("--dry-run", is_flag=True, help="Say what would go; remove nothing.")
def clear_command(kind: tuple[str, ...], older_than: float, dry_run: bool) -> None:
    """Remove cached entries; each comes back (downloaded or rendered again) when next needed."""
    from .storage.transfer import STALE_PART_SECONDS  # a younger partial may be a live download's

    if not older_than >= 0 or older_than == float("inf"):
        raise UsageError(f"--older-than {older_than}: expected a finite number of days >= 0")
    cutoff = time.time() - older_than * DAY
    chosen = [e for e in entries() if (not kind or e.kind in kind) and e.last_used <= cutoff
              and (e.kind != "partial" or e.last_used <= time.time() - STALE_PART_SECONDS)]
    freed = 0
    for e in chosen:
        if not dry_run:
            try:
                remove(e)
            except OSError as err:
                raise UsageError(f"cannot remove {e.path}: {err.strerror or err}") from None
        freed += e.size
        click.echo(f"{'would remove' if dry_run else 'removed'} {e.kind} {e.name} ({human(e.size)})")
    verb = "would free" if dry_run else "freed"
    click.echo(f"{len(chosen)} entries, {verb} {human(freed)}")
