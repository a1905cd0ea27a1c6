"""The direction of dependencies (docs/architecture.md): no import cycles among the project's
modules, lazy imports inside functions and TYPE_CHECKING imports included; the packages import
one way, down the layers; and only the top imports the run's whole settings (:class:`Options`)."""

from __future__ import annotations

import ast
from pathlib import Path

from tests.helpers import ROOT

PACKAGE = ROOT / "operations"
# The top: the CLI, the API, the batch and options.py itself; the builder needs no Options.
TOP = {
    "run",
    "operations.options",
    "operations.api",
    "operations.batch",
    "operations",
    "operations.review.session",
}
# The layers, top down (docs/architecture.md): a package, or a module at the package's top, may
# import only what stands on a lower layer (and itself). Units on one layer are peers and import
# none of each other: the segmenters and the stages; the batch's jobs and the HTTP service.
LAYERS: list[set[str]] = [
    {"run"},
    {"operations.review", "operations.shell"},
    {"operations.api", "operations.batch"},
    {"operations.options"},
    {"operations.jobs", "operations.service"},
    {"operations.build"},
    {"operations.pipeline"},
    {"operations.segmenters", "operations.stages"},
    {"operations.models"},
    {"operations.media"},
    {"operations.errors", "operations.doubt", "operations.warning_capture"},
]
RANK = {unit: len(LAYERS) - n for n, layer in enumerate(LAYERS) for unit in layer}


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
    assert "operations.build" in graph["operations.jobs.engines.local"]  # inside a method
    assert "operations.build" in graph["operations.jobs.engines"]  # under TYPE_CHECKING


def _unit(module: str) -> str:
    """``operations.stages.matting`` → ``operations.stages``; a top module is its own unit."""
    parts = module.split(".")
    return ".".join(parts[:2]) if parts[0] == "operations" and len(parts) > 1 else module


def _upward(graph: dict[str, dict[str, set[str]]]) -> list[str]:
    """Imports that go up a layer or sideways to a peer, as ``a → b``."""
    found = []
    for module, targets in sorted(graph.items()):
        for target in sorted(targets):
            # The package itself only re-exports the API (lazily) and holds __version__.
            if "operations" in (module, target):
                continue
            source, sink = _unit(module), _unit(target)
            if source != sink and RANK[sink] >= RANK[source]:
                found.append(f"{module} → {target}")
    return found


def test_every_unit_has_a_layer() -> None:
    units = {_unit(m) for m in _modules()} - {"operations"}
    assert units == set(RANK), units ^ set(RANK)


def test_the_packages_import_one_way() -> None:
    assert _upward(_graph()) == []


def test_the_direction_check_catches_an_upward_and_a_sideways_import() -> None:
    graph = {
        "operations.media.decode": {"operations.stages.matting": set()},  # up
        "operations.stages.look": {"operations.segmenters.base": set()},  # a peer
        "operations.jobs.job": {"operations.media.files": set(), "operations.jobs.ledger": set()},
    }
    assert _upward(graph) == [
        "operations.media.decode → operations.stages.matting",
        "operations.stages.look → operations.segmenters.base",
    ]


def test_each_package_says_what_it_holds_and_may_import() -> None:
    for init in sorted(PACKAGE.glob("*/__init__.py")):
        doc = ast.get_docstring(ast.parse(init.read_text())) or ""
        assert "May import" in doc, init.relative_to(ROOT)


def test_the_top_of_the_package_is_small() -> None:
    # Only what everything shares or what sits above all stays at the top (at most 12).
    top = sorted(p.name for p in PACKAGE.glob("*.py"))
    assert len(top) <= 12, top
