"""The benign-confuser generator is deterministic and covers every family."""

from __future__ import annotations

import hashlib
from pathlib import Path

from research.generate import FAMILIES, generate_corpus, generate_image


def _digests(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*.png"))
    }


def test_same_seed_same_bytes_whatever_the_workers(tmp_path: Path) -> None:
    list(generate_corpus(tmp_path / "a", 7, seed=3, workers=1))
    list(generate_corpus(tmp_path / "b", 7, seed=3, workers=2))
    a, b = _digests(tmp_path / "a"), _digests(tmp_path / "b")
    assert a == b and len(a) == 7
    assert {k.split("/")[0] for k in a} == set(FAMILIES)


def test_different_seeds_differ() -> None:
    a = generate_image(0, "chat", 1).tobytes()
    b = generate_image(0, "chat", 2).tobytes()
    assert a != b
