"""Outbox: the persisted envelope queue as the network link sees it (``client.net.OutboxPort``).

Every envelope is written to the store's outbox before it is sent; :class:`Outbox` hands the due
ones to ``client.net`` and turns the relay's answers into delivery states: *acknowledged* ->
``sent``, *rejected* -> ``failed``, *waiting* (a quota) -> ``waiting``. An envelope may carry a
``not_before`` time (a delayed threshold voucher): it stays queued until then, and a timer calls
``kick`` to wake the link when it is due.

Collaborators: the encrypted store, the event hub, a clock, a trace callback and ``kick`` (wake the
network link's flusher). No socket: tests drive it with a real store and a recorder for ``kick``.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from dataclasses import dataclass, field

from client.core.shared import Shared
from client.interfaces import DeliveryChanged
from client.net import PendingEnvelope
from client.store import OutboxItem, Store

__all__ = ["Outbox"]


@dataclass(eq=False, repr=False)
class Outbox:
    """``net.OutboxPort`` over the store, updating delivery states as the relay acknowledges."""

    store: Store
    shared: Shared
    kick: Callable[[], None]
    """Wakes the network link's flusher."""
    msg_of: dict[str, str] = field(default_factory=dict, init=False)
    """envelope id -> message id (for delivery state updates)."""
    _timers: set[str] = field(default_factory=set, init=False)

    def track(self, envelope_id: str, msg_id: str) -> None:
        """Remember that ``envelope_id`` carries the message ``msg_id`` (its state follows the relay)."""
        self.msg_of[envelope_id] = msg_id

    def due(self) -> list[OutboxItem]:
        """Envelopes due now: a delayed voucher waits in the outbox until its time (a timer kicks the net)."""
        now = self.shared.clock()
        due = []
        for item in self.store.outbox.pending():
            when = float(item.meta.get("not_before") or 0.0)
            if when <= now:
                due.append(item)
            elif item.envelope_id not in self._timers:
                with contextlib.suppress(RuntimeError):  # no event loop: the next connection sends it
                    asyncio.get_running_loop().call_later(when - now, self._wake, item.envelope_id)
                    self._timers.add(item.envelope_id)
        return due

    def _wake(self, envelope_id: str) -> None:
        self._timers.discard(envelope_id)
        self.kick()

    def pending(self) -> list[PendingEnvelope]:
        items = self.due()
        for item in items:
            if item.meta.get("msg_id"):
                self.msg_of.setdefault(item.envelope_id, item.meta["msg_id"])
        return [PendingEnvelope(i.envelope_id, i.peer, i.payload) for i in items]

    def acknowledged(self, envelope_id: str, server_id: str, ts: float) -> None:
        self.store.outbox.ack(envelope_id)
        self.shared.trace("net.acked")
        msg_id = self.msg_of.pop(envelope_id, None)
        if msg_id is None:
            return
        message = self.store.messages.get(msg_id)
        if message is not None and message.state in ("sending", "waiting"):
            self.store.messages.update(msg_id, state="sent")
            self.shared.hub.emit(DeliveryChanged(msg_id, message.peer, "sent"))

    def rejected(self, envelope_id: str, reason: str) -> None:
        self.store.outbox.ack(envelope_id)
        msg_id = self.msg_of.pop(envelope_id, None)
        if msg_id is None:
            return
        message = self.store.messages.get(msg_id)
        if message is not None:
            self.store.messages.update(msg_id, state="failed")
            self.shared.hub.emit(DeliveryChanged(msg_id, message.peer, "failed"))

    def waiting(self, envelope_id: str, reason: str) -> None:
        """The relay refused the envelope for a quota: it stays in the outbox, retried with backoff."""
        msg_id = self.msg_of.get(envelope_id)
        message = self.store.messages.get(msg_id) if msg_id else None
        if message is not None and message.state == "sending":
            self.store.messages.update(message.msg_id, state="waiting")
            self.shared.hub.emit(DeliveryChanged(message.msg_id, message.peer, "waiting"))
