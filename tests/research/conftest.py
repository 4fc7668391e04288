"""Shared fixtures: small generated corpora (no files from outside the repository)."""

from __future__ import annotations

from pathlib import Path

import pytest

from client.cli.main import main
from research.generate import generate_corpus

REPO = Path(__file__).resolve().parents[2]
SAMPLES = REPO / "samples"


@pytest.fixture(scope="session")
def bank_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """14 generated images (2 per family), seed 1."""
    out = tmp_path_factory.mktemp("bank")
    list(generate_corpus(out, 14, seed=1, workers=1))
    return out


@pytest.fixture(scope="session")
def benign_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """21 generated images (3 per family), seed 2: unrelated to the bank."""
    out = tmp_path_factory.mktemp("benign")
    list(generate_corpus(out, 21, seed=2, workers=1))
    return out


@pytest.fixture(scope="session")
def samples_dir() -> Path:
    return SAMPLES


@pytest.fixture(scope="session")
def fpr_self(tmp_path_factory: pytest.TempPathFactory, bank_dir: Path) -> Path:
    """`pocketscan research fpr` of the generated bank against itself (its report is reused)."""
    out = tmp_path_factory.mktemp("fpr-self")
    code = main(["research", "fpr", "--bank", str(bank_dir), "--benign", str(bank_dir), "--out", str(out),
                 "--workers", "2", "--quiet"])
    assert code == 0
    return out
