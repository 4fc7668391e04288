"""`pocketscan scan --snapshot SNAP.bin --pubkey HEX [--dihedral] [--oprf URL [--profile DIR]] PATH...`: match
images against a snapshot.

An OPRF-keyed snapshot needs ``--oprf URL`` (the authority's ``authority oprf`` service): each image's keys
(all 8 dihedral variants) are blinded in one batch, the evaluation's proof is checked against the OPRF key
the signed header commits to, and the outputs are looked up. The caller authenticates with the account key
of ``--profile DIR``, else with a fresh key. An unreachable or refusing service makes that image ``error``.

Prints JSON Lines ``{"path", "hash", "quality", "verdict", "votes"}`` with verdict ``match``, ``no_match``,
``low_quality`` or ``error`` (then ``"error"`` holds the reason). Exit status 0 even when images match (a
match is a result), 2 when the snapshot is refused or any file could not be scanned.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from scanner.commands.registry import CommandRegistry

__all__ = ["register"]

_EPILOG = """\
output (JSON Lines, one object per image, in input order):
  {"path": "a.jpg", "hash": "<hex>", "quality": 93, "verdict": "match", "votes": 12}
  {"path": "b.jpg", "hash": "<hex>", "quality": 12, "verdict": "low_quality", "votes": 0}
  {"path": "c.txt", "hash": null, "quality": null, "verdict": "error", "votes": 0, "error": "..."}
exit status: 0 when every image was scanned (matches included), 2 on any error
"""


def register(registry: CommandRegistry) -> None:
    """Add ``pocketscan scan``."""
    p = registry.command(
        "scan", _scan, help="match images against a signed snapshot (JSON Lines)", epilog=_EPILOG
    )
    p.add_argument("paths", nargs="+", metavar="PATH", help="image files or directories")
    p.add_argument("--snapshot", required=True, metavar="SNAP.bin")
    p.add_argument("--pubkey", required=True, metavar="HEX", help="pinned authority public key (64 hex)")
    p.add_argument("--dihedral", action="store_true", help="also match the 8 rotated/mirrored variants")
    p.add_argument("--mode", choices=("fast", "exact"), default="fast", help="image decoding mode")
    p.add_argument(
        "--oprf", metavar="URL", help="OPRF service (ws://HOST:PORT) of OPRF-keyed snapshots (authority oprf)"
    )
    p.add_argument(
        "--profile",
        metavar="DIR",
        help="with --oprf: authenticate as this profile's account (default: a fresh key; then only the "
        "service's per-address limit applies)",
    )


def _scan(args: argparse.Namespace) -> int:
    from scanner.authority import parse_public_key
    from scanner.discovery import expand_image_paths
    from scanner.errors import ScannerError
    from scanner.hashing import hash_file
    from scanner.matcher import Matcher
    from scanner.snapshot import map_snapshot_file

    transport = None
    try:
        if args.oprf:
            from scanner.oprf_client import OprfServiceClient

            transport = OprfServiceClient(args.oprf, signing_seed=_profile_seed(args.profile))
        elif args.profile:
            raise ScannerError("--profile is only used with --oprf")
        matcher = Matcher(parse_public_key(args.pubkey), oprf=transport)
        matcher.load(map_snapshot_file(args.snapshot), now=time.time())
    except ScannerError as exc:
        print(f"pocketscan scan: {exc}", file=sys.stderr)
        return 2
    algo = matcher.info.header.algorithm if matcher.info else "pdq"
    from scanner.progress import progress

    status = 0
    files = list(expand_image_paths(args.paths))
    for path in progress(files, total=len(files), description="scanning", quiet=len(files) < 2):
        row: dict[str, object] = {"path": path, "hash": None, "quality": None, "verdict": "error", "votes": 0}
        try:
            result = hash_file(path, algo=algo, mode=args.mode, dihedral=args.dihedral)
            row["hash"] = result.hash.hex()
            row["quality"] = result.quality
            outcome = matcher.match(result)
            row["verdict"] = outcome.outcome
            row["votes"] = outcome.votes
        except ScannerError as exc:
            row["error"] = str(exc)
            status = 2
        print(json.dumps(row), flush=True)
    if transport is not None:
        transport.close()
    return status


def _profile_seed(profile: str | None) -> bytes | None:
    """The Ed25519 seed of the account in ``profile`` (None: a fresh key)."""
    if profile is None:
        return None
    from scanner.errors import ScannerError
    from scanner.profile_keys import profile_key_loader

    loader = profile_key_loader()
    if loader is None:
        raise ScannerError("--profile needs the pocketscan messenger (client package)")
    try:
        return loader(profile)
    except ScannerError:
        raise
    except Exception as exc:
        raise ScannerError(f"cannot use profile {profile}: {exc}") from None
