"""The bank-recovery attack: enumerate every key of every table, stitch across tables, score against the
bank."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pytest

from client.cli.main import main
from research.recovery import recover, stitch, table_keys
from scanner.authority import AuthorityKey
from scanner.bank import HashBank, NewEntry
from scanner.calibration import Params, bloom_geometry, rounded_entry_count
from scanner.snapshot import build_snapshot

NOW = int(time.time())


def _params(n: int, tables: int = 256, bits: int = 12) -> Params:
    m, h = bloom_geometry(rounded_entry_count(n) * tables, 1e-4)
    return Params(tables=tables, bits=bits, min_votes=3, probe_radius=0, bloom_bits=m, bloom_hashes=h)


def _bank(n: int, seed: int) -> np.ndarray:
    arr = np.random.default_rng(seed).integers(0, 256, size=(n, 32), dtype=np.uint8)
    return np.unique(arr, axis=0)


def test_table_keys_pack_msb_first() -> None:
    keys = table_keys(12, 0, 4096)
    assert keys.shape == (4096, 2)
    # key value 1 is the last (12th) key bit: bit 4 of the second byte (unused low bits are zero)
    assert keys[1].tolist() == [0, 0x10]
    assert keys[4095].tolist() == [0xFF, 0xF0]


def test_offline_snapshot_gives_back_every_bank_hash() -> None:
    bank = _bank(8, seed=5)
    key = AuthorityKey.generate()
    data = build_snapshot(
        bank, params=_params(8), key=key, version=1, created=NOW, expires=NOW + 3600, pad=False
    )
    res = recover(data, budget_seconds=120)
    assert res.completed and not res.ambiguous
    assert res.digests == 256 * 4096 and res.uncovered_bits == 0
    got = {bytes(c) for c in res.candidates}
    assert got == {bytes(row) for row in bank}
    assert res.extrapolated_core_hours > 0


def test_budget_stops_and_extrapolates() -> None:
    bank = _bank(4, seed=6)
    key = AuthorityKey.generate()
    data = build_snapshot(
        bank,
        params=_params(4, tables=8, bits=24),
        key=key,
        version=1,
        created=NOW,
        expires=NOW + 3600,
        pad=False,
    )
    res = recover(data, budget_seconds=0.3)
    assert not res.completed and res.recovered == 0
    assert 0 < res.digests < 8 * (1 << 24)
    assert "budget" in res.stopped_reason
    # extrapolation uses the measured rate: full cost / rate
    assert res.extrapolated_core_hours == pytest.approx(8 * (1 << 24) / res.digest_rate / 3600)


def test_stitch_rejects_patterns_inconsistent_across_tables() -> None:
    # two tables sharing position 0: table 0 says bit0=1, table 1 says bit0=0 -> no hash
    positions = np.array([[0, 1], [0, 2]])
    pats = {0: np.array([[1, 0]], np.int8), 1: np.array([[0, 1]], np.int8)}
    assert stitch(positions, pats, 8).candidates.shape[0] == 0
    pats[1] = np.array([[0, 1], [1, 1]], np.int8)
    out = stitch(positions, pats, 8).candidates
    assert out.tolist() == [[1, 0, 1, -1, -1, -1, -1, -1]]


def test_cli_contract_results_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bank = _bank(6, seed=7)
    key = AuthorityKey.generate()
    data = build_snapshot(
        bank, params=_params(6), key=key, version=1, created=NOW, expires=NOW + 3600, pad=False
    )
    snap = tmp_path / "snap.bin"
    snap.write_bytes(data)
    bank_path = tmp_path / "bank.sqlite"
    with HashBank(bank_path) as db:
        db.add(
            [NewEntry(algorithm="pdq", hash=bytes(r).hex(), quality=100, source="t") for r in bank], now=NOW
        )
    out = tmp_path / "out"
    code = main(
        ["research", "attacks", "recover", str(snap), "--bank", str(bank_path), "--out", str(out), "--quiet"]
    )
    assert code == 0
    res = json.loads((out / "results.json").read_text())
    assert res["recovered"] == 6 and res["exact_in_bank"] == 6
    assert res["digests"] == 256 * 4096
    assert res["seconds"] > 0 and res["extrapolated_core_hours"] > 0
    html = (out / "report.html").read_text()
    assert "Bank recovery" in html and "<img" in html
    assert "recovered 6" in capsys.readouterr().out
    for row in bank:  # the report never prints the recovered hashes
        assert bytes(row).hex() not in html


def test_cli_bad_snapshot_is_one_line_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.bin"
    bad.write_bytes(b"not a snapshot" * 30)
    assert main(["research", "attacks", "recover", str(bad), "--out", str(tmp_path / "o"), "--quiet"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "Traceback" not in err[0]


@pytest.mark.slow
def test_tradeoffs_privacy_axis(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`research tradeoffs` puts offline (padded and not) and OPRF snapshots side by side, with a real OPRF
    service on loopback for the latency."""
    code = main(["research", "tradeoffs", "--bank-size", "300", "--out", str(tmp_path), "--samples", "20",
                 "--privacy-queries", "2", "--quiet", "--json"])
    assert code == 0
    res = json.loads((tmp_path / "results.json").read_text())
    modes = {m["mode"]: m for m in res["data"]["privacy"]}
    assert set(modes) == {"offline-unpadded", "offline", "oprf", "oprf-384"}
    assert modes["oprf"]["enumeration_core_hours"] is None and modes["oprf"]["account_days_at_limit"] > 0
    assert modes["offline"]["enumeration_core_hours"] > modes["offline-unpadded"]["enumeration_core_hours"]
    assert modes["oprf"]["elements_per_image"] == 8 * modes["oprf"]["params"]["tables"]
    assert modes["oprf"]["bytes_sent_per_image"] > 32 * modes["oprf"]["elements_per_image"]
    assert modes["offline"]["bytes_sent_per_image"] == 0
    assert modes["oprf"]["service_cpu_ms_per_image"] > 0 and modes["oprf"]["client_cpu_ms_median"] > 0
    assert all(m["match_ms_median"] > 0 for m in modes.values())
    html = (tmp_path / "report.html").read_text()
    assert "Privacy" in html and html.count("<img") >= 4
    capsys.readouterr()
