"""Streaming `research fpr` on Dask: the same seed gives the same results on 1 and 2 local workers, a stopped
run resumes to the same result, a streamed folder agrees with the in-memory run, and the snapshot's batch
votes equal the device matcher's one-by-one verdicts."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from client.cli.main import main

VOLATILE_SNAPSHOT_KEYS = {"path", "bank", "build_s", "calibration_s", "fingerprint", "size_bytes"}


def _fpr(out: Path, bank: Path, *extra: str) -> dict[str, Any]:
    code = main(["research", "fpr", "--bank", str(bank), "--out", str(out), "--quiet", *extra])
    assert code == 0
    return json.loads((out / "results.json").read_text())


def _figures(res: dict[str, Any]) -> dict[str, Any]:
    """The measured figures of a run, without timings, paths and the snapshot's creation time."""
    data = json.loads(json.dumps(res["data"]))
    data.pop("run", None)
    for algo in data["algos"].values():
        for key in VOLATILE_SNAPSHOT_KEYS:
            algo["snapshot"].pop(key, None)
    return data


GEN = ["--generate", "42", "--generate-scale", "0.35", "--partition-size", "8", "--seed", "5"]


@pytest.fixture(scope="module")
def two_workers(tmp_path_factory: pytest.TempPathFactory, bank_dir: Path) -> dict[str, Any]:
    return _fpr(tmp_path_factory.mktemp("w2"), bank_dir, *GEN, "--workers", "2")


def test_same_seed_same_results_with_one_and_two_workers(
    tmp_path: Path, bank_dir: Path, two_workers: dict[str, Any]
) -> None:
    one = _fpr(tmp_path / "w1", bank_dir, *GEN, "--workers", "1")
    assert one["data"]["run"]["engine"]["workers"] == 1
    assert two_workers["data"]["run"]["engine"]["workers"] == 2
    assert one["data"]["run"]["complete"] and two_workers["data"]["run"]["complete"]
    assert _figures(one) == _figures(two_workers)
    pdq = one["data"]["algos"]["pdq"]
    assert one["data"]["benign_scanned"] == pdq["benign_scanned"] > 0
    assert pdq["benign_scanned"] + pdq["benign_gated_out"] == pdq["benign_images"] <= 42
    assert sum(pdq["nearest_distance_histogram"]) == pdq["benign_scanned"]
    assert (
        sum(pdq["pair_distance_histogram"]) == pdq["pairs"] == pdq["benign_scanned"] * pdq["bank_scannable"]
    )
    assert pdq["snapshot"]["available"]
    assert set(pdq["families"]) <= {"chat", "text", "chart", "flat", "gradient", "document", "meme"}


def test_a_running_scheduler_runs_the_same_tasks(
    tmp_path: Path, bank_dir: Path, two_workers: dict[str, Any]
) -> None:
    import logging

    from distributed import LocalCluster

    with LocalCluster(
        n_workers=1,
        threads_per_worker=1,
        processes=True,
        host="127.0.0.1",
        dashboard_address="127.0.0.1:0",
        silence_logs=logging.ERROR,
    ) as cluster:
        res = _fpr(tmp_path, bank_dir, *GEN, "--scheduler", cluster.scheduler_address)
    assert res["data"]["run"]["engine"]["scheduler"] == cluster.scheduler_address
    assert _figures(res) == _figures(two_workers)


