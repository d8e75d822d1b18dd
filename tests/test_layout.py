"""The package's shape: data flows one way, with no import cycles (function-level imports
included), the engines don't import each other, and few modules sit directly in sim/.
docs/architecture.md draws the same picture."""

from __future__ import annotations

import ast
import graphlib
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "sim"

# Each layer may import the layers before it, never one after it (docs/architecture.md).
LAYERS = [
    {"sim.errors"},
    {"sim.scenario", "sim.sampling"},
    {"sim.model"},
    {"sim.imports"},
    {"sim.engine"},
    {"sim.study"},
    {"sim.analysis"},
    {"sim.present"},
    {"sim.cli"},
    {"sim"},
]


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in PACKAGE.rglob("*.py")}


def imports(name: str) -> set[str]:
    """The sim modules `name` imports anywhere in its file (top level or inside functions)."""
    tree = ast.parse(MODULES[name].read_text())
    found: set[str] = set()
    for node in ast.walk(tree):
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            # `from sim.x import y` imports the module sim.x.y when there is one
            targets = [
                f"{node.module}.{a.name}" if f"{node.module}.{a.name}" in MODULES else node.module
                for a in node.names
            ]
        found.update(t for t in targets if t in MODULES and t != name)
    return found


GRAPH = {name: imports(name) for name in MODULES}


def layer(name: str) -> int:
    for rank, members in enumerate(LAYERS):
        for member in members:
            if name == member or (member != "sim" and name.startswith(member + ".")):
                return rank
    raise AssertionError(f"{name} belongs to no layer")


def test_no_import_cycles():
    # A package's __init__ importing its own submodules is not a cycle: Python loads the
    # package first. Edges from a submodule to its own package's __init__ are left out.
    graph = {
        name: {t for t in targets if not name.startswith(t + ".")}
        for name, targets in GRAPH.items()
    }
    try:
        list(graphlib.TopologicalSorter(graph).static_order())
    except graphlib.CycleError as exc:
        pytest.fail(f"import cycle: {' -> '.join(exc.args[1])}")


@pytest.mark.parametrize("name", sorted(MODULES))
def test_imports_flow_one_way(name):
    backwards = sorted(t for t in GRAPH[name] if layer(t) > layer(name))
    assert not backwards, f"{name} imports a later layer: {backwards}"


def test_the_engines_do_not_import_each_other():
    engines = ["sim.engine.des", "sim.engine.kernel", "sim.engine.numba_engine"]
    for a in engines:
        for b in engines:
            assert a == b or b not in GRAPH[a], f"{a} imports {b}"


def test_command_modules_import_only_the_shared_cli_module():
    for name in MODULES:
        if name.startswith("sim.cli.") and name not in ("sim.cli.app", "sim.cli.__main__"):
            others = {t for t in GRAPH[name] if t.startswith("sim.cli")} - {"sim.cli.common"}
            assert not others, f"{name} imports {sorted(others)}"


def test_at_most_six_modules_sit_directly_in_sim():
    direct = sorted(p.name for p in PACKAGE.glob("*.py"))
    assert len(direct) <= 6, direct
