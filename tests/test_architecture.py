"""The package's shape (docs/architecture.md): no import cycle, no oversized module, no hidden
module-level registry. The layers themselves are import-linter's contract in `make lint`."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

from tests.clitools import ROOT

PACKAGE = ROOT / "runtime"
MAX_LINES = 500
# Methods that change a container in place.
MUTATORS = {
    "append",
    "add",
    "update",
    "setdefault",
    "pop",
    "popitem",
    "remove",
    "discard",
    "clear",
    "extend",
    "insert",
}


def modules() -> Iterator[tuple[str, Path]]:
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(ROOT).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        yield name, path


def _type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def imports_of(name: str, path: Path, known: set[str]) -> set[str]:
    """The runtime modules `name` imports at run time, lazy imports inside functions included
    (they hide a cycle, they do not remove it); imports for type checkers only are left out."""
    found: set[str] = set()
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]

    def visit(node: ast.AST) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and _type_checking(child):
                continue
            if isinstance(child, ast.Import):
                found.update(a.name for a in child.names if a.name in known)
            elif isinstance(child, ast.ImportFrom):
                base = child.module or ""
                if child.level:
                    anchor = package.split(".")[: len(package.split(".")) - child.level + 1]
                    base = ".".join([*anchor, base] if base else anchor)
                for alias in child.names:
                    target = f"{base}.{alias.name}"
                    found.add(target if target in known else base)
            visit(child)

    visit(ast.parse(path.read_text("utf-8")))
    return {m for m in found if m in known and m != name}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def connect(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in graph[node]:
            if target not in index:
                connect(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
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

    for node in graph:
        if node not in index:
            connect(node)
    return found


def test_no_import_cycle() -> None:
    found = dict(modules())
    known = set(found)
    graph = {name: imports_of(name, path, known) for name, path in found.items()}
    # The root package only carries __version__; importing it from anywhere is not a cycle.
    graph = {n: t - {"runtime"} for n, t in graph.items()}
    assert graph["runtime.host.serve"], "the import graph came out empty"
    assert cycles(graph) == []


def test_the_cycle_finder_finds_cycles() -> None:
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_no_module_over_500_lines() -> None:
    sizes = {name: len(path.read_text("utf-8").splitlines()) for name, path in modules()}
    assert {n: s for n, s in sizes.items() if s > MAX_LINES} == {}


def mutated_globals(tree: ast.Module) -> set[str]:
    """Module-level names bound to a container that some code of the module changes in place."""
    containers = {
        target.id
        for node in tree.body
        if isinstance(node, ast.Assign | ast.AnnAssign)
        and node.value is not None
        and (
            isinstance(node.value, ast.Dict | ast.List | ast.Set)
            or (
                isinstance(node.value, ast.Call)
                and getattr(node.value.func, "attr", getattr(node.value.func, "id", ""))
                in {
                    "dict",
                    "list",
                    "set",
                    "defaultdict",
                    "WeakKeyDictionary",
                    "WeakValueDictionary",
                }
            )
        )
        for target in (node.targets if isinstance(node, ast.Assign) else [node.target])
        if isinstance(target, ast.Name)
    }
    changed: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Subscript) and isinstance(node.ctx, ast.Store | ast.Del):
            if isinstance(node.value, ast.Name):
                changed.add(node.value.id)
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr in MUTATORS
            and isinstance(node.func.value, ast.Name)
        ):
            changed.add(node.func.value.id)
        elif isinstance(node, ast.Global):
            changed.update(node.names)
    return containers & changed


def test_no_module_level_mutable_registry() -> None:
    found = {
        name: sorted(names)
        for name, path in modules()
        if (names := mutated_globals(ast.parse(path.read_text("utf-8"))))
    }
    assert found == {}


def test_the_registry_check_sees_one() -> None:
    source = "_BY_BUS = WeakKeyDictionary()\nHOSTS = {}\n\ndef add(k, v):\n    _BY_BUS[k] = v\n"
    assert mutated_globals(ast.parse(source)) == {"_BY_BUS"}
