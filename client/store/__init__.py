"""The client's encrypted local store (see :mod:`client.store.db`) and its repositories."""

from __future__ import annotations

from client.store.db import Store
from client.store.records import Contact, DeliveryState, MessageRecord, OutboxItem

__all__ = ["Contact", "DeliveryState", "MessageRecord", "OutboxItem", "Store"]
