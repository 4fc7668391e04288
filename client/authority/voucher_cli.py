"""`pocketscan authority vouchers`: each account's threshold vouchers per key period (cheap to import)."""

from __future__ import annotations

import argparse
import json
import sys

from client.cli.registry import CommandRegistry

__all__ = ["register"]


def register(registry: CommandRegistry) -> None:
    group = registry.group("authority", help="the bank authority: keys, inbox, review and publishing")
    p = group.command(
        "vouchers", _vouchers,
        help="threshold vouchers held per account and key period, as JSON Lines",
        description="One JSON line per account and key period: "
                    '{"account", "period", "vouchers", "threshold", "opened"}. Below the threshold the '
                    "authority holds the vouchers encrypted and cannot open any; at the threshold it opens "
                    "every real one into the review queue.",
    )
    p.add_argument("--store", required=True, metavar="STORE.sqlite", help="the authority store")


def _vouchers(args: argparse.Namespace) -> int:
    from client.authority.store import AuthorityStore, StoreError
    from client.authority.vouchers import voucher_groups

    try:
        with AuthorityStore(args.store) as store:
            groups = voucher_groups(store)
    except StoreError as exc:
        print(f"pocketscan authority vouchers: {exc}", file=sys.stderr)
        return 2
    for g in groups:
        print(json.dumps(g.to_json()), flush=True)
    return 0
