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

import nacl.signing

from relay.client import RelayConnection
from relay.errors import RelayError
from relay.protocol import MAX_SNAPSHOT

__all__ = ["load_authority_signing_key", "main", "publish", "snapshot_version"]


def load_authority_signing_key(path: str | Path) -> nacl.signing.SigningKey:
    """Read an authority key file (format of ``scanner/authority.py``) as a pynacl signing key."""
    from scanner.authority import AuthorityKey
    from scanner.errors import ScannerError

    try:
        key = AuthorityKey.load(path)
    except ScannerError as exc:
        raise RelayError(str(exc)) from None
    return key._signing  # the Ed25519 key itself, to sign the relay's auth challenge


def snapshot_version(data: bytes) -> int | None:
    """The snapshot version from the file header, when the scanner package can read it."""
    try:
        from scanner import snapshot as snap  # the snapshot helper's module
    except ImportError:
        return None
    for name in ("read_header", "parse_header", "peek_header"):
        reader = getattr(snap, name, None)
        if reader is None:
            continue
        try:
            header = reader(data)
        except Exception:
            return None
        version = getattr(header, "snapshot_version", None)
        if version is None and isinstance(header, dict):
            version = header.get("snapshot_version", header.get("version"))
        return int(version) if version is not None else None
    return None


async def publish(url: str, key: nacl.signing.SigningKey, data: bytes, version: int) -> int:
    """Connect as the authority, upload and publish; return the published version."""
    conn = await RelayConnection.connect(url, key)
    try:
        if not conn.authority:
            raise RelayError(
                "the relay does not list this authority key (start it with --authority-pubkey "
                f"{bytes(key.verify_key).hex()})"
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
        version = args.version if args.version is not None else snapshot_version(data)
        if version is None:
            raise RelayError(f"{path}: cannot read the snapshot version from the header; pass --version N")
        key = load_authority_signing_key(args.key)
        published = asyncio.run(publish(args.relay, key, data, version))
    except RelayError as exc:
        print(f"pocketscan snapshot publish: {exc}", file=sys.stderr)
        return 2
    result = {"published": True, "version": published, "size": len(data), "relay": args.relay}
    if args.json:
        print(json.dumps(result))
    else:
        print(f"published snapshot version {published} ({len(data)} bytes) to {args.relay}")
    return 0
