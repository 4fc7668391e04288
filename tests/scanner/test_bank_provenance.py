"""Provenance and the two-source rule: `bank import --source`, `bank list` sources, `snapshot build
--min-sources`, schema-1 migration, removals with their reason, and the appeal search (`within`)."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from client.cli.main import main
from scanner.bank import HashBank, NewEntry
from scanner.errors import BankError

H1, H2, H3 = "a" * 64, "0123456789abcdef" * 4, "f" * 63 + "0"


def _flip(hex_hash: str, bits: int) -> str:
    value = int(hex_hash, 16) ^ ((1 << bits) - 1)
    return f"{value:064x}"


def test_two_sources_counted_per_hash(tmp_path: Path) -> None:
    with HashBank(tmp_path / "b.sqlite") as bank:
        first = bank.add([NewEntry("pdq", H1, 90, origin="ncmec"), NewEntry("pdq", H2, 90, origin="ncmec")],
                         now=10)
        assert (first.added, first.sources_added) == (2, 2)
        again = bank.add([NewEntry("pdq", H1, 90, origin="iwf"), NewEntry("pdq", H2, 90, origin="ncmec")],
                         now=11)
        assert (again.added, again.duplicates, again.sources_added) == (0, 2, 1)
        assert {e.hash: e.sources for e in bank.entries()} == {H1: ("iwf", "ncmec"), H2: ("ncmec",)}
        assert list(bank.snapshot_hashes(algorithm="pdq", now=12, min_sources=2)) == [bytes.fromhex(H1)]
        assert len(list(bank.snapshot_hashes(algorithm="pdq", now=12, min_sources=1))) == 2
        assert bank.stats(now=12)["sources"] == {"ncmec": 2, "iwf": 1}
        with pytest.raises(BankError):
            bank.add([NewEntry("pdq", H3, 90, origin="bad,name")], now=13)
        assert len(bank.entries()) == 2  # the refused import added nothing


def test_removal_records_reason_and_sources(tmp_path: Path) -> None:
    with HashBank(tmp_path / "b.sqlite") as bank:
        bank.add([NewEntry("pdq", H1, 90, origin="iwf", source="sub-1")], now=10)
        assert bank.remove([H1], reason="appeal it-1 accepted", now=20) == (1, [])
    with sqlite3.connect(tmp_path / "b.sqlite") as db:
        assert db.execute("SELECT reason, sources, removed FROM removals").fetchall() == [
            ("appeal it-1 accepted", "iwf", 20)]
        assert db.execute("SELECT COUNT(*) FROM provenance").fetchone()[0] == 0


def test_within_finds_every_entry_near_the_queries(tmp_path: Path) -> None:
    near, far = _flip(H1, 20), _flip(H1, 40)
    with HashBank(tmp_path / "b.sqlite") as bank:
        bank.add([NewEntry("pdq", h, 90) for h in (H1, near, far, H2)], now=1)
        got = bank.within([bytes.fromhex(H1)], algorithm="pdq", distance=31)
    assert got == [(H1, 0), (near, 20)]


def test_schema_1_bank_is_migrated_with_the_default_source(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite"
    with sqlite3.connect(path) as db:
        db.executescript(
            "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);"
            "INSERT INTO meta VALUES ('schema_version', '1');"
            "CREATE TABLE entries (id INTEGER PRIMARY KEY, algorithm TEXT NOT NULL, hash TEXT NOT NULL,"
            " quality INTEGER NOT NULL, label TEXT NOT NULL DEFAULT '', source TEXT NOT NULL DEFAULT '',"
            " added INTEGER NOT NULL, expires INTEGER, UNIQUE (algorithm, hash));"
            "INSERT INTO entries (algorithm, hash, quality, source, added)"
            f" VALUES ('pdq', '{H1}', 90, 'f:1', 5);"
        )
    with HashBank(path) as bank:
        assert [e.sources for e in bank.entries()] == [("local",)]
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()[0] == "2"


def test_cli_source_list_and_min_sources(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bank, key, snap = tmp_path / "b.sqlite", tmp_path / "a.key", tmp_path / "s.bin"
    one, two = tmp_path / "one.txt", tmp_path / "two.txt"
    one.write_text(f"{H1}\n{H2}\n")
    two.write_text(f"{H1}\n")
    assert main(["bank", "import", "--bank", str(bank), "--source", "ncmec", str(one), "--json"]) == 0
    assert main(["bank", "import", "--bank", str(bank), "--source", "iwf", str(two), "--json"]) == 0
    reports = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert reports[1]["source"] == "iwf" and reports[1]["sources_added"] == 1 and reports[1]["added"] == 0
    assert main(["bank", "list", "--bank", str(bank), "--json"]) == 0
    listed = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert {e["hash"]: e["sources"] for e in listed} == {H1: ["iwf", "ncmec"], H2: ["ncmec"]}
    assert main(["bank", "list", "--bank", str(bank)]) == 0
    assert "sources=iwf,ncmec" in capsys.readouterr().out
    assert main(["authority", "keygen", "--out", str(key)]) == 0
    capsys.readouterr()
    assert main(["snapshot", "build", "--bank", str(bank), "--key", str(key), "--out", str(snap),
                 "--min-sources", "2", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["entries"] == 1 and report["min_sources"] == 2
    assert main(["snapshot", "build", "--bank", str(bank), "--key", str(key), "--out", str(snap),
                 "--min-sources", "3"]) == 2
    assert "at least 3 sources" in capsys.readouterr().err
    assert main(["bank", "import", "--bank", str(bank), "--source", "", str(two)]) == 2


def test_cli_remove_records_the_reason_and_stats_count_sources(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bank, hashes = tmp_path / "b.sqlite", tmp_path / "h.txt"
    hashes.write_text(f"{H1}\n{H2}\n")
    assert main(["bank", "import", "--bank", str(bank), "--source", "ncmec", str(hashes)]) == 0
    assert main(["bank", "remove", "--bank", str(bank), H1, "--reason", "appeal upheld", "--json"]) == 0
    capsys.readouterr()
    assert main(["bank", "stats", "--bank", str(bank), "--json"]) == 0
    stats = json.loads(capsys.readouterr().out)
    assert stats["sources"] == {"ncmec": 1} and stats["removed"] == 1
    with sqlite3.connect(bank) as db:
        assert db.execute("SELECT hash, reason, sources FROM removals").fetchall() == [
            (H1, "appeal upheld", "ncmec")
        ]
