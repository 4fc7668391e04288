"""`authority serve`: the long-running authority, an account on the relay (the only socket owner here).

It connects with the authority key through the client's supervised connection (:class:`client.net.Net`:
reconnect with backoff, persisted outbox, inbound dedupe), hands every mailbox envelope to the
:class:`~client.authority.inbox.Inbox` (stored or refused before the relay is told to delete it), and loops:
apply the decisions reviewers recorded (``authority review``, the console: other processes writing the same
store), rebuild, sign and publish when the bank changed, then deliver the decision notices. A publish that
fails is retried with backoff; nothing is lost meanwhile (``client/authority/workflow.py``).
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import Callable

import nacl.signing

from client.authority.inbox import Inbox
from client.authority.store import AuthorityStore, StoreError
from client.authority.workflow import Built, Workflow
from client.net import Inbound, LinkPublisher, Net, NetError, PendingEnvelope
from scanner.authority import AuthorityKey
from scanner.errors import ScannerError
from scanner.snapshot.workflow import publish

__all__ = ["AuthorityService"]


class _StoreOutbox:
    """``client.net.OutboxPort`` over the authority store's outbox (decision notices)."""

    def __init__(self, store: AuthorityStore) -> None:
        self.store = store

    def pending(self) -> list[PendingEnvelope]:
        return [PendingEnvelope(eid, recipient, payload)
                for eid, recipient, payload in self.store.outbox_pending()]

    def acknowledged(self, envelope_id: str, server_id: str, ts: float) -> None:
        self.store.outbox_done(envelope_id, delivered=True)

    def rejected(self, envelope_id: str, reason: str) -> None:
        self.store.outbox_done(envelope_id, delivered=False, why=reason)

    def waiting(self, envelope_id: str, reason: str) -> None:
        """A quota refusal: the notice stays in the outbox; the network retries it with backoff."""


class AuthorityService:
    """The serve loop (see the module docstring)."""

    def __init__(self, key: AuthorityKey, store: AuthorityStore, workflow: Workflow, relay_url: str, *,
                 progress: Callable[[str], None] = lambda line: None, poll: float = 0.2,
                 retry_max: float = 30.0, publish_timeout: float = 30.0) -> None:
        self.key = key
        self.store = store
        self.workflow = workflow
        self.progress = progress
        self.poll = poll
        self.retry_max = retry_max
        self.publish_timeout = publish_timeout
        self.net = Net(relay_url, nacl.signing.SigningKey(key.seed), _StoreOutbox(store),
                       on_inbound=self._inbound, seen=store.seen_mid, on_state=self._on_state)
        self.inbox = Inbox(store, key.seed, fetch_blob=self.net.download_blob, progress=progress)
        self._built: Built | None = None
        self._retry_at = 0.0
        self._retry_delay = 1.0
        self._last_state: tuple[bool, str] | None = None
        self._last_error = ""

    def _on_state(self, connected: bool, detail: str) -> None:
        if (connected, detail) != self._last_state:
            self._last_state = (connected, detail)
            self.progress(detail)

    async def _inbound(self, env: Inbound) -> None:
        await self.inbox.receive(env.mid, env.sender, env.ts, env.env)

    async def run(self, stop: asyncio.Event) -> None:
        """Serve until ``stop`` is set."""
        self.progress(f"authority {self.key.public_hex[:16]}... serving mailbox {self.net.url}")
        await self.net.start()
        try:
            while not stop.is_set():
                try:
                    await self.step()
                except (StoreError, ScannerError) as exc:  # e.g. a busy store or bank: retried next round
                    if str(exc) != self._last_error:
                        self._last_error = str(exc)
                        self.progress(f"{exc}; retrying")
                else:
                    self._last_error = ""
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), self.poll)
        finally:
            await self.net.stop()

    async def step(self) -> None:
        """One round: apply decisions, publish if the bank changed, flush notices."""
        if self.workflow.apply_pending():
            self.net.kick()
        if self.workflow.needs_publish() and time.monotonic() >= self._retry_at:
            await self._publish()
        if self.store.outbox_pending():
            self.net.kick()

    async def _publish(self) -> None:
        try:
            info = await self.net.call(lambda conn: conn.snapshot_info(), what="ask for the relay's snapshot",
                                       timeout=min(10.0, self.publish_timeout))
        except NetError as exc:
            self._retry_later(f"cannot reach the relay: {exc}")
            return
        relay_version = 0 if info is None else info.version
        built = self._built
        stale = built is None or built.generation != self.store.bank_generation()
        if stale or built is None or built.version <= relay_version:
            self.progress(f"rebuilding the snapshot (bank generation {self.store.bank_generation()})")
            generation, floor = self.workflow.build_floor()
            try:
                built = await asyncio.to_thread(self.workflow.build, generation=generation,
                                                min_version=max(floor, relay_version + 1))
            except Exception as exc:  # a failed build must not stop the authority; the bank is intact
                with self.store.transaction():
                    why = f"{type(exc).__name__}: {exc}"[:500]
                    self.store.audit("serve", "snapshot.build_failed", why=why)
                self._retry_later(f"building the snapshot failed ({type(exc).__name__}: {exc})")
                return
            self.workflow.record_build(built)
            self._built = built
        try:
            published = await publish(built, LinkPublisher(self.net, self.publish_timeout))
        except NetError as exc:
            with self.store.transaction():
                self.store.audit("serve", "snapshot.publish_failed", why=str(exc)[:500],
                                 detail={"version": built.version})
            self._retry_later(f"publishing snapshot v{built.version} failed: {exc}")
            return
        self._retry_delay = 1.0
        self.workflow.published(built, published.seconds)
        self.net.kick()

    def _retry_later(self, why: str) -> None:
        delay = self._retry_delay * random.uniform(0.8, 1.2)
        self._retry_at = time.monotonic() + delay
        self._retry_delay = min(self._retry_delay * 2, self.retry_max)
        self.progress(f"{why}; retrying in {delay:.1f} s (the bank and the decisions are kept)")
