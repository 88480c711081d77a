"""The walls around the shared protocol package: the fleet never imports the CSMS, ``ocppj``
imports neither, and its version and timestamp modules use only the standard library."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _imports(path: Path) -> set[str]:
    """Top-level names of every module ``path`` imports, in functions too."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize(("package", "forbidden"), [
    ("simulators", {"csms"}), ("ocppj", {"csms", "simulators"}),
])
def test_a_package_imports_nothing_beyond_its_wall(package: str, forbidden: set[str]) -> None:
    crossing = {str(p.relative_to(ROOT)): _imports(p) & forbidden for p in (ROOT / package).rglob("*.py")}
    assert {path: names for path, names in crossing.items() if names} == {}


@pytest.mark.parametrize("module", ["versions", "timestamps"])
def test_versions_and_timestamps_use_only_the_standard_library(module: str) -> None:
    assert _imports(ROOT / "ocppj" / f"{module}.py") <= set(sys.stdlib_module_names)
