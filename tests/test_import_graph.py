"""The packages' module-level import graph has no cycles but the self-registrations (issue 19).

Two modules register themselves into a registry of the module that imports them at its end
(``distill.library`` -> ``spectro_library``; ``distill.data`` -> ``audio``, ``csv_loader``); every other cycle is a
design error. Imports inside functions and under ``if TYPE_CHECKING:`` do not count: they run
after both modules exist (or never).
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("tinyship", "distill", "export", "devices")
# (registry module, module that registers into it): the registry imports it at its end
SELF_REGISTRATION = {
    ("distill.library", "distill.spectro_library"),
    ("distill.data", "distill.audio"),
    ("distill.data", "distill.csv_loader"),
}


def modules(root: Path, packages=PACKAGES) -> dict[str, Path]:
    out = {}
    for pkg in packages:
        for f in (root / pkg).rglob("*.py"):
            parts = f.relative_to(root).with_suffix("").parts
            out[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = f
    return out


def _targets(mod: str, mods: dict[str, Path], node: ast.stmt) -> list[str]:
    if isinstance(node, ast.Import):
        return [a.name for a in node.names]
    base = mod.split(".")
    if node.level:
        base = base if mods[mod].name == "__init__.py" else base[:-1]
        base = base[: len(base) - (node.level - 1)]
    prefix = ".".join(base + [node.module] if node.module else base) if node.level else node.module
    return [f"{prefix}.{a.name}" if f"{prefix}.{a.name}" in mods else prefix for a in node.names]


def import_graph(root: Path, packages=PACKAGES) -> dict[str, set[str]]:
    mods = modules(root, packages)
    graph: dict[str, set[str]] = {m: set() for m in mods}
    for m, f in mods.items():
        for node in ast.parse(f.read_text()).body:
            stmts = [node]
            if isinstance(node, ast.If):  # `if TYPE_CHECKING:` imports never run
                guard = ast.unparse(node.test)
                stmts = [] if "TYPE_CHECKING" in guard else node.body + node.orelse
            for s in stmts:
                if isinstance(s, (ast.Import, ast.ImportFrom)):
                    graph[m] |= {t for t in _targets(m, mods, s) if t in mods and t != m}
    return graph


def cycles(graph: dict[str, set[str]]) -> set[frozenset[str]]:
    """Strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: set[frozenset[str]] = set()
    for start in graph:
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on.add(start)
        while work:
            v, it = work[-1]
            w = next(it, None)
            if w is not None:
                if w not in index:
                    index[w] = low[w] = len(index)
                    stack.append(w)
                    on.add(w)
                    work.append((w, iter(sorted(graph[w]))))
                elif w in on:
                    low[v] = min(low[v], index[w])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[v])
            if low[v] == index[v]:
                comp = set()
                while True:
                    w = stack.pop()
                    on.discard(w)
                    comp.add(w)
                    if w == v:
                        break
                if len(comp) > 1:
                    out.add(frozenset(comp))
    return out


def test_no_import_cycles_but_self_registration():
    graph = import_graph(ROOT)
    for registry, member in SELF_REGISTRATION:
        assert member in graph[registry], f"{registry} no longer imports {member}: update the list"
        graph[registry].discard(member)
    found = cycles(graph)
    assert not found, sorted(sorted(c) for c in found)


def test_a_cycle_is_found(tmp_path):
    pkg = tmp_path / "pkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from . import b\n")
    (pkg / "b.py").write_text("from .c import thing\n")
    (pkg / "c.py").write_text("from typing import TYPE_CHECKING\nimport pkg.a\nthing = 1\n")
    (pkg / "d.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from . import a\n"
    )
    assert cycles(import_graph(tmp_path, ("pkg",))) == {frozenset({"pkg.a", "pkg.b", "pkg.c"})}
