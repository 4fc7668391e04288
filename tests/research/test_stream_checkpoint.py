"""A streaming run's checkpoint keeps its format: a run stopped by an earlier pocketscan resumes with this.

``OLD_CHECKPOINT`` is the ``OUT/store/checkpoint.json`` that pocketscan wrote for the fixed plan and bank
below before `run_stream` was cut into steps; ``partitions.jsonl`` keeps one JSON line per finished partition.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from research.sources import Plan
from research.stream import AlgoBank, BankContext, StreamConfig, _identity, _open_checkpoint

OLD_CHECKPOINT = (
    '{"identity": {"algos": ["pdq", "phash"], "bank_sha256": '
    '"83bbb2cbcdac1f9e70e476fe2974a335e1a2d7784cbe5f7c310a269421452701", "files_sha256": '
    '"3ba195ad4147243c2a02ad9850c8f41812d86d3facdd280db978a15fa21f5bff", "partition_size": 3, "plan": '
    '{"decode": "fast", "edit_corpus_images": 1, "edit_seed": 4, "edits": 3, "files": 2, '
    '"generate_families": ["chat", "meme"], "generate_scale": 0.35, "generate_seed": 9, "generated": 5}, '
    '"seed": 5, "snapshot": true, "total": 10, "version": 1}}'
)
RECORD = {"images": 3, "errors": [[1, "bad file"]], "seconds": {"load": 0.1, "hash": 0.2, "match": 0.01,
                                                                "cpu": 0.3}, "max_rss_kb": 90000}


def _run(out: Path, *, seed: int = 5, restart: bool = False) -> tuple[StreamConfig, dict[str, object]]:
    plan = Plan(files=("a/x.jpg", "b/y.png"), file_families=("a", "b"), generate=5, generate_seed=9,
                generate_scale=0.35, generate_families=("chat", "meme"), edits=3, edit_seed=4,
                edit_corpus=("c/1.jpg",), families=("a", "b", "chat", "meme", "edit"))
    ctx = BankContext(plan, {
        "pdq": AlgoBank(256, 31, 50, True, np.arange(64, dtype=np.uint8).reshape(2, 32), None, None, 0.0),
        "phash": AlgoBank(64, 10, 0, False, np.arange(16, dtype=np.uint8).reshape(2, 8), None, None, 0.0),
    })
    cfg = StreamConfig(bank="bank", out=str(out), plan=plan, algos=["pdq", "phash"], partition_size=3,
                       restart=restart)
    return cfg, _identity(cfg, ctx, seed)


def test_a_new_run_writes_the_checkpoint_byte_for_byte_as_before(tmp_path: Path) -> None:
    cfg, identity = _run(tmp_path)
    ckpt = _open_checkpoint(cfg, tmp_path / "store", identity)
    assert ckpt == {"identity": identity, "partitions": {}}
    assert (tmp_path / "store" / "checkpoint.json").read_text(encoding="utf-8") == OLD_CHECKPOINT
    assert not (tmp_path / "store" / "partitions.jsonl").exists()


def test_a_checkpoint_of_the_earlier_code_resumes(tmp_path: Path) -> None:
    store = tmp_path / "store"
    store.mkdir()
    (store / "checkpoint.json").write_text(OLD_CHECKPOINT, encoding="utf-8")
    log = store / "partitions.jsonl"
    log.write_text(json.dumps({"partition": 0, **RECORD}) + "\n" + '{"partition": 2, "ima', encoding="utf-8")
    cfg, identity = _run(tmp_path)
    ckpt = _open_checkpoint(cfg, store, identity)
    assert ckpt["partitions"] == {"0": RECORD}  # the torn line's partition runs again
    assert log.read_text(encoding="utf-8").endswith('"ima\n')  # the next record starts on its own line


def test_a_checkpoint_of_another_run_is_refused_unless_restarted(tmp_path: Path) -> None:
    store = tmp_path / "store"
    store.mkdir()
    (store / "checkpoint.json").write_text(OLD_CHECKPOINT, encoding="utf-8")
    cfg, identity = _run(tmp_path, seed=6)
    with pytest.raises(ValueError, match="checkpoint of a different run"):
        _open_checkpoint(cfg, store, identity)
    cfg, identity = _run(tmp_path, seed=6, restart=True)
    assert _open_checkpoint(cfg, store, identity)["partitions"] == {}
    assert json.loads((store / "checkpoint.json").read_text(encoding="utf-8"))["identity"]["seed"] == 6


def test_partitions_matched_against_other_snapshot_parameters_are_not_resumed(tmp_path: Path) -> None:
    """A code change that recalibrates the snapshot must not mix two snapshots' verdicts in one run."""
    cfg, plain = _run(tmp_path)
    params = {"entries": 2146, "tables": 192, "bits": 24, "min_votes": 6}

    def with_params(**change: int) -> dict[str, object]:
        ctx = BankContext(cfg.plan, {"pdq": AlgoBank(256, 31, 50, True, np.zeros((2, 32), np.uint8), b"snap",
                                                      b"k" * 32, 0.0, {**params, **change})})
        return _identity(cfg, ctx, 5)

    first = with_params()
    assert first["snapshot_params"] == {"pdq": params} and "snapshot_params" not in plain
    store = tmp_path / "store"
    _open_checkpoint(cfg, store, first)
    assert _open_checkpoint(cfg, store, with_params())["identity"] == first  # same snapshot: resumes
    with pytest.raises(ValueError, match="snapshot parameters"):
        _open_checkpoint(cfg, store, with_params(tables=145, min_votes=55))
