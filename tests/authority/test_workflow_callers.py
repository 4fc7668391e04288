"""Every caller of the authority workflow (scanner/snapshot/workflow.py) dedupes and calibrates for the
padded entry count: ``snapshot build``, ``authority serve``'s :class:`Workflow`, research and the demo."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from client.authority.store import AuthorityStore
from client.authority.workflow import Workflow
from client.cli.main import main
from client.demo.world import DEMO_BANK_FILE, AuthorityIdentity, make_demo_snapshot, sample_images
from scanner.authority import AuthorityKey
from scanner.bank import HashBank, NewEntry
from scanner.calibration import Params, calibrate_padded
from scanner.snapshot import verify_snapshot

HASH_A, HASH_B = "c3" * 32, "5a" * 32


def _lsh(params: Params) -> tuple[int, int, int]:
    return params.tables, params.bits, params.min_votes


def _header_lsh(data: bytes, public_key: bytes) -> tuple[int, int, int]:
    header = verify_snapshot(data, public_key).header
    assert header.entry_count == 1024  # padded
    return header.tables, header.bits, header.min_votes


def _bank_with_a_hash_from_two_sources(path: Path) -> Path:
    with HashBank(path) as bank:
        bank.add([NewEntry("pdq", HASH_A, 100, origin="ncmec"), NewEntry("pdq", HASH_B, 100, origin="ncmec"),
                  NewEntry("pdq", HASH_A, 100, origin="iwf")], now=1)
    return path


def test_demo_snapshot_dedupes_through_a_real_bank(tmp_path: Path) -> None:
    samples = sample_images()
    authority = AuthorityIdentity.generate()
    made = make_demo_snapshot([samples[0], samples[0], samples[1]], authority, version=4, work_dir=tmp_path)
    assert made.entries == 2 and made.version == 4
    assert _header_lsh(made.data, authority.public_key) == _lsh(calibrate_padded(2).params)
    with HashBank(tmp_path / DEMO_BANK_FILE, create=False) as bank:
        assert len(bank.entries()) == 2


def test_authority_serve_build_dedupes_and_pads(tmp_path: Path) -> None:
    key = AuthorityKey(os.urandom(32))
    bank = _bank_with_a_hash_from_two_sources(tmp_path / "bank.sqlite")
    store = AuthorityStore(tmp_path / "store.sqlite", create=True)
    try:
        built = Workflow(store, bank, key).build(generation=1, min_version=5)
    finally:
        store.close()
    assert built.entries == 2 and built.version >= 5
    assert _header_lsh(built.data, key.public_key) == _lsh(calibrate_padded(2).params)


def test_snapshot_build_cli_dedupes_and_pads(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bank = _bank_with_a_hash_from_two_sources(tmp_path / "bank.sqlite")
    key = tmp_path / "authority.key"
    AuthorityKey(os.urandom(32)).save(key)
    out = tmp_path / "snap.bin"
    assert main(["snapshot", "build", "--bank", str(bank), "--key", str(key), "--out", str(out),
                 "--allow-weak-privacy", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["entries"] == 2 and report["entry_count"] == 1024 and report["padded"] is True
    params = calibrate_padded(2).params
    assert (report["tables"], report["bits"], report["min_votes"]) == _lsh(params)
    assert _header_lsh(out.read_bytes(), AuthorityKey.load(key).public_key) == _lsh(params)
    coarse = ["--tables", "12", "--bits", "10", "--min-votes", "2"]  # saturated by the padding decoys
    refused = tmp_path / "refused.bin"
    assert main(["snapshot", "build", "--bank", str(bank), "--key", str(key), "--out", str(refused),
                 "--allow-weak-privacy", *coarse]) == 2
    err = capsys.readouterr().err
    assert err.startswith("pocketscan snapshot build: parameters L=12") and "too coarse" in err
    assert err.count("\n") == 1 and not refused.exists()


def test_research_snapshot_dedupes_through_a_real_bank(tmp_path: Path) -> None:
    from research._snapshot_impl import build

    a, b = os.urandom(32), os.urandom(32)
    matcher, why = build("pdq", [a, b, a], [100, 100, 100], tmp_path, seed=1)
    assert matcher is not None and why == ""
    info = matcher.info()
    assert info["entries"] == 2 and info["bank_duplicate_hashes"] == 1
    assert matcher.match(a, None)[0] and matcher.match(b, None)[0]
