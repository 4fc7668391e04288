"""Authority keys: 0600 key files, no silent overwrite, public key printed as 64 hex characters."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from client.cli.main import main
from scanner.authority import AuthorityKey, key_id, parse_public_key, verify_signature
from scanner.errors import AuthorityKeyError


def test_keygen_cli_writes_0600_and_prints_public_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "AUTHORITY.key"
    assert main(["authority", "keygen", "--out", str(out)]) == 0
    pub = capsys.readouterr().out.strip()
    assert len(pub) == 64 and int(pub, 16) >= 0
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    assert AuthorityKey.load(out).public_hex == pub
    before = out.read_bytes()
    assert main(["authority", "keygen", "--out", str(out)]) == 2
    assert "refusing to overwrite" in capsys.readouterr().err
    assert out.read_bytes() == before
    assert main(["authority", "keygen", "--out", str(out), "--force"]) == 0
    assert capsys.readouterr().out.strip() != pub
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_sign_verify_and_key_id() -> None:
    key = AuthorityKey.generate()
    sig = key.sign(b"hello")
    assert verify_signature(key.public_key, b"hello", sig)
    assert not verify_signature(key.public_key, b"hellO", sig)
    assert not verify_signature(AuthorityKey.generate().public_key, b"hello", sig)
    assert key.key_id == key_id(key.public_key) and len(key.key_id) == 8
    assert parse_public_key(key.public_hex.upper()) == key.public_key


@pytest.mark.parametrize("text", ["", "zz" * 32, "ab" * 31, "ab" * 33])
def test_bad_public_keys_are_refused(text: str) -> None:
    with pytest.raises(AuthorityKeyError):
        parse_public_key(text)


@pytest.mark.parametrize("content", [b"", b"not a key\n", b"pocketscan-authority-v1\nzz\n", b"\xff\xfe"])
def test_bad_key_files_are_refused(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "bad.key"
    path.write_bytes(content)
    with pytest.raises(AuthorityKeyError):
        AuthorityKey.load(path)
    with pytest.raises(AuthorityKeyError, match="no such key file"):
        AuthorityKey.load(tmp_path / "missing.key")
