"""`pocketscan bench hash` runs end to end on tiny inputs (figures are not asserted: no timed tests)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from research.bench_hash import BenchConfig, run_bench

REPO = Path(__file__).resolve().parents[2]


def test_bench_hash_runs_on_tiny_inputs(tmp_path):
    pytest.importorskip("pdqhash")
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for name in ("rocket.jpg", "coffee.jpg"):
        shutil.copy(REPO / "samples" / name, corpus / name)
    cfg = BenchConfig(
        corpus=corpus, pdq_data=tmp_path / "absent", photos=tmp_path / "absent", repeat=1, arrays=2, large=1,
        large_megapixels=2.5, progress=False,
    )
    res = run_bench(cfg)
    assert res.arrays["identical"] == res.arrays["images"] == 2
    assert res.files["files"] == 1 and res.files["ratio"] > 0
    assert res.fidelity["images"] == 3
    assert any("absent" in note for note in res.notes)
