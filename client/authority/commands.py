"""`pocketscan authority serve|queue|review|audit|attachment|console`: the authority's long-running side.

Contracts: ``authority serve --key KEY --bank BANK --store STORE --relay URL``; ``authority queue --store
STORE`` (JSON Lines ``{"id", "kind", "received_at", ...}``); ``authority review ID (--accept|--reject)
--store STORE [--note TEXT]``. Bad input (unknown id, wrong key, missing bank or store, a locked store)
exits 2 with one line on stderr.
"""

from __future__ import annotations

import argparse
import getpass
import json
import os
import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from client.authority.store import AuthorityStore
    from client.cli.registry import CommandRegistry

__all__ = ["register"]

_SERVE_EPILOG = """\
one progress line per step goes to stderr: envelopes received or refused, decisions applied, snapshots built,
signed and published, publish failures (retried with backoff; nothing is lost).
the relay must list the authority key (pocketscan relay --authority-pubkey HEX) to accept its snapshots.
stop it with Ctrl-C or SIGTERM.
"""


def register(registry: CommandRegistry) -> None:
    """Add the long-running authority commands to the ``authority`` group."""
    group = registry.group("authority", help="the bank authority: keys, inbox, review and publishing")
    p = group.command("serve", _serve, help="run the authority: open its mailbox, apply decisions, publish",
                      epilog=_SERVE_EPILOG)
    p.add_argument("--key", required=True, metavar="AUTHORITY.key", help="authority private key file")
    p.add_argument("--bank", required=True, metavar="BANK.sqlite", help="the hash bank (must exist)")
    p.add_argument("--store", required=True, metavar="STORE.sqlite",
                   help="the authority store (created on first use)")
    p.add_argument("--relay", required=True, metavar="ws://HOST:PORT", help="relay URL")
    p.add_argument("--source", default="authority-review", metavar="NAME",
                   help="provenance source name of hashes added by accepted submissions "
                        "(default: %(default)s)")
    p.add_argument("--min-sources", type=int, default=1, metavar="N",
                   help="snapshots include only hashes with at least N distinct sources "
                        "(default: %(default)s)")
    p.add_argument("--poll", type=float, default=0.2, metavar="SECONDS",
                   help="how often to look for new decisions in the store (default: %(default)s)")
    p.add_argument("--quiet", action="store_true", help="no progress lines")

    p = group.command("queue", _queue, help="print the waiting items as JSON Lines")
    p.add_argument("--store", required=True, metavar="STORE.sqlite")
    p.add_argument("--all", action="store_true", help="also decided and held items")
    p.add_argument("--kind", choices=("report", "submission", "appeal"), help="only this kind")

    p = group.command("review", _review, help="accept or reject an item (authority serve applies it)")
    p.add_argument("id", metavar="ID", help="item id from `authority queue`")
    decision = p.add_mutually_exclusive_group(required=True)
    decision.add_argument("--accept", action="store_true")
    decision.add_argument("--reject", action="store_true")
    p.add_argument("--store", required=True, metavar="STORE.sqlite")
    p.add_argument("--note", default="", help="why (kept in the audit log and sent to the submitter)")
    p.add_argument("--reviewer", default=None, help="who decides (default: $USER)")

    p = group.command("audit", _audit, help="print the append-only audit log as JSON Lines")
    p.add_argument("--store", required=True, metavar="STORE.sqlite")
    p.add_argument("--item", metavar="ID", help="only entries about this item")

    p = group.command("attachment", _attachment,
                      help="decrypt an appeal's attached image (sent with --attach-image) for review")
    p.add_argument("id", metavar="ID")
    p.add_argument("--store", required=True, metavar="STORE.sqlite")
    p.add_argument("--key", required=True, metavar="AUTHORITY.key")
    p.add_argument("--out", required=True, metavar="FILE", help="where to write the image (mode 0600)")

    p = group.command("console", _console, help="the reviewers' Textual console")
    p.add_argument("--store", required=True, metavar="STORE.sqlite")
    p.add_argument("--reviewer", default=None, help="who decides (default: $USER)")


def _fail(command: str, message: str) -> int:
    print(f"pocketscan authority {command}: {message}", file=sys.stderr)
    return 2


def _reviewer(value: str | None) -> str:
    if value:
        return value[:64]
    try:
        return getpass.getuser()[:64]
    except (KeyError, OSError):
        return "reviewer"


