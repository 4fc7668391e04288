"""The client's one network edge: a supervised relay connection (the only importer of relay.client).

:class:`Net` keeps one authenticated :class:`relay.client.RelayConnection` alive:

* **reconnect with backoff**: exponential from ``backoff_initial`` to ``backoff_max`` seconds with
  +-20 % jitter, reset after a successful connect;
* **resend from the persisted outbox**: every envelope is written to the store's outbox *before*
  it is sent (by the core) and deleted only when the relay acknowledged it; on every (re)connect
  the flusher resends whatever is pending, in order, with the same idempotency key (``cid``) so
  the relay stores it once even if the first attempt got through before the link dropped;
* **quota backoff**: a send the relay refuses for a quota (``quota_exceeded``: the recipient's
  mailbox, or this sender's share of it, is full) stays in the outbox and is retried with
  exponential backoff from ``quota_backoff_initial`` to ``quota_backoff_max`` seconds; the outbox is
  told it is *waiting* (never failed, never dropped). Later envelopes to the same peer wait behind
  it (order is kept); envelopes to other peers go on;
* **prekey refill**: when the relay pushes ``prekeys.low``, ``on_prekeys_low`` runs (the core tops
  its one-time prekeys up) on the live connection, without reconnecting;
* **inbound dedupe**: pushed envelopes whose relay id was already processed are acknowledged and
  dropped (the store remembers seen ids; the ratchet also refuses replays);
* **snapshot updates**: on connect and on every announcement, a newer snapshot is downloaded
  (SHA-256 checked) and handed to ``install_snapshot``, which verifies the signature against the
  pinned authority key and swaps it in atomically, or raises and keeps the last good one.

Everything above this module is I/O-free with respect to the network: the core gives ``Net`` an
:class:`OutboxPort` (persisted envelopes) and callbacks, and calls its request methods.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

import nacl.signing

from relay.client import Delivery, RelayConnection, SnapshotAnnouncement
from relay.errors import (
    AuthError,
    ConnectionLost,
    LimitExceeded,
    NotFound,
    ProtocolError,
    RelayError,
    RequestFailed,
)

__all__ = ["MAX_DOWNLOAD", "MAX_SNAPSHOT_DOWNLOAD", "Inbound", "MissingAtRelay",
            "Net", "NetError", "OutboxPort", "PendingEnvelope", "fetch_mailbox",
           "fetch_snapshot_capped", "get_blob_capped", "publish_snapshot"]
__all__ += ["LinkPublisher", "RelayPublisher"]

T = TypeVar("T")


MAX_DOWNLOAD = 32 * 1024 * 1024
"""Largest blob the client downloads (an encrypted 20 MiB image is about 21 MiB)."""
MAX_SNAPSHOT_DOWNLOAD = 64 * 1024 * 1024
"""Largest snapshot file the client downloads."""


class NetError(Exception):
    """The relay could not be reached in time, or refused a request (the message says which)."""


class MissingAtRelay(NetError):
    """The relay has no such blob, bundle or snapshot (expired, never uploaded, or not published)."""


@dataclass(frozen=True)
class PendingEnvelope:
    """One persisted, not yet acknowledged envelope."""

    envelope_id: str
    """Hex of the idempotency key (``cid``) reused on every resend."""
    peer: str
    payload: bytes


@dataclass(frozen=True)
class Inbound:
    """One envelope pushed by the relay (the relay-authenticated sender and its server id)."""

    mid: str
    sender: str
    ts: float
    env: bytes


class OutboxPort(Protocol):
    """The persisted outbox, owned by the core's store."""

    def pending(self) -> list[PendingEnvelope]: ...

    def acknowledged(self, envelope_id: str, server_id: str, ts: float) -> None: ...

    def rejected(self, envelope_id: str, reason: str) -> None: ...

    def waiting(self, envelope_id: str, reason: str) -> None:
        """The relay refused the envelope for a quota; it stays pending and is retried later."""


