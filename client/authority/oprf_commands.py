"""`pocketscan authority oprf` and `pocketscan authority oprf-keygen`: the OPRF service and its key.

``authority oprf --key OPRF.key --host HOST --port PORT [--per-minute N] [--per-day N]`` serves RFC 9497
VOPRF evaluations to devices scanning against OPRF-keyed snapshots (``snapshot build --keys oprf``).
"""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from client.cli.registry import CommandRegistry

__all__ = ["register"]

_GROUP_HELP = "the bank authority's signing keys"

_EPILOG = """\
Prints {"listening": "ws://HOST:PORT", "oprf_public_key": HEX, "limits": {...}} on stdout once ready.
Limits count batches (one image: all blinded keys of its 8 variants), per account key and per address; a
caller with a fresh key is held only by the per-address limit. The service logs no elements or outputs.
"""


def register(registry: CommandRegistry) -> None:
    """Add ``authority oprf`` and ``authority oprf-keygen`` to the ``authority`` group; let ``scan --profile``
    read an account key."""
    import scanner.commands.scan as scan_command

    scan_command.PROFILE_KEY_LOADER = account_signing_seed
    group = registry.group("authority", help=_GROUP_HELP)
    p = group.command("oprf", _serve, help="serve OPRF evaluations for OPRF-keyed snapshots", epilog=_EPILOG)
    p.add_argument(
        "--key", required=True, metavar="OPRF.key", help="the OPRF key file (authority oprf-keygen)"
    )
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default: %(default)s)")
    p.add_argument("--port", type=int, default=0, help="port (default: %(default)s, any free port)")
    p.add_argument(
        "--per-minute",
        type=int,
        default=60,
        metavar="N",
        help="batches (images) per account and per address per minute (default: %(default)s)",
    )
    p.add_argument(
        "--per-day",
        type=int,
        default=2000,
        metavar="N",
        help="batches (images) per account and per address per day (default: %(default)s)",
    )
    p.add_argument("--quiet", action="store_true", help="no banner on stderr")
    p = group.command(
        "oprf-keygen", _keygen, help="create an OPRF key (RFC 9497 ristretto255); prints its public key (hex)"
    )
    p.add_argument("--out", required=True, metavar="OPRF.key", help="key file (mode 0600)")
    p.add_argument("--force", action="store_true", help="replace an existing key file")


def _keygen(args: argparse.Namespace) -> int:
    from scanner.errors import OprfError
    from scanner.oprf import OprfKey

    key = OprfKey.generate()
    try:
        key.save(args.out, force=args.force)
    except (OprfError, OSError) as exc:
        print(f"pocketscan authority oprf-keygen: {exc}", file=sys.stderr)
        return 2
    print(key.public_key.hex())
    return 0


def _serve(args: argparse.Namespace) -> int:
    import asyncio

    from client.authority.oprf_service import OprfService, run_service
    from scanner.errors import OprfError
    from scanner.oprf import OprfKey

    if args.per_minute < 1 or args.per_day < 1:
        print("pocketscan authority oprf: --per-minute and --per-day must be at least 1", file=sys.stderr)
        return 2
    if not 0 <= args.port <= 65535:
        print("pocketscan authority oprf: --port must be 0..65535", file=sys.stderr)
        return 2
    try:
        key = OprfKey.load(args.key)
        service = OprfService(
            key, host=args.host, port=args.port, per_minute=args.per_minute, per_day=args.per_day
        )
        return asyncio.run(run_service(service, quiet=args.quiet))
    except OprfError as exc:
        print(f"pocketscan authority oprf: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"pocketscan authority oprf: cannot start: {exc}", file=sys.stderr)
        return 2


def account_signing_seed(profile_dir: str) -> bytes:
    """The account's Ed25519 seed from a messenger profile (passphrase from ``$POCKETSCAN_PASSPHRASE``)."""
    import os
    from pathlib import Path

    from client.core import Core
    from client.locations import Profile
    from client.store import Store

    profile = Profile(Path(profile_dir).expanduser().absolute())
    if not profile.store_file.exists():
        raise ValueError(f"{profile_dir} holds no pocketscan account")
    passphrase = None
    if Store.is_protected(profile.store_file):
        passphrase = os.environ.get("POCKETSCAN_PASSPHRASE")
        if not passphrase:
            raise ValueError("the profile is protected: set POCKETSCAN_PASSPHRASE")
    core = Core.open(profile, passphrase=passphrase)
    try:
        return bytes(core.identity.seed)
    finally:
        core.close()