def _open_store(path: str, *, create: bool = False) -> AuthorityStore:
    from client.authority.store import AuthorityStore

    return AuthorityStore(path, create=create)


def _serve(args: argparse.Namespace) -> int:
    import asyncio
    import signal
    from pathlib import Path

    from client.authority.service import AuthorityService
    from client.authority.store import StoreError
    from client.authority.workflow import Workflow
    from scanner.authority import AuthorityKey
    from scanner.bank import HashBank, check_source_name
    from scanner.errors import ScannerError

    if args.min_sources < 1:
        return _fail("serve", "--min-sources must be at least 1")
    if not args.relay.startswith(("ws://", "wss://")):
        return _fail("serve", f"--relay must be a ws:// or wss:// URL, not {args.relay!r}")
    try:
        key = AuthorityKey.load(args.key)
        source = check_source_name(args.source)
        if not Path(args.bank).is_file():
            return _fail("serve", f"{args.bank}: no such bank (create it with `pocketscan bank import`)")
        HashBank(args.bank, create=False).close()
        store = _open_store(args.store, create=True)
    except (ScannerError, StoreError) as exc:
        return _fail("serve", str(exc))
    try:
        store.lock_exclusive()
        store.bind_key(key.public_hex)
    except StoreError as exc:
        store.close()
        return _fail("serve", str(exc))

    def progress(line: str) -> None:
        if not args.quiet:
            print(f"authority: {line}", file=sys.stderr, flush=True)

    workflow = Workflow(store, args.bank, key, source_name=source, min_sources=args.min_sources,
                        progress=progress)
    service = AuthorityService(key, store, workflow, args.relay, progress=progress, poll=max(0.02, args.poll))

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await service.run(stop)

    try:
        asyncio.run(main())
    except (ScannerError, StoreError) as exc:
        return _fail("serve", str(exc))
    finally:
        store.close()
    progress("stopped")
    return 0


def _queue(args: argparse.Namespace) -> int:
    from client.authority.store import StoreError

    try:
        with _open_store(args.store) as store:
            items = store.items(status=None if args.all else "waiting", kind=args.kind)
    except StoreError as exc:
        return _fail("queue", str(exc))
    for item in items:
        print(json.dumps(item.to_json()), flush=True)
    return 0


def _review(args: argparse.Namespace) -> int:
    from client.authority.store import StoreError

    try:
        with _open_store(args.store) as store:
            decision = store.decide(args.id, accept=args.accept, note=args.note,
                                    reviewer=_reviewer(args.reviewer))
    except StoreError as exc:
        return _fail("review", str(exc))
    out: dict[str, Any] = {"id": decision.item_id, "decision": decision.decision, "note": decision.note,
                           "reviewer": decision.reviewer, "decided_at": decision.decided_at}
    print(json.dumps(out))
    return 0


def _audit(args: argparse.Namespace) -> int:
    from client.authority.store import StoreError

    try:
        with _open_store(args.store) as store:
            entries = store.audit_log(item_id=args.item)
    except StoreError as exc:
        return _fail("audit", str(exc))
    for entry in entries:
        print(json.dumps(entry.to_json()))
    return 0


def _attachment(args: argparse.Namespace) -> int:
    from client.authority.items import ItemError
    from client.authority.kinds import open_at_rest
    from client.authority.store import StoreError
    from scanner.authority import AuthorityKey
    from scanner.errors import ScannerError

    try:
        key = AuthorityKey.load(args.key)
        with _open_store(args.store) as store:
            store.get_item(args.id)
            sealed = store.attachment(args.id)
        if sealed is None:
            return _fail("attachment", f"item {args.id} has no attached image")
        image = open_at_rest(sealed, key.seed)
        fd = os.open(args.out, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(image)
    except (StoreError, ScannerError, ItemError) as exc:
        return _fail("attachment", str(exc))
    except OSError as exc:
        return _fail("attachment", f"{args.out}: {exc.strerror}")
    print(json.dumps({"id": args.id, "out": args.out, "size": len(image)}))
    return 0


def _console(args: argparse.Namespace) -> int:
    from client.authority.store import StoreError

    try:
        store = _open_store(args.store)
    except StoreError as exc:
        return _fail("console", str(exc))
    from client.authority.console import ReviewConsole

    try:
        ReviewConsole(store, reviewer=_reviewer(args.reviewer)).run()
    finally:
        store.close()
    return 0
