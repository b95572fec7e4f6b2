"""The import direction of the packages, and no import cycles between modules.

Allowed: ``keycam`` <- ``optics`` <- ``sim`` <- ``keynet``, and ``optics`` <- ``fabrication``
(``sim`` may use ``fabrication``; ``fabrication`` never uses ``sim`` or ``keynet``). Every
``import`` statement counts, including those inside functions.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PACKAGES = ("keycam", "optics", "sim", "fabrication", "keynet")
ALLOWED = {
    "keycam": set(),
    "optics": {"keycam"},
    "fabrication": {"keycam", "optics"},
    "sim": {"keycam", "optics", "fabrication"},
    "keynet": {"keycam", "optics", "sim"},
}


def module_name(root: Path, path: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imported_modules(path: Path, module: str, known: set[str]) -> set[str]:
    """Project modules ``path`` imports (``from a.b import c`` counts ``a.b.c`` if a module)."""
    is_pkg = path.name == "__init__.py"
    base = module.split(".") if is_pkg else module.split(".")[:-1]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                head = base[: len(base) - node.level + 1]
                target = ".".join(head + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            # ``from pkg import submodule`` depends on the submodule; the package's __init__
            # runs as a side effect of every import below it and is not counted.
            subs = {f"{target}.{a.name}" for a in node.names} & known
            found.update(subs if len(subs) == len(node.names) else {target, *subs})
    return {m for m in found if m in known}


def import_graph(root: Path) -> dict[str, set[str]]:
    files = {
        module_name(root, p): p
        for pkg in PACKAGES
        if (root / pkg).is_dir()
        for p in (root / pkg).rglob("*.py")
    }
    known = set(files)
    return {m: imported_modules(p, m, known) - {m} for m, p in files.items()}


def direction_violations(graph: dict[str, set[str]]) -> list[str]:
    bad = []
    for mod, deps in sorted(graph.items()):
        top = mod.split(".")[0]
        for dep in sorted(deps):
            other = dep.split(".")[0]
            if other != top and other not in ALLOWED[top]:
                bad.append(f"{mod} imports {dep}")
    return bad


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
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

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_packages_import_only_downward():
    assert direction_violations(import_graph(REPO)) == []


def test_no_import_cycles():
    # A package's __init__ importing its submodules (re-exports) is one-way; a submodule that
    # imported its package back would close a loop and be reported here.
    assert cycles(import_graph(REPO)) == []


def _write(root: Path, rel: str, text: str) -> None:
    p = root / rel
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(text, encoding="utf-8")


@pytest.mark.parametrize(
    ("rel", "text", "needle"),
    [
        ("optics/lens.py", "from sim.camera import Camera\n", "optics.lens imports sim.camera"),
        ("fabrication/x.py", "def f():\n    import sim.camera\n", "fabrication.x imports sim"),
        ("keycam/cli.py", "from optics import lens\n", "keycam.cli imports optics"),
    ],
)
def test_a_reversed_import_is_caught(tmp_path, rel, text, needle):
    for pkg in PACKAGES:
        _write(tmp_path, f"{pkg}/__init__.py", "")
    _write(tmp_path, "sim/camera.py", "")
    _write(tmp_path, "optics/lens.py", "")
    _write(tmp_path, "keycam/cli.py", "")
    _write(tmp_path, rel, text)
    bad = direction_violations(import_graph(tmp_path))
    assert any(b.startswith(needle) for b in bad), bad


def test_a_cycle_is_caught(tmp_path):
    _write(tmp_path, "optics/__init__.py", "")
    _write(tmp_path, "optics/a.py", "from optics import b\n")
    _write(tmp_path, "optics/b.py", "from optics.a import x\n")
    assert cycles(import_graph(tmp_path)) == [["optics.a", "optics.b"]]
