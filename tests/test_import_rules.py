"""The layers of docs/index.md, enforced: who may import whom (every import, also inside functions).

    base       errors, env, config, api, hookspecs, _catalog
    plugins    the plugin manager (zoo.plugins)
    storage    zoo.storage.*: files, weights, checkpoint, transfer, hub, publish
    assembly   zoo.experiment, zoo.loading
    training   zoo.training.*
    front      zoo.cli, zoo.cli_options, zoo.caches, zoo.datasources, zoo.python_api, zoo.testing, zoo (the package)

A module may import its own layer and the layers below it, never one above; core never imports
a plugin; plugins import only what ``zoo`` itself exports (and the kit, ``zoo.testing``).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CORE = ROOT / "core" / "zoo"
PLUGINS = ROOT / "plugins"
LAYERS = ["base", "plugins", "storage", "assembly", "training", "front"]
BASE = {"errors", "env", "config", "api", "hookspecs", "_catalog", "__main__"}


def module_name(path: Path) -> str:
    parts = path.relative_to(CORE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def layer(module: str) -> str:
    """``zoo.storage.hub`` → ``storage``; unknown core modules fail the test that lists them."""
    parts = module.split(".")
    if parts == ["zoo"] or parts[1] in ("cli", "cli_options", "caches", "datasources", "python_api", "testing",
                                        "__main__"):
        return "front"
    first = parts[1]
    if first in BASE:
        return "base"
    return {"plugins": "plugins", "storage": "storage", "experiment": "assembly",
            "loading": "assembly", "training": "training"}.get(first, "unknown")


def imports(path: Path, package: str) -> list[tuple[int, str, list[str]]]:
    """``(line, module, names)`` of every import in ``path``, relative ones made absolute."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name, []) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([node.module] if node.module else []))
            found.append((node.lineno, base, [alias.name for alias in node.names]))
    return found


def package_of(path: Path) -> str:
    name = module_name(path)
    return name if path.name == "__init__.py" else name.rpartition(".")[0]


CORE_FILES = sorted(CORE.rglob("*.py"))
PLUGIN_FILES = sorted(PLUGINS.rglob("*.py")) + sorted((ROOT / "docs" / "examples").rglob("*.py"))


def test_every_core_module_has_a_layer() -> None:
    unknown = [module_name(p) for p in CORE_FILES if layer(module_name(p)) == "unknown"]
    assert not unknown, f"give these modules a layer (here and in docs/index.md): {unknown}"


@pytest.mark.parametrize("path", CORE_FILES, ids=lambda p: module_name(p))
def test_core_imports_only_its_layer_and_below(path: Path) -> None:
    here = layer(module_name(path))
    bad = []
    for line, module, names in imports(path, package_of(path)):
        targets = [module] if module != "zoo" else [f"zoo.{n}" if (CORE / f"{n}.py").exists()
                                                    or (CORE / n).is_dir() else "zoo" for n in names]
        for target in targets:
            top = target.split(".")[0]
            if top in ("zoo_clock", "zoo_generative", "zoo_example"):
                bad.append(f"line {line}: core imports the plugin {target}")
            elif top == "zoo" and target != "zoo" and LAYERS.index(layer(target)) > LAYERS.index(here):
                bad.append(f"line {line}: {here} imports {target} ({layer(target)})")
    assert not bad, f"{module_name(path)}: " + "; ".join(bad)


@pytest.mark.parametrize("path", PLUGIN_FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_plugins_use_only_public_zoo_names(path: Path) -> None:
    import zoo

    public = set(zoo.__all__) | set(zoo.LAZY) | {"cli_options", "testing"}
    bad = []
    for line, module, names in imports(path, "plugin"):
        if module.startswith("zoo.") and module not in ("zoo.testing", "zoo.cli_options"):
            bad.append(f"line {line}: imports {module} (import public names from zoo)")
        elif module == "zoo":
            bad += [f"line {line}: zoo.{n} is not public" for n in names if n not in public]
    assert not bad, "; ".join(bad)


def test_the_rules_catch_a_violation(tmp_path: Path) -> None:
    """The checker itself: an upward import and a plugin import are both seen."""
    fake = CORE / "storage" / "files.py"
    found = imports(fake, "zoo.storage")
    assert all(layer(m) in ("base", "storage") for _, m, _ in found if m.startswith("zoo"))
    bad = tmp_path / "bad.py"
    bad.write_text("def f():\n    from ..training.loop import Trainer\n    import zoo_clock\n")
    targets = [m for _, m, _ in imports(bad, "zoo.storage")]
    assert targets == ["zoo.training.loop", "zoo_clock"]
    assert LAYERS.index(layer("zoo.training.loop")) > LAYERS.index(layer("zoo.storage.files"))


def core_graph() -> dict[str, set[str]]:
    """Core module → the core modules it imports (``from zoo import __version__`` aside: the
    package's own ``__init__`` imports only the base layer)."""
    graph: dict[str, set[str]] = {}
    for path in CORE_FILES:
        edges = graph.setdefault(module_name(path), set())
        for _, module, names in imports(path, package_of(path)):
            if module == "zoo":
                edges |= {f"zoo.{n}" for n in names if (CORE / f"{n}.py").exists() or (CORE / n).is_dir()}
            elif module.startswith("zoo."):
                edges.add(module)
    return graph


def test_no_import_cycle_in_core() -> None:
    graph = core_graph()
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    cycles: list[list[str]] = []

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for target in sorted(graph.get(node, ())):
            if state.get(target) == 1:
                cycles.append(path[path.index(target):] + [target])
            elif target in graph and not state.get(target):
                visit(target, path + [target])
        state[node] = 2

    for node in sorted(graph):
        if not state.get(node):
            visit(node, [node])
    assert not cycles, "import cycles: " + "; ".join(" → ".join(c) for c in cycles)
