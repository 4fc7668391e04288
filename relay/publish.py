"""`pocketscan snapshot publish`: upload a signed snapshot to a relay, authenticated by the authority key.

The relay only stores the file and announces it; devices verify the snapshot's own signature against
the authority key they pinned, so a relay cannot alter it unnoticed. The relay connection is
authenticated with the same Ed25519 authority key, which the relay must list in
``--authority-pubkey``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path

from relay.client import RelayConnection, Signer
from relay.errors import ConnectionLost, RelayError
from relay.protocol import MAX_SNAPSHOT

__all__ = ["check_snapshot", "load_authority_key", "main", "publish"]


def load_authority_key(path: str | Path) -> Signer:
    """Read an authority key file (format of ``scanner/authority.py``)."""
    from scanner.authority import AuthorityKey
    from scanner.errors import ScannerError

    try:
        return AuthorityKey.load(path)
    except ScannerError as exc:
        raise RelayError(str(exc)) from None


def check_snapshot(data: bytes, public_key: bytes) -> int:
    """Verify the signed snapshot against the publishing key and return its header's version.

    The relay cannot check what it stores; the publisher refuses to upload a file that devices
    would refuse (truncated, tampered, signed by another key).

    Raises:
        RelayError: not a valid snapshot signed by ``public_key``.
    """
    from scanner.errors import ScannerError
    from scanner.snapshot.reader import verify_snapshot

    try:
        verified = verify_snapshot(data, public_key)
    except ScannerError as exc:
        raise RelayError(f"refusing to publish: {exc}") from None
    return int(verified.header.snapshot_version)


async def _connect(url: str, key: Signer, wait: float, open_timeout: float) -> RelayConnection:
    """Connect, retrying refused connections for up to ``wait`` seconds (a relay that is starting)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + wait
    while True:
        try:
            return await RelayConnection.connect(url, key, open_timeout=open_timeout)
        except (OSError, TimeoutError, ConnectionLost):
            if loop.time() + 0.2 > deadline:
                raise
            await asyncio.sleep(0.2)


async def publish(url: str, key: Signer, data: bytes, version: int, *, wait: float = 0.0,
                  open_timeout: float = 10.0) -> int:
    """Connect as the authority, upload and publish; return the published version (the one upload path:
    ``snapshot publish`` and ``client.net.publish_snapshot`` both run it)."""
    conn = await _connect(url, key, wait, open_timeout)
    try:
        if not conn.authority:
            raise RelayError(
                "the relay does not list this authority key (start it with --authority-pubkey "
                f"{key.public_key.hex()})"
            )
        return await conn.publish_snapshot(data, version)
    finally:
        await conn.close()


def main(args: argparse.Namespace) -> int:
    """Handler of `pocketscan snapshot publish`."""
    path = Path(args.snapshot)
    try:
        if not path.is_file():
            raise RelayError(f"{path}: no such snapshot file")
        if path.stat().st_size > MAX_SNAPSHOT:
            raise RelayError(f"{path}: larger than the {MAX_SNAPSHOT}-byte snapshot limit")
        data = path.read_bytes()
        key = load_authority_key(args.key)
        version = check_snapshot(data, key.public_key)
        if args.version is not None and args.version != version:
            raise RelayError(f"{path}: the signed header says version {version}, not {args.version}")
        published = asyncio.run(publish(args.relay, key, data, version, wait=getattr(args, "wait", 0.0)))
    except (RelayError, OSError) as exc:
        print(f"pocketscan snapshot publish: {exc}", file=sys.stderr)
        return 2
    result = {"published": True, "version": published, "size": len(data), "relay": args.relay}
    if args.json:
        print(json.dumps(result))
    else:
        print(f"published snapshot version {published} ({len(data)} bytes) to {args.relay}")
    return 0
