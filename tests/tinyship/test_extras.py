"""Every extra a 'pip install tinyship[EXTRA]' message names exists in pyproject.toml."""

from __future__ import annotations

import ast
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def _extras_named_in_code() -> set[tuple[str, str]]:
    """(file, extra) for each require(module, extra, ...) / MissingDependencyError(...) call,
    resolving module-level string constants such as EXTRA = "coreml"."""
    found = set()
    for pkg in ("distill", "export", "devices", "tinyship"):
        for path in (REPO / pkg).rglob("*.py"):
            tree = ast.parse(path.read_text())
            consts = {
                t.id: n.value.value
                for n in tree.body
                if isinstance(n, ast.Assign) and isinstance(n.value, ast.Constant)
                for t in n.targets
                if isinstance(t, ast.Name) and isinstance(n.value.value, str)
            }
            for node in ast.walk(tree):
                if not isinstance(node, ast.Call) or len(node.args) < 2:
                    continue
                name = getattr(node.func, "attr", getattr(node.func, "id", ""))
                if name not in ("require", "MissingDependencyError"):
                    continue
                arg = node.args[1]
                if isinstance(arg, ast.Constant):
                    found.add((path.name, arg.value))
                elif isinstance(arg, ast.Name) and arg.id in consts:
                    found.add((path.name, consts[arg.id]))
    return found


def test_every_named_extra_exists():
    extras = tomllib.loads((REPO / "pyproject.toml").read_text())["project"][
        "optional-dependencies"
    ]
    named = _extras_named_in_code()
    assert {e for _, e in named} >= {"tflite", "coreml"}  # the scan does find them
    missing = sorted((f, e) for f, e in named if e not in extras)
    assert not missing, f"extras named in code but not in pyproject: {missing}"
