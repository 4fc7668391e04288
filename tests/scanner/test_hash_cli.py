"""The `pocketscan hash` contract: JSON Lines in input order, errors inline, exit 2 after all files."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from client.cli.main import main
from scanner.hamming import hamming
from scanner.hashers.pdq import pdq_hash
from scanner.hashing import hash_file
from scanner.image import load_rgb

REPO = Path(__file__).resolve().parents[2]
SAMPLES = REPO / "samples"


def _run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, list[dict[str, object]]]:
    code = main(["hash", *args])
    out = capsys.readouterr().out
    return code, [json.loads(line) for line in out.splitlines()]


def test_directory_walk_sorted_recursive_and_exact_fields(capsys, tmp_path):
    (tmp_path / "sub" / "deeper").mkdir(parents=True)
    shutil.copy(SAMPLES / "rocket.jpg", tmp_path / "sub" / "deeper" / "b.jpg")
    shutil.copy(SAMPLES / "coffee.jpg", tmp_path / "a.JPG")
    shutil.copy(SAMPLES / "camera.jpg", tmp_path / "sub" / "c.jpeg")
    (tmp_path / "notes.txt").write_text("not an image, and not picked up by the walk")
    code, rows = _run(capsys, str(tmp_path))
    assert code == 0
    assert [r["path"] for r in rows] == [
        str(tmp_path / "a.JPG"), str(tmp_path / "sub" / "c.jpeg"), str(tmp_path / "sub" / "deeper" / "b.jpg")
    ]
    for row in rows:
        assert set(row) == {"path", "algo", "hash", "quality"}
        assert row["algo"] == "pdq" and isinstance(row["quality"], int)
        assert isinstance(row["hash"], str) and len(row["hash"]) == 64
    assert rows[0]["hash"] == hash_file(SAMPLES / "coffee.jpg").hex  # the default: fast mode
    assert hamming(bytes.fromhex(str(rows[0]["hash"])), pdq_hash(load_rgb(SAMPLES / "coffee.jpg")).hash) <= 2


def test_exact_mode_and_dihedral_output(capsys):
    path = str(SAMPLES / "chelsea.jpg")
    code, rows = _run(capsys, "--mode", "exact", "--dihedral", path)
    assert code == 0
    (row,) = rows
    expected = pdq_hash(load_rgb(path, mode="exact"), dihedral=True)
    assert row["hash"] == expected.hex and row["quality"] == expected.quality
    assert row["dihedral"] == [h.hex() for h in expected.dihedral or ()]
    assert len(row["dihedral"]) == 8 and row["dihedral"][0] == row["hash"]  # type: ignore[arg-type,index]


@pytest.mark.parametrize("algo", ["phash", "dhash", "ahash"])
def test_baseline_algorithms(capsys, algo):
    code, rows = _run(capsys, "--algo", algo, str(SAMPLES / "hubble.jpg"))
    assert code == 0
    assert rows[0]["algo"] == algo and len(str(rows[0]["hash"])) == 16 and rows[0]["quality"] == 100


def test_bad_files_are_reported_inline_and_the_rest_still_hashed(capsys, tmp_path):
    empty = tmp_path / "empty.jpg"
    empty.write_bytes(b"")
    text = tmp_path / "text.png"
    text.write_text("hello")
    cut = tmp_path / "cut.jpg"
    cut.write_bytes((SAMPLES / "gravel.jpg").read_bytes()[:3000])
    good = SAMPLES / "astronaut.jpg"
    missing = tmp_path / "missing.jpg"
    code, rows = _run(capsys, str(empty), str(good), str(text), str(cut), str(missing), str(good))
    assert code == 2
    assert [r["path"] for r in rows] == [str(p) for p in (empty, good, text, cut, missing, good)]
    assert [("error" in r) for r in rows] == [True, False, True, True, True, False]
    for row in rows:
        if "error" in row:
            assert set(row) == {"path", "error"}
            assert str(row["path"]) in str(row["error"])
    assert rows[1]["hash"] == rows[5]["hash"]


def test_algo_choices_come_from_the_registry(capsys):
    with pytest.raises(SystemExit):
        main(["hash", "--help"])
    help_text = capsys.readouterr().out
    for name in ("pdq", "phash", "dhash", "ahash"):
        assert name in help_text
    with pytest.raises(SystemExit) as info:
        main(["hash", "--algo", "md5", str(SAMPLES / "rocket.jpg")])
    assert info.value.code == 2


def test_console_script_end_to_end(tmp_path):
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"\xff\xd8\xff")
    proc = subprocess.run(
        [sys.executable, "-m", "client.cli.main", "hash", str(SAMPLES), str(bad)],
        capture_output=True, text=True, cwd=REPO, timeout=120, check=False,
    )
    assert proc.returncode == 2, proc.stderr
    rows = [json.loads(line) for line in proc.stdout.splitlines()]
    assert len(rows) == 9 and "error" in rows[-1]
    assert all("hash" in r for r in rows[:8])
