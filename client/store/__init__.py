"""The client's encrypted local store (see :mod:`client.store.db`)."""

from __future__ import annotations

from client.store.db import Contact, DeliveryState, MessageRecord, OutboxItem, Store

__all__ = ["Contact", "DeliveryState", "MessageRecord", "OutboxItem", "Store"]