class Net:
    """A self-healing connection to one relay.

    Args:
        url: ``ws://host:port`` of the relay.
        signing_key: the account's Ed25519 identity key (authenticates the connection).
        outbox: the persisted outbox to flush.
        on_inbound: processes one pushed envelope; returns when it is durably handled (then it is
            acknowledged to the relay). Raising ``ConnectionLost`` leaves it for redelivery.
        seen: True if an inbound relay id was already processed (dedupe before ``on_inbound``).
        on_state: told ``(connected, detail)`` on every change.
        wants_snapshot: True if a snapshot of this version would be newer than the current one.
        install_snapshot: verify and swap in a downloaded snapshot file (raise to refuse it).
        on_connected: run once per connection after authentication (e.g. prekey top-up).
        on_prekeys_low: run when the relay says few one-time prekeys are left (told the count).
    """

    def __init__(
        self,
        url: str,
        signing_key: nacl.signing.SigningKey,
        outbox: OutboxPort,
        *,
        on_inbound: Callable[[Inbound], Awaitable[None]],
        seen: Callable[[str], bool],
        on_state: Callable[[bool, str], None] = lambda connected, detail: None,
        wants_snapshot: Callable[[int], bool] = lambda version: False,
        install_snapshot: Callable[[bytes], None] = lambda data: None,
        on_connected: Callable[[], Awaitable[None]] | None = None,
        on_prekeys_low: Callable[[int], Awaitable[None]] | None = None,
        backoff_initial: float = 0.2,
        backoff_max: float = 10.0,
        request_timeout: float = 60.0,
        quota_backoff_initial: float = 2.0,
        quota_backoff_max: float = 300.0,
    ) -> None:
        self.url = url
        self._key = signing_key
        self._outbox = outbox
        self._on_inbound = on_inbound
        self._seen = seen
        self._on_state = on_state
        self._wants_snapshot = wants_snapshot
        self._install_snapshot = install_snapshot
        self._on_connected = on_connected
        self._on_prekeys_low = on_prekeys_low
        self._refilling = False
        self._refill_again = False
        self.prekey_refills = 0
        """How many ``prekeys.low`` pushes led to a refill (for status and tests)."""
        self.quota_backoff_initial = quota_backoff_initial
        self.quota_backoff_max = quota_backoff_max
        self._retry_at: dict[str, float] = {}
        """Envelope id -> event-loop time before which a quota-refused envelope is not resent."""
        self._retry_delay: dict[str, float] = {}
        self.waiting: dict[str, str] = {}
        """Envelope id -> the relay's reason, for envelopes waiting out a quota."""
        self._retry_timer: asyncio.TimerHandle | None = None
        self.backoff_initial = backoff_initial
        self.backoff_max = backoff_max
        self.request_timeout = request_timeout
        self._conn: RelayConnection | None = None
        self._connected = asyncio.Event()
        self._attempt_failed = asyncio.Event()
        self.snapshot_checked = asyncio.Event()
        """Set once a connection has checked the relay's current snapshot (installed, refused or none)."""
        self._kick = asyncio.Event()
        self._stopping = False
        self._supervisor: asyncio.Task[None] | None = None
        self.last_error = ""
        self.connects = 0
        """How many times a connection was established (reconnects = connects - 1)."""

    # --- lifecycle -----------------------------------------------------------------------------
    async def start(self) -> None:
        """Start connecting in the background (returns at once)."""
        if self._supervisor is None:
            self._stopping = False
            self._supervisor = asyncio.get_running_loop().create_task(self._supervise(), name="net")

    async def stop(self) -> None:
        """Close the connection and stop reconnecting (the outbox stays persisted)."""
        self._stopping = True
        if self._supervisor is not None:  # cancels the per-connection tasks, then closes the link
            self._supervisor.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._supervisor
            self._supervisor = None
        if self._retry_timer is not None:
            self._retry_timer.cancel()
            self._retry_timer = None
        conn = self._conn
        if conn is not None:
            with contextlib.suppress(Exception):
                await conn.close()

    @property
    def connected(self) -> bool:
        return self._conn is not None and self._connected.is_set()

    async def wait_connected(self, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds for a live connection."""
        try:
            await asyncio.wait_for(self._connected.wait(), timeout)
        except TimeoutError:
            return False
        return True

    async def wait_first_attempt(self, timeout: float) -> bool:
        """Wait until connected (True) or until the first connection attempt failed or ``timeout`` passed.

        Commands use it to answer at once when the relay is down: a refused connection fails in
        milliseconds, so nothing waits for reconnects with backoff; a slow but live relay is still waited for.
        """
        if self.connected:
            return True
        connected = asyncio.ensure_future(self._connected.wait())
        failed = asyncio.ensure_future(self._attempt_failed.wait())
        try:
            await asyncio.wait({connected, failed}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (connected, failed):
                task.cancel()
        return self.connected

    def kick(self) -> None:
        """New envelopes are in the outbox: flush now (if connected)."""
        self._kick.set()

    async def _supervise(self) -> None:
        delay = self.backoff_initial
        while not self._stopping:
            try:
                conn = await RelayConnection.connect(self.url, self._key,
                                                     request_timeout=self.request_timeout,
                                                     on_prekeys_low=self._prekeys_low)
            except (ConnectionLost, AuthError, ProtocolError, OSError, TimeoutError) as exc:
                self.last_error = str(exc)
                self._attempt_failed.set()
                self._on_state(False, f"offline: {exc}; retrying in {delay:.1f} s")
                await asyncio.sleep(delay * random.uniform(0.8, 1.2))
                delay = min(delay * 2, self.backoff_max)
                continue
            delay = self.backoff_initial
            self.connects += 1
            self._conn = conn
            self._connected.set()
            self._on_state(True, f"connected to {self.url}")
            tasks = [
                asyncio.create_task(self._consume(conn), name="net-inbound"),
                asyncio.create_task(self._flush(conn), name="net-outbox"),
                asyncio.create_task(self._snapshots(conn), name="net-snapshots"),
            ]
            if self._on_connected is not None:
                tasks.append(asyncio.create_task(self._guard(self._on_connected()), name="net-hook"))
            self._kick.set()
            try:
                await conn.closed.wait()
            finally:
                self._connected.clear()
                self._conn = None
                for task in tasks:
                    task.cancel()
                for task in tasks:
                    with contextlib.suppress(asyncio.CancelledError, Exception):
                        await task
                with contextlib.suppress(Exception):
                    await conn.close()
            if not self._stopping:
                self.last_error = conn.close_reason or "connection closed"
                self._on_state(False, f"disconnected ({self.last_error}); reconnecting")
                await asyncio.sleep(self.backoff_initial * random.uniform(0.8, 1.2))

    async def _guard(self, work: Awaitable[None]) -> None:
        try:
            await work
        except (RelayError, NetError) as exc:
            self.last_error = str(exc)

    async def _prekeys_low(self, count: int) -> None:
        """The relay says only ``count`` one-time prekeys are left: top up now (one refill at a time)."""
        if self._on_prekeys_low is None:
            return
        if self._refilling:
            self._refill_again = True
            return
        self._refilling = True
        try:
            while True:
                self._refill_again = False
                try:
                    await self._on_prekeys_low(count)
                    self.prekey_refills += 1
                except (RelayError, NetError) as exc:
                    self.last_error = f"prekey refill failed: {exc}"
                if not self._refill_again:
                    break
        finally:
            self._refilling = False

    # --- outbound ------------------------------------------------------------------------------
    async def _flush(self, conn: RelayConnection) -> None:
        """Send every pending envelope, oldest first; wait for the next kick; repeat.

        An envelope refused for a quota waits (backoff) and holds back later envelopes to the same
        peer, so they keep their order; the others are sent.
        """
        loop = asyncio.get_running_loop()
        while True:
            await self._kick.wait()
            self._kick.clear()
            held: set[str] = set()
            pending = self._outbox.pending()
            live = {item.envelope_id for item in pending}
            for stale in [eid for eid in self._retry_at if eid not in live]:
                self._forget_retry(stale)
            for item in pending:
                if item.peer in held:
                    continue
                due = self._retry_at.get(item.envelope_id)
                if due is not None and due > loop.time():
                    held.add(item.peer)
                    continue
                while True:
                    try:
                        mid, ts, _dup = await conn.send(item.peer, item.payload,
                                                        cid=bytes.fromhex(item.envelope_id))
                    except LimitExceeded as exc:
                        if exc.code == "rate_limited":
                            await asyncio.sleep(0.5)
                            continue
                        if exc.code == "quota_exceeded":
                            self._defer(item.envelope_id, str(exc))
                            held.add(item.peer)
                        else:
                            self._forget_retry(item.envelope_id)
                            self._outbox.rejected(item.envelope_id, str(exc))
                    except RequestFailed as exc:
                        self._forget_retry(item.envelope_id)
                        self._outbox.rejected(item.envelope_id, str(exc))
                    except ConnectionLost:
                        return  # the supervisor reconnects; pending envelopes stay in the outbox
                    else:
                        self._forget_retry(item.envelope_id)
                        self._outbox.acknowledged(item.envelope_id, mid, ts)
                    break
            self._arm_retry_timer()

    def _defer(self, envelope_id: str, reason: str) -> None:
        """A quota refusal: retry later (exponential backoff with jitter) and tell the outbox it waits."""
        delay = self._retry_delay.get(envelope_id, 0.0)
        delay = min(self.quota_backoff_max, max(self.quota_backoff_initial, delay * 2))
        self._retry_delay[envelope_id] = delay
        self._retry_at[envelope_id] = asyncio.get_running_loop().time() + delay * random.uniform(0.8, 1.2)
        first = envelope_id not in self.waiting
        self.waiting[envelope_id] = reason
        if first:
            self._outbox.waiting(envelope_id, reason)

    def _forget_retry(self, envelope_id: str) -> None:
        self._retry_at.pop(envelope_id, None)
        self._retry_delay.pop(envelope_id, None)
        self.waiting.pop(envelope_id, None)

    def _arm_retry_timer(self) -> None:
        """Kick the flusher when the earliest waiting envelope is due."""
        if self._retry_timer is not None:
            self._retry_timer.cancel()
            self._retry_timer = None
        if self._retry_at:
            loop = asyncio.get_running_loop()
            delay = max(0.0, min(self._retry_at.values()) - loop.time())
            self._retry_timer = loop.call_later(delay, self._kick.set)

    # --- inbound -------------------------------------------------------------------------------
    async def _consume(self, conn: RelayConnection) -> None:
        while True:
            delivery: Delivery | None = await conn.messages.get()
            if delivery is None:
                return
            if not self._seen(delivery.mid):
                try:
                    await self._on_inbound(Inbound(delivery.mid, delivery.sender, delivery.ts, delivery.env))
                except ConnectionLost:
                    return  # not acknowledged: the relay redelivers after reconnect
                except Exception as exc:  # one bad envelope costs one envelope: acknowledged, never retried
                    self.last_error = f"inbound envelope not processed: {type(exc).__name__}: {exc}"
            conn.ack_soon([delivery.mid])  # batched (or piggybacked on a send): no round trip per envelope

    # --- snapshots -----------------------------------------------------------------------------
    async def _snapshots(self, conn: RelayConnection) -> None:
        info: SnapshotAnnouncement | None = await conn.snapshot_info()
        while True:
            if info is not None and self._wants_snapshot(info.version):
                try:
                    fetched = await fetch_snapshot_capped(conn, info)
                except (ProtocolError, NotFound, RequestFailed, LimitExceeded) as exc:
                    self._on_state(True, f"snapshot v{info.version} download failed: {exc}")
                else:
                    if fetched is not None:
                        try:
                            self._install_snapshot(fetched[1])
                        except Exception as exc:  # refused: the last good snapshot stays in use
                            self._on_state(True, f"snapshot v{info.version} refused: {exc}")
            self.snapshot_checked.set()
            info = await conn.snapshots.get()

    # --- requests ------------------------------------------------------------------------------
    async def call(self, op: Callable[[RelayConnection], Awaitable[T]], *, what: str,
                   timeout: float = 30.0) -> T:
        """Run ``op`` on a live connection, waiting for one and retrying across reconnects.

        Raises:
            NetError: no connection within ``timeout``, or the relay refused the request.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            remaining = deadline - loop.time()
            if remaining <= 0 or not await self.wait_connected(remaining):
                detail = f" ({self.last_error})" if self.last_error else ""
                raise NetError(f"cannot {what}: the relay {self.url} is not reachable{detail}")
            conn = self._conn
            if conn is None:
                await asyncio.sleep(0.05)
                continue
            try:
                return await op(conn)
            except ConnectionLost:
                await asyncio.sleep(0.05)
                continue
            except NotFound as exc:
                raise MissingAtRelay(f"cannot {what}: not found at the relay ({exc})") from None
            except RelayError as exc:
                raise NetError(f"cannot {what}: {exc}") from None

    async def upload_blob(self, blob: bytes) -> str:
        return await self.call(lambda c: c.put_blob(blob), what="upload the attachment", timeout=120)

    async def download_blob(self, blob_id: str, *, size: int | None = None, timeout: float = 120) -> bytes:
        """Download a blob, streamed and capped: ``size`` (exact, when known) and :data:`MAX_DOWNLOAD`."""
        return await self.call(lambda c: get_blob_capped(c, blob_id, size=size, cap=MAX_DOWNLOAD),
                               what="download the attachment", timeout=timeout)

    async def fetch_bundle(self, account: str) -> tuple[bytes, bytes | None]:
        return await self.call(lambda c: c.get_prekeys(account), what=f"fetch the keys of {account}")

    async def publish_prekeys(self, bundle: bytes | None, one_time: list[bytes], *, replace: bool) -> int:
        return await self.call(lambda c: c.put_prekeys(bundle, one_time, replace=replace),
                               what="publish prekeys")

    async def count_prekeys(self) -> int:
        return await self.call(lambda c: c.count_prekeys(), what="count prekeys")

    async def send_now(self, to: str, payload: bytes, cid: bytes) -> tuple[str, float, bool]:
        """Send one envelope directly (used by tools; the core goes through the outbox)."""
        return await self.call(lambda c: c.send(to, payload, cid=cid), what="send")

    def describe(self) -> dict[str, Any]:
        return {"url": self.url, "connected": self.connected, "connects": self.connects,
                "last_error": self.last_error, "waiting": len(self.waiting),
                "prekey_refills": self.prekey_refills}


async def publish_snapshot(url: str, authority_seed: bytes, data: bytes, version: int, *,
                           timeout: float = 30.0) -> int:
    """Authority side: upload a signed snapshot file to the relay and make it the newest
    (:func:`relay.publish.publish`, as ``pocketscan snapshot publish`` does)."""
    from relay.publish import publish
    from scanner.authority import AuthorityKey

    try:
        return await publish(url, AuthorityKey(authority_seed), data, version, open_timeout=timeout)
    except RelayError as exc:
        raise NetError(f"cannot publish the snapshot: {exc}") from None


@dataclass(frozen=True)
class RelayPublisher:
    """The relay-facing publisher of the authority workflow (``scanner.snapshot.workflow.Publisher``): one
    connection, authenticated by the authority key, per upload (:func:`publish_snapshot`)."""

    url: str
    authority_seed: bytes = field(repr=False)
    timeout: float = 30.0

    async def publish(self, data: bytes, version: int) -> int:
        return await publish_snapshot(self.url, self.authority_seed, data, version, timeout=self.timeout)


@dataclass(frozen=True)
class LinkPublisher:
    """The workflow's publisher over a running :class:`Net` link (``authority serve``'s connection)."""

    net: Net
    timeout: float = 30.0

    async def publish(self, data: bytes, version: int) -> int:
        return await self.net.call(lambda conn: conn.publish_snapshot(data, version),
                                   what=f"publish snapshot v{version}", timeout=self.timeout)


async def fetch_mailbox(url: str, signing_seed: bytes, *, quiet: float = 0.5,
                        timeout: float = 10.0) -> list[Inbound]:
    """Read (and acknowledge) every envelope waiting in a mailbox: the authority reads reports this way."""
    conn = await RelayConnection.connect(url, nacl.signing.SigningKey(signing_seed), open_timeout=timeout)
    out: list[Inbound] = []
    try:
        while True:
            delivery = await conn.next_message(quiet)
            if delivery is None:
                break
            out.append(Inbound(delivery.mid, delivery.sender, delivery.ts, delivery.env))
            await conn.ack([delivery.mid])
    finally:
        await conn.close()
    return out


async def get_blob_capped(conn: RelayConnection, blob_id: str, *, size: int | None, cap: int) -> bytes:
    """``blob.get`` chunk by chunk, refusing a blob whose announced or received size is not ``size``
    (when given) or is over ``cap``, before or while downloading (raises ``ProtocolError``)."""
    from relay import protocol as p

    limit = cap if size is None else min(size, cap)
    if size is not None and size > cap:
        raise ProtocolError(f"the declared size ({size} bytes) is over the {cap}-byte download limit")
    first = await conn.request(p.BlobGet(id=0, blob=blob_id, chunk=0))
    chunks, announced, data = first.get("chunks"), first.get("size"), first.get("data")
    if not (isinstance(chunks, int) and isinstance(announced, int) and isinstance(data, bytes)):
        raise ProtocolError("malformed blob.get reply")
    if announced > limit or (size is not None and announced != size):
        raise ProtocolError(f"the relay announced {announced} bytes, expected "
                            f"{size if size is not None else f'at most {cap}'}: size mismatch")
    if not 1 <= chunks <= announced // p.BLOB_CHUNK + 1:
        raise ProtocolError("the relay announced an impossible chunk count")
    out = bytearray(data)
    for index in range(1, chunks):
        if len(out) > announced:
            break
        reply = await conn.request(p.BlobGet(id=0, blob=blob_id, chunk=index))
        piece = reply.get("data")
        if not isinstance(piece, bytes):
            raise ProtocolError("malformed blob.get reply")
        out += piece
    if len(out) != announced:
        raise ProtocolError(f"received {len(out)} bytes of a blob announced as {announced}: size mismatch")
    return bytes(out)


async def fetch_snapshot_capped(conn: RelayConnection,
                                info: SnapshotAnnouncement) -> tuple[SnapshotAnnouncement, bytes]:
    """Download an announced snapshot file: exactly ``info.size`` bytes (at most
    :data:`MAX_SNAPSHOT_DOWNLOAD`), SHA-256 checked; its signature is the caller's to check."""
    import hashlib
    import hmac

    data = await get_blob_capped(conn, info.blob, size=info.size, cap=MAX_SNAPSHOT_DOWNLOAD)
    if not hmac.compare_digest(hashlib.sha256(data).digest(), info.sha256):
        raise ProtocolError("snapshot download does not match its announced SHA-256")
    return info, data
