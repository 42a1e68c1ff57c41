"""The three layers hold by the code's own imports, and no room grows past its size (issue 33).

- ``ground`` imports no stage and not the app;
- a stage (``distill``, ``export``, ``devices``) imports ``ground`` and itself, never another stage
  nor the app;
- the app (``tinyship``) may import anything below it;
- no import circle among our modules.

Every import counts: at module level, inside functions (a lazy import still runs), under
``if TYPE_CHECKING:`` (a type is a dependency too), a literal ``importlib.import_module("...")``
and a registry's dotted path string (``"distill.csv_loader:load_csv"``). ``__import__`` is banned:
it hides an arrow from every reader.
"""

from __future__ import annotations

import ast
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
GROUND, APP = "ground", "tinyship"
STAGES = ("distill", "export", "devices")
PACKAGES = (GROUND, *STAGES, APP)
#: where the size rule applies (tests are exempt)
SIZED = (*PACKAGES, "benchmarks")
MAX_MODULE_LINES, MAX_FUNCTION_LINES = 500, 80
_DOTTED = re.compile(r"^([a-z_]+(?:\.[a-z_0-9]+)*)(?::[A-Za-z_]\w*)?$")


@dataclass(frozen=True)
class Arrow:
    source: str  # importing module
    target: str  # imported module
    line: int
    string: bool  # a dotted path in a string: resolved on use, so it counts for layers, not circles


