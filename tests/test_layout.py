"""The package's shape: stages as packages, imports that flow one way, functions short and typed.

A newcomer finds where a change goes from the folder names; these tests keep it that way.
Imports needed only for type checking (under ``if TYPE_CHECKING:``) do not count as edges.
"""

from __future__ import annotations

import ast
from pathlib import Path

from conftest import ROOT

PKG = ROOT / "src" / "segkit"
MAX_TOP_LEVEL_MODULES = 8
MAX_FUNCTION_LINES = 60


def _module(path: Path) -> str:
    parts = list(path.relative_to(PKG.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _type_checking_nodes(tree: ast.AST) -> set[int]:
    skip: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skip |= {id(n) for stmt in node.body for n in ast.walk(stmt)}
    return skip


def _imports(path: Path, modules: set[str]) -> set[str]:
    """segkit modules ``path`` imports anywhere (module level or inside functions)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    skip = _type_checking_nodes(tree)
    found: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name in modules}
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("segkit"):
            for a in node.names:
                sub = f"{node.module}.{a.name}"
                found.add(sub if sub in modules else node.module)
    return found - {_module(path)}


def _graph() -> dict[str, set[str]]:
    files = {_module(p): p for p in PKG.rglob("*.py")}
    modules = set(files)
    # importing a.b.c runs a/__init__ and a/b/__init__ first: those are edges too
    return {m: {t for t in _imports(p, modules) if t != "segkit"} for m, p in files.items()}


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(m: str) -> list[str] | None:
        state[m] = 1
        stack.append(m)
        for t in sorted(graph.get(m, ())):
            if state.get(t) == 1:
                return stack[stack.index(t):] + [t]
            if t not in state and (found := visit(t)):
                return found
        stack.pop()
        state[m] = 2
        return None

    for m in sorted(graph):
        if m not in state and (found := visit(m)):
            return found
    return None


def test_no_import_circle():
    assert _cycle(_graph()) is None


def test_the_cycle_finder_sees_a_circle():
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) is None


def test_few_modules_at_the_top_level_and_every_package_says_what_it_owns():
    top = [p.name for p in PKG.glob("*.py")]
    assert len(top) <= MAX_TOP_LEVEL_MODULES, top
    for init in PKG.rglob("__init__.py"):
        doc = ast.get_docstring(ast.parse(init.read_text(encoding="utf-8")))
        assert doc, f"{init.relative_to(ROOT)} has no docstring saying what the package owns"


def _functions():
    for path in sorted(PKG.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                yield path.relative_to(ROOT), node


def test_functions_are_short():
    long = [f"{p}:{f.lineno} {f.name} ({f.end_lineno - f.lineno + 1} lines)" for p, f in _functions()
            if f.end_lineno - f.lineno + 1 > MAX_FUNCTION_LINES]
    assert long == []


def test_every_parameter_is_typed():
    untyped = [f"{p}:{f.lineno} {f.name}({a.arg})" for p, f in _functions()
               for a in (*f.args.posonlyargs, *f.args.args, *f.args.kwonlyargs,
                         *filter(None, (f.args.vararg, f.args.kwarg)))
               if a.annotation is None and a.arg not in ("self", "cls")]
    assert untyped == []
