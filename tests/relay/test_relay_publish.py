"""`pocketscan snapshot publish` against a real relay subprocess, with a real authority key file."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from relayfix import REPO, RelayProcess, new_key, run

import scanner.authority as authority_mod
import scanner.snapshot as snapshot_mod
from relay.client import RelayConnection
from scanner.calibration import Params


def _snapshot(key: object, version: int) -> bytes:
    """A real signed snapshot of a small random bank."""
    now = int(time.time())
    params = Params(tables=8, bits=16, min_votes=2, probe_radius=0, bloom_bits=1 << 17, bloom_hashes=3)
    return snapshot_mod.build_snapshot(
        [os.urandom(32) for _ in range(50)],
        params=params,
        key=key,
        version=version,
        created=now,
        expires=now + 86400,
        workers=1,
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
    snap.write_bytes(_snapshot(key, 3))  # the relay stores it as opaque bytes; devices verify it
    relay = RelayProcess("--db", str(tmp_path / "r.sqlite"), "--authority-pubkey", key.public_hex)
    try:
        done = _publish(str(snap), "--relay", relay.url, "--key", str(key_file), "--json")
        assert done.returncode == 0, done.stderr
        size = snap.stat().st_size
        assert json.loads(done.stdout) == {"published": True, "version": 3, "size": size, "relay": relay.url}

        async def fetch() -> None:
            conn = await RelayConnection.connect(relay.url, new_key())
            got = await conn.fetch_snapshot()
            assert got is not None
            info, data = got
            assert info.version == 3 and data == snap.read_bytes()
            assert info.sha256 == hashlib.sha256(data).digest()
            assert snapshot_mod.verify_snapshot(data, key.public_key).header.snapshot_version == 3
            await conn.close()

        run(fetch())
        # Not newer: refused with a clear message and exit status 2.
        again = _publish(str(snap), "--relay", relay.url, "--key", str(key_file))
        assert again.returncode == 2 and "not newer" in again.stderr
        # A key the relay does not list cannot publish.
        other = authority_mod.AuthorityKey.generate()
        other.save(tmp_path / "OTHER.key")
        other_snap = tmp_path / "OTHER.bin"
        other_snap.write_bytes(_snapshot(other, 4))
        refused = _publish(str(other_snap), "--relay", relay.url, "--key", str(tmp_path / "OTHER.key"))
        assert refused.returncode == 2 and "does not list this authority key" in refused.stderr
        # A tampered file is refused before anything is uploaded; so is a missing one.
        bad = tmp_path / "BAD.bin"
        raw = bytearray(snap.read_bytes())
        raw[300] ^= 0xFF
        bad.write_bytes(bytes(raw))
        tampered = _publish(str(bad), "--relay", relay.url, "--key", str(key_file))
        assert tampered.returncode == 2 and "refusing to publish" in tampered.stderr
        assert (
            _publish(str(tmp_path / "nope.bin"), "--relay", relay.url, "--key", str(key_file)).returncode == 2
        )
    finally:
        relay.stop()
    newer = tmp_path / "SNAP5.bin"
    newer.write_bytes(_snapshot(key, 5))
    down = _publish(str(newer), "--relay", relay.url, "--key", str(key_file))
    assert down.returncode == 2 and "cannot connect" in down.stderr
