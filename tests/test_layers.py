"""The package's layers hold: each folder imports only itself and the folders below it.

The order is the one the package docstring gives (``jaxlogreg/__init__.py``). Every import
counts, also those inside functions (the command imports lazily to start fast). The package
root holds only the public facade (``__init__``) and ``__main__``.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "jaxlogreg"
LAYERS = ("runtime", "core", "data", "kernels", "training", "scale", "stats", "estimators",
          "report", "cli")
ROOT_MODULES = {"__init__.py": None, "__main__.py": "cli"}  # the facade may import any layer


def _imported_layers(path: Path) -> list[tuple[int, str]]:
    """(line, layer) of every jaxlogreg module ``path`` imports."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module] if node.module != "jaxlogreg" else [
                f"jaxlogreg.{alias.name}" for alias in node.names]
        else:
            continue
        for name in names:
            parts = name.split(".")
            if parts[0] == "jaxlogreg" and len(parts) > 1:
                found.append((node.lineno, parts[1]))
    return found


def _layer_of(path: Path) -> str | None:
    relative = path.relative_to(PACKAGE)
    if len(relative.parts) == 1:
        return ROOT_MODULES[relative.name]
    return relative.parts[0]


def _modules() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def test_the_root_holds_only_the_facade():
    assert {p.name for p in PACKAGE.glob("*.py")} == set(ROOT_MODULES)
    folders = {p.name for p in PACKAGE.iterdir() if p.is_dir() and p.name != "__pycache__"}
    assert folders == set(LAYERS)


@pytest.mark.parametrize("path", _modules(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_no_module_imports_a_layer_above_its_own(path):
    layer = _layer_of(path)
    if layer is None:
        return  # the facade
    upward = [(line, target) for line, target in _imported_layers(path)
              if target not in LAYERS or LAYERS.index(target) > LAYERS.index(layer)]
    assert not upward, (f"{path.relative_to(PACKAGE)} ({layer}) imports upward or outside the "
                        f"layers {LAYERS}: {upward} (line, layer)")


def test_the_check_sees_an_upward_import(tmp_path):
    """The rule itself: a planted upward import is found."""
    planted = tmp_path / "planted.py"
    planted.write_text("def f():\n    from jaxlogreg.estimators import logistic\n"
                       "from jaxlogreg import cli\n")
    assert sorted(_imported_layers(planted)) == [(2, "estimators"), (3, "cli")]
