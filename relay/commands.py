"""`pocketscan relay` and `pocketscan snapshot publish` (cheap to import: heavy modules load in handlers)."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Protocol

__all__ = ["CommandRegistry", "register"]


class CommandRegistry(Protocol):
    """Where the relay's commands go; the relay imports no client module, so this Protocol is local."""

    def command(self, name: str, handler: Callable[[argparse.Namespace], int], *, help: str,
                description: str | None = ..., epilog: str | None = ...) -> argparse.ArgumentParser: ...

    def group(self, name: str, *, help: str | None = ...) -> CommandRegistry: ...


def _add_relay(registry: CommandRegistry) -> None:
    """Add ``relay``: the relay server and its options."""
    parser = registry.command(
        "relay",
        _relay,
        help="run the store-and-forward relay (WebSocket server)",
        description=(
            "Run the pocketscan relay: a WebSocket server that stores and forwards end-to-end encrypted\n"
            "envelopes, serves prekey bundles, attachment blobs and the signed scanning snapshot.\n"
            "It never sees plaintext. Protocol: docs/protocol.md."
        ),
        epilog=(
            "examples:\n"
            "  pocketscan relay --db relay.sqlite\n"
            "  pocketscan relay --port 8766 --redis redis://127.0.0.1:6379/0   # a fleet sharing Redis\n"
            "  pocketscan relay --authority-pubkey HEX --metadata-log relay-meta.jsonl"
        ),
    )
    _add_listen_options(parser)
    _add_limit_options(parser)
    parser.add_argument(
        "--public-url",
        metavar="URL",
        action="append",
        default=[],
        help="ws:// or wss:// URL clients use to reach this relay (repeatable; default: the bound "
        "host:port). Clients sign it when they authenticate; set it behind a proxy or a 0.0.0.0 bind",
    )
    parser.add_argument(
        "--ping-interval",
        type=float,
        default=20.0,
        help="seconds between keepalive pings (a peer silent for two intervals is dropped)",
    )
    parser.add_argument("--event-loop", choices=("auto", "uvloop", "asyncio"), default="auto",
                        help="event loop: uvloop when installed (auto, the default) "
                        "or the standard asyncio loop")
    parser.add_argument("--quiet", action="store_true", help="print only the listening line")


def _add_listen_options(parser: argparse.ArgumentParser) -> None:
    """Where the relay listens, what it stores in, who may publish, what it logs."""
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8765, help="port (default 8765; 0 picks a free one)")
    store = parser.add_mutually_exclusive_group()
    store.add_argument("--db", default="relay.sqlite", help="SQLite database file (default relay.sqlite)")
    store.add_argument(
        "--redis", metavar="URL", help="share mailboxes through Redis, e.g. redis://127.0.0.1:6379/0"
    )
    parser.add_argument(
        "--redis-prefix", default="pocketscan:", help="key prefix in Redis (default pocketscan:)"
    )
    parser.add_argument(
        "--authority-pubkey",
        metavar="HEX",
        action="append",
        default=[],
        help="Ed25519 public key (64 hex) allowed to publish snapshots (repeatable)",
    )
    parser.add_argument(
        "--metadata-log",
        metavar="PATH",
        help="append what the relay learns (who, to whom, sizes, times; never contents) as JSON lines",
    )
    parser.add_argument(
        "--sync",
        choices=("full", "normal"),
        default="full",
        help="SQLite synchronous mode: full survives power loss, normal only process crashes",
    )


def _add_limit_options(parser: argparse.ArgumentParser) -> None:
    """Lifetimes, quotas and rate limits."""
    parser.add_argument(
        "--ttl-days", type=float, default=30.0, help="lifetime of undelivered envelopes and blobs"
    )
    parser.add_argument("--mailbox-max", type=int, default=10_000, help="per-mailbox quota (envelopes)")
    parser.add_argument(
        "--account-rate", type=float, default=2000.0, help="requests per second per account (0 = unlimited)"
    )
    parser.add_argument(
        "--address-rate",
        type=float,
        default=50_000.0,
        help="requests per second per client address (0 = unlimited)",
    )
    parser.add_argument("--max-connections", type=int, default=10_000, help="simultaneous connections")
    parser.add_argument(
        "--connections-per-address",
        type=int,
        default=256,
        help="simultaneous connections from one client address (default 256; 0 = unlimited)",
    )
    parser.add_argument(
        "--sender-share",
        type=float,
        default=0.25,
        help="fraction of one mailbox's quota one sender's undelivered envelopes may hold (default 0.25)",
    )
    parser.add_argument(
        "--blob-quota-mb",
        type=float,
        default=512.0,
        help="per-account quota of live blob bytes in MiB (default 512; blobs expire with --ttl-days)",
    )
    parser.add_argument(
        "--blob-quota-count", type=int, default=1000, help="per-account quota of live blobs (default 1000)"
    )
    _add_prekey_limits(parser)


def _add_prekey_limits(parser: argparse.ArgumentParser) -> None:
    """How fast prekey bundles and one-time prekeys are handed out."""
    parser.add_argument(
        "--prekey-fetch-rate",
        type=float,
        default=1.0,
        help="prekey fetches per second per requesting account (default 1; 0 = unlimited)",
    )
    parser.add_argument(
        "--prekey-fetch-burst",
        type=float,
        default=30.0,
        help="burst of prekey fetches per account (default 30)",
    )
    parser.add_argument(
        "--prekey-target-per-hour",
        type=float,
        default=60.0,
        help="one-time prekeys of one account handed out per hour; beyond it bundles come without one "
        "(default 60; 0 = unlimited)",
    )
    parser.add_argument(
        "--prekey-target-burst",
        type=float,
        default=20.0,
        help="burst of one-time prekeys of one account handed out (default 20)",
    )


def _add_snapshot_publish(registry: CommandRegistry) -> None:
    """Add ``snapshot publish`` (the ``snapshot`` group is shared with the scanner)."""
    snapshot = registry.group("snapshot")
    pub = snapshot.command(
        "publish",
        _publish,
        help="publish a signed snapshot file to a relay (authenticated by the authority key)",
        epilog=(
            "example:\n  pocketscan snapshot publish SNAP.bin --relay ws://127.0.0.1:8765 --key AUTHORITY.key"
        ),
    )
    pub.add_argument("snapshot", metavar="SNAP.bin", help="signed snapshot file")
    pub.add_argument("--relay", required=True, metavar="URL", help="relay address, ws://HOST:PORT")
    pub.add_argument("--key", required=True, metavar="AUTHORITY.key", help="authority private key file")
    pub.add_argument(
        "--version",
        type=int,
        help="expected snapshot version (the signed header's version is published; a mismatch is an error)",
    )
    pub.add_argument("--json", action="store_true", help="print the result as JSON")
    pub.add_argument("--wait", type=float, default=0.0, metavar="SECONDS",
                     help="keep trying to reach a relay that is still starting for up to SECONDS (default 0)")


#: One function per command, in the order ``pocketscan --help`` lists them.
_COMMANDS: tuple[Callable[[CommandRegistry], None], ...] = (_add_relay, _add_snapshot_publish)


def register(registry: CommandRegistry) -> None:
    """Add the relay commands."""
    for add in _COMMANDS:
        add(registry)


def _relay(args: argparse.Namespace) -> int:
    from relay.serve import run_from_args

    return run_from_args(args)


def _publish(args: argparse.Namespace) -> int:
    from relay.publish import main

    return main(args)