def modules(root: Path, packages=PACKAGES) -> dict[str, Path]:
    out = {}
    for pkg in packages:
        for f in (root / pkg).rglob("*.py"):
            parts = f.relative_to(root).with_suffix("").parts
            out[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = f
    return out


def _targets(mod: str, mods: dict[str, Path], node: ast.Import | ast.ImportFrom) -> list[str]:
    if isinstance(node, ast.Import):
        return [a.name for a in node.names]
    base = mod.split(".")
    if node.level:
        base = base if mods[mod].name == "__init__.py" else base[:-1]
        base = base[: len(base) - (node.level - 1)]
        prefix = ".".join(base + [node.module] if node.module else base)
    else:
        prefix = node.module or ""
    return [f"{prefix}.{a.name}" if f"{prefix}.{a.name}" in mods else prefix for a in node.names]


def _owner(name: str, mods: dict[str, Path]) -> str | None:
    """The longest module of ours that ``name`` names (``distill.data.load`` -> ``distill.data``)."""
    parts = name.split(".")
    for i in range(len(parts), 0, -1):
        if ".".join(parts[:i]) in mods:
            return ".".join(parts[:i])
    return None


class _Visitor(ast.NodeVisitor):
    def __init__(self, mod: str, mods: dict[str, Path]):
        self.mod, self.mods = mod, mods
        self.arrows: list[Arrow] = []
        self.dunder: list[int] = []

    def _add(self, names: list[str], line: int, string: bool) -> None:
        for n in names:
            target = _owner(n, self.mods)
            if target and target != self.mod:
                self.arrows.append(Arrow(self.mod, target, line, string))

    def visit_Import(self, node: ast.Import) -> None:
        self._add(_targets(self.mod, self.mods, node), node.lineno, False)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        self._add(_targets(self.mod, self.mods, node), node.lineno, False)

    def visit_Call(self, node: ast.Call) -> None:
        if isinstance(node.func, ast.Name) and node.func.id == "__import__":
            self.dunder.append(node.lineno)
        self.generic_visit(node)

    def visit_Constant(self, node: ast.Constant) -> None:
        # a dotted path in a string ("distill.csv_loader:load_csv", importlib's argument)
        if isinstance(node.value, str) and (m := _DOTTED.match(node.value)):
            if m.group(1) in self.mods and ("." in m.group(1) or ":" in node.value):
                self._add([m.group(1)], node.lineno, True)


def scan(root: Path, packages=PACKAGES) -> tuple[list[Arrow], list[str]]:
    """Every arrow between our modules, and every ``__import__`` call (as "module:line")."""
    mods = modules(root, packages)
    arrows: list[Arrow] = []
    dunder: list[str] = []
    for m, f in mods.items():
        v = _Visitor(m, mods)
        v.visit(ast.parse(f.read_text(), filename=str(f)))
        arrows += v.arrows
        dunder += [f"{m}:{line}" for line in v.dunder]
    return arrows, dunder


def layer(module: str) -> str:
    top = module.split(".")[0]
    return "ground" if top == GROUND else "app" if top == APP else "stage"


def forbidden(a: Arrow) -> str | None:
    """Why an arrow breaks the layers, with the fix; None when it is allowed."""
    src, dst = a.source.split(".")[0], a.target.split(".")[0]
    if src == dst or layer(a.source) == "app":
        return None
    if layer(a.source) == "ground":
        return (
            f"ground module {a.source} (line {a.line}) imports {a.target}: the ground imports no "
            "stage and not the app. Move what it needs down into ground/, or have the caller pass it in."
        )
    if layer(a.target) == "app":
        return (
            f"stage module {a.source} (line {a.line}) imports the app's {a.target}: a stage imports "
            "only ground/ and itself. Move the shared piece into ground/."
        )
    if layer(a.target) == "stage":
        return (
            f"stage module {a.source} (line {a.line}) imports another stage's {a.target}: stages talk "
            "only through the run directory. Read the file that stage wrote, or move a shared "
            "helper into ground/."
        )
    return None


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
                    work.append((w, iter(sorted(graph.get(w, ())))))
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


def problems(root: Path, packages=PACKAGES) -> list[str]:
    """Every layer break, ``__import__`` and import circle under ``root``, each with its fix."""
    arrows, dunder = scan(root, packages)
    out = [msg for a in arrows if (msg := forbidden(a))]
    out += [f"{d}: __import__ hides an import; write an import statement instead" for d in dunder]
    graph: dict[str, set[str]] = {m: set() for m in modules(root, packages)}
    for a in arrows:
        if not a.string:
            graph[a.source].add(a.target)
    for c in sorted(sorted(c) for c in cycles(graph)):
        out.append(
            f"import circle {' <-> '.join(c)}: register plug-ins by dotted path in a registry "
            "module, or move the shared types into a module both import"
        )
    return out


# ---------------------------------------------------------------- the rules on our tree


def test_the_layers_hold_and_no_circle():
    found = problems(ROOT)
    assert not found, "\n".join(found)


def test_every_layer_is_a_folder_with_modules():
    mods = modules(ROOT)
    for pkg in PACKAGES:
        assert any(m.startswith(pkg + ".") for m in mods), f"{pkg}/ has no modules"


def _sized_files(root: Path) -> list[Path]:
    return [f for pkg in SIZED for f in sorted((root / pkg).rglob("*.py"))]


def oversized(root: Path) -> list[str]:
    out = []
    for f in _sized_files(root):
        src = f.read_text()
        name = f.relative_to(root)
        if (n := len(src.splitlines())) > MAX_MODULE_LINES:
            out.append(f"{name}: {n} lines (at most {MAX_MODULE_LINES}); split it by what it does")
        for node in ast.walk(ast.parse(src)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                n = node.end_lineno - node.lineno + 1
                if n > MAX_FUNCTION_LINES:
                    out.append(
                        f"{name}:{node.lineno} {node.name}: {n} lines (at most "
                        f"{MAX_FUNCTION_LINES}); split it into named steps"
                    )
    return out


def test_no_room_over_its_size():
    found = oversized(ROOT)
    assert not found, "\n".join(found)


# ---------------------------------------------------------------- the rules catch what they must


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """A copy of our packages' sources, to plant bad imports in."""
    for pkg in PACKAGES:
        shutil.copytree(ROOT / pkg, tmp_path / pkg, ignore=shutil.ignore_patterns("__pycache__"))
    return tmp_path


def _plant(path: Path, line: str) -> None:
    path.write_text(path.read_text() + "\n" + line + "\n")


@pytest.mark.parametrize(
    "where, line, expect",
    [
        ("export/pipeline.py", "import distill", "another stage's distill"),
        (
            "devices/catalog.py",
            "from export.registry import formats",
            "another stage's export.registry",
        ),
        (
            "distill/losses.py",
            "def f():\n    from devices import catalog",
            "another stage's devices",
        ),
        ("ground/rundir.py", "from distill import losses", "ground module ground.rundir"),
        ("ground/errors.py", "def f():\n    import tinyship.search", "ground module ground.errors"),
        ("export/parity.py", "from tinyship import summary", "imports the app's tinyship"),
        (
            "ground/probs.py",
            'PLUGIN = "devices.catalog:load_catalog"',
            "ground module ground.probs",
        ),
        (
            "distill/losses.py",
            "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from export import parity",
            "another stage's export",
        ),
    ],
)
def test_a_planted_arrow_is_caught(tree: Path, where: str, line: str, expect: str):
    before = set(problems(tree))
    _plant(tree / where, line)
    found = set(problems(tree)) - before
    assert any(expect in p for p in found), found


def test_a_planted_circle_and_dunder_import_are_caught(tree: Path):
    before = set(problems(tree))
    _plant(tree / "ground/probs.py", "def f():\n    from ground import provenance")
    _plant(tree / "ground/provenance.py", "from ground import probs")
    _plant(tree / "export/parity.py", "x = __import__('json')")
    found = set(problems(tree)) - before
    assert any("import circle ground.probs <-> ground.provenance" in p for p in found), found
    assert any("export.parity:" in p and "__import__" in p for p in found), found


def test_an_oversized_module_and_function_are_caught(tree: Path):
    before = set(oversized(tree))
    body = "\n".join(f"    x{i} = {i}" for i in range(MAX_FUNCTION_LINES))
    _plant(tree / "export/parity.py", f"def too_long():\n{body}")
    _plant(tree / "ground/probs.py", "\n" * MAX_MODULE_LINES)
    found = set(oversized(tree)) - before
    assert any("export/parity.py" in p and "too_long" in p for p in found), found
    assert any(p.startswith("ground/probs.py: ") for p in found), found
