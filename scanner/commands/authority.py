"""`pocketscan authority keygen --out AUTHORITY.key`: create the Ed25519 key that signs snapshots.

Writes the private key file with mode 0600 (refusing to overwrite one unless ``--force``) and prints the
public key, 64 hex characters, on stdout: devices pin it with ``--pubkey``.
"""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from client.cli.registry import CommandRegistry

__all__ = ["register"]


def register(registry: CommandRegistry) -> None:
    """Add the ``authority`` group."""
    group = registry.group("authority", help="the bank authority: keys, inbox, review and publishing")
    p = group.command("keygen", _keygen, help="create an Ed25519 authority key; prints the public key (hex)")
    p.add_argument("--out", required=True, metavar="AUTHORITY.key", help="private key file (mode 0600)")
    p.add_argument("--force", action="store_true", help="replace an existing key file")
    p = group.command("pubkey", _pubkey, help="print the public key (hex) of an authority key file")
    p.add_argument("key", metavar="AUTHORITY.key")


def _keygen(args: argparse.Namespace) -> int:
    from scanner.authority import AuthorityKey
    from scanner.errors import AuthorityKeyError

    key = AuthorityKey.generate()
    try:
        key.save(args.out, force=args.force)
    except AuthorityKeyError as exc:
        print(f"pocketscan authority keygen: {exc}", file=sys.stderr)
        return 2
    print(key.public_hex)
    return 0


def _pubkey(args: argparse.Namespace) -> int:
    from scanner.authority import AuthorityKey
    from scanner.errors import AuthorityKeyError

    try:
        print(AuthorityKey.load(args.key).public_hex)
    except AuthorityKeyError as exc:
        print(f"pocketscan authority pubkey: {exc}", file=sys.stderr)
        return 2
    return 0
