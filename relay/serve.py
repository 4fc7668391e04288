"""Start a relay from command-line options (`pocketscan relay`), or embedded in another program."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import signal
import sys

from relay.core import RelayCore
from relay.errors import RelayError
from relay.limits import DAY, Limits
from relay.metadata import MetadataLog
from relay.store import MailStore
from relay.ws import RelayServer

__all__ = ["build_server", "parse_authority_keys", "run_from_args"]


def parse_authority_keys(values: list[str]) -> frozenset[bytes]:
    """Decode ``--authority-pubkey`` values (64 hex characters each)."""
    keys = set()
    for value in values:
        try:
            key = bytes.fromhex(value.strip())
        except ValueError:
            key = b""
        if len(key) != 32:
            raise RelayError(
                f"--authority-pubkey needs 64 hex characters (an Ed25519 public key), got {value!r}"
            )
        keys.add(key)
    return frozenset(keys)


def build_server(
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    db: str | None = None,
    redis: str | None = None,
    limits: Limits | None = None,
    authorities: frozenset[bytes] = frozenset(),
    metadata_log: str | None = None,
    sync: str = "full",
    redis_prefix: str = "pocketscan:",
) -> RelayServer:
    """A relay server (not started) over SQLite ``db`` or the Redis at ``redis``."""
    store: MailStore
    if redis:
        from relay.store_redis import RedisStore

        store = RedisStore(redis, prefix=redis_prefix)
    else:
        from relay.store_sqlite import SqliteStore

        store = SqliteStore(db or "relay.sqlite", synchronous=sync)
    core = RelayCore(
        store,
        limits=limits,
        authorities=authorities,
        metadata=MetadataLog(metadata_log) if metadata_log else None,
    )
    return RelayServer(core, host=host, port=port)


def run_from_args(args: argparse.Namespace) -> int:
    """Handler of `pocketscan relay`: run until SIGINT/SIGTERM."""
    try:
        limits = Limits(
            ttl=args.ttl_days * DAY,
            mailbox_max_messages=args.mailbox_max,
            account_rate=args.account_rate,
            account_burst=max(1.0, args.account_rate * 2),
            address_rate=args.address_rate,
            address_burst=max(1.0, args.address_rate * 2),
            max_connections=args.max_connections,
            ping_interval=args.ping_interval,
            ping_timeout=args.ping_interval,
        )
        server = build_server(
            host=args.host,
            port=args.port,
            db=args.db,
            redis=args.redis,
            limits=limits,
            authorities=parse_authority_keys(args.authority_pubkey),
            metadata_log=args.metadata_log,
            sync=args.sync,
            redis_prefix=args.redis_prefix,
        )
        coro = _serve(server, quiet=args.quiet, store_desc=args.redis or args.db)
        if getattr(args, "event_loop", "auto") != "asyncio":
            try:
                import uvloop
            except ImportError:
                if args.event_loop == "uvloop":
                    raise RelayError("--event-loop uvloop: uvloop is not installed") from None
            else:
                return int(uvloop.run(coro))
        return asyncio.run(coro)
    except RelayError as exc:
        print(f"pocketscan relay: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"pocketscan relay: cannot start: {exc}", file=sys.stderr)
        return 2


async def _serve(server: RelayServer, *, quiet: bool, store_desc: str) -> int:
    await server.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    print(json.dumps({"listening": server.url}), flush=True)
    if not quiet:
        print(
            f"pocketscan relay on {server.url} (store: {store_desc}); Ctrl-C to stop",
            file=sys.stderr,
            flush=True,
        )
    try:
        await stop.wait()
    finally:
        await server.stop()
    return 0
