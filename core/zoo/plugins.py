"""Plugin loading: every entry point in the group ``zoo`` on its own, built-ins included.

A plugin that fails to import or register is recorded as a failure (one line: plugin, error) and
everything else keeps working; ``ZOO_STRICT_PLUGINS=1`` makes that fatal. ``ZOO_LOAD_PLUGINS=a,b``
loads only those distributions (or entry-point names).
"""

from __future__ import annotations

import inspect
import logging
import os
import sys
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

import pluggy

from . import hookspecs
from ._catalog import Catalog
from .env import env_flag
from .errors import ZooError, printable

log = logging.getLogger(__name__)

HOOKS = {
    "zoo_register_tasks": "tasks",
    "zoo_register_datasets": "datasets",
    "zoo_register_models": "models",
    "zoo_register_experiments": "experiments",
}
HOOK_NAMES = {*HOOKS, "zoo_register_commands", "zoo_register_data", "zoo_register_weights"}


@dataclass
class PluginInfo:
    name: str
    distribution: str | None = None
    version: str | None = None
    error: str | None = None
    hooks: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)  # e.g. a name it registers twice


class PluginError(ZooError):
    pass


pm = pluggy.PluginManager("zoo")
pm.add_hookspecs(hookspecs)
plugin_info: dict[str, PluginInfo] = {}
unknown_wanted: list[str] = []  # ZOO_LOAD_PLUGINS names that match no installed plugin
_loaded = False
_catalog: Catalog | None = None


def _strict() -> bool:
    return env_flag("ZOO_STRICT_PLUGINS")


def _fail(info: PluginInfo, error: BaseException) -> None:
    info.error = f"{type(error).__name__}: {error}".splitlines()[0]
    log.debug("plugin %s failed", info.name, exc_info=error)
    if _strict():
        raise PluginError(f"plugin '{info.name}' failed: {info.error}") from error


def _warn(info: PluginInfo, message: str) -> None:
    """A plugin mistake that leaves it usable: reported in one line; fatal when strict."""
    if _strict():
        raise PluginError(f"plugin '{info.name}' {message}")
    info.warnings.append(message)


def load_entry_points() -> None:
    """Import every ``zoo`` entry point once, each inside its own try."""
    global _loaded
    if _loaded:
        return
    _loaded = True
    wanted = {w.strip() for w in os.environ.get("ZOO_LOAD_PLUGINS", "").split(",") if w.strip()}
    for ep in entry_points(group="zoo"):
        dist = ep.dist.name if ep.dist else None
        if wanted and ep.name not in wanted and dist not in wanted:
            continue
        if pm.has_plugin(ep.name) or ep.name in plugin_info:
            continue
        info = PluginInfo(ep.name, dist, ep.dist.version if ep.dist else None)
        plugin_info[ep.name] = info
        try:
            _register_checked(ep.load(), ep.name)
            log.debug("loaded plugin %s (%s %s)", ep.name, dist, info.version)
        except Exception as e:  # a broken plugin must not break the others
            _fail(info, e)
    _check_wanted(wanted)


def _check_wanted(wanted: set[str]) -> None:
    """``ZOO_LOAD_PLUGINS=nosuch`` loading nothing must not pass silently: record (or, strict,
    refuse) the names that match no entry point or distribution."""
    installed = {ep.name: ep.dist.name if ep.dist else None for ep in entry_points(group="zoo")}
    known = set(installed) | {d for d in installed.values() if d}
    unknown_wanted[:] = sorted(wanted - known)
    if unknown_wanted and _strict():
        raise PluginError(unknown_wanted_message())


def unknown_wanted_message() -> str:
    installed = sorted(f"{ep.name} ({ep.dist.name})" if ep.dist else ep.name
                       for ep in entry_points(group="zoo"))
    return (f"ZOO_LOAD_PLUGINS names {', '.join(unknown_wanted)}: not installed; "
            f"installed: {', '.join(installed) or 'none'}")


def _register_checked(plugin: Any, name: str) -> None:
    """Register, then reject the plugin if it implements a hook that does not exist (a typo)."""
    pm.register(plugin, name=name)
    try:
        pm.check_pending()
    except pluggy.PluginValidationError:
        pm.unregister(name=name)
        unknown = [attr for attr in dir(plugin) if attr.startswith("zoo_") and attr not in HOOK_NAMES]
        raise PluginError(f"unknown hook(s) {', '.join(unknown) or '?'}; "
                          f"known: {', '.join(sorted(HOOK_NAMES))}") from None


