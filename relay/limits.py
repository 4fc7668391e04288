"""Limits of the relay: sizes, quotas, rates and queue bounds (pure; time is passed in)."""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

from relay import protocol

__all__ = ["DAY", "Limits", "RateLimiter", "TokenBucket", "take_token"]

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
    mailbox_sender_share: float = 0.25
    """Most of one mailbox's quota (messages and bytes) that one sender's undelivered envelopes may
    hold, as a fraction in (0, 1]: one account flooding another cannot fill the whole mailbox."""
    blob_quota_bytes: int = 512 * 1024 * 1024
    """Per-account blob quota: bytes of live blobs (finished and unfinished, snapshots excepted)."""
    blob_quota_count: int = 1000
    """Per-account blob quota: number of live finished blobs."""
    blob_ttl: float = 0.0
    """Lifetime of a finished blob, in seconds; 0 means ``ttl`` (never less: an envelope may point at it)."""
    prekey_fetch_rate: float = 1.0
    """Per-requester ``prekeys.get`` rate, fetches per second (sustained); 0 = unlimited."""
    prekey_fetch_burst: float = 30.0
    """Per-requester burst of ``prekeys.get``."""
    prekey_target_rate: float = 1 / 60
    """Per-target one-time-prekey hand-outs per second (sustained); beyond it the bundle comes
    without a one-time prekey (X3DH still works; the target's prekeys are not drained); 0 = unlimited."""
    prekey_target_burst: float = 20.0
    """Per-target burst of one-time-prekey hand-outs."""
    delivered_id_ttl: float = 1 * DAY
    """Seconds an idempotency key lives after its envelope was delivered (acknowledged), with the
    recipient erased from it: long enough for a sender whose ``ok`` was lost to retry without a
    duplicate, not 30 days of who-wrote-to-whom."""
    otk_low: int = 20
    """Push ``prekeys.low`` to the owner when fewer one-time prekeys than this are left."""
    connections_per_address: int = 256
    """Most simultaneous connections from one client address (0 = unlimited)."""
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

    def __post_init__(self) -> None:
        if not 0 < self.mailbox_sender_share <= 1:
            raise ValueError("mailbox_sender_share must be in (0, 1]")
        if self.blob_ttl and self.blob_ttl < self.ttl:
            raise ValueError("blob_ttl must be at least ttl (an envelope may point at a blob)")
        if self.blob_quota_bytes < 0 or self.blob_quota_count < 0 or self.connections_per_address < 0:
            raise ValueError("quotas and caps must not be negative")

    @property
    def finished_blob_ttl(self) -> float:
        """Seconds a finished blob lives."""
        return self.blob_ttl or self.ttl

    @property
    def sender_max_messages(self) -> int:
        """Most undelivered envelopes of one sender in one mailbox."""
        return max(1, int(self.mailbox_max_messages * self.mailbox_sender_share))

    @property
    def sender_max_bytes(self) -> int:
        """Most undelivered envelope bytes of one sender in one mailbox."""
        return max(self.envelope_max, int(self.mailbox_max_bytes * self.mailbox_sender_share))

    def hello(self) -> dict[str, int]:
        """The limits announced to clients in ``hello``."""
        return {
            "envelope_max": self.envelope_max,
            "blob_max": self.blob_max,
            "chunk": protocol.BLOB_CHUNK,
            "ack_batch": protocol.MAX_ACK_BATCH,
            "ttl": int(self.ttl),
            "mailbox_max": self.mailbox_max_messages,
            "sender_max": self.sender_max_messages,
            "blob_quota_bytes": self.blob_quota_bytes,
            "blob_quota_count": self.blob_quota_count,
            "otk_low": self.otk_low,
        }


def take_token(
    tokens: float, stamp: float, *, rate: float, burst: float, now: float, cost: float = 1.0
) -> tuple[bool, float, float]:
    """One token-bucket step, pure: ``(allowed, tokens, stamp)`` after trying to spend ``cost`` at ``now``.

    A bucket starts full (``tokens = burst``); it refills at ``rate`` per second up to ``burst``. A
    clock going backwards refills nothing. A ``rate`` of 0 or less means unlimited. The Redis store
    runs the same arithmetic in Lua (``relay/store_redis.py``), so a fleet shares one bucket.
    """
    if rate <= 0:
        return True, tokens, stamp
    elapsed = max(0.0, now - stamp)
    tokens = min(burst, tokens + elapsed * rate)
    stamp = max(stamp, now)
    if tokens >= cost:
        return True, tokens - cost, stamp
    return False, tokens, stamp


class TokenBucket:
    """Classic token bucket: ``rate`` tokens per second up to ``burst`` (see :func:`take_token`)."""

    __slots__ = ("burst", "rate", "stamp", "tokens")

    def __init__(self, rate: float, burst: float, now: float) -> None:
        self.rate = rate
        self.burst = burst
        self.tokens = burst
        self.stamp = now

    def allow(self, now: float, cost: float = 1.0) -> bool:
        """Take ``cost`` tokens if available; a rate of 0 or less means unlimited."""
        allowed, self.tokens, self.stamp = take_token(
            self.tokens, self.stamp, rate=self.rate, burst=self.burst, now=now, cost=cost
        )
        return allowed


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
