"""Shared: what the core hands every component besides its own collaborators.

The event hub, and the core's clock, settings, lock, trace and error note, each read at call time
(a test may replace the core's clock; ``set_policy`` replaces its settings). Tests build one over
recorders (``tests/client/core/partykit.py``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass

from client.config import Settings
from client.interfaces import EventHub

__all__ = ["Shared"]


@dataclass(frozen=True, eq=False)
class Shared:
    """The core's cross-cutting services, as callables so a component always sees the current value."""

    hub: EventHub
    """Fan-out of events to the front ends."""
    clock: Callable[[], float]
    settings: Callable[[], Settings]
    lock: Callable[[], asyncio.Lock]
    """Serialises the store's multi-step updates (sends, inbound envelopes, prekey top-ups)."""
    trace: Callable[[str], None]
    """Told ``"machine.step"`` for each step (tests assert the order of operations)."""
    note_error: Callable[[str], None]
    """Records the latest problem a front end may show (``Core.last_error``)."""
