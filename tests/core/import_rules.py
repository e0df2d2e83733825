"""The layering rules of openiort and an AST checker for them (no import of the code checked).

Data flows down; nothing imports upwards: a module may import from its own layer or lower
ones. :data:`LAYERS` maps module names to layers; the longest matching prefix wins (the
top-level package's entry places its ``__init__`` only), and any module called ``commands``
or ``*_command`` (a CLI shell) is in the top layer whatever its package. Imports inside
functions and under ``if TYPE_CHECKING:`` count like any other.

``python tests/core/import_rules.py`` prints every upward import of ``src/openiort``.
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

# Bottom to top; docs/architecture.md ("Layers") says what each one is for.
LAYERS: dict[str, int] = {
    # 0 core: the package, errors, grids
    "openiort": 0,
    "openiort.errors": 0,
    "openiort.grid": 0,
    "openiort.dosegrid": 0,
    "openiort.datafiles": 0,
    "openiort.constants": 0,
    # 1 model: the case, the patient model, the devices, what a delivery is
    "openiort.case": 1,
    "openiort.anatomy": 1,
    "openiort.devices": 1,
    "openiort.delivery": 1,
    # 2 physics and clinical knowledge (and the day's corrections of a sealed delivery)
    "openiort.session": 2,
    "openiort.dose": 2,
    "openiort.evaluation": 2,
    "openiort.radiobiology": 2,
    "openiort.clinical": 2,
    # 3 planning: the results object, the engines, the techniques
    "openiort.plan": 3,
    "openiort.plan_document": 3,
    "openiort.plan_figures": 3,
    "openiort.planning": 3,
    "openiort.engines": 3,
    # 4 output: report and export writers
    "openiort.report": 4,
    "openiort.io": 4,
    # 5 services: the pipeline, the records, reading DICOM into the model
    "openiort.pipeline": 5,
    "openiort.records": 5,
    "openiort.inputs": 5,
    # 6 shells: the command line and the web app
    "openiort.cli": 6,
    "openiort.command_errors": 6,
    "openiort.console_command": 6,
    "openiort.web": 6,
}


@dataclass(frozen=True, order=True)
class Violation:
    """One upward import (or a module the layer table does not place)."""

    module: str
    module_layer: int
    target: str
    target_layer: int
    line: int

    @property
    def key(self) -> tuple[str, str]:
        return (self.module, self.target)

    def __str__(self) -> str:
        if self.target_layer < 0:
            return f"{self.module} is in no layer: add it to LAYERS"
        return (
            f"{self.module} ({self.module_layer}) imports {self.target} "
            f"({self.target_layer}) at line {self.line}"
        )


def module_name(path: Path, src: Path) -> str:
    """``src/openiort/io/send.py`` -> ``openiort.io.send`` (a package is its ``__init__``)."""
    parts = list(path.relative_to(src).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def modules(src: Path, package: str) -> dict[str, Path]:
    """Every module of ``package`` under the source root ``src``, by name."""
    return {module_name(p, src): p for p in sorted((src / package).rglob("*.py"))}


def imports(
    tree: ast.AST, name: str, is_package: bool, known: Mapping[str, Path]
) -> Iterator[tuple[str, int]]:
    """(imported module, line) for each import in ``tree``, at any depth.

    ``from a import b`` imports the module ``a.b`` when there is one, otherwise ``a``;
    relative imports are resolved against the module's package.
    """
    package = name if is_package else name.rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, node.lineno
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                parent = ".".join([*base, *([node.module] if node.module else [])])
            else:
                parent = node.module or ""
            for alias in node.names:
                child = f"{parent}.{alias.name}"
                yield (child if child in known else parent), node.lineno


def layer_of(module: str, layers: Mapping[str, int]) -> int | None:
    """The layer of ``module``: its longest prefix in ``layers``; ``commands`` is the top.

    A top-level name (``openiort``) places that module (its ``__init__``) only, so that a new
    top-level module is placed by an entry of its own.
    """
    last = module.rpartition(".")[2]
    if last == "commands" or last.endswith("_command"):
        return max(layers.values())
    parts = module.split(".")
    if len(parts) == 1:
        return layers.get(module)
    for n in range(len(parts), 1, -1):
        layer = layers.get(".".join(parts[:n]))
        if layer is not None:
            return layer
    return None


def check_layers(
    src: Path, layers: Mapping[str, int] = LAYERS, package: str = "openiort"
) -> list[Violation]:
    """Every import in ``src/package`` of a module in a higher layer, sorted.

    A module of the package that no entry of ``layers`` places is reported too (with layer
    -1), so that a new package gets its layer when it is made.
    """
    known = modules(src, package)
    found: set[Violation] = set()
    for name, path in known.items():
        layer = layer_of(name, layers)
        if layer is None:
            found.add(Violation(name, -1, name, -1, 0))
            continue
        tree = ast.parse(path.read_text("utf-8"), filename=str(path))
        for target, line in imports(tree, name, path.name == "__init__.py", known):
            if target != package and not target.startswith(package + "."):
                continue
            target_layer = layer_of(target, layers)
            if target_layer is not None and target_layer > layer:
                found.add(Violation(name, layer, target, target_layer, line))
    return sorted(found)


if __name__ == "__main__":
    root = Path(__file__).resolve().parents[2] / "src"
    for v in check_layers(root):
        print(v)
    sys.exit(0)
