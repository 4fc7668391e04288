"""Asyncio client library of the relay protocol: :class:`RelayConnection`.

It connects, authenticates with an Ed25519 signing key (docs/protocol.md, "Authentication"),
matches replies to requests by id (many requests may be in flight), and hands server pushes
(``msg`` envelopes and ``snapshot`` announcements) to the application through queues or
callbacks. It knows nothing about encryption: envelopes are opaque bytes. The messaging client's
network module wraps it (reconnect, persisted outbox, inbound dedupe by message id).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import itertools
import logging
import os
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol

import nacl.signing
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidURI
from websockets.protocol import State

from relay import protocol as p
from relay.errors import (
    AuthError,
    ConnectionLost,
    LimitExceeded,
    NotFound,
    ProtocolError,
    RelayError,
    RequestFailed,
)

__all__ = ["Delivery", "RelayConnection", "Signer", "SnapshotAnnouncement"]

log = logging.getLogger("pocketscan.relay.client")


class Signer(Protocol):
    """Anything holding an Ed25519 key that can sign (e.g. ``scanner.authority.AuthorityKey``)."""

    @property
    def public_key(self) -> bytes:
        """The 32-byte Ed25519 public key."""

    def sign(self, message: bytes) -> bytes:
        """A 64-byte detached Ed25519 signature."""


@dataclass(frozen=True, slots=True)
class Delivery:
    """An envelope pushed by the relay; acknowledge it with :meth:`RelayConnection.ack` once stored."""

    mid: str
    sender: str
    ts: float
    env: bytes


@dataclass(frozen=True, slots=True)
class SnapshotAnnouncement:
    """The relay's description of its newest snapshot (the file itself is a blob)."""

    version: int
    blob: str
    size: int
    sha256: bytes


_LIMIT_CODES = {p.ErrorCode.QUOTA, p.ErrorCode.TOO_LARGE, p.ErrorCode.RATE_LIMITED}


def _error(frame: dict[str, Any]) -> Exception:
    code = str(frame.get("code", "error"))
    msg = str(frame.get("msg", ""))
    if code == p.ErrorCode.NOT_FOUND:
        return NotFound(msg)
    if code in _LIMIT_CODES:
        return LimitExceeded(code, f"relay refused the request ({code}): {msg}")
    if code in (p.ErrorCode.AUTH_FAILED, p.ErrorCode.VERSION, p.ErrorCode.UNAUTHORIZED):
        return AuthError(f"relay refused authentication ({code}): {msg}")
    return RequestFailed(code, msg)


def _expire(fut: asyncio.Future[dict[str, Any]], kind: str, timeout: float) -> None:
    if not fut.done():
        fut.set_exception(ConnectionLost(f"no reply to {kind} within {timeout} s"))


_WRITE_HIGH = 64 * 1024


