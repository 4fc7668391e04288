"""Settings files (good, bad, env overrides) and report envelopes (only the authority can open them)."""

from __future__ import annotations

import json
from pathlib import Path

import nacl.signing
import pytest

from client.config import ConfigError, Settings, load_settings, save_settings, set_setting
from client.report import Report, ReportError, authority_mailbox, open_report, seal_report

KEY = "ab" * 32


def test_settings_round_trip_and_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "settings.json"
    save_settings(path, Settings(relay="ws://127.0.0.1:1", authority_pubkey=KEY, policy="block"))
    assert load_settings(path).policy == "block"
    assert set_setting(path, "policy", "REPORT").policy == "report"
    assert set_setting(path, "dihedral", "false").dihedral is False
    monkeypatch.setenv("POCKETSCAN_POLICY", "off")
    assert load_settings(path).policy == "off"
    assert load_settings(path, env=False).policy == "report"
    assert (path.stat().st_mode & 0o777) == 0o600


@pytest.mark.parametrize(("content", "message"), [
    ("{not json", "cannot read settings"),
    ("[1, 2]", "JSON object"),
    (json.dumps({"policy": "maybe"}), "unknown policy"),
    (json.dumps({"colour": "red"}), "unknown setting"),
    (json.dumps({"relay": "http://x"}), "ws://"),
    (json.dumps({"authority_pubkey": "zz"}), "64 hex"),
    (json.dumps({"dihedral": "perhaps"}), "true or false"),
])
def test_bad_settings(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "settings.json"
    path.write_text(content)
    with pytest.raises(ConfigError, match=message):
        load_settings(path, env=False)


def test_report_is_sealed_to_the_authority() -> None:
    authority = nacl.signing.SigningKey.generate()
    pub = bytes(authority.verify_key)
    report = Report("alice", "bob", 1.0, "ff" * 32, 3, 5, 90, "00" * 32, "11" * 32)
    envelope = seal_report(report, pub)
    assert b"alice" not in envelope and b"ff" * 8 not in envelope
    assert open_report(envelope, bytes(authority)) == report
    with pytest.raises(ReportError):
        open_report(envelope, bytes(nacl.signing.SigningKey.generate()))
    with pytest.raises(ReportError):
        open_report(b"garbage", bytes(authority))
    assert len(authority_mailbox(pub)) == 32