def catalog() -> Catalog:
    """The catalog (name → component tables), filled on first use by calling each plugin's hooks one by one."""
    global _catalog
    if _catalog is not None:
        return _catalog
    load_entry_points()
    reg = Catalog()
    for info in plugin_info.values():
        info.warnings.clear()
    for hook_name, kind in HOOKS.items():
        for impl in getattr(pm.hook, hook_name).get_hookimpls():
            name = pm.get_name(impl.plugin) or repr(impl.plugin)
            info = plugin_info.setdefault(name, PluginInfo(name))
            if hook_name not in info.hooks:
                info.hooks.append(hook_name)
            if info.error:
                continue
            try:
                register = reg.register_callback(kind, name)
                before = len(reg.duplicates)
                impl.function(**({"register": register} if "register" in impl.argnames else {}))
            except Exception as e:
                _fail(info, e)
                continue
            for what in reg.duplicates[before:]:
                _warn(info, f"registers {what} twice (the last one wins)")
    for hook_name in ("zoo_register_commands", "zoo_register_weights"):  # called later, on use
        for impl in getattr(pm.hook, hook_name).get_hookimpls():
            name = pm.get_name(impl.plugin)
            info = plugin_info.setdefault(name, PluginInfo(name))
            if hook_name not in info.hooks:
                info.hooks.append(hook_name)
    _catalog = reg
    return reg


def weight_registries() -> list[tuple[str, str]]:
    """``(plugin, location)`` of each weights registry a plugin declares, in load order.

    A relative path is taken relative to the plugin's package (or module) folder; a plugin whose
    hook fails is reported like any other failure and its registry is left out.
    """
    catalog()
    found: list[tuple[str, str]] = []
    for impl in pm.hook.zoo_register_weights.get_hookimpls():
        name = pm.get_name(impl.plugin) or repr(impl.plugin)
        info = plugin_info.setdefault(name, PluginInfo(name))
        if info.error:
            continue
        home = _plugin_folder(impl.plugin)

        def register(location: Any, _name: str = name, _home: Path = home) -> None:
            text = str(location)
            if "://" not in text and not Path(text).expanduser().is_absolute():
                text = str(_home / text)
            found.append((_name, text))
            log.debug("plugin %s declares the weights registry %s", _name, text)

        try:
            impl.function(register=register)
        except Exception as e:
            _fail(info, e)
    return found


def _plugin_folder(plugin: Any) -> Path:
    """The folder of a plugin's package or module (an object: that of its class's module)."""
    module = plugin if inspect.ismodule(plugin) else sys.modules.get(type(plugin).__module__)
    file = getattr(module, "__file__", None)
    return Path(file).resolve().parent if file else Path.cwd()


def register_plugin(plugin: Any, name: str) -> None:
    """Add a plugin object in-process (tests, notebooks); the catalog is rebuilt on next use."""
    global _catalog
    load_entry_points()
    _register_checked(plugin, name)
    _catalog = None


def unregister_plugin(name: str) -> None:
    global _catalog
    plugin = pm.get_plugin(name)
    if plugin is not None:
        pm.unregister(plugin)
    plugin_info.pop(name, None)
    _catalog = None


def failures() -> list[PluginInfo]:
    catalog()
    return [info for info in plugin_info.values() if info.error]


def report_failures(stream: Any = None) -> None:
    """Print each failed plugin once, in one line; then plugin warnings, unknown ZOO_LOAD_PLUGINS."""
    stream = stream or sys.stderr
    for info in failures():  # a plugin's error text is its own: no terminal control characters
        print(printable(f"zoo: plugin '{info.name}' failed: {info.error}"), file=stream)
    for info in plugin_info.values():
        for message in info.warnings:
            print(printable(f"zoo: plugin '{info.name}' {message}"), file=stream)
    if unknown_wanted:
        print(printable(f"zoo: {unknown_wanted_message()}"), file=stream)


def reset() -> None:
    """Forget everything loaded (tests use this to re-read entry points)."""
    global _loaded, _catalog
    for name, _ in list(pm.list_name_plugin()):
        pm.unregister(name=name)
    plugin_info.clear()
    unknown_wanted.clear()
    _loaded = False
    _catalog = None
