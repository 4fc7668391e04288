"""docs/decisions.md uses one numbering: ``## 1. ...``, ``## 2. ...`` in order (issue 12)."""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_decisions_are_numbered_once_in_order() -> None:
    headings = [line for line in (REPO / "docs" / "decisions.md").read_text().splitlines()
                if line.startswith("## ")]
    numbers = [re.match(r"## (\d+)\. \S", h) for h in headings]
    unnumbered = [h for h, m in zip(headings, numbers, strict=True) if m is None]
    assert unnumbered == [], "number new entries as the next '## N. Title (issue M)'"
    assert [int(m.group(1)) for m in numbers if m] == list(range(1, len(headings) + 1))


def test_no_reference_to_an_old_decision_id() -> None:
    old = re.compile(r"\b(D\d+|D-[a-z]+-\d+|Crypto-\d+)\b")
    found = [f"{p.relative_to(REPO)}: {m.group(0)}" for p in sorted((REPO / "docs").glob("*.md"))
             for m in old.finditer(p.read_text())]
    assert found == []