def test_an_unreachable_scheduler_is_one_clear_error(
    tmp_path: Path, bank_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import socket

    with socket.socket() as s:  # a loopback port that nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    code = main(
        [
            "research",
            "fpr",
            "--bank",
            str(bank_dir),
            "--out",
            str(tmp_path),
            "--quiet",
            "--generate",
            "7",
            "--scheduler",
            f"tcp://127.0.0.1:{port}",
            "--connect-timeout",
            "3",
        ]
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "scheduler" in err[0]


def test_store_holds_every_hash_as_columns(tmp_path: Path, bank_dir: Path) -> None:
    res = _fpr(tmp_path, bank_dir, "--generate", "14", "--generate-scale", "0.35", "--workers", "1")
    store = Path(res["data"]["run"]["store"])
    hashes = np.load(store / "pdq.hash.npy", mmap_mode="r")
    dihedral = np.load(store / "pdq.dihedral.npy", mmap_mode="r")
    status = np.load(store / "status.npy")
    assert hashes.shape == (14, 32) and dihedral.shape == (14, 8, 32)
    assert (status == 1).all()
    assert (dihedral[:, 0, :] == hashes).all()  # variant 0 is the image itself
    from research.generate import FAMILIES, generate_image
    from scanner.hashers.pdq import pdq_hash

    fams = list(FAMILIES)
    for i in (0, 5, 13):
        rgb = np.asarray(generate_image(i, fams[i % 7], 1_000_003, 0.35))
        assert bytes(hashes[i]) == pdq_hash(rgb).hash


def test_an_interrupted_run_resumes_to_the_same_result(
    tmp_path: Path, bank_dir: Path, two_workers: dict[str, Any]
) -> None:
    out = tmp_path / "resumed"
    first = _fpr(out, bank_dir, *GEN, "--workers", "2", "--max-partitions", "2")
    run = first["data"]["run"]
    assert not run["complete"] and run["partitions_done"] == 2 and run["partitions_total"] == 6
    assert first["data"]["run"]["images_processed"] == 16
    assert "resumes" in run["stopped"]
    assert "identity" in json.loads((out / "store" / "checkpoint.json").read_text())
    lines = (out / "store" / "partitions.jsonl").read_text().splitlines()
    assert len(lines) == 2 and all(json.loads(line)["images"] == 8 for line in lines)
    with (out / "store" / "partitions.jsonl").open("a") as log:
        log.write('{"partition": 5, "ima')  # a line torn by a crash: partition 5 runs again
    second = _fpr(out, bank_dir, *GEN, "--workers", "2")
    assert second["data"]["run"]["complete"] and second["data"]["run"]["partitions_resumed"] == 2
    assert second["data"]["run"]["images_this_invocation"] == 42 - 16
    assert _figures(second) == _figures(two_workers)
    records = [
        json.loads(line)
        for line in (out / "store" / "partitions.jsonl").read_text().splitlines()[: -0 or None]
        if line.startswith('{"partition"') and line.endswith("}")
    ]
    assert sorted(r["partition"] for r in records) == list(range(6))  # the torn line is on its own


def test_a_checkpoint_of_another_run_is_refused(
    tmp_path: Path, bank_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "o"
    _fpr(out, bank_dir, "--generate", "7", "--generate-scale", "0.35", "--workers", "1")
    capsys.readouterr()
    code = main(
        [
            "research",
            "fpr",
            "--bank",
            str(bank_dir),
            "--out",
            str(out),
            "--quiet",
            "--generate",
            "8",
            "--generate-scale",
            "0.35",
            "--workers",
            "1",
        ]
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "checkpoint of a different run" in err[0]
    again = _fpr(out, bank_dir, "--generate", "8", "--generate-scale", "0.35", "--workers", "1", "--restart")
    assert again["data"]["benign_images"] <= 8 and again["data"]["run"]["complete"]


@pytest.mark.slow
def test_a_streamed_folder_agrees_with_the_in_memory_run(
    tmp_path: Path, bank_dir: Path, benign_dir: Path
) -> None:
    accounts = ["--images-per-year", "500", "--account-threshold", "3", "--accounts", "1000",
                "--report-threshold", "4"]
    mem = _fpr(tmp_path / "mem", bank_dir, "--benign", str(benign_dir), "--workers", "1", *accounts)
    st = _fpr(
        tmp_path / "st",
        bank_dir,
        *accounts,
        "--benign",
        str(benign_dir),
        "--stream",
        "--workers",
        "2",
        "--partition-size",
        "5",
    )
    a, b = mem["data"]["algos"]["pdq"], st["data"]["algos"]["pdq"]
    for key in ("benign_images", "benign_scanned", "benign_gated_out", "pairs", "bank_scannable"):
        assert a[key] == b[key], key
    for ta, tb in zip(a["thresholds"], b["thresholds"], strict=True):
        assert ta["threshold"] == tb["threshold"]
        assert ta["per_query"]["k"] == tb["per_query"]["k"]
        assert ta["per_query_dihedral"]["k"] == tb["per_query_dihedral"]["k"]
        assert ta["per_pair"]["k"] == tb["per_pair"]["k"]
    assert a["snapshot"]["per_query_dihedral"]["k"] == b["snapshot"]["per_query_dihedral"]["k"]
    assert a["pair_distance_histogram"] == b["pair_distance_histogram"]
    assert set(a["families"]) == set(b["families"])
    rows = [(r["images_per_year"], r["threshold"]) for r in b["account"]["rows"]]
    assert rows == [(500, 3), (500, 4)]  # the account flags reach the streaming run too
    assert a["account"]["rows"] == b["account"]["rows"]


def test_a_file_list_streams_its_images_and_counts_unreadable_ones(tmp_path: Path, bank_dir: Path) -> None:
    files = sorted(bank_dir.rglob("*.png"))[:6]
    (tmp_path / "broken.png").write_bytes(b"not a png")
    listing = tmp_path / "list.txt"
    listing.write_text(
        "# six bank images and a broken file\n" + "\n".join(str(f) for f in files) + "\nbroken.png\n"
    )
    res = _fpr(
        tmp_path / "o", bank_dir, "--file-list", str(listing), "--workers", "1", "--partition-size", "4"
    )
    data = res["data"]
    assert data["counts"]["benign_files"] == 7 and data["counts"]["benign_unreadable"] == 1
    assert data["unreadable"][0]["image"].endswith("broken.png")
    pdq = data["algos"]["pdq"]
    assert pdq["benign_images"] == 6 and data["counts"]["benign_also_in_bank"] == 6
    scanned = pdq["benign_scanned"]
    zero = next(t for t in pdq["thresholds"] if t["threshold"] == 0)
    assert zero["per_query"]["k"] == scanned  # the bank's own files: every scanned one at distance 0


def test_edits_of_a_corpus_are_deterministic_and_bounded(tmp_path: Path, bank_dir: Path) -> None:
    from research.sources import EDIT_FAMILY, item_image, make_plan

    plan = make_plan(edits=20, edit_corpus=str(bank_dir), edit_seed=3)
    a = [item_image(plan, i) for i in range(20)]
    b = [item_image(plan, i) for i in range(20)]
    assert all(isinstance(x, np.ndarray) and np.array_equal(x, y) for x, y in zip(a, b, strict=True))
    assert all(max(x.shape[:2]) <= 400 for x in a if isinstance(x, np.ndarray))
    assert plan.family_of(3) == EDIT_FAMILY
    assert not np.array_equal(
        a[0], item_image(make_plan(edits=20, edit_corpus=str(bank_dir), edit_seed=4), 0)
    )


def test_no_benign_images_is_one_clear_error(
    tmp_path: Path, bank_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["research", "fpr", "--bank", str(bank_dir), "--out", str(tmp_path), "--quiet"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "--generate N" in err[0]
    code = main(
        ["research", "fpr", "--bank", str(bank_dir), "--out", str(tmp_path), "--quiet", "--edits", "5"]
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "--edit-corpus" in err[0]


def test_batch_votes_equal_the_matcher_one_by_one(tmp_path: Path) -> None:
    from research.snapshot_view import build_matcher
    from scanner.hashers.base import HashResult

    rng = np.random.default_rng(0)
    bank = rng.integers(0, 256, (300, 32), dtype=np.uint8)
    matcher, why = build_matcher("pdq", [bytes(h) for h in bank], [100] * 300, tmp_path, seed=1)
    assert matcher is not None, why
    inner = matcher.device
    near = bank[:40].copy()
    near[:, :2] ^= 0x11  # 4 bits away from a bank hash
    queries = np.concatenate([near, rng.integers(0, 256, (40, 32), dtype=np.uint8)])
    variants = np.stack([np.roll(queries, k, axis=1) for k in range(8)], axis=1)
    votes, variant, min_votes = inner.votes_many(variants)
    for i in range(len(queries)):
        one = inner.match(
            HashResult("pdq", 256, bytes(queries[i]), 100, tuple(bytes(v) for v in variants[i]))
        )
        assert (int(votes[i]), int(variant[i])) == (one.votes, one.variant)
        assert (votes[i] >= min_votes) == one.matched
    assert (votes[:40] >= min_votes).all()
    plain, _, _ = inner.votes_many(queries)
    assert [int(v) for v in plain[:5]] == [
        inner.match(HashResult("pdq", 256, bytes(q), 100)).votes for q in queries[:5]
    ]


@pytest.mark.parametrize("flags", [["--account-threshold", "-1"], ["--images-per-year", "0"],
                                   ["--accounts", "-3"]])
@pytest.mark.parametrize("mode", [["--stream"], []])
def test_nonsense_account_settings_are_one_clear_error(
    tmp_path: Path, bank_dir: Path, benign_dir: Path, capsys: pytest.CaptureFixture[str],
    flags: list[str], mode: list[str],
) -> None:
    out = tmp_path / "o"
    code = main(["research", "fpr", "--bank", str(bank_dir), "--benign", str(benign_dir), "--out", str(out),
                 "--quiet", *mode, *flags])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and flags[0] in err[0] and "Traceback" not in err[0]
    assert not (out / "results.json").exists()  # refused before any work
