"""Shape expressions and guards of a ``.pt2``, parsed and judged without evaluating them.

``torch.export.load`` passes every ``expr_str`` to ``sympy.sympify`` (an ``eval``) and
compiles ``guards_code`` into Python that runs on each call. An exported program with a
dynamic batch dimension holds expressions such as ``Symbol('s77', positive=True,
integer=True)`` and no guards. So each string is parsed with :mod:`ast` (no evaluation),
and accepted only if every node is one those expressions use: known names, quoted
symbol names, bounded integers, arithmetic without powers or shifts (``9**9**9`` is a
short string whose value has 370 million digits), comparisons, and bounded length
and depth. Then sympy's work is bounded by the length of the string.
"""

from __future__ import annotations

import ast
import math
import re
from typing import Any

MAX_EXPR_CHARS = 4096
MAX_EXPR_DEPTH = 32
MAX_EXPR_INT = 1 << 63
NAMES = {
    "Symbol", "Integer", "Rational", "Float", "Max", "Min", "Abs", "Mod", "floor", "ceiling",
    "Eq", "Ne", "Lt", "Le", "Gt", "Ge", "And", "Or", "Not", "True", "False", "None", "oo",
    "FloorDiv", "ModularIndexing", "Where", "PythonMod", "CleanDiv", "CeilToInt", "FloorToInt",
    "CeilDiv", "FloatTrueDiv", "IntTrueDiv", "IsNonOverlappingAndDenseIndicator",
    "TruncToFloat", "TruncToInt", "RoundToInt", "RoundDecimal", "ToFloat", "Identity",
    "BitwiseFn_bitwise_and", "BitwiseFn_bitwise_or", "L",
}  # fmt: skip
KEYWORDS = {"positive", "integer", "real", "finite", "nonnegative", "negative", "zero"}
METHODS = {"size", "stride", "storage_offset"}  # a guard reads L['x'].size()[0]
_SYMBOL = re.compile(r"^[a-z]+[0-9]+$")
_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# no quote but ', no '#' (a comment would swallow the rest of torch's generated line), no
# newline or backslash, no '*' pair or shift (checked on the tree below)
_CHARS = re.compile(r"^[A-Za-z0-9_ '\[\]().,<>=!+\-*/%&|~]*$")
_NODES = (
    ast.Expression, ast.Compare, ast.BoolOp, ast.UnaryOp, ast.BinOp, ast.Call, ast.keyword,
    ast.Name, ast.Constant, ast.Subscript, ast.Attribute, ast.Load,
    ast.And, ast.Or, ast.Not, ast.USub, ast.UAdd, ast.Invert,
    ast.Add, ast.Sub, ast.Mult, ast.Div, ast.FloorDiv, ast.Mod, ast.BitAnd, ast.BitOr,
    ast.Eq, ast.NotEq, ast.Lt, ast.LtE, ast.Gt, ast.GtE,
)  # fmt: skip


def expression_problem(text: Any) -> str | None:
    """Why ``text`` is not a plain shape expression or guard, or None when it is one."""
    if not isinstance(text, str):
        return f"a {type(text).__name__} where a string is expected"
    if len(text) > MAX_EXPR_CHARS:
        return f"{len(text)} characters (at most {MAX_EXPR_CHARS})"
    if not _CHARS.match(text):
        bad = next(c for c in text if not _CHARS.match(c))
        return f"the character {bad!r} in {text[:80]!r}"
    try:
        tree = ast.parse(text, mode="eval")
    except (SyntaxError, ValueError, RecursionError, MemoryError) as exc:
        return f"{text[:80]!r} does not parse ({type(exc).__name__})"
    return _node_problem(tree, text)


def _node_problem(tree: ast.AST, text: str) -> str | None:
    stack: list[tuple[ast.AST, int]] = [(tree, 0)]
    while stack:
        node, depth = stack.pop()
        if depth > MAX_EXPR_DEPTH:
            return f"{text[:80]!r} nests deeper than {MAX_EXPR_DEPTH}"
        why = _one_node(node)
        if why:
            return f"{text[:80]!r} has {why}"
        stack.extend((child, depth + 1) for child in ast.iter_child_nodes(node))
    return None


def _one_node(node: ast.AST) -> str | None:
    """What is wrong with this one node (its children are judged on their own)."""
    if not isinstance(node, _NODES):
        return f"the {type(node).__name__} construct (e.g. '**', '<<', a lambda)"
    if isinstance(node, ast.Name) and node.id not in NAMES and not _SYMBOL.match(node.id):
        return f"the name {node.id[:40]!r}"
    if isinstance(node, ast.keyword) and node.arg not in KEYWORDS:
        return f"the keyword {str(node.arg)[:40]!r}"
    if isinstance(node, ast.Attribute) and node.attr not in METHODS:
        return f"the attribute {node.attr[:40]!r}"
    if isinstance(node, ast.Call) and not isinstance(node.func, (ast.Name, ast.Attribute)):
        return "a call of a computed function"
    if isinstance(node, ast.Constant):
        return _constant_problem(node.value)
    return None


def _constant_problem(v: Any) -> str | None:
    if v is None or isinstance(v, bool):
        return None
    if isinstance(v, int):
        return None if abs(v) <= MAX_EXPR_INT else f"the integer {str(v)[:20]}... (over 2**63)"
    if isinstance(v, float):
        return None if math.isfinite(v) else f"the number {v!r}"
    if isinstance(v, str):
        return None if _IDENT.match(v) else f"the string {v[:40]!r} (not a symbol name)"
    return f"the constant {str(v)[:40]!r}"
