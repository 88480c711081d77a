"""The walls of docs/../ARCHITECTURE.md, checked on the import graph of the source tree.

The graph is built with ``ast`` from every ``import`` / ``from`` statement of a module, those
inside functions included (a deferred import is still a dependency); only the bodies of
``if TYPE_CHECKING:`` blocks are skipped. An import of ``pkg.mod.name`` counts as an import of
``pkg.mod`` (the longest prefix that is a module) and of the package ``__init__`` modules it
executes (those that are not already the importer's own packages).
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("csms", "simulators", "ocppj")


@dataclass(slots=True)
class ImportGraph:
    """Modules of the scanned packages, their edges among them, and what else each imports."""

    edges: dict[str, set[str]] = field(default_factory=dict)
    external: dict[str, set[str]] = field(default_factory=dict)  # dotted names outside the scan

    def modules(self, package: str) -> list[str]:
        return sorted(m for m in self.edges if _within(m, package))


def _within(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


def _module_name(root: Path, path: Path) -> tuple[str, bool]:
    parts = list(path.relative_to(root).with_suffix("").parts)
    is_package = parts[-1] == "__init__"
    if is_package:
        parts.pop()
    return ".".join(parts), is_package


def _is_type_checking(test: ast.expr) -> bool:
    if isinstance(test, ast.Name):
        return test.id == "TYPE_CHECKING"
    return isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"


def _imported_names(tree: ast.AST, module: str, is_package: bool) -> Iterator[str]:
    """Dotted names of every import in ``tree`` (relative ones resolved), except under TYPE_CHECKING."""
    stack: list[ast.AST] = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            stack.extend(node.orelse)
            continue
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = module.split(".") if is_package else module.split(".")[:-1]
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            for alias in node.names:
                yield base if alias.name == "*" else f"{base}.{alias.name}"
        stack.extend(ast.iter_child_nodes(node))


def _targets(name: str, known: set[str], importer: str) -> set[str]:
    """The scanned modules an import of ``name`` runs: its longest module prefix and the
    packages on the way there that are not the importer's own (already running) packages."""
    parts = name.split(".")
    prefixes = [".".join(parts[:i]) for i in range(1, len(parts) + 1)]
    found = [p for p in prefixes if p in known]
    if not found:
        return set()
    target = found[-1]
    own = {".".join(importer.split(".")[:i]) for i in range(1, importer.count(".") + 1)}
    return {p for p in found[:-1] if p not in own} | {target}


def build_graph(root: Path, packages: Sequence[str]) -> ImportGraph:
    """The import graph of ``packages`` (directories directly under ``root``)."""
    sources: dict[str, tuple[Path, bool]] = {}
    for package in packages:
        for path in sorted((root / package).rglob("*.py")):
            name, is_package = _module_name(root, path)
            sources[name] = (path, is_package)
    known = set(sources)
    graph = ImportGraph()
    for module, (path, is_package) in sources.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        edges, external = graph.edges.setdefault(module, set()), graph.external.setdefault(module, set())
        for name in _imported_names(tree, module, is_package):
            targets = _targets(name, known, module)
            edges.update(targets - {module})
            if not targets:
                external.add(name)
    return graph


def find_cycle(edges: dict[str, set[str]], within: str) -> list[str] | None:
    """One import cycle among the modules of ``within`` (as ``[a, b, ..., a]``), or None."""
    nodes = {m for m in edges if _within(m, within)}
    state: dict[str, int] = {}  # 1 on the current path, 2 done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(edges.get(node, set()) & nodes):
            if state.get(nxt) == 1:
                return [*path[path.index(nxt):], nxt]
            if nxt not in state and (cycle := visit(nxt)) is not None:
                return cycle
        path.pop()
        state[node] = 2
        return None

    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10 * len(nodes) + 100))
    for start in sorted(nodes):
        if start not in state and (cycle := visit(start)) is not None:
            return cycle
    return None


def _forbidden(graph: ImportGraph, source: str, targets: Sequence[str]) -> list[str]:
    bad = []
    for module in graph.modules(source):
        for dep in sorted(graph.edges[module] | graph.external[module]):
            if any(_within(dep, t) for t in targets):
                bad.append(f"{module} -> {dep}")
    return bad


@pytest.fixture(scope="module")
def graph() -> ImportGraph:
    return build_graph(ROOT, [p for p in PACKAGES if (ROOT / p).is_dir()])


