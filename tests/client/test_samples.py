"""`pocketscan samples`: absolute sample paths from any folder, in a checkout or an installed copy."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from client import samples
from client.cli.main import main

REPO = Path(__file__).resolve().parents[2]


def test_paths_are_absolute_and_independent_of_the_working_directory(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["samples", "rocket.jpg", "coffee"]) == 0
    paths = [Path(line) for line in capsys.readouterr().out.splitlines()]
    assert [p.name for p in paths] == ["rocket.jpg", "coffee.jpg"]
    assert all(p.is_absolute() and p.is_file() for p in paths)
    assert main(["samples", "--json"]) == 0
    assert len(json.loads(capsys.readouterr().out)) == 8
    assert main(["samples", "--copy", "mine", "gravel.jpg"]) == 0
    copied = Path(capsys.readouterr().out.strip())
    assert copied == (tmp_path / "mine" / "gravel.jpg").resolve() and copied.read_bytes() == (
        REPO / "samples" / "gravel.jpg").read_bytes()


def test_unknown_sample_is_one_line_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["samples", "nope.jpg"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "rocket.jpg" in err


def test_installed_copy_and_override_are_found(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    installed = tmp_path / "prefix" / "share" / "pocketscan" / "samples"
    installed.mkdir(parents=True)
    (installed / "rocket.jpg").write_bytes((REPO / "samples" / "rocket.jpg").read_bytes())
    monkeypatch.setattr(samples, "_candidates", lambda: [tmp_path / "no-checkout", installed])
    assert samples.sample_dir() == installed.resolve()
    assert samples.sample_path("rocket") == (installed / "rocket.jpg").resolve()
    monkeypatch.setattr(samples, "_candidates", lambda: [tmp_path / "nothing"])
    with pytest.raises(samples.SamplesMissing, match="POCKETSCAN_SAMPLES"):
        samples.sample_dir()
    monkeypatch.undo()
    monkeypatch.setenv("POCKETSCAN_SAMPLES", str(installed))
    assert samples.sample_paths() == [(installed / "rocket.jpg").resolve()]
