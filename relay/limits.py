"""Limits of the relay: sizes, quotas, rates and queue bounds (pure; time is passed in)."""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

from relay import protocol

__all__ = ["DAY", "Limits", "RateLimiter", "TokenBucket"]

DAY = 86400.0


@dataclass(frozen=True, slots=True)
class Limits:
    """Every bound the relay enforces; the defaults are what `pocketscan relay` uses."""

    envelope_max: int = protocol.MAX_ENVELOPE
    """Largest envelope in bytes."""
    blob_max: int = protocol.MAX_BLOB
    """Largest attachment blob in bytes."""
    snapshot_max: int = protocol.MAX_SNAPSHOT
    """Largest snapshot blob (publishers only)."""
    ttl: float = 30 * DAY
    """Lifetime of stored envelopes, blobs and idempotency keys, in seconds."""
    mailbox_max_messages: int = 10_000
    """Per-mailbox quota: number of undelivered envelopes."""
    mailbox_max_bytes: int = 256 * 1024 * 1024
    """Per-mailbox quota: total bytes of undelivered envelopes."""
    max_otks: int = 1000
    """Most one-time prekeys stored per account."""
    uploads_per_account: int = 4
    """Most unfinished blob uploads per account."""
    account_rate: float = 2000.0
    """Per-account requests per second (sustained)."""
    account_burst: float = 4000.0
    """Per-account burst of requests."""
    address_rate: float = 50_000.0
    """Per-address requests per second (sustained)."""
    address_burst: float = 100_000.0
    """Per-address burst of requests."""
    connect_rate: float = 100.0
    """Per-address new connections per second."""
    connect_burst: float = 1000.0
    """Per-address burst of new connections."""
    max_connections: int = 10_000
    """Most simultaneous connections."""
    max_inflight: int = 512
    """Most requests of one connection being processed at once; beyond it the relay stops reading."""
    send_queue: int = 1024
    """Most frames waiting to be written to one connection; beyond it, the slow reader is closed.
    (Replies are bounded by ``max_inflight`` and pushes by ``push_window``, so only a client that
    stops reading fills it.)"""
    push_window: int = 256
    """Most pushed but unacknowledged envelopes per connection (flow control)."""
    bad_requests: int = 16
    """Unknown or refused requests tolerated per connection before it is closed."""
    auth_timeout: float = 10.0
    """Seconds a connection may stay unauthenticated."""
    ping_interval: float = 20.0
    """Seconds between keepalive pings."""
    ping_timeout: float = 20.0
    """Seconds to wait for a pong before closing a half-open connection."""

    def hello(self) -> dict[str, int]:
        """The limits announced to clients in ``hello``."""
        return {
            "envelope_max": self.envelope_max,
            "blob_max": self.blob_max,
            "chunk": protocol.BLOB_CHUNK,
            "ack_batch": protocol.MAX_ACK_BATCH,
            "ttl": int(self.ttl),
        }


class TokenBucket:
    """Classic token bucket: ``rate`` tokens per second up to ``burst``."""

    __slots__ = ("burst", "rate", "stamp", "tokens")

    def __init__(self, rate: float, burst: float, now: float) -> None:
        self.rate = rate
        self.burst = burst
        self.tokens = burst
        self.stamp = now

    def allow(self, now: float, cost: float = 1.0) -> bool:
        """Take ``cost`` tokens if available; a rate of 0 or less means unlimited."""
        if self.rate <= 0:
            return True
        elapsed = max(0.0, now - self.stamp)
        self.stamp = now
        self.tokens = min(self.burst, self.tokens + elapsed * self.rate)
        if self.tokens >= cost:
            self.tokens -= cost
            return True
        return False


class RateLimiter:
    """Token buckets per key (account or address), holding at most ``max_keys`` (memory bound)."""

    def __init__(self, rate: float, burst: float, *, max_keys: int = 100_000) -> None:
        self.rate = rate
        self.burst = burst
        self.max_keys = max_keys
        self._buckets: OrderedDict[str, TokenBucket] = OrderedDict()

    def allow(self, key: str, now: float, cost: float = 1.0) -> bool:
        """True if ``key`` may spend ``cost`` now."""
        if self.rate <= 0:
            return True
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = TokenBucket(self.rate, self.burst, now)
            self._buckets[key] = bucket
            if len(self._buckets) > self.max_keys:
                self._buckets.popitem(last=False)
        else:
            self._buckets.move_to_end(key)
        return bucket.allow(now, cost)

    def __len__(self) -> int:
        return len(self._buckets)
