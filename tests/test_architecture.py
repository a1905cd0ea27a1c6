"""The direction of dependencies (docs/architecture.md): no import cycles among the project's
modules, lazy imports inside functions and TYPE_CHECKING imports included, and only the top
imports the run's whole settings (:class:`Options`)."""

from __future__ import annotations

import ast
from pathlib import Path

from tests.helpers import ROOT

PACKAGE = ROOT / "operations"
# The top: the CLI, the API, the batch and options.py itself; the builder needs no Options.
TOP = {"run", "operations.options", "operations.api", "operations.batch", "operations"}


def _module(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict[str, Path]:
    found = {_module(p): p for p in PACKAGE.rglob("*.py")}
    found["run"] = ROOT / "run.py"
    return found


def _imports(path: Path, known: set[str]) -> dict[str, set[str]]:
    """Project modules ``path`` imports (anywhere in it), and the names it takes from each."""
    found: dict[str, set[str]] = {}
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:
                sub = f"{node.module}.{alias.name}"
                target = sub if sub in known else node.module  # `from operations import build`
                found.setdefault(target, set()).add(alias.name)
        elif isinstance(node, ast.Import):
            for alias in node.names:
                found.setdefault(alias.name, set())
    return {m: names for m, names in found.items() if m in known}


def _graph() -> dict[str, dict[str, set[str]]]:
    modules = _modules()
    return {name: _imports(path, set(modules)) for name, path in modules.items()}


def test_no_import_cycles_lazy_imports_included() -> None:
    graph = {m: set(targets) for m, targets in _graph().items()}
    # A package's __init__ runs before its modules: `operations` itself is left out (it only
    # re-exports, lazily, the API's names).
    graph.pop("operations")
    for targets in graph.values():
        targets.discard("operations")
    cycles = []
    state: dict[str, int] = {}  # 1: on the path, 2: done

    def visit(module: str, path: list[str]) -> None:
        state[module] = 1
        for target in sorted(graph.get(module, ())):
            if state.get(target) == 1:
                cycles.append(" → ".join([*path[path.index(target) :], target]))
            elif target not in state:
                visit(target, [*path, target])
        state[module] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module, [module])
    assert cycles == []


def test_only_the_top_imports_options() -> None:
    importers = {
        module
        for module, targets in _graph().items()
        if "Options" in targets.get("operations.options", set())
    }
    assert importers <= TOP, importers - TOP


def test_the_graph_sees_lazy_and_type_checking_imports() -> None:
    graph = _graph()
    assert "operations.build" in graph["operations.engines.local"]  # inside a method
    assert "operations.build" in graph["operations.engines"]  # under TYPE_CHECKING
