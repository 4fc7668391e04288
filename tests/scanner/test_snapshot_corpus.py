"""Done-when check on real images: a default snapshot of ../shared/corpus against edited and unrelated images.

Prints the table quoted in the README (``pocketscan bench snapshot --corpus`` prints the same).
"""

from __future__ import annotations

from pathlib import Path

import pytest

CORPUS = Path(__file__).resolve().parents[3] / "shared" / "corpus"


@pytest.mark.slow
@pytest.mark.skipif(not CORPUS.is_dir(), reason="../shared/corpus is not available")
def test_default_snapshot_on_the_corpus() -> None:
    from research.bench_snapshot import _print_corpus, evaluate_corpus

    r = evaluate_corpus(CORPUS, generated=100)
    print()
    _print_corpus(r)
    edits = r["edits"]
    # JPEG q70: every bank image that PDQ itself still matches (<= 31 bits) is matched by the snapshot. One
    # corpus image (wood_l) moves 32 bits under q70, beyond PDQ's own threshold: see the README.
    assert edits["jpeg70"]["snapshot_recall"] >= edits["jpeg70"]["exact_pdq_recall"] - 0.01
    # Resize and crops: the snapshot's recall (mean over builds) within 5 points of exact PDQ at <= 31 bits.
    for name in ("resize0.5", "crop1%", "crop2%"):
        assert abs(edits[name]["gap_points"]) <= 5.0, (name, edits[name])
    # Unrelated images: no snapshot match where exact PDQ finds none.
    for label in ("unrelated_samples", "unrelated_generated"):
        assert r[label]["snapshot_matches"] <= r[label]["exact_pdq_matches"] + 1
