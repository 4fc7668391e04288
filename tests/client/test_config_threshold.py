"""`report-threshold` and `synthetic-vouchers` settings: dashes accepted, bounds enforced, CLI contract."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from client.cli.main import main
from client.config import ConfigError, Settings, load_settings, save_settings, set_setting
from client.locations import Profile
from client.vouchers.issuer import wants_synthetic


def test_defaults_keep_todays_behaviour() -> None:
    s = Settings()
    assert s.report_threshold == 1 and s.synthetic_vouchers == 0.0


def test_set_with_dashes_and_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "settings.json"
    save_settings(path, Settings())
    assert set_setting(path, "report-threshold", "3").report_threshold == 3
    assert set_setting(path, "synthetic-vouchers", "0.05").synthetic_vouchers == 0.05
    assert json.loads(path.read_text())["report_threshold"] == 3
    monkeypatch.setenv("POCKETSCAN_REPORT_THRESHOLD", "5")
    assert load_settings(path).report_threshold == 5


@pytest.mark.parametrize(("name", "value", "message"), [
    ("report-threshold", "0", "between 1 and 100"),
    ("report-threshold", "101", "between 1 and 100"),
    ("report-threshold", "three", "whole number"),
    ("report-threshold", "2.5", "whole number"),
    ("synthetic-vouchers", "1.5", "between 0 and 1"),
    ("synthetic-vouchers", "-0.1", "between 0 and 1"),
    ("synthetic-vouchers", "nan", "number"),
    ("synthetic-vouchers", "lots", "number"),
])
def test_bad_values_refused_and_file_kept(tmp_path: Path, name: str, value: str, message: str) -> None:
    path = tmp_path / "settings.json"
    save_settings(path, Settings(report_threshold=2))
    before = path.read_text()
    with pytest.raises(ConfigError, match=message):
        set_setting(path, name, value)
    assert path.read_text() == before


def test_cli_contract(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from client.demo.world import AuthorityIdentity, make_profile

    make_profile(tmp_path, "p", relay="ws://127.0.0.1:1", authority=AuthorityIdentity.generate()).close()
    profile = Profile(tmp_path / "p")
    assert main(["config", "set", "--profile", str(profile.root), "report-threshold", "3"]) == 0
    assert json.loads(capsys.readouterr().out) == {"report-threshold": 3}
    assert main(["config", "set", "--profile", str(profile.root), "synthetic-vouchers", "0.1"]) == 0
    assert json.loads(capsys.readouterr().out) == {"synthetic-vouchers": 0.1}
    assert main(["config", "set", "--profile", str(profile.root), "report-threshold", "0"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "report_threshold" in err and "Traceback" not in err


def test_synthetic_only_under_threshold_reporting() -> None:
    always, never = (lambda: 0.0), (lambda: 0.999)
    assert wants_synthetic("report", 3, 0.5, always)
    assert not wants_synthetic("report", 3, 0.5, never)
    assert not wants_synthetic("report", 1, 1.0, always)
    assert not wants_synthetic("block", 3, 1.0, always)
    assert not wants_synthetic("report", 3, 0.0, always)