class RelayConnection:
    """One authenticated connection to a relay. Create it with :meth:`connect`."""

    def __init__(
        self,
        ws: ClientConnection,
        signing_key: nacl.signing.SigningKey | Signer,
        *,
        request_timeout: float = 60.0,
        ack_delay: float = 0.05,
        on_message: Callable[[Delivery], Awaitable[None] | None] | None = None,
        on_snapshot: Callable[[SnapshotAnnouncement], Awaitable[None] | None] | None = None,
        on_prekeys_low: Callable[[int], Awaitable[None] | None] | None = None,
        relay: str = "",
    ) -> None:
        self._ws = ws
        self.relay = relay
        """The ``host:port`` this connection reached, signed in ``auth`` (``protocol.relay_authority``)."""
        self._on_prekeys_low = on_prekeys_low
        if isinstance(signing_key, nacl.signing.SigningKey):
            nacl_key = signing_key
            self.public_key = bytes(nacl_key.verify_key)
            self._sign: Callable[[bytes], bytes] = lambda message: bytes(nacl_key.sign(message).signature)
        else:
            self.public_key = bytes(signing_key.public_key)
            self._sign = signing_key.sign
        self.account = p.account_id_from_public_key(self.public_key)
        """This connection's account id (the digest of the public key)."""
        self.request_timeout = request_timeout
        self.limits: dict[str, int] = {}
        self.version = 0
        self.authority = False
        self.messages: asyncio.Queue[Delivery | None] = asyncio.Queue()
        """Pushed envelopes (None once the connection closed), unless ``on_message`` is given."""
        self.snapshots: asyncio.Queue[SnapshotAnnouncement] = asyncio.Queue()
        """Snapshot announcements, unless ``on_snapshot`` is given."""
        self._on_message = on_message
        self._on_snapshot = on_snapshot
        self._ids = itertools.count(1)
        self._pending: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self._reader: asyncio.Task[None] | None = None
        self.ack_delay = ack_delay
        """Seconds :meth:`ack_soon` waits for a ``send`` to carry acknowledgements before sending them."""
        self._ack_queue: list[str] = []
        self._ack_timer: asyncio.TimerHandle | None = None
        self._background: set[asyncio.Task[Any]] = set()
        self._out: deque[bytes] = deque()
        self._out_scheduled = False
        self._slow_writer: asyncio.Task[None] | None = None
        self.closed = asyncio.Event()
        self.close_reason = ""

    # --- connecting ----------------------------------------------------------------------------

    @classmethod
    async def connect(
        cls,
        url: str,
        signing_key: nacl.signing.SigningKey | Signer,
        *,
        open_timeout: float = 10.0,
        **kwargs: Any,
    ) -> RelayConnection:
        """Connect to ``url`` (``ws://host:port``) and authenticate (the signature names its host and port).

        Raises:
            ConnectionLost: the relay cannot be reached.
            AuthError: the relay refused the authentication.
            ProtocolError: the relay does not speak this protocol.
        """
        try:
            ws = await connect(
                url,
                max_size=p.MAX_FRAME,
                compression=None,
                open_timeout=open_timeout,
                ping_interval=20,
                ping_timeout=20,
                close_timeout=2,
            )
        except (OSError, InvalidHandshake, InvalidURI, TimeoutError) as exc:
            raise ConnectionLost(f"cannot connect to relay {url}: {exc}") from None
        try:
            relay = p.relay_authority(url)
        except ProtocolError:
            await ws.close()
            raise
        self = cls(ws, signing_key, relay=relay, **kwargs)
        try:
            await asyncio.wait_for(self._authenticate(), open_timeout)
        except BaseException:
            await ws.close()
            raise
        return self

    async def _authenticate(self) -> None:
        try:
            hello = p.decode(await self._ws.recv())
        except ConnectionClosed as exc:
            raise ConnectionLost(f"relay closed the connection: {exc}") from None
        if hello.get("t") != "hello":
            raise ProtocolError("relay did not start with hello")
        offered = hello.get("versions")
        nonce, conn_id = hello.get("nonce"), hello.get("conn")
        if not isinstance(offered, list) or not isinstance(nonce, bytes) or not isinstance(conn_id, bytes):
            raise ProtocolError("malformed hello from relay")
        common = sorted(set(offered) & set(p.SUPPORTED_VERSIONS))
        if not common:
            raise AuthError(
                f"no common protocol version (relay offers {offered}, we speak {list(p.SUPPORTED_VERSIONS)})"
            )
        version = common[-1]
        limits = hello.get("limits")
        self.limits = dict(limits) if isinstance(limits, dict) else {}
        sig = self._sign(p.auth_transcript(nonce, conn_id, version, self.relay))
        self._reader = asyncio.get_running_loop().create_task(self._read())
        reply = await self.request(p.Auth(id=0, v=version, pk=self.public_key, sig=sig))
        if reply.get("account") != self.account:
            raise AuthError("relay derived a different account id from our key")
        self.version = version
        self.authority = bool(reply.get("authority"))

    async def close(self) -> None:
        """Flush pending acknowledgements and close (unacknowledged envelopes stay stored at the relay)."""
        if self._ack_queue and not self.closed.is_set():
            with contextlib.suppress(RelayError):
                await self.flush_acks()
        await self._ws.close()
        if self._reader is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader

    async def __aenter__(self) -> RelayConnection:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # --- request/response ----------------------------------------------------------------------

    async def request(self, req: p.Request) -> dict[str, Any]:
        """Send a request (its id is replaced by a fresh one) and return the ``ok`` reply.

        Raises:
            NotFound, LimitExceeded, AuthError, RequestFailed: the relay's error reply.
            ConnectionLost: the connection closed first.
        """
        if self.closed.is_set():
            raise ConnectionLost(f"connection to relay is closed ({self.close_reason})")
        rid = next(self._ids)
        frame = req.to_frame()
        frame["id"] = rid
        fut: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._pending[rid] = fut
        self._queue_frame(p.encode(frame))
        timer = asyncio.get_running_loop().call_later(
            self.request_timeout, _expire, fut, req.TYPE, self.request_timeout
        )
        try:
            reply = await fut
        finally:
            timer.cancel()
            self._pending.pop(rid, None)
        if reply.get("t") == "error":
            raise _error(reply)
        return reply

    def _queue_frame(self, data: bytes) -> None:
        """Queue a frame; all frames queued in one event-loop tick leave in one socket write."""
        self._out.append(data)
        if not self._out_scheduled:
            self._out_scheduled = True
            asyncio.get_running_loop().call_soon(self._flush_out)

    def _flush_out(self) -> None:
        self._out_scheduled = False
        if not self._out or (self._slow_writer is not None and not self._slow_writer.done()):
            return  # the slow writer is draining the queue in order
        ws = self._ws
        if ws.protocol.state is State.OPEN and ws.transport.get_write_buffer_size() <= _WRITE_HIGH:
            while self._out:
                ws.protocol.send_binary(self._out.popleft())
            ws.transport.write(b"".join(ws.protocol.data_to_send()))
        else:  # congested (or closing): wait for the socket, frame by frame
            self._slow_writer = asyncio.get_running_loop().create_task(self._write_slowly())

    async def _write_slowly(self) -> None:
        try:
            while self._out:
                await self._ws.send(self._out.popleft())
        except ConnectionClosed:
            self._out.clear()  # the reader fails the pending requests when it sees the close

    async def _read(self) -> None:
        try:
            async for data in self._ws:
                try:
                    frame = p.decode(data, max_size=p.MAX_FRAME)
                except ProtocolError:
                    continue
                kind = frame["t"]
                if kind in ("ok", "error"):
                    rid = frame.get("id")
                    fut = self._pending.get(rid) if isinstance(rid, int) else None
                    if fut is not None and not fut.done():
                        fut.set_result(frame)
                    elif kind == "error":
                        self.close_reason = str(frame.get("msg", ""))
                elif kind == "msg":
                    await self._deliver(frame)
                elif kind == "snapshot":
                    await self._announce(frame)
                elif kind == "prekeys.low":
                    self._prekeys_low(frame)
        except ConnectionClosed:
            pass
        finally:
            if self._ws.close_code is not None and not self.close_reason:
                self.close_reason = f"{self._ws.close_code} {self._ws.close_reason or ''}".strip()
            self.closed.set()
            for fut in self._pending.values():
                if not fut.done():
                    fut.set_exception(ConnectionLost(f"connection to relay closed ({self.close_reason})"))
            self.messages.put_nowait(None)

    async def _deliver(self, frame: dict[str, Any]) -> None:
        mid, sender, ts, env = frame.get("mid"), frame.get("from"), frame.get("ts"), frame.get("env")
        if not (
            isinstance(mid, str)
            and isinstance(sender, str)
            and isinstance(env, bytes)
            and isinstance(ts, (int, float))
        ):
            return
        delivery = Delivery(mid, sender, float(ts), env)
        if self._on_message is None:
            self.messages.put_nowait(delivery)
        else:
            try:
                result = self._on_message(delivery)
                if result is not None:
                    await result
            except Exception:  # the application's bug must not stop the connection; not acked: redelivered
                log.exception("on_message callback failed for %s", delivery.mid)

    async def _announce(self, frame: dict[str, Any]) -> None:
        try:
            info = SnapshotAnnouncement(
                int(frame["version"]), str(frame["blob"]), int(frame["size"]), bytes(frame["sha256"])
            )
        except (KeyError, TypeError, ValueError):
            return
        if self._on_snapshot is None:
            self.snapshots.put_nowait(info)
        else:
            try:
                result = self._on_snapshot(info)
                if result is not None:
                    await result
            except Exception:
                log.exception("on_snapshot callback failed")

    def _prekeys_low(self, frame: dict[str, Any]) -> None:
        """Run ``on_prekeys_low`` in its own task: it uploads prekeys, whose replies this reader reads."""
        count = frame.get("otks")
        callback = self._on_prekeys_low
        if callback is None or not isinstance(count, int) or isinstance(count, bool):
            return

        async def run() -> None:
            try:
                result = callback(max(0, count))
                if result is not None:
                    await result
            except Exception:
                log.exception("on_prekeys_low callback failed")

        task = asyncio.get_running_loop().create_task(run())
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    # --- mailbox -------------------------------------------------------------------------------

    async def send(self, to: str, envelope: bytes, *, cid: bytes | None = None) -> tuple[str, float, bool]:
        """Store ``envelope`` for ``to``; return (message id, relay timestamp, was_duplicate).

        Pass the same ``cid`` (8..32 random bytes, persisted in the outbox) when retrying, so a
        send that reached the relay before a disconnect is not stored twice.
        """
        piggyback = tuple(self._ack_queue[: p.MAX_ACK_BATCH])
        del self._ack_queue[: len(piggyback)]
        reply = await self.request(
            p.Send(id=0, to=to, env=envelope, cid=cid or os.urandom(16), ack=piggyback)
        )
        return str(reply["mid"]), float(reply["ts"]), bool(reply.get("dup", False))

    async def ack(self, mids: list[str]) -> list[str]:
        """Delete delivered envelopes from our mailbox; return the ids that were still there."""
        done: list[str] = []
        for start in range(0, len(mids), p.MAX_ACK_BATCH):
            try:
                reply = await self.request(p.Ack(id=0, mids=tuple(mids[start : start + p.MAX_ACK_BATCH])))
            except NotFound:
                continue
            done.extend(reply.get("acked", []))
        return done

    def ack_soon(self, mids: list[str]) -> None:
        """Acknowledge later: on the next :meth:`send` (piggybacked, no extra frame) or after ``ack_delay``.

        Use it once the envelopes are stored durably by the application; if the connection drops
        first they are simply delivered again (clients drop duplicates by id).
        """
        self._ack_queue.extend(mids)
        if self._ack_timer is None and not self.closed.is_set():
            self._ack_timer = asyncio.get_running_loop().call_later(self.ack_delay, self._ack_timer_fired)

    def _ack_timer_fired(self) -> None:
        self._ack_timer = None
        if self._ack_queue and not self.closed.is_set():
            task = asyncio.get_running_loop().create_task(self.flush_acks())
            self._background.add(task)
            task.add_done_callback(self._background_done)

    def _background_done(self, task: asyncio.Task[Any]) -> None:
        self._background.discard(task)
        if not task.cancelled():
            task.exception()  # connection loss: the relay redelivers, nothing to report

    async def flush_acks(self) -> list[str]:
        """Send the acknowledgements queued by :meth:`ack_soon` now."""
        mids, self._ack_queue = self._ack_queue, []
        if self._ack_timer is not None:
            self._ack_timer.cancel()
            self._ack_timer = None
        return await self.ack(mids) if mids else []

    async def next_message(self, timeout: float | None = None) -> Delivery | None:
        """The next pushed envelope, or None when the connection closed or ``timeout`` passed."""
        try:
            return await asyncio.wait_for(self.messages.get(), timeout)
        except TimeoutError:
            return None

    # --- prekeys -------------------------------------------------------------------------------

    async def put_prekeys(
        self, bundle: bytes | None, one_time: list[bytes] | None = None, *, replace: bool = False
    ) -> int:
        """Publish our signed bundle and add one-time prekeys; return how many are stored."""
        otks = list(one_time or [])
        count = 0
        first = True
        while first or otks:
            chunk, otks = otks[: p.MAX_OTKS], otks[p.MAX_OTKS :]
            reply = await self.request(
                p.PrekeysPut(
                    id=0, bundle=bundle if first else None, otks=tuple(chunk), replace=replace and first
                )
            )
            count = int(reply["otks"])
            first = False
        return count

    async def get_prekeys(self, account: str) -> tuple[bytes, bytes | None]:
        """Another account's bundle and one of its one-time prekeys (None if exhausted)."""
        reply = await self.request(p.PrekeysGet(id=0, account=account))
        return bytes(reply["bundle"]), reply.get("otk")

    async def count_prekeys(self) -> int:
        """How many of our one-time prekeys are left at the relay."""
        return int((await self.request(p.PrekeysCount(id=0)))["otks"])

    # --- blobs and snapshots -------------------------------------------------------------------

    async def put_blob(self, data: bytes, *, progress: Callable[[int], None] | None = None) -> str:
        """Upload an opaque blob in chunks; return its random id."""
        blob: str | None = None
        chunk = p.BLOB_CHUNK
        offset = 0
        while True:
            piece = data[offset : offset + chunk]
            offset += len(piece)
            final = offset >= len(data)
            reply = await self.request(p.BlobPut(id=0, data=piece, blob=blob, final=final))
            blob = str(reply["blob"])
            if progress is not None:
                progress(offset)
            if final:
                return blob

    async def get_blob(self, blob_id: str, *, progress: Callable[[int, int], None] | None = None) -> bytes:
        """Download a blob by id (NotFound if unknown or expired)."""
        first = await self.request(p.BlobGet(id=0, blob=blob_id, chunk=0))
        chunks, size = int(first["chunks"]), int(first["size"])
        parts = [bytes(first["data"])]
        for index in range(1, chunks):
            reply = await self.request(p.BlobGet(id=0, blob=blob_id, chunk=index))
            parts.append(bytes(reply["data"]))
            if progress is not None:
                progress(sum(map(len, parts)), size)
        data = b"".join(parts)
        if len(data) != size:
            raise ProtocolError("blob size does not match what the relay announced")
        return data

    async def snapshot_info(self) -> SnapshotAnnouncement | None:
        """The newest snapshot the relay has, or None."""
        try:
            reply = await self.request(p.SnapshotGet(id=0))
        except NotFound:
            return None
        return SnapshotAnnouncement(
            int(reply["version"]), str(reply["blob"]), int(reply["size"]), bytes(reply["sha256"])
        )

    async def fetch_snapshot(
        self, info: SnapshotAnnouncement | None = None
    ) -> tuple[SnapshotAnnouncement, bytes] | None:
        """Download the newest (or the announced) snapshot file; its SHA-256 is checked here, its
        signature must be checked by the caller against the pinned authority key."""
        info = info or await self.snapshot_info()
        if info is None:
            return None
        data = await self.get_blob(info.blob)
        if hashlib.sha256(data).digest() != info.sha256:
            raise ProtocolError("snapshot download does not match its announced SHA-256")
        return info, data

    async def publish_snapshot(self, data: bytes, version: int) -> int:
        """Authority only: upload a signed snapshot file and make it the newest."""
        blob = await self.put_blob(data)
        reply = await self.request(
            p.SnapshotPublish(id=0, version=version, blob=blob, sha256=hashlib.sha256(data).digest())
        )
        return int(reply["version"])
