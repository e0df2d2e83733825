"""The import contract: data flows down; nothing imports upwards (layers in import_rules.py)."""

from __future__ import annotations

from pathlib import Path

from import_rules import LAYERS, Violation, check_layers, layer_of

SRC = Path(__file__).resolve().parents[2] / "src"

# Upward imports that exist today (none), as (importing module, imported module). This set must only
# shrink: remove an entry when its import is gone (the test fails on a stale entry), never add
# one; a new upward import is fixed by moving code down, not by listing it here.
KNOWN_VIOLATIONS: frozenset[tuple[str, str]] = frozenset()


def test_no_upward_imports_beyond_the_known_ones() -> None:
    found = check_layers(SRC)
    new = [str(v) for v in found if v.key not in KNOWN_VIOLATIONS]
    stale = sorted(KNOWN_VIOLATIONS - {v.key for v in found})
    assert not new, "upward imports (move the code down instead):\n" + "\n".join(new)
    assert not stale, (
        "KNOWN_VIOLATIONS lists imports that are gone; remove these entries:\n"
        + "\n".join(f"{m} imports {t}" for m, t in stale)
    )


def _write(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, "utf-8")


def test_the_checker_finds_upward_imports(tmp_path: Path) -> None:
    _write(
        tmp_path,
        {
            "pkg/__init__.py": "",
            "pkg/base.py": "import pkg.top\n",  # upward, at module level
            "pkg/low/__init__.py": "",
            "pkg/low/a.py": (
                "from typing import TYPE_CHECKING\n"
                "from pkg import base\n"  # downward: allowed
                "from .b import thing\n"  # same layer: allowed
                "if TYPE_CHECKING:\n"
                "    from pkg.top.view import View\n"  # upward, for typing only
                "def f():\n"
                "    from ..mid import g\n"  # upward, lazy and relative
                "    return g\n"
            ),
            "pkg/low/b.py": "thing = 1\n",
            "pkg/low/commands.py": "from pkg.top import view\n",  # a CLI shell: top layer
            "pkg/mid.py": "from pkg.low import a\n",
            "pkg/top/__init__.py": "",
            "pkg/top/view.py": "from pkg import mid\nclass View: ...\n",
            "pkg/stray.py": "",
        },
    )
    layers = {"pkg": 0, "pkg.base": 0, "pkg.low": 1, "pkg.mid": 2, "pkg.top": 3}
    found = check_layers(tmp_path, {**layers, "pkg.stray": 0}, package="pkg")
    assert [str(v) for v in found] == [
        "pkg.base (0) imports pkg.top (3) at line 1",
        "pkg.low.a (1) imports pkg.mid (2) at line 7",
        "pkg.low.a (1) imports pkg.top.view (3) at line 5",
    ]
    unplaced = check_layers(tmp_path, layers, package="pkg")
    assert Violation("pkg.stray", -1, "pkg.stray", -1, 0) in unplaced
    assert "pkg.stray is in no layer" in str(unplaced[-1])


def test_the_layer_table() -> None:
    assert layer_of("openiort.io.commands", LAYERS) == 6  # any commands module is a shell
    assert layer_of("openiort.dose.mc.commands", LAYERS) == 6
    assert layer_of("openiort.records.user_command", LAYERS) == 6
    assert layer_of("openiort.dose.mc.engine", LAYERS) == 2
    assert layer_of("openiort.anatomy.phantom", LAYERS) == 1
    assert layer_of("openiort.inputs.ct", LAYERS) == 5  # DICOM reading is an input
    assert layer_of("openiort.anatomy.hu_calibration", LAYERS) == 1
    assert layer_of("openiort.io.dataset", LAYERS) == 4
    assert layer_of("openiort.webby", LAYERS) is None  # a prefix matches whole names only
    assert layer_of("openiort", LAYERS) == 0
    assert layer_of("elsewhere", LAYERS) is None
