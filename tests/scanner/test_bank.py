"""The SQLite hash bank: imports (text, CSV, images) all-or-nothing with line numbers, dedupe, remove,
stats."""

from __future__ import annotations

import json
import re
import shutil
import sqlite3
from pathlib import Path

import pytest

from client.cli.main import main
from scanner.bank import HashBank, NewEntry
from scanner.bank_import import collect_entries
from scanner.errors import BankError, BankImportError

REPO = Path(__file__).resolve().parents[2]
H1, H2, H3 = "a" * 64, "0123456789abcdef" * 4, "f" * 63 + "0"


def _count(bank: Path) -> int:
    with sqlite3.connect(bank) as db:
        return int(db.execute("SELECT COUNT(*) FROM entries").fetchone()[0])


def test_text_and_csv_import_dedupes(tmp_path: Path) -> None:
    txt = tmp_path / "hashes.txt"
    txt.write_text(f"# StopNCII export\n{H1}\n\n{H2.upper()},80\n{H1}\n")
    csv_file = tmp_path / "more.csv"
    csv_file.write_text(f"hash,quality,label\n{H3},40,test\n{H2},90,dup\n")
    entries = collect_entries([txt, csv_file], label="batch1")
    assert [(e.hash, e.quality) for e in entries] == [(H1, 100), (H2, 80), (H1, 100), (H3, 40), (H2, 90)]
    assert entries[3].label == "test" and entries[0].label == "batch1" and entries[1].source.endswith(":4")
    with HashBank(tmp_path / "b.sqlite") as bank:
        report = bank.add(entries, now=1000)
        assert (report.added, report.duplicates) == (3, 2)
        assert bank.add(entries[:1], now=1001).duplicates == 1
        assert sorted(bank.snapshot_hashes(algorithm="pdq", now=1000)) == sorted(
            bytes.fromhex(h) for h in (H1, H2)
        )
        stats = bank.stats(now=1000)
        assert stats["entries"] == 3 and stats["low_quality"] == 1 and stats["snapshot_eligible"] == 2
        removed, missing = bank.remove([H1, "b" * 64])
        assert removed == 1 and missing == ["b" * 64]
        assert [e.hash for e in bank.entries()] == [H2, H3]
    with sqlite3.connect(tmp_path / "b.sqlite") as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_expired_entries_leave_snapshots(tmp_path: Path) -> None:
    with HashBank(tmp_path / "b.sqlite") as bank:
        bank.add([NewEntry("pdq", H1, 90, expires=500), NewEntry("pdq", H2, 90)], now=100)
        assert len(list(bank.snapshot_hashes(algorithm="pdq", now=499))) == 2
        assert list(bank.snapshot_hashes(algorithm="pdq", now=500)) == [bytes.fromhex(H2)]


def test_malformed_lines_refuse_the_whole_import_with_line_numbers(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    good = tmp_path / "good.txt"
    good.write_text(f"{H1}\n")
    bad = tmp_path / "bad.txt"
    bad.write_text(f"{H2}\nnot-hex\n{H1[:-2]}\n{H1},101\n{H1} 50 extra\n")
    bad_csv = tmp_path / "bad.csv"
    bad_csv.write_text(f"hash,quality\n{H1},50\n{H2},50,extra\nxyz,10\n")
    with pytest.raises(BankImportError) as info:
        collect_entries([good, bad, bad_csv, tmp_path / "missing.txt"])
    lines = [(Path(src).name, line) for src, line, _ in info.value.problems]
    assert lines == [
        ("bad.txt", 2),
        ("bad.txt", 3),
        ("bad.txt", 4),
        ("bad.txt", 5),
        ("bad.csv", 3),
        ("bad.csv", 4),
        ("missing.txt", 0),
    ]
    bank = tmp_path / "bank.sqlite"
    assert main(["bank", "import", "--bank", str(bank), str(good)]) == 0
    capsys.readouterr()
    assert main(["bank", "import", "--bank", str(bank), str(good), str(bad)]) == 2
    err = capsys.readouterr().err
    assert "nothing was added" in err and "bad.txt:2:" in err and "bad.txt:5:" in err
    assert _count(bank) == 1


def test_image_folder_import_and_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "imgs"
    folder.mkdir()
    for p in sorted((REPO / "samples").glob("*.jpg"))[:3]:
        shutil.copy(p, folder / p.name)
    bank = tmp_path / "bank.sqlite"
    assert main(["bank", "import", "--bank", str(bank), "--label", "csam-test", "--json", str(folder)]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["added"] == 3 and report["duplicates"] == 0
    assert main(["bank", "import", "--bank", str(bank), str(folder)]) == 0
    assert "0 new entries" in capsys.readouterr().out
    assert main(["bank", "list", "--bank", str(bank), "--json"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert len(rows) == 3 and all(r["label"] == "csam-test" and len(r["hash"]) == 64 for r in rows)
    assert main(["bank", "stats", "--bank", str(bank), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["entries"] == 3
    assert main(["bank", "stats", "--bank", str(bank)]) == 0  # JSON without --json too, with ISO times
    stats = json.loads(capsys.readouterr().out)
    assert stats["entries"] == 3 and isinstance(stats["first_added"], int)
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", stats["first_added_at"])
    assert stats["last_added_at"] >= stats["first_added_at"]
    assert main(["bank", "remove", "--bank", str(bank), rows[0]["hash"]]) == 0
    assert "removed 1" in capsys.readouterr().out
    assert main(["bank", "remove", "--bank", str(bank), "--label", "csam-test", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["removed"] == 2
    assert _count(bank) == 0
    (folder / "broken.jpg").write_bytes(b"not a jpeg")
    assert main(["bank", "import", "--bank", str(bank), str(folder)]) == 2
    assert "broken.jpg" in capsys.readouterr().err and _count(bank) == 0


def test_bank_errors_are_typed(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    junk = tmp_path / "junk.sqlite"
    junk.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(BankError):
        HashBank(junk)
    with pytest.raises(BankError, match="no such bank"):
        HashBank(tmp_path / "missing.sqlite", create=False)
    assert main(["bank", "stats", "--bank", str(tmp_path / "missing.sqlite")]) == 2
    assert "no such bank" in capsys.readouterr().err
