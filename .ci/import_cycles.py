"""Fail on an import cycle between the modules of annotator/ and ml/, or on ml/ importing the web side.

    python .ci/import_cycles.py            # from the repository root; exit 1 and each problem printed

Reads the source with ``ast`` (nothing is imported, so no Django set-up is needed) and builds the graph
of which module imports which, counting imports inside functions too: an import moved into a function
to dodge a cycle is still a cycle. Imports under ``if TYPE_CHECKING:`` never run and are left out.

``from a.b import c`` is an edge to the module ``a.b.c`` when there is one, else to ``a.b``. A package's
``__init__`` that re-exports its own submodules is an edge from the package to each of them, and no
cycle by itself; it becomes one only when a submodule imports back through the package's face
(``from annotator.services import annotation_create`` inside ``annotator/services/``), which is what
the house style forbids: submodules import each other directly.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

PACKAGES = ("annotator", "ml")
#: What ml/, a plain library, must never import.
ML_FORBIDDEN = ("annotator", "django", "rest_framework", "celery")


def module_files(root: Path) -> dict[str, Path]:
    """Dotted module name -> file, for every module of ``PACKAGES`` (migrations aside)."""
    found = {}
    for package in PACKAGES:
        for path in sorted((root / package).rglob("*.py")):
            if "migrations" in path.parts:
                continue
            parts = list(path.relative_to(root).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join(parts)] = path
    return found


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def imported_modules(tree: ast.AST, *, package: str) -> list[str]:
    """The dotted names the module imports, anywhere in it except under ``if TYPE_CHECKING:``:
    ``import a.b`` gives ``a.b``; ``from a import b`` gives ``a.b`` (read as the module ``a.b`` where
    there is one, else as ``a``); ``package`` resolves relative imports."""
    names: list[str] = []
    pending = [tree]
    while pending:
        node = pending.pop()
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and _is_type_checking(child):
                pending.extend(child.orelse)
                continue
            if isinstance(child, ast.Import):
                names.extend(alias.name for alias in child.names)
            elif isinstance(child, ast.ImportFrom):
                base = child.module or ""
                if child.level:
                    up = package.split(".")[: len(package.split(".")) - child.level + 1]
                    base = ".".join([*up, base] if base else up)
                names.extend(f"{base}.{alias.name}" for alias in child.names)
            pending.append(child)
    return names


def _project_module(name: str, files: dict[str, Path]) -> str | None:
    """The project module ``name`` refers to: itself, or its longest prefix that is a module."""
    while name and name not in files:
        name = name.rpartition(".")[0]
    return name or None


def import_graph(files: dict[str, Path]) -> tuple[dict[str, set[str]], list[str]]:
    """The edges between project modules, and the forbidden imports of ml/ found on the way."""
    graph: dict[str, set[str]] = {name: set() for name in files}
    forbidden: list[str] = []
    for name, path in files.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for imported in imported_modules(ast.parse(path.read_text(), filename=str(path)), package=package):
            if name.split(".")[0] == "ml" and imported.split(".")[0] in ML_FORBIDDEN:
                forbidden.append(f"{path}: ml imports {imported}")
            target = _project_module(imported, files)
            if target is not None and target != name:
                graph[name].add(target)
    return graph, sorted(set(forbidden))


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, edges = work[-1]
            advanced = False
            for nxt in edges:
                if nxt not in index:
                    index[nxt] = low[nxt] = counter
                    counter += 1
                    stack.append(nxt)
                    on_stack.add(nxt)
                    work.append((nxt, iter(sorted(graph[nxt]))))
                    advanced = True
                    break
                if nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
            if advanced:
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def main() -> int:
    root = Path.cwd()
    files = module_files(root)
    graph, forbidden = import_graph(files)
    problems = forbidden + ["import cycle: " + " <-> ".join(component) for component in sorted(cycles(graph))]
    for problem in problems:
        print(problem)
    print(f"import_cycles: {len(files)} modules, {sum(map(len, graph.values()))} imports, {len(problems)} problems")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
