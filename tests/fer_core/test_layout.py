"""The package's architecture, checked from its source: subpackages by concern, no import
cycles, no Prefect in fer_core, modules of one concept (~300 lines), thin flows/."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PACKAGE = REPO / "fer_core"


def module_name(path: Path) -> str:
    parts = path.relative_to(REPO).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported(path: Path) -> set[str]:
    """Every fer_core module that ``path`` imports anywhere: at module level, inside
    functions and under TYPE_CHECKING alike (each is a dependency of the code)."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                up = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join([*up, base] if base else up)
            out.add(base)
            # ``from pkg import mod`` imports the module pkg.mod
            out.update(f"{base}.{a.name}" for a in node.names)
    return {m for m in out if m.split(".")[0] == "fer_core"}


def graph(root: Path = PACKAGE) -> dict[str, set[str]]:
    modules = {module_name(p): p for p in root.rglob("*.py")}
    return {name: {m for m in imported(path) if m in modules and m != name}
            for name, path in modules.items()}


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan), each a cycle."""
    index, low, stack, on, out = {}, {}, [], set(), []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in sorted(edges.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return out


def test_the_cycle_finder_finds_a_planted_cycle(tmp_path):
    """An oracle for the check below: a hand-made package with one cycle (a -> b -> a, one
    import inside a function, one under TYPE_CHECKING) and one clean chain."""
    pkg = tmp_path / "fer_core"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "sub" / "__init__.py").write_text("")
    (pkg / "sub" / "a.py").write_text("def f():\n    from fer_core.sub import b\n")
    (pkg / "sub" / "b.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from .a import f\n")
    (pkg / "c.py").write_text("from fer_core.sub.a import f\n")
    global REPO
    saved, REPO = REPO, tmp_path
    try:
        assert cycles(graph(pkg)) == [["fer_core.sub.a", "fer_core.sub.b"]]
    finally:
        REPO = saved


def test_no_import_cycles():
    found = cycles(graph())
    assert not found, f"import cycles in fer_core: {found}"


LAYERS = (("config", "store", "runtime"), ("prepare", "models"),
          ("datasets", "evaluate", "audit"), ("train", "infer"), ("serve",))


def test_packages_import_only_from_lower_layers():
    """fer_core/__init__.py's layers: a package never imports one of its own layer or above."""
    layer = {pkg: i for i, pkgs in enumerate(LAYERS) for pkg in pkgs}
    assert set(layer) == {p.parent.name for p in PACKAGE.glob("*/__init__.py")}
    wrong = set()
    for module, deps in graph().items():
        a = module.split(".")[1] if module.count(".") else None
        for dep in deps:
            b = dep.split(".")[1] if dep.count(".") else None
            if a and b and a != b and layer[b] >= layer[a]:
                wrong.add(f"{module} -> {dep}")
    assert not wrong, sorted(wrong)


def test_fer_core_is_subpackages_by_concern_each_saying_what_it_may_import():
    top = sorted(p.name for p in PACKAGE.glob("*.py"))
    assert top == ["__init__.py"], f"modules left at fer_core's top level: {top}"
    for init in PACKAGE.glob("*/__init__.py"):
        doc = ast.get_docstring(ast.parse(init.read_text(encoding="utf-8"))) or ""
        assert "May import" in doc, f"{init.relative_to(REPO)}: say what it may import"


def test_fer_core_never_imports_prefect():
    for path in PACKAGE.rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import) else
                     [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            assert not any(n.split(".")[0] == "prefect" for n in names), path


@pytest.mark.parametrize("folder", ["fer_core", "tasks", "flows", "fer_cli"])
def test_modules_hold_one_concept(folder):
    long = {str(p.relative_to(REPO)): n for p in (REPO / folder).rglob("*.py")
            if (n := len(p.read_text(encoding="utf-8").splitlines())) > 320}
    assert not long, f"modules past ~300 lines (split them by concept): {long}"


def test_flows_holds_only_flows():
    for path in (REPO / "flows").glob("*.py"):
        if path.name == "__init__.py":
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        decorated = [n for n in tree.body if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)
                     and any("flow" in ast.unparse(d) for d in n.decorator_list)]
        assert decorated, f"{path.name} defines no flow"
        for node in tree.body:
            assert not (isinstance(node, ast.FunctionDef) and node.name in ("register", "main")), \
                f"{path.name}: a command-line entry point belongs in fer_cli/"
