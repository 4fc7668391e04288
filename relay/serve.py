"""Start a relay from command-line options (`pocketscan relay`), or embedded in another program."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import signal
import sys

from relay.core import RelayCore
from relay.errors import ProtocolError, RelayError
from relay.limits import DAY, Limits
from relay.metadata import MetadataLog
from relay.protocol import relay_authority
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
    public_urls: tuple[str, ...] = (),
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
    for url in public_urls:
        try:
            relay_authority(url)
        except ProtocolError as exc:
            raise RelayError(f"--public-url: {exc}") from None
    return RelayServer(core, host=host, port=port, public_urls=public_urls)


def run_from_args(args: argparse.Namespace) -> int:
    """Handler of `pocketscan relay`: run until SIGINT/SIGTERM."""
    try:
        try:
            limits = _limits_from_args(args)
        except ValueError as exc:
            raise RelayError(str(exc)) from None
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
            public_urls=tuple(args.public_url),
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


def _limits_from_args(args: argparse.Namespace) -> Limits:
    """The relay's limits from `pocketscan relay` flags (ValueError for an invalid combination)."""
    for name in ("mailbox_max", "blob_quota_count", "connections_per_address", "max_connections"):
        if getattr(args, name) < 0:
            raise ValueError(f"--{name.replace('_', '-')} must not be negative")
    if args.blob_quota_mb < 0 or args.prekey_fetch_rate < 0 or args.prekey_target_per_hour < 0:
        raise ValueError("quotas and rates must not be negative")
    if not 0 < args.sender_share <= 1:
        raise ValueError(f"--sender-share must be in (0, 1], not {args.sender_share}")
    return Limits(
        ttl=args.ttl_days * DAY,
        mailbox_max_messages=args.mailbox_max,
        account_rate=args.account_rate,
        account_burst=max(1.0, args.account_rate * 2),
        address_rate=args.address_rate,
        address_burst=max(1.0, args.address_rate * 2),
        max_connections=args.max_connections,
        ping_interval=args.ping_interval,
        ping_timeout=args.ping_interval,
        mailbox_sender_share=args.sender_share,
        blob_quota_bytes=int(args.blob_quota_mb * 1024 * 1024),
        blob_quota_count=args.blob_quota_count,
        prekey_fetch_rate=args.prekey_fetch_rate,
        prekey_fetch_burst=max(1.0, args.prekey_fetch_burst),
        prekey_target_rate=args.prekey_target_per_hour / 3600.0,
        prekey_target_burst=max(1.0, args.prekey_target_burst),
        connections_per_address=args.connections_per_address,
    )


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