def test_csms_has_no_import_cycle(graph: ImportGraph) -> None:
    cycle = find_cycle(graph.edges, "csms")
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


@pytest.mark.parametrize(
    ("source", "targets"),
    [("simulators", ("csms",)), ("ocppj", ("csms", "simulators"))],
    ids=["simulators-never-import-csms", "ocppj-imports-neither-csms-nor-simulators"],
)
def test_shared_packages_stay_independent(
    graph: ImportGraph, source: str, targets: tuple[str, ...]
) -> None:
    assert (ROOT / source).is_dir(), f"{source}/ is missing"
    bad = _forbidden(graph, source, targets)
    assert not bad, "\n".join(bad)


def test_security_imports_neither_the_ocpp_adapter_nor_the_api(graph: ImportGraph) -> None:
    assert _forbidden(graph, "csms.security", ("csms.ocpp", "csms.api")) == []


def _standard_library(name: str) -> bool:
    top = name.split(".")[0]
    return top == "__future__" or (top in sys.stdlib_module_names and top not in PACKAGES)


def test_core_imports_only_itself_the_standard_library_and_ocppj_versions(graph: ImportGraph) -> None:
    """Followed transitively: ``ocppj.versions`` (and the ``ocppj`` package it runs) must be
    standard library only as well."""
    allowed = {"ocppj", "ocppj.versions"}
    bad = []
    todo = graph.modules("csms.core")
    seen = set(todo)
    while todo:
        module = todo.pop()
        bad += [f"{module} -> {dep}" for dep in sorted(graph.external[module]) if not _standard_library(dep)]
        for dep in sorted(graph.edges[module]):
            if not (_within(dep, "csms.core") or dep in allowed):
                bad.append(f"{module} -> {dep}")
            elif dep not in seen:
                seen.add(dep)
                todo.append(dep)
    assert not bad, "\n".join(bad)


@pytest.mark.parametrize("module", ["ocppj.versions", "ocppj.timestamps"])
def test_ocppj_versions_and_timestamps_use_only_the_standard_library(graph: ImportGraph, module: str) -> None:
    assert [dep for dep in sorted(graph.external[module]) if not _standard_library(dep)] == []
    assert graph.edges[module] <= {"ocppj"}


# --- the graph builder itself ------------------------------------------------------------------

def _write(root: Path, files: dict[str, str]) -> None:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")


def test_builder_finds_a_cycle_through_a_deferred_relative_import(tmp_path: Path) -> None:
    _write(tmp_path, {
        "pkg/__init__.py": "",
        "pkg/a.py": "from pkg.sub import b\n",
        "pkg/sub/__init__.py": "",
        "pkg/sub/b.py": "def later() -> None:\n    from .. import a\n",
    })
    graph = build_graph(tmp_path, ["pkg"])
    assert graph.edges["pkg.a"] == {"pkg.sub", "pkg.sub.b"}
    assert graph.edges["pkg.sub.b"] == {"pkg.a"}
    assert find_cycle(graph.edges, "pkg") == ["pkg.a", "pkg.sub.b", "pkg.a"]


def test_builder_skips_type_checking_imports_and_counts_package_inits(tmp_path: Path) -> None:
    _write(tmp_path, {
        "pkg/__init__.py": "from pkg.a import X\n",
        "pkg/a.py": "X = 1\n",
        "pkg/sub/__init__.py": "import pkg.a\n",
        "pkg/sub/c.py": "import typing\nimport json\n",
        "pkg/b.py": (
            "from typing import TYPE_CHECKING\nimport pkg.sub.c.name\n"
            "if TYPE_CHECKING:\n    from pkg import a\nelse:\n    import os.path\n"
        ),
        "pkg/d.py": "import typing\nif typing.TYPE_CHECKING:\n    import pkg.b\n",
    })
    graph = build_graph(tmp_path, ["pkg"])
    assert graph.edges["pkg.b"] == {"pkg.sub", "pkg.sub.c"}
    assert graph.external["pkg.b"] == {"typing.TYPE_CHECKING", "os.path"}
    assert graph.edges["pkg.d"] == set()
    assert graph.edges["pkg.a"] == set()  # its own package's __init__ already ran
    assert find_cycle(graph.edges, "pkg") is None
