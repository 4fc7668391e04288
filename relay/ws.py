"""The relay's network edge: a thin ``websockets.asyncio`` server around :class:`RelayCore`.

Per connection: send ``hello``; read binary frames, decode them with ``relay.protocol``, check the
rate limits, run each request in its own task (so a client may pipeline many sends) and queue the
reply. Frames to a client go through a bounded queue drained by one writer task; a client that
stops reading until the queue is full is disconnected (its envelopes stay stored). A decodable
request with bad fields gets an error reply carrying its id and the connection goes on (up to
``Limits.bad_requests`` refusals); undecodable or oversized frames, floods and failed
authentication close the offender's connection only.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Callable
from typing import Any

import cbor2
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.protocol import State

from relay import protocol as p
from relay.core import RelayCore, Session
from relay.errors import ProtocolError

__all__ = ["RelayServer", "relay_names"]

log = logging.getLogger("pocketscan.relay")

_WRITE_HIGH = 64 * 1024
CLOSE_POLICY = 1008
CLOSE_TRY_AGAIN = 1013


class _Connection:
    """One client connection: a bounded outgoing queue, flushed once per event-loop tick.

    Frames queued during one tick (say a reply and a push) leave in one socket write. When the
    socket is congested the writer task takes over and waits for it to drain.
    """

    def __init__(self, ws: ServerConnection, limit: int) -> None:
        self.ws = ws
        self.limit = limit
        self.queue: deque[bytes] = deque()
        self.scheduled = False
        self.loop = asyncio.get_running_loop()
        self.wakeup = asyncio.Event()
        self.closing = False
        self.close_args: tuple[int, str] | None = None
        self.inflight = 0
        self.room = asyncio.Event()
        self.room.set()

    def send(self, frame: dict[str, Any]) -> bool:
        if self.closing:
            return False
        if len(self.queue) >= self.limit:
            self.abort(CLOSE_POLICY, "slow reader: send queue full")
            return False
        self.queue.append(cbor2.dumps(frame))
        if not self.scheduled:
            self.scheduled = True
            self.loop.call_soon(self._flush)
        return True

    def _flush(self) -> None:
        self.scheduled = False
        if self.queue and not self.wakeup.is_set() and not self._write_batch():
            self.wakeup.set()  # congested or closing: the writer task waits for the socket

    def close(self, code: int, reason: str) -> None:
        """Close after the frames already queued (e.g. the error reply) are written."""
        if self.closing:
            return
        self.closing = True
        self.close_args = (code, reason)
        self.wakeup.set()

    def abort(self, code: int, reason: str) -> None:
        """Close now, dropping queued frames (slow reader)."""
        if self.closing:
            return
        self.closing = True
        self.queue.clear()
        self.wakeup.set()
        asyncio.get_running_loop().create_task(self.ws.close(code, reason))

    def _write_batch(self) -> bool:
        """Frame every queued message and hand them to the socket in one write (one syscall, not one each).

        Uses the connection's Sans-I/O ``protocol`` and ``transport`` (public attributes of
        websockets' asyncio connection); falls back to ``send`` when the socket is congested
        (that path waits for the write buffer to drain) or the connection is not open.
        """
        ws = self.ws
        transport = ws.transport
        if ws.protocol.state is not State.OPEN or transport.get_write_buffer_size() > _WRITE_HIGH:
            return False
        protocol = ws.protocol
        queue = self.queue
        while queue:
            protocol.send_binary(queue.popleft())
        transport.write(b"".join(protocol.data_to_send()))
        return True

    async def writer(self) -> None:
        ws = self.ws
        queue = self.queue
        with contextlib.suppress(ConnectionClosed):
            while True:
                await self.wakeup.wait()
                self.wakeup.clear()
                while queue:
                    if self._write_batch():
                        continue
                    await ws.send(queue.popleft())
                if self.closing:
                    break
            if self.close_args is not None:
                await ws.close(*self.close_args)


_LOOPBACK = ("127.0.0.1", "localhost", "[::1]")
_WILDCARD = ("", "0.0.0.0", "::", "[::]")


def relay_names(host: str, port: int, public_urls: tuple[str, ...] = ()) -> tuple[str, ...]:
    """The ``host:port`` names the auth transcript may carry for a relay bound to ``host:port``.

    The public URLs if given; else the bound address (any loopback spelling for a loopback bind);
    empty for a wildcard bind without public URLs (the server then checks the port only).
    """
    if public_urls:
        return tuple(dict.fromkeys(p.relay_authority(url) for url in public_urls))
    bound = host.strip().lower()
    if bound in _WILDCARD:
        return ()
    if ":" in bound and not bound.startswith("["):
        bound = f"[{bound}]"
    if bound in _LOOPBACK:
        return tuple(f"{name}:{port}" for name in _LOOPBACK)
    return (f"{bound}:{port}",)


class RelayServer:
    """Serves a :class:`RelayCore` on ``ws://host:port`` (port 0 picks a free one)."""

    def __init__(
        self,
        core: RelayCore,
        *,
        host: str = "127.0.0.1",
        port: int = 8765,
        clock: Callable[[], float] = time.time,
        prune_interval: float = 60.0,
        public_urls: tuple[str, ...] = (),
    ) -> None:
        self.core = core
        self.host = host
        self.port = port
        self.public_urls = public_urls
        """``ws://``/``wss://`` URLs clients use to reach this relay (behind a proxy, or a wildcard bind)."""
        self._names: tuple[str, ...] = ()
        self.clock = clock
        self.prune_interval = prune_interval
        self._server: Server | None = None
        self._background: list[asyncio.Task[None]] = []
        self._handlers: set[asyncio.Task[Any]] = set()

    @property
    def url(self) -> str:
        """The ``ws://`` address clients connect to."""
        return f"ws://{self.host}:{self.port}"

    async def start(self) -> None:
        """Open the store, start listening and the background tasks."""
        await self.core.store.open()
        limits = self.core.limits
        self._server = await serve(
            self._serve_connection,
            self.host,
            self.port,
            max_size=p.MAX_FRAME,
            max_queue=64,
            compression=None,
            ping_interval=limits.ping_interval,
            ping_timeout=limits.ping_timeout,
            close_timeout=2,
        )
        sockets = list(self._server.sockets)
        if sockets:
            self.port = sockets[0].getsockname()[1]
        self._names = relay_names(self.host, self.port, self.public_urls)
        loop = asyncio.get_running_loop()
        self._background.append(loop.create_task(self._maintenance()))
        self._background.append(
            loop.create_task(self.core.store.listen(self._on_mail, self._on_snapshot, self._on_prekeys_low))
        )

    async def stop(self) -> None:
        """Stop accepting, close connections, finish writes and close the store."""
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        for task in self._background:
            task.cancel()
        for task in self._background:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        await self.core.drain_tasks()
        await self.core.store.close()
        if self.core.metadata is not None:
            self.core.metadata.close()

    async def __aenter__(self) -> RelayServer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def serve_forever(self) -> None:
        """Run until cancelled."""
        assert self._server is not None
        await self._server.serve_forever()

    def _on_mail(self, recipient: str) -> None:
        self.core.wake(recipient, self.clock())

    def _on_snapshot(self, info: Any) -> None:
        self.core.snapshot_published(info)

    def add_public_url(self, url: str) -> None:
        """Accept authentications naming ``url`` (a proxy put in front of a running relay).

        Like ``--public-url``: from then on the public URLs are the relay's names, not its bound
        address (behind a proxy a loopback name would be ambiguous across machines).
        """
        self.public_urls = (*self.public_urls, url)
        self._names = relay_names(self.host, self.port, self.public_urls)

    def _on_prekeys_low(self, account: str, count: int) -> None:
        self.core.prekeys_low(account, count)

    def _names_for(self, ws: ServerConnection) -> tuple[str, ...]:
        """The names a client may have used to reach us (the auth transcript must name one)."""
        if self._names:
            return self._names
        # Wildcard bind without --public-url: only the port can be checked; the host is the client's
        # own Host header (a relaying relay on the same port number elsewhere is not detected).
        host = ws.request.headers.get("Host", "") if ws.request is not None else ""
        try:
            name = p.relay_authority(f"ws://{host}")
        except ProtocolError:
            return ()
        return (name,) if name.endswith(f":{self.port}") else ()

    async def _maintenance(self) -> None:
        last_prune = 0.0
        while True:
            now = self.clock()
            if now - last_prune >= self.prune_interval:
                last_prune = now
                try:
                    await self.core.store.prune(now)
                except Exception:
                    log.exception("pruning failed")
            if self.core.metadata is not None:
                self.core.metadata.flush()
            await asyncio.sleep(1.0)

    async def _serve_connection(self, ws: ServerConnection) -> None:
        core = self.core
        address = str(ws.remote_address[0]) if ws.remote_address else "?"
        refusal = core.admit(address, self.clock())
        if refusal is not None:
            await ws.close(CLOSE_TRY_AGAIN, refusal)
            return
        conn = _Connection(ws, core.limits.send_queue)
        session, hello = core.open(address, conn.send, self._names_for(ws))
        loop = asyncio.get_running_loop()
        writer = loop.create_task(conn.writer())
        timer = loop.call_later(core.limits.auth_timeout, self._auth_deadline, session, conn)
        conn.send(hello)
        max_inflight = core.limits.max_inflight
        try:
            async for data in ws:
                if conn.closing:
                    break
                now = self.clock()
                if not core.allow(session, now):
                    conn.send(p.error_frame(None, p.ErrorCode.RATE_LIMITED, "too many requests"))
                    conn.close(CLOSE_POLICY, "rate limit exceeded")
                    break
                try:
                    request = p.decode_request(data)
                except p.UnknownType as exc:
                    conn.send(core.refuse_unknown(session, exc.request_id, str(exc)))
                    if session.close_reason:
                        conn.close(CLOSE_POLICY, session.close_reason)
                        break
                    continue
                except p.FieldError as exc:  # a request-level error: reply with its id, go on
                    conn.send(core.refuse_malformed(session, exc))
                    if session.close_reason:
                        conn.close(CLOSE_POLICY, session.close_reason)
                        break
                    continue
                except ProtocolError as exc:  # frame-level garbage: the stream cannot be trusted
                    conn.send(p.error_frame(None, p.ErrorCode.BAD_REQUEST, str(exc)))
                    conn.close(CLOSE_POLICY, "malformed frame")
                    break
                conn.inflight += 1
                task = loop.create_task(self._run(session, conn, request, now))
                self._handlers.add(task)
                task.add_done_callback(self._handlers.discard)
                if conn.inflight >= max_inflight:
                    conn.room.clear()
                    await conn.room.wait()
        except ConnectionClosed:
            pass
        finally:
            timer.cancel()
            core.close(session, self.clock())
            conn.closing = True
            conn.wakeup.set()
            with contextlib.suppress(asyncio.CancelledError, ConnectionClosed):
                await writer

    async def _run(self, session: Session, conn: _Connection, request: p.Request, now: float) -> None:
        try:
            reply = await self.core.handle(session, request, now)
        except Exception:
            log.exception("internal error handling %s", request.TYPE)
            reply = p.error_frame(request.id, p.ErrorCode.INTERNAL, "internal error")
        conn.inflight -= 1
        conn.room.set()
        conn.send(reply)
        if session.close_reason:
            conn.close(CLOSE_POLICY, session.close_reason)

    @staticmethod
    def _auth_deadline(session: Session, conn: _Connection) -> None:
        if session.account is None and not conn.closing:
            conn.close(CLOSE_POLICY, "authentication timeout")
