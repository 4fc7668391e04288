"""`pocketscan authority oprf`: the authority's OPRF evaluation service (websocket, loopback or behind TLS).

One module owns this service's network I/O; the OPRF math is :mod:`scanner.oprf` and the limits are the pure
:class:`client.authority.ratelimit.RateLimiter`. Per connection:

1. the service sends ``{"type": "challenge", "version": 1, "nonce": <32 random bytes, hex>}``;
2. the caller answers ``{"type": "auth", "public_key": <Ed25519, hex>, "signature": <hex>}`` signing
   ``"pocketscan oprf auth v1\\0" || nonce`` with its account key (or a fresh key: then only the per-address
   limit holds it); a bad signature closes the connection;
3. the service answers ``{"type": "ready", "oprf_public_key": <hex>, "limits": {...}}``;
4. each binary request frame (one image: all blinded keys of its 8 variants) is charged to the caller's key
   and address, then evaluated with one batched DLEQ proof; a refusal is a JSON ``error`` with
   ``"code": "rate_limited"`` and ``"retry_after"``, and the connection stays open.

It logs connection counts and refusals, never elements, outputs or full keys. The wire format is specified in
``docs/snapshot-format.md`` section 11.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import nacl.exceptions
import nacl.signing
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed

from client.authority.ratelimit import RateLimiter
from scanner.errors import OprfError
from scanner.oprf import (
    AUTH_CONTEXT,
    MAX_BATCH,
    MAX_FRAME,
    PROTOCOL_VERSION,
    OprfKey,
    decode_request,
    encode_response,
)

__all__ = ["OprfService", "ServiceStats"]

log = logging.getLogger("pocketscan.oprf")

#: Seconds a caller has to answer the challenge.
AUTH_TIMEOUT = 10.0


@dataclass
class ServiceStats:
    """Counters (no elements, no keys): what the operator may see."""

    connections: int = 0
    auth_failures: int = 0
    batches: int = 0
    elements: int = 0
    refused: int = 0
    malformed: int = 0
    cpu_seconds: float = 0.0
    by_window: dict[str, int] = field(default_factory=dict)


class OprfService:
    """The evaluation service (``start``/``stop``; ``url`` once started)."""

    def __init__(
        self,
        key: OprfKey,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        per_minute: int = 60,
        per_day: int = 2000,
        max_batch: int = MAX_BATCH,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.key = key
        self.host = host
        self.port = port
        self.limiter = RateLimiter(per_minute, per_day)
        self.max_batch = max_batch
        self.clock = clock
        self.stats = ServiceStats()
        self._server: Server | None = None

    @property
    def url(self) -> str:
        """The ``ws://`` address callers connect to."""
        return f"ws://{self.host}:{self.port}"

    def limits(self) -> dict[str, int]:
        """The limits announced to callers."""
        return {
            "per_minute": self.limiter.per_minute,
            "per_day": self.limiter.per_day,
            "max_batch": self.max_batch,
        }

    async def start(self) -> None:
        """Start listening."""
        self._server = await serve(
            self._connection,
            self.host,
            self.port,
            max_size=MAX_FRAME,
            max_queue=4,
            compression=None,
            close_timeout=2,
        )
        sockets = list(self._server.sockets)
        if sockets:
            self.port = sockets[0].getsockname()[1]

    async def stop(self) -> None:
        """Stop listening and close every connection."""
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    async def _send_error(self, ws: ServerConnection, code: str, message: str, **extra: Any) -> None:
        await ws.send(json.dumps({"type": "error", "code": code, "message": message, **extra}))

    async def _authenticate(self, ws: ServerConnection) -> str | None:
        nonce = os.urandom(32)
        await ws.send(json.dumps({"type": "challenge", "version": PROTOCOL_VERSION, "nonce": nonce.hex()}))
        try:
            msg = await asyncio.wait_for(ws.recv(), AUTH_TIMEOUT)
            data = json.loads(msg) if isinstance(msg, str) and len(msg) < 4096 else None
            if not isinstance(data, dict) or data.get("type") != "auth":
                raise ValueError("expected an auth message")
            public = bytes.fromhex(str(data.get("public_key", "")))
            signature = bytes.fromhex(str(data.get("signature", "")))
            if len(public) != 32 or len(signature) != 64:
                raise ValueError("bad key or signature length")
            nacl.signing.VerifyKey(public).verify(AUTH_CONTEXT + nonce, signature)
        except (ValueError, TimeoutError, nacl.exceptions.BadSignatureError, nacl.exceptions.CryptoError):
            self.stats.auth_failures += 1
            await self._send_error(ws, "auth", "authentication failed: sign the challenge with your key")
            return None
        await ws.send(
            json.dumps(
                {"type": "ready", "oprf_public_key": self.key.public_key.hex(), "limits": self.limits()}
            )
        )
        return public.hex()

    async def _connection(self, ws: ServerConnection) -> None:
        self.stats.connections += 1
        address = str(ws.remote_address[0]) if ws.remote_address else "?"
        try:
            account = await self._authenticate(ws)
            if account is None:
                return
            async for msg in ws:
                if isinstance(msg, str):
                    self.stats.malformed += 1
                    await self._send_error(ws, "malformed", "requests are binary frames")
                    continue
                try:
                    request_id, elements = decode_request(msg)
                    if len(elements) > self.max_batch:
                        raise OprfError(f"a batch holds at most {self.max_batch} elements")
                except OprfError as exc:
                    self.stats.malformed += 1
                    await self._send_error(ws, "malformed", str(exc))
                    continue
                decision = self.limiter.check({"account": account, "address": address}, self.clock())
                if not decision.allowed:
                    self.stats.refused += 1
                    self.stats.by_window[decision.window] = self.stats.by_window.get(decision.window, 0) + 1
                    log.info("refused a batch: %s limit per %s", decision.scope, decision.window)
                    await self._send_error(
                        ws,
                        "rate_limited",
                        f"rate limit reached ({decision.scope}, per {decision.window}); "
                        f"retry in {decision.retry_after:.0f} s",
                        id=request_id,
                        retry_after=round(decision.retry_after, 1),
                    )
                    continue
                try:
                    evaluation, cpu = await asyncio.to_thread(self._evaluate, elements)
                except OprfError as exc:
                    self.stats.malformed += 1
                    await self._send_error(ws, "malformed", str(exc), id=request_id)
                    continue
                self.stats.batches += 1
                self.stats.elements += len(elements)
                self.stats.cpu_seconds += cpu
                await ws.send(encode_response(request_id, evaluation))
        except ConnectionClosed:
            pass

    def _evaluate(self, elements: list[bytes]) -> tuple[bytes, float]:
        t0 = time.thread_time()
        out = self.key.evaluate_blinded(elements)
        return out, time.thread_time() - t0


async def run_service(service: OprfService, *, quiet: bool) -> int:
    """Run until SIGINT/SIGTERM; prints ``{"listening": url}`` on stdout first."""
    import signal
    import sys

    await service.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    print(
        json.dumps(
            {
                "listening": service.url,
                "oprf_public_key": service.key.public_key.hex(),
                "limits": service.limits(),
            }
        ),
        flush=True,
    )
    if not quiet:
        print(f"pocketscan OPRF service on {service.url}; Ctrl-C to stop", file=sys.stderr, flush=True)
    try:
        await stop.wait()
    finally:
        await service.stop()
    return 0
