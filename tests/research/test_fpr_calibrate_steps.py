"""The small compute steps of `research fpr` and `research calibrate`, each on a fixed input.

The expected values were produced by the code these steps replaced (one union-find in each evaluation): the
near-duplicate labels, calibrate's halves and its calibration/test split must not move for the same input.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from research.evals.calibrate import snapshot_halves, split_folder, split_keys
from research.evals.common import near_duplicate_clusters
from research.evals.fpr_figures import cumulative_counts, threshold_rates

LABELS_AT_31 = [10, 5, 8, 10, 9, 5, 6, 11, 8, 9, 10, 11, 14, 14, 14]


def fixed_hashes() -> np.ndarray:
    """15 PDQ-sized hashes: 12 noisy copies (6 flipped bits) of 6 pictures, and a chain of 3."""
    rng = np.random.default_rng(7)
    base = rng.integers(0, 256, (6, 32), dtype=np.uint8)
    rows = []
    for i in [3, 0, 5, 3, 1, 0, 4, 2, 5, 1, 3, 2]:
        bits = np.unpackbits(base[i].copy())
        bits[rng.choice(256, 6, replace=False)] ^= 1
        rows.append(np.packbits(bits))
    chain = np.unpackbits(rng.integers(0, 256, 32, dtype=np.uint8))
    for k in (40, 20, 0):  # a chain: 0-20 and 20-40 within 31 bits, 0-40 not
        bits = chain.copy()
        bits[:k] ^= 1
        rows.append(np.packbits(bits))
    return np.array(rows, dtype=np.uint8)


def test_cluster_labels_are_the_roots_calibrate_always_used() -> None:
    labels = near_duplicate_clusters(fixed_hashes(), 31)
    assert labels.tolist() == LABELS_AT_31
    assert len(np.unique(labels)) == 7  # fpr's benign_near_duplicate_clusters for this input
    assert len(np.unique(near_duplicate_clusters(fixed_hashes(), 8))) == 15
    assert near_duplicate_clusters(np.zeros((0, 32), np.uint8), 31).tolist() == []


def test_cluster_labels_do_not_depend_on_the_block_size() -> None:
    for block in (1, 2, 5, 256):
        assert near_duplicate_clusters(fixed_hashes(), 31, block=block).tolist() == LABELS_AT_31


def test_a_chain_of_near_duplicates_is_one_cluster() -> None:
    labels = near_duplicate_clusters(fixed_hashes(), 31)
    assert len(set(labels[-3:].tolist())) == 1  # ends 40 bits apart, joined through the middle


def test_snapshot_halves_take_every_other_cluster_whole() -> None:
    in_a = snapshot_halves(near_duplicate_clusters(fixed_hashes(), 31))
    assert np.flatnonzero(in_a).tolist() == [0, 1, 2, 3, 5, 8, 10, 12, 13, 14]  # clusters 5, 8, 10, 14


# Calibration halves of the fixed folder (keys are paths relative to it: ``sha256(f"{seed}/{key}")``).
EXPECTED_SEED_3 = ["f01.jpg", "f04.jpg", "f05.jpg", "f07.jpg", "f09.jpg", "f11.jpg"]
EXPECTED_SEED_4 = ["f06.jpg", "f07.jpg", "f11.jpg", "f12.jpg", "f13.jpg", "f14.jpg"]


def _split_names(folder: Path | str, seed: int) -> list[str]:
    from research.corpus import list_images

    entries = list_images(str(folder))
    cal, test = split_folder(str(folder), 0.5, seed, clusters=split_keys(entries, fixed_hashes()))
    assert len(cal) + len(test) == 15
    return [e.name for e in cal]


def test_the_calibration_split_depends_on_names_not_on_where_the_folder_is(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from research.corpus import list_images

    for where in ("a/splitdir", "b/deeper/splitdir"):
        (tmp_path / where).mkdir(parents=True)
        for i in range(15):
            (tmp_path / where / f"f{i:02d}.jpg").write_bytes(b"%d" % i)  # split_folder only lists names
    monkeypatch.chdir(tmp_path / "a")
    entries = list_images("splitdir")
    keys = split_keys(entries, fixed_hashes())
    firsts = [0, 1, 2, 0, 4, 1, 6, 7, 2, 4, 0, 7, 12, 12, 12]  # first row of each row's cluster
    assert [keys[e.path] for e in entries] == [entries[i].path for i in firsts]
    expected = {3: EXPECTED_SEED_3, 4: EXPECTED_SEED_4}
    for seed, names in expected.items():
        assert _split_names("splitdir", seed) == names  # relative spelling
        assert _split_names(tmp_path / "a" / "splitdir", seed) == names  # absolute spelling
        assert _split_names(tmp_path / "b" / "deeper" / "splitdir", seed) == names  # another place


def test_threshold_rates_count_queries_and_pairs_within_each_threshold() -> None:
    bits = 256
    d_plain = np.array([0, 10, 31, 40, 200])
    d_dih = np.array([0, 8, 20, 31, 200])
    pair_hist = np.zeros(bits + 1, np.int64)
    pair_hist[[0, 31, 100]] = [1, 2, 7]
    rates = threshold_rates(
        bits, 31, cumulative_counts(d_plain, bits), cumulative_counts(d_dih, bits), np.cumsum(pair_hist),
        queries=5, bank_size=2,
    )
    at = {t["threshold"]: t for t in rates.per_threshold}
    assert [t["threshold"] for t in rates.per_threshold] == [0, 8, 16, 24, 31, 40, 48, 64]
    assert (at[31]["per_query"]["k"], at[31]["per_query_dihedral"]["k"], at[31]["per_pair"]["k"]) == (3, 4, 3)
    assert at[31]["per_pair"]["n"] == 10 and at[8]["per_query_dihedral"]["k"] == 2
    assert rates.rows[4][0] == "31 (default)" and len(rates.rows) == 8
    assert cumulative_counts(np.array([257, 300]), bits)[-1] == 2  # beyond the width counts last
