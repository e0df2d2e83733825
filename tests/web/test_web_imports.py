"""The web package's shape: its modules import each other without a cycle (read with ast)."""

from __future__ import annotations

import ast
import itertools
from pathlib import Path

WEB = Path(__file__).resolve().parents[2] / "src" / "openiort" / "web"
PACKAGE = "openiort.web"


def web_imports(folder: Path = WEB) -> dict[str, dict[str, int]]:
    """module -> {imported web module: line} for every ``*.py`` of the package.

    Imports inside functions and under ``if TYPE_CHECKING:`` count; ``from openiort.web import
    x`` imports the module ``x`` when there is one, else the package (``__init__``).
    """
    names = {p.stem for p in folder.glob("*.py")}
    graph: dict[str, dict[str, int]] = {}
    for path in sorted(folder.glob("*.py")):
        edges: dict[str, int] = {}
        for node in ast.walk(ast.parse(path.read_text("utf-8"), filename=str(path))):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                if node.level:  # relative: .x or from . import x
                    base = f"{PACKAGE}.{node.module}" if node.module else PACKAGE
                else:
                    base = node.module or ""
                targets = [
                    f"{base}.{a.name}" if base == PACKAGE and a.name in names else base
                    for a in node.names
                ]
            for target in targets:
                if target == PACKAGE:
                    edges.setdefault("__init__", node.lineno)
                elif target.startswith(PACKAGE + "."):
                    edges.setdefault(target.split(".")[2], node.lineno)
        edges.pop(path.stem, None)
        graph[path.stem] = edges
    return graph


def find_cycle(graph: dict[str, dict[str, int]]) -> list[str]:
    """One import cycle as [a, b, ..., a], or [] if there is none."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str]:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, {})):
            if state.get(nxt) == 1:
                return [*path[path.index(nxt) :], nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        path.pop()
        state[node] = 2
        return []

    for start in sorted(graph):
        if start not in state and (cycle := visit(start)):
            return cycle
    return []


def test_web_modules_import_each_other_without_a_cycle() -> None:
    graph = web_imports()
    assert {"app", "state", "api", "downloads"} <= set(graph)
    cycle = find_cycle(graph)
    assert not cycle, "import cycle in openiort.web: " + " -> ".join(
        f"{a} (line {graph[a][b]})" for a, b in itertools.pairwise(cycle)
    )


def test_only_the_factory_wires_routers() -> None:
    graph = web_imports()
    routers = {m for m in graph if m == "api" or m.startswith("pages_")}
    assert routers == {
        "api",
        "pages_site",
        "pages_cases",
        "pages_plans",
        "pages_delivery",
        "pages_settings",
        "pages_ct_import",
    }
    for module, imported in graph.items():
        # A route module may use another's helpers (the delivery form re-renders the plan);
        # only the package and ``iort serve`` import the factory; only the factory the API.
        assert "app" not in imported or module in ("__init__", "commands"), module
        assert "api" not in imported or module == "app", module
    assert routers <= set(graph["app"])


def test_every_web_module_says_what_it_is_for() -> None:
    for path in sorted(WEB.glob("*.py")):
        doc = ast.get_docstring(ast.parse(path.read_text("utf-8")))
        assert doc and doc.strip(), f"{path.name} has no docstring"


def test_the_cycle_finder(tmp_path: Path) -> None:
    (tmp_path / "a.py").write_text("from openiort.web import b\n")
    (tmp_path / "b.py").write_text("def f():\n    from openiort.web.c import x\n")
    (tmp_path / "c.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from . import a\n"
    )
    graph = web_imports(tmp_path)
    assert graph == {"a": {"b": 1}, "b": {"c": 2}, "c": {"a": 3}}
    assert find_cycle(graph) == ["a", "b", "c", "a"]
    (tmp_path / "c.py").write_text("import openiort.web\n")
    assert find_cycle(web_imports(tmp_path)) == []
