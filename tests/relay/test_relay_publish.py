"""`pocketscan snapshot publish` against a real relay subprocess, with a real authority key file."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from relayfix import REPO, RelayProcess, new_key, run

from relay.client import RelayConnection

authority_mod = pytest.importorskip(
    "scanner.authority", reason="the authority key module is not in this tree"
)


def _publish(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "client.cli.main", "snapshot", "publish", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_snapshot_publish_cli(tmp_path: Path) -> None:
    key = authority_mod.AuthorityKey.generate()
    key_file = tmp_path / "AUTHORITY.key"
    key.save(key_file)
    snap = tmp_path / "SNAP.bin"
    snap.write_bytes(os.urandom(700_000))  # the relay treats the signed file as opaque bytes
    relay = RelayProcess("--db", str(tmp_path / "r.sqlite"), "--authority-pubkey", key.public_hex)
    try:
        done = _publish(str(snap), "--relay", relay.url, "--key", str(key_file), "--version", "3", "--json")
        assert done.returncode == 0, done.stderr
        assert json.loads(done.stdout) == {
            "published": True,
            "version": 3,
            "size": 700_000,
            "relay": relay.url,
        }

        async def fetch() -> None:
            conn = await RelayConnection.connect(relay.url, new_key())
            got = await conn.fetch_snapshot()
            assert got is not None
            info, data = got
            assert info.version == 3 and data == snap.read_bytes()
            assert info.sha256 == hashlib.sha256(data).digest()
            await conn.close()

        run(fetch())
        # Not newer: refused with a clear message and exit status 2.
        again = _publish(str(snap), "--relay", relay.url, "--key", str(key_file), "--version", "3")
        assert again.returncode == 2 and "not newer" in again.stderr
        # A key the relay does not list cannot publish.
        other = authority_mod.AuthorityKey.generate()
        other.save(tmp_path / "OTHER.key")
        refused = _publish(
            str(snap), "--relay", relay.url, "--key", str(tmp_path / "OTHER.key"), "--version", "4"
        )
        assert refused.returncode == 2 and "does not list this authority key" in refused.stderr
        # Missing file, unreachable relay.
        assert (
            _publish(str(tmp_path / "nope.bin"), "--relay", relay.url, "--key", str(key_file)).returncode == 2
        )
    finally:
        relay.stop()
    down = _publish(str(snap), "--relay", relay.url, "--key", str(key_file), "--version", "5")
    assert down.returncode == 2 and "cannot connect" in down.stderr
