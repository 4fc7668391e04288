"""The shape issue 12 asks of the client core: a thin façade over small components.

No function in ``client/core/`` is longer than 80 lines and the façade exposes every component as an
attribute. (No class there has more than 25 public methods: ``tests/test_architecture.py``, whose
``SMALL_CLASS_MODULES`` lists ``client/core/*.py``.)
"""

from __future__ import annotations

import ast
from pathlib import Path

CORE = Path(__file__).resolve().parents[3] / "client" / "core"
MAX_FUNCTION_LINES = 80


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
