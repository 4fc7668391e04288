"""The streaming report's counting step on a hand-made store: what counts, what is gated, what is a match."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from research.sources import Plan
from research.stream import AlgoBank, Store
from research.stream_report import _tally


def test_the_tally_counts_scanned_gated_and_false_matches_per_family_and_source(tmp_path: Path) -> None:
    plan = Plan(generate=4, generate_families=("chat", "meme"), edits=2, edit_corpus=("c.jpg",),
                families=("chat", "meme", "edit"))
    bank = AlgoBank(256, 31, 50, True, np.zeros((2, 32), np.uint8), None, None, 0.0)
    store = Store(tmp_path, plan.total, 1, {"pdq": bank})
    store.open(create=True)
    columns = {
        "family": [0, 1, 0, 1, 2, 2],
        "pdq.quality": [90, 40, 80, 70, 100, 60],  # the second is below the gate
        "pdq.d_plain": [40, 5, 31, 100, 20, 0],
        "pdq.d_dih": [30, 5, 31, 90, 12, 0],
        "pdq.votes": [0, 9, 1, 4, 2, 0],
        "pdq.votes_dih": [1, 9, 2, 4, 3, 0],
    }
    for name, values in columns.items():
        store.column(name)[:] = values
    counted = np.array([True, True, True, True, True, False])  # the last: a byte duplicate
    t = _tally(plan, store, "pdq", bank, counted, min_votes=3, tables=5)
    store.close()
    assert int(t.hist_dih.sum()) == 4 and int(t.hist_dih[30]) == 1  # scanned: counted and quality >= 50
    assert t.fam_counts.tolist() == [
        [2, 2, 2, 0, 0],  # chat: images, scanned, d_dih <= 31, snapshot >= 3 votes, gated
        [2, 1, 0, 1, 1],  # meme
        [1, 1, 1, 1, 0],  # edit
    ]
    assert (t.snap_plain, t.snap_dih, t.fm_total) == (1, 2, 4)
    assert sorted(t.fm) == [(12, 4, 3), (30, 0, 1), (31, 2, 2), (90, 3, 4)]
    sources = {k: v.tolist() for k, v in t.src_counts.items()}
    assert sources == {"generated": [4, 3, 2, 1], "edits": [1, 1, 1, 1]}  # images, scanned, d, snapshot
    assert t.votes_hist.tolist() == [0, 1, 1, 1, 1, 0]
    assert t.bucket_counts.tolist() == [[1, 0, 0], [0, 0, 0], [2, 2, 1], [2, 2, 2]]
