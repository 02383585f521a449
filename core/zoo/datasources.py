"""``zoo data``: datasets fetched by name into ``$ZOO_DATA``, from sources that plugins register.

A plugin implements ``zoo_register_data(register)`` and calls
``register(name, pull, summary)``; ``pull(root, source)`` puts the data under ``root`` (the data
root, ``$ZOO_DATA``) from the network, or from a local copy ``source`` when given, verifies it,
and returns the folder it filled. It writes into a temporary folder and renames, so a failed or
interrupted pull leaves nothing half-written. Click only here; no torch.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import click

from .env import data_dir
from .errors import UnknownName, UsageError

Pull = Callable[[Path, "Path | None"], Path]


@dataclass(frozen=True)
class DataSource:
    name: str
    pull: Pull
    summary: str
    plugin: str


def sources() -> dict[str, DataSource]:
    """Every registered source; a plugin that fails in the hook is reported like any other."""
    from .plugins import PluginInfo, _fail, catalog, plugin_info, pm

    catalog()  # loads the entry points and reports failed plugins
    found: dict[str, DataSource] = {}
    for impl in pm.hook.zoo_register_data.get_hookimpls():
        plugin = pm.get_name(impl.plugin) or repr(impl.plugin)
        info = plugin_info.setdefault(plugin, PluginInfo(plugin))
        if "zoo_register_data" not in info.hooks:
            info.hooks.append("zoo_register_data")
        if info.error:
            continue

        def register(name: str, pull: Pull, summary: str = "", plugin: str = plugin) -> None:
            if name in found and found[name].plugin != plugin:
                raise ValueError(f"data source '{name}' is registered by both "
                                 f"'{found[name].plugin}' and '{plugin}'")
            found[name] = DataSource(name, pull, summary, plugin)

        try:
            impl.function(register=register)
        except Exception as e:
            _fail(info, e)
    return found


def pull(name: str, source: Path | None = None, root: Path | None = None) -> Path:
    """Fetch data source ``name`` into ``root`` (default ``$ZOO_DATA``); returns its folder."""
    known = sources()
    if name not in known:
        raise UnknownName("data source", name, known)
    if source is not None and not Path(source).is_dir():
        raise UsageError(f"--from {source}: no such folder")
    return known[name].pull(Path(root) if root else data_dir(), Path(source) if source else None)


@contextmanager
def staging(final: Path) -> Iterator[Path]:
    """A temporary folder next to ``final``, renamed onto it only if the block succeeds.

    Folders created on the way are removed again when the block fails, so a failed pull leaves
    the disk as it found it.
    """
    created = [p for p in [final.parent, *final.parent.parents] if not p.exists()]
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}-", dir=final.parent))
    mask = os.umask(0)
    os.umask(mask)
    os.chmod(tmp, 0o777 & ~mask)  # mkdtemp's 0700 would outlive the rename
    try:
        yield tmp
        if final.exists():
            shutil.rmtree(final)  # an incomplete or corrupt copy: the verified one replaces it
        tmp.rename(final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        for folder in created:  # deepest first
            try:
                folder.rmdir()
            except OSError:
                break
        raise


# ------------------------------------------------------------------ the commands


@click.group("data")
def data_group() -> None:
    """Datasets: fetch them into $ZOO_DATA, verified."""


@data_group.command("pull")
@click.argument("name")
@click.option("--from", "source", type=click.Path(path_type=Path, file_okay=False),
              help="A local copy to take the files from instead of the network.")
def pull_command(name: str, source: Path | None) -> None:
    """Fetch dataset NAME (see `zoo data list`) into $ZOO_DATA; prints the folder."""
    click.echo(str(pull(name, source)))


@data_group.command("list")
def list_command() -> None:
    """Data sources `zoo data pull` knows, and where they go."""
    known = sources()
    click.echo(f"data root: {data_dir()}  (ZOO_DATA)")
    width = max((len(n) for n in known), default=4)
    for name, src in sorted(known.items()):
        click.echo(f"{name.ljust(width)}  {src.summary}  (plugin {src.plugin})")
