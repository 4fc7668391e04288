"""Store-and-forward rules of the relay (docs/protocol.md, "Requests" and "Delivery").

``RelayCore`` turns validated requests into store operations and reply frames, and keeps the
per-connection delivery state (cursor, pushed-but-unacknowledged ids, flow-control window). It
has no sockets and no clock: the transport (``relay/ws.py``) passes ``now`` in and gives each
:class:`Session` a ``send`` callable that queues a frame for the socket.

Delivery: every envelope is stored first (the sender's ``ok`` leaves only after the commit). A
connected recipient then gets it pushed, either directly (single-process store, ids grow in commit
order) or by re-reading its mailbox after a wake-up (shared Redis store). At most
``limits.push_window`` envelopes are pushed and unacknowledged at a time; the rest wait in the store.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import os
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

import nacl.exceptions
import nacl.signing

from relay import protocol as p
from relay.errors import LimitExceeded, NotFound, RelayError, RequestFailed
from relay.limits import Limits, RateLimiter
from relay.metadata import MetadataLog
from relay.store import MailStore, SnapshotInfo, Stored

__all__ = ["RelayCore", "Session"]

Frame = dict[str, Any]


@dataclass(eq=False)
class Session:
    """State of one connection, owned by the core; ``send`` queues a frame (False if the queue is full)."""

    address: str
    send: Callable[[Frame], bool]
    nonce: bytes = field(default_factory=lambda: os.urandom(32))
    connection_id: bytes = field(default_factory=lambda: os.urandom(16))
    account: str | None = None
    public_key: bytes | None = None
    version: int = 0
    authority: bool = False
    cursor: str | None = None
    inflight: set[str] = field(default_factory=set)
    draining: bool = False
    dirty: bool = False
    backlog: bool = False
    relay_names: tuple[str, ...] = ()
    """The ``host:port`` names of this relay the client may have connected to (the auth transcript
    must name one of them)."""
    strikes: int = 0
    close_reason: str | None = None
    """Set by the core when the transport must close this connection after sending the reply."""
    closed: bool = False


class RelayCore:
    """The relay's rules over a ``MailStore``."""

    def __init__(
        self,
        store: MailStore,
        *,
        limits: Limits | None = None,
        authorities: frozenset[bytes] = frozenset(),
        metadata: MetadataLog | None = None,
    ) -> None:
        self.store = store
        self.limits = limits or Limits()
        self.authorities = authorities
        """Ed25519 public keys allowed to publish snapshots."""
        self.metadata = metadata
        self.sessions: dict[str, set[Session]] = {}
        self.connections = 0
        self.by_address: dict[str, int] = {}
        """Open connections per client address (the per-address cap)."""
        self._account_rate = RateLimiter(self.limits.account_rate, self.limits.account_burst)
        self._address_rate = RateLimiter(self.limits.address_rate, self.limits.address_burst)
        self._connect_rate = RateLimiter(self.limits.connect_rate, self.limits.connect_burst)
        self._tasks: set[asyncio.Task[None]] = set()
        self._direct = not store.shared

    # --- connections ---------------------------------------------------------------------------

    def admit(self, address: str, now: float) -> str | None:
        """None if a new connection from ``address`` may proceed, else the reason to refuse it."""
        if self.connections >= self.limits.max_connections:
            return "the relay is at its connection limit"
        cap = self.limits.connections_per_address
        if cap and self.by_address.get(address, 0) >= cap:
            return f"too many connections from this address (at most {cap})"
        if not self._connect_rate.allow(address, now):
            return "too many new connections from this address"
        return None

    def open(
        self, address: str, send: Callable[[Frame], bool], relay_names: tuple[str, ...] = ()
    ) -> tuple[Session, Frame]:
        """Start a connection; return its session and the ``hello`` frame to send.

        ``relay_names``: the ``host:port`` names under which the client may have reached this relay.
        """
        self.connections += 1
        self.by_address[address] = self.by_address.get(address, 0) + 1
        session = Session(address=address, send=send, relay_names=relay_names)
        return session, p.hello_frame(session.nonce, session.connection_id, self.limits.hello())

    def close(self, session: Session, now: float) -> None:
        """Forget a closed connection (its unacknowledged envelopes stay stored)."""
        if session.closed:
            return
        session.closed = True
        self.connections -= 1
        left = self.by_address.get(session.address, 0) - 1
        if left > 0:
            self.by_address[session.address] = left
        else:
            self.by_address.pop(session.address, None)
        if session.account is not None:
            group = self.sessions.get(session.account)
            if group is not None:
                group.discard(session)
                if not group:
                    del self.sessions[session.account]
            self._log("disconnect", now, account=session.account)

    def allow(self, session: Session, now: float) -> bool:
        """Rate limits per address and per account; False means the flood's connection must close."""
        if not self._address_rate.allow(session.address, now):
            return False
        return session.account is None or self._account_rate.allow(session.account, now)

    # --- requests ------------------------------------------------------------------------------

    async def handle(self, session: Session, request: p.Request, now: float) -> Frame:
        """Run one request and return its reply frame (``ok`` or ``error``); never raises RelayError."""
        try:
            if isinstance(request, p.Auth):
                return self._auth(session, request, now)
            if session.account is None:
                session.close_reason = "request before authentication"
                return p.error_frame(request.id, p.ErrorCode.UNAUTHORIZED, "authenticate first")
            handler = self._handlers[type(request)]
            return await handler(self, session, request, now)
        except LimitExceeded as exc:
            return p.error_frame(request.id, exc.code, str(exc))
        except NotFound as exc:  # not a strike: a second device or a retry may ack twice
            return p.error_frame(request.id, p.ErrorCode.NOT_FOUND, str(exc))
        except RequestFailed as exc:
            return self._refuse(session, request.id, exc.code, exc.message)
        except RelayError as exc:
            return p.error_frame(request.id, p.ErrorCode.INTERNAL, str(exc))

    def refuse_unknown(self, session: Session, request_id: int, message: str) -> Frame:
        """Error reply to a request of an unknown type (counts as a strike; closes before authentication)."""
        if session.account is None:
            session.close_reason = "unknown request before authentication"
        return self._refuse(session, request_id, p.ErrorCode.UNKNOWN_TYPE, message)

    def refuse_malformed(self, session: Session, error: p.FieldError) -> Frame:
        """Error reply to a decodable but invalid request: carries its id when readable, counts as a
        strike; before authentication the connection is closed."""
        if session.account is None:
            session.close_reason = "malformed request before authentication"
        session.strikes += 1
        if session.strikes > self.limits.bad_requests:
            session.close_reason = "too many refused requests"
        return p.error_frame(error.request_id, error.code, str(error))

    def _refuse(self, session: Session, request_id: int, code: str, message: str) -> Frame:
        session.strikes += 1
        if session.strikes > self.limits.bad_requests:
            session.close_reason = "too many refused requests"
        return p.error_frame(request_id, code, message)

    def _auth(self, session: Session, req: p.Auth, now: float) -> Frame:
        if session.account is not None:
            return self._refuse(session, req.id, p.ErrorCode.BAD_REQUEST, "already authenticated")
        if req.v not in p.SUPPORTED_VERSIONS:
            session.close_reason = "unsupported protocol version"
            return p.error_frame(
                req.id,
                p.ErrorCode.VERSION,
                f"protocol version {req.v} is not supported; use one of {list(p.SUPPORTED_VERSIONS)}",
            )
        if not self._verify_auth(session, req):
            session.close_reason = "authentication failed"
            return p.error_frame(
                req.id,
                p.ErrorCode.AUTH_FAILED,
                "the signature does not verify for this relay (the transcript must name the host:port "
                "you connected to)",
            )
        account = p.account_id_from_public_key(req.pk)
        session.account = account
        session.public_key = req.pk
        session.version = req.v
        session.authority = any(hmac.compare_digest(req.pk, key) for key in self.authorities)
        self.sessions.setdefault(account, set()).add(session)
        self._log("auth", now, account=account, address=session.address, authority=session.authority)
        self._schedule_drain(session, now)
        return p.ok_frame(req.id, account=account, version=req.v, authority=session.authority)

    @staticmethod
    def _verify_auth(session: Session, req: p.Auth) -> bool:
        """True if ``req.sig`` signs the transcript naming one of this relay's names."""
        try:
            key = nacl.signing.VerifyKey(req.pk)
        except (nacl.exceptions.ValueError, nacl.exceptions.TypeError):
            return False
        for name in session.relay_names:
            try:
                key.verify(p.auth_transcript(session.nonce, session.connection_id, req.v, name), req.sig)
            except (nacl.exceptions.BadSignatureError, nacl.exceptions.ValueError, nacl.exceptions.TypeError):
                continue
            except RelayError:
                return False
            return True
        return False

    async def _send(self, session: Session, req: p.Send, now: float) -> Frame:
        assert session.account is not None
        if len(req.env) > self.limits.envelope_max:
            raise LimitExceeded(
                p.ErrorCode.TOO_LARGE, f"envelopes are limited to {self.limits.envelope_max} bytes"
            )
        put = self.store.put_envelope(
            sender=session.account, recipient=req.to, cid=req.cid, env=req.env, now=now, limits=self.limits
        )
        if req.ack:  # piggybacked acknowledgements (SQLite: committed in the same batch as the envelope)
            acks = self._acknowledge(session, req.ack, now)
            if self.store.shared:  # Redis: both round trips at once
                results = await asyncio.gather(acks, put, return_exceptions=True)
                if isinstance(results[1], BaseException):
                    raise results[1]
                stored, new = results[1]
            else:
                with contextlib.suppress(RelayError):  # best effort: a lost ack means a redelivery
                    await acks
                stored, new = await put
        else:
            stored, new = await put
        if new:
            self._log(
                "send",
                now,
                **{"from": session.account, "to": req.to, "size": len(req.env), "mid": stored.mid},
            )
            self.mail_arrived(stored, now)  # other processes: the store published a wake-up
        return p.ok_frame(req.id, mid=stored.mid, ts=stored.ts, dup=not new)

    async def _ack(self, session: Session, req: p.Ack, now: float) -> Frame:
        done = await self._acknowledge(session, req.mids, now)
        if not done:
            raise NotFound("no such message in your mailbox")
        return p.ok_frame(req.id, acked=done)

    async def _acknowledge(self, session: Session, mids: tuple[str, ...], now: float) -> list[str]:
        """Delete delivered envelopes from the caller's own mailbox and open the push window."""
        assert session.account is not None
        done = await self.store.ack(session.account, list(mids), now, self.limits)
        freed = False
        for mid in mids:
            if mid in session.inflight:
                session.inflight.discard(mid)
                freed = True
        if freed and (session.backlog or session.dirty):
            self._schedule_drain(session, now)
        if done:
            self._log("ack", now, account=session.account, count=len(done))
        return done

    async def _prekeys_put(self, session: Session, req: p.PrekeysPut, now: float) -> Frame:
        assert session.account is not None
        count = await self.store.put_prekeys(
            session.account, req.bundle, list(req.otks), req.replace, now, self.limits
        )
        self._log("prekeys.put", now, account=session.account, otks=len(req.otks))
        return p.ok_frame(req.id, otks=count)

    async def _prekeys_get(self, session: Session, req: p.PrekeysGet, now: float) -> Frame:
        """Per requester: a token bucket (``rate_limited`` beyond it, connection kept). Per target: a
        token bucket of one-time-prekey hand-outs; beyond it the bundle comes without one, so a
        stranger cannot drain them. The owner is told (``prekeys.low``) when few are left."""
        assert session.account is not None
        limits = self.limits
        if not await self.store.take_token(
            f"pkr:{session.account}", rate=limits.prekey_fetch_rate, burst=limits.prekey_fetch_burst, now=now
        ):
            raise LimitExceeded(p.ErrorCode.RATE_LIMITED, "too many prekey fetches; try again later")
        take_otk = await self.store.take_token(
            f"pkt:{req.account}", rate=limits.prekey_target_rate, burst=limits.prekey_target_burst, now=now
        )
        found = await self.store.get_prekeys(req.account, take_otk=take_otk)
        if found is None:
            raise NotFound("no prekey bundle for this account")
        bundle, otk = found
        self._log("prekeys.get", now, **{"from": session.account, "of": req.account, "otk": otk is not None})
        if otk is not None:
            left = await self.store.count_prekeys(req.account)
            if left < limits.otk_low:
                self.prekeys_low(req.account, left)
                if self.store.shared:
                    await self.store.notify_prekeys_low(req.account, left)
        return p.ok_frame(req.id, account=req.account, bundle=bundle, otk=otk)

    def prekeys_low(self, account: str, count: int) -> None:
        """Tell ``account``'s connections on this process that only ``count`` one-time prekeys are left."""
        frame = p.prekeys_low_frame(count)
        for session in self.sessions.get(account, ()):
            session.send(frame)

    async def _prekeys_count(self, session: Session, req: p.PrekeysCount, now: float) -> Frame:
        assert session.account is not None
        return p.ok_frame(req.id, otks=await self.store.count_prekeys(session.account))

    async def _blob_put(self, session: Session, req: p.BlobPut, now: float) -> Frame:
        assert session.account is not None
        max_size = self.limits.snapshot_max if session.authority else self.limits.blob_max
        blob_id = req.blob
        if blob_id is None:
            blob_id = secrets.token_urlsafe(24)
            await self.store.blob_create(
                session.account, blob_id, now, self.limits, quota=not session.authority
            )
        size = await self.store.blob_append(
            session.account,
            blob_id,
            req.data,
            req.final,
            max_size,
            now,
            self.limits,
            quota=not session.authority,
        )
        if req.final:
            self._log("blob.put", now, account=session.account, size=size)
        return p.ok_frame(req.id, blob=blob_id, size=size)

    async def _blob_get(self, session: Session, req: p.BlobGet, now: float) -> Frame:
        assert session.account is not None
        found = await self.store.blob_get(req.blob, req.chunk, now)
        if found is None:
            raise NotFound("no such blob (it may have expired)")
        data, chunks, size = found
        if req.chunk == 0:
            self._log("blob.get", now, account=session.account, size=size)
        return p.ok_frame(req.id, data=data, chunks=chunks, size=size)

    async def _snapshot_get(self, session: Session, req: p.SnapshotGet, now: float) -> Frame:
        info = await self.store.snapshot_latest()
        if info is None:
            raise NotFound("no snapshot has been published yet")
        self._log("snapshot.get", now, account=session.account, version=info.version)
        frame = p.snapshot_frame(info.version, info.blob, info.size, info.sha256)
        del frame["t"]
        return p.ok_frame(req.id, **frame)

    async def _snapshot_publish(self, session: Session, req: p.SnapshotPublish, now: float) -> Frame:
        assert session.account is not None
        if not session.authority:
            raise RequestFailed(
                p.ErrorCode.FORBIDDEN, "only a configured authority key may publish snapshots"
            )
        found = await self.store.blob_get(req.blob, 0, now)
        if found is None:
            raise NotFound("no such blob")
        info = SnapshotInfo(req.version, req.blob, found[2], req.sha256, now)
        await self.store.snapshot_publish(info, session.account, now, self.limits)
        self._log("snapshot.publish", now, account=session.account, version=req.version, size=info.size)
        self.snapshot_published(info)
        if self.store.shared:
            await self.store.notify_snapshot(info)
        return p.ok_frame(req.id, version=req.version)

    _handlers: ClassVar[dict[type[p.Request], Any]] = {
        p.Send: _send,
        p.Ack: _ack,
        p.PrekeysPut: _prekeys_put,
        p.PrekeysGet: _prekeys_get,
        p.PrekeysCount: _prekeys_count,
        p.BlobPut: _blob_put,
        p.BlobGet: _blob_get,
        p.SnapshotGet: _snapshot_get,
        p.SnapshotPublish: _snapshot_publish,
    }

    # --- delivery ------------------------------------------------------------------------------

    def mail_arrived(self, stored: Stored, now: float) -> None:
        """A committed envelope: push it to its recipient's connections on this process.

        Single-process store: commits complete in id order, so a direct push may advance the
        cursor. Shared store: completions from several connections to Redis may come out of id
        order, so a direct push leaves the cursor alone; later drains re-read from the cursor and
        skip what is already in flight (acknowledged envelopes are gone from the stream).
        """
        for session in self.sessions.get(stored.recipient, ()):
            if stored.mid in session.inflight:
                continue
            room = not session.backlog and len(session.inflight) < self.limits.push_window
            if room and not self._direct:
                self._push(session, stored, advance=False)
            elif (
                room
                and not session.draining
                and (
                    session.cursor is None
                    or self.store.order_key(stored.mid) > self.store.order_key(session.cursor)
                )
            ):
                self._push(session, stored)
            else:
                session.dirty = True
                self._schedule_drain(session, now)

    def wake(self, recipient: str, now: float) -> None:
        """Another process stored mail for ``recipient`` ("" = anyone): re-read the mailbox(es)."""
        groups = list(self.sessions.values()) if recipient == "" else [self.sessions.get(recipient, set())]
        for group in groups:
            for session in group:
                session.dirty = True
                self._schedule_drain(session, now)

    def snapshot_published(self, info: SnapshotInfo) -> None:
        """Tell every connected client that a newer snapshot exists."""
        frame = p.snapshot_frame(info.version, info.blob, info.size, info.sha256)
        for group in self.sessions.values():
            for session in group:
                session.send(frame)

    def _push(self, session: Session, stored: Stored, *, advance: bool = True) -> None:
        session.inflight.add(stored.mid)
        if advance:
            session.cursor = stored.mid
        session.send(p.msg_frame(stored.mid, stored.sender, stored.ts, stored.env))

    def _schedule_drain(self, session: Session, now: float) -> None:
        if session.draining or session.closed:
            return
        session.draining = True
        task = asyncio.get_running_loop().create_task(self._drain(session, now))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _drain(self, session: Session, now: float) -> None:
        assert session.account is not None
        try:
            while not session.closed:
                session.dirty = False
                room = self.limits.push_window - len(session.inflight)
                if room <= 0:
                    session.backlog = True
                    break
                limit = min(room, 256)
                batch = await self.store.fetch(session.account, session.cursor, limit, now)
                for stored in batch:
                    if stored.mid not in session.inflight:
                        self._push(session, stored)
                if len(batch) < limit and not session.dirty:
                    session.backlog = False
                    break
        except RelayError:
            session.close_reason = "storage failure while delivering"
        finally:
            session.draining = False

    def _log(self, event: str, now: float, **fields: Any) -> None:
        if self.metadata is not None:
            self.metadata.record(event, now, **fields)

    async def drain_tasks(self) -> None:
        """Wait for running deliveries (used at shutdown and in tests)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)
