"""The shape issue 12 asks of the client core: a thin façade over small components.

No class in ``client/core/`` has more than 25 public methods (properties count), no function is
longer than 80 lines, and the façade exposes every component as an attribute.
"""

from __future__ import annotations

import ast
from pathlib import Path

CORE = Path(__file__).resolve().parents[3] / "client" / "core"
MAX_PUBLIC_METHODS = 25
MAX_FUNCTION_LINES = 80


def _classes() -> list[tuple[str, ast.ClassDef]]:
    out = []
    for path in sorted(CORE.glob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        out += [(f"{path.name}:{node.name}", node) for node in tree.body if isinstance(node, ast.ClassDef)]
    return out


def _public_methods(cls: ast.ClassDef) -> list[str]:
    return [n.name for n in cls.body if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)
            and not n.name.startswith("_")]


def test_no_class_in_the_core_has_more_than_25_public_methods() -> None:
    counts = {name: len(_public_methods(cls)) for name, cls in _classes()}
    assert "facade.py:Core" in counts and len(counts) >= 9
    assert {name: n for name, n in counts.items() if n > MAX_PUBLIC_METHODS} == {}


def test_no_function_in_the_core_is_longer_than_80_lines() -> None:
    long = []
    for path in sorted(CORE.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                lines = (node.end_lineno or node.lineno) - node.lineno + 1
                if lines > MAX_FUNCTION_LINES:
                    long.append(f"{path.name}:{node.name} ({lines} lines)")
    assert long == []


def test_the_facade_exposes_each_component() -> None:
    from client.core.facade import Core

    components = {"contacts", "messages", "sessions", "sender", "reports", "inbound", "snapshot", "outbox",
                  "media", "net"}
    assert components <= set(Core.__annotations__)
